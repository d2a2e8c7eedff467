"""Benchmark: mutual-TLS connects and memory per simulated device.

    .venv/bin/python bench/tls_fleet.py [--devices 1000] [--rate 200]

Starts a private mosquitto with an mTLS listener, issues the device identities,
then runs the same fleet of real firmware twice, each in a fresh process, side by
side in one run: plain TCP and mTLS. Prints connect time (TCP + TLS +
CONNECT/CONNACK, per device) p50/p99 and RSS per device.
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time

from soundbox_sim.worker import rss_kib

VARIANTS = (("plain TCP", "plain"), ("mTLS", "tls"))


def pct(values, p):
    ordered = sorted(values)
    return ordered[max(0, -(-p * len(ordered) // 100) - 1)] if ordered else None


async def run_fleet(args):
    """One measurement, in this process: connect the fleet, report figures as JSON."""
    from soundbox_sim import fleet as fleet_mod

    f = fleet_mod.Fleet(args.devices, "127.0.0.1", args.port, os.path.join(args.work, args.mode),
                        args.pack, connect_rate=args.rate, identity_root=os.path.join(args.certs, "devices"),
                        tls=args.mode == "tls")
    import gc
    gc.collect()
    before = rss_kib()
    stop = asyncio.Event()
    started = time.monotonic()

    async def watch():
        while f.connected() < args.devices and time.monotonic() - started < 300:
            await asyncio.sleep(0.2)
        ramp = time.monotonic() - started
        await asyncio.sleep(2)  # let keepalive-idle state settle before measuring
        gc.collect()
        result = {"ramp_s": ramp, "connected": f.connected(),
                  "kib_per_device": (rss_kib() - before) / args.devices,
                  "connect_ms": [d.mqtt.connect_ms for d in f.devices if d.mqtt.connect_ms is not None]}
        print(json.dumps(result), flush=True)
        stop.set()

    await asyncio.gather(f.run(stop), watch())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--rate", type=float, default=200.0)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for name in ("mode", "certs", "work", "pack"):
        p.add_argument("--" + name, help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        asyncio.run(run_fleet(args))
        return

    from soundbox_tools.broker import Mosquitto
    from soundbox_tools.pki import Pki
    from soundbox_tools.voicepack import build_pack
    from soundbox_sim.fleet import device_ids

    work = tempfile.mkdtemp(prefix="bench-tls-")
    pack = os.path.join(work, "voice")
    build_pack("en-IN", pack)
    pki = Pki(os.path.join(work, "certs"))
    pki.init()
    t0 = time.monotonic()
    pki.issue_devices(device_ids(args.devices))
    issue_s = time.monotonic() - t0
    print("issued %d device identities in %.1f s (%.0f/s)" % (args.devices, issue_s, args.devices / issue_s))
    rows = []
    with Mosquitto(os.path.join(work, "tls-broker"), pki=pki) as tls_broker, \
            Mosquitto(os.path.join(work, "plain-broker")) as plain_broker:
        for label, mode in VARIANTS:
            port = tls_broker.port if mode == "tls" else plain_broker.port
            cmd = [sys.executable, __file__, "--child", "--devices", str(args.devices), "--rate", str(args.rate),
                   "--mode", mode, "--certs", pki.root, "--work", work, "--pack", pack, "--port", str(port)]
            print("running %s with %d devices ..." % (label, args.devices), flush=True)
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
            lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
            if not lines:
                sys.exit("benchmark child failed:\n" + out.stderr[-2000:])
            r = json.loads(lines[-1])
            rows.append((label, r))
    print()
    print("%-34s %9s %9s %9s %9s %12s" % ("variant", "connected", "ramp s", "p50 ms", "p99 ms", "KiB/device"))
    for label, r in rows:
        print("%-34s %9d %9.1f %9s %9s %12.1f" % (label, r["connected"], r["ramp_s"], pct(r["connect_ms"], 50),
                                                   pct(r["connect_ms"], 99), r["kib_per_device"]))
    short = [label for label, r in rows if r["connected"] < args.devices]
    if short:  # figures of a fleet that did not connect measure nothing
        sys.exit("not every device connected in: %s (see %s/*/devices.log)" % (", ".join(short), work))
    print("\nmTLS / plain TCP, memory per device: %.2f"
          % (rows[1][1]["kib_per_device"] / rows[0][1]["kib_per_device"]))


if __name__ == "__main__":
    main()
