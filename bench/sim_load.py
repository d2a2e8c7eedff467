"""Benchmark: capacity and steady load of the fleet simulator, the machine floor beside it,
and optionally a bare paho-mqtt peer fleet side by side in the same run.

    .venv/bin/python bench/sim_load.py --devices 10000 --rate 500 --seconds 60 [--plain] [--workers 2]
    .venv/bin/python bench/sim_load.py --devices 1000 --rate 100 --seconds 30 --peer [--peer-loop select]

Runs the `peak-hour` scenario (mosquitto + cloud handler + N real-firmware devices in
worker processes, all on this machine) with the devices, payment rate and duration given,
then prints: provisioning, ramp time, RSS and CPU per device, CPU per payment,
notify->announce and notify->ack p50/p99/p99.9, lost/duplicated/invalid, and a loopback
TCP ping-pong between two processes (the floor) measured right after.

--peer adds bench/peer_fleet.py beside ours: N more devices (sb-N+1..sb-2N, same
cached identities, same mTLS, same worker count and connect rate) that only connect,
subscribe and ack, each receiving the same payment rate from the same cloud through the
same broker. Both fleets are measured over the same window (payments start to settled):
RSS per device at its end above each worker's own base, process CPU per payment,
notify->ack and notify->receive (the device's receive stamp) percentiles, and our/peer
ratios. Our devices ack a payment after announcing it, so notify->ack includes the
announcement: --speedup (default 1000 with --peer) plays it that many times faster.
"""

import argparse
import json
import os
import sys
import tempfile

from soundbox_sim import report, runner, scenario
from soundbox_sim.schema import parse_connect_rate


def connect_rate_arg(text):
    """argparse type of --connect-rate: "auto" or a positive number (a clear usage error otherwise)."""
    try:
        return parse_connect_rate(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).replace("--connect-rate ", "")) from None


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=10000)
    p.add_argument("--rate", type=float, default=500, help="payments per second (per fleet with --peer)")
    p.add_argument("--seconds", type=float, default=60, help="payments for this long")
    p.add_argument("--connect-rate", type=connect_rate_arg, default="auto",
                   help='connects per second, or "auto" (default): an adaptive closed-loop ramp')
    p.add_argument("--idle-seconds", type=float, default=15.0,
                   help="after every device is connected, this long with no payments: idle CPU is measured "
                        "over it, and the marginal CPU per payment is the payment window's CPU less that rate "
                        "(default 15; 0: no idle window)")
    p.add_argument("--workers", type=int)
    p.add_argument("--plain", action="store_true")
    p.add_argument("--speedup", type=float, help="announcements play this many times faster (default 1, 1000 with --peer)")
    p.add_argument("--peer", action="store_true", help="run the bare paho-mqtt fleet (bench/peer_fleet.py) beside ours")
    p.add_argument("--peer-loop", choices=("select", "threads"), default="select",
                   help="how the peer drives paho: one selector loop per worker, or loop_start() per client")
    p.add_argument("--certs", default=os.path.join(".state", "certs"))
    p.add_argument("--state", default=None, help="run directory (default: a new one on /dev/shm)")
    a = p.parse_args()
    if a.devices < 1 or a.rate < 0 or a.seconds <= 0 or not 0 <= a.idle_seconds <= 3600:
        p.error("--devices must be >= 1, --rate >= 0, --seconds > 0 and --idle-seconds 0-3600")
    s = scenario.load("peak-hour")
    s["fleet"].update(devices=a.devices, tls=not a.plain, connect_rate=a.connect_rate,
                      languages={"en-IN": 1.0}, speedup=a.speedup or (1000.0 if a.peer else 1.0))
    s["payments"].update(rate=a.rate, duration=a.seconds)
    s["run"]["duration"] = a.seconds
    s["run"]["idle"] = a.idle_seconds
    companion = None
    if a.peer:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from peer_fleet import PeerFleet
        companion = PeerFleet(a.peer_loop)
    # The run directory (broker, logs, report) on tmpfs too; the runner already puts the
    # devices' flash there: on ext4 each replace-by-rename of a stored file costs ~0.1 ms.
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    state = a.state or tempfile.mkdtemp(prefix="bench-sim-", dir=shm)
    opts = runner.Options(workers=a.workers, certs=a.certs, state=state, live=False, quiet=False,
                          companion=companion)
    r = runner.Runner(s, opts)
    summ = r.run()
    floor = summ["floor_ping_pong_ms"]
    lat = summ["latency_exact_ms"]
    pay = summ["payments"]
    print()
    rate = summ["connect_rate"]
    print("devices %d (%s), workers %d, connect rate %s, announcements x%g"
          % (summ["devices"], "mTLS" if summ["tls"] else "plain", summ["workers"],
             rate if isinstance(rate, str) else "%g/s" % rate, s["fleet"]["speedup"]))
    print("provisioning (cached after the first run): %.1f s" % summ["provision_s"])
    print("ramp: %s s to all connected; connects %s" % (summ["ramp_s"], json.dumps(summ["connects"])))
    print("RSS per device (workers, after the ramp): %.1f KiB" % summ["memory"]["kib_per_device"])
    print("worker CPU: ramp %.1f s (%.2f ms/device), whole run %.1f s; CPU per payment %s ms"
          % (summ["cpu"]["ramp_cpu_s"], summ["cpu"]["ramp_cpu_s"] * 1000 / summ["devices"],
             summ["cpu"]["workers_cpu_s"], summ["cpu"].get("ms_per_payment")))
    win = summ["cpu"].get("windows")
    if win:
        print("worker CPU by window: idle %s s: %s us per device-second; payments %s s: %s s CPU, "
              "per payment all-in %s ms, marginal (less the idle rate) %s ms"
              % (win["idle_window_s"], win["idle_cpu_us_per_device_s"], win["payment_window_s"],
                 win["payment_window_cpu_s"], win["cpu_ms_per_payment"], win["marginal_cpu_ms_per_payment"]))
    print("payments scheduled %d, accepted %d, played %d; lost %d, duplicated %d, invalid acks %d"
          % (pay["scheduled"], pay["accepted"], pay["played"], pay["lost"], pay["duplicated"], pay["invalid_acks"]))
    for name in ("notify_to_receive", "notify_to_announce", "notify_to_ack"):
        v = lat[name]
        print("%-20s p50 %s  p99 %s  p99.9 %s ms  (n=%d)   | floor ping-pong p50 %.3f p99 %.3f ms"
              % (name, v["p50"], v["p99"], v["p99_9"], v["n"], floor["p50"], floor["p99"]))
    for name in ("tcp_connect", "tls_handshake", "connect_to_connack"):
        v = summ["latency_ms"][name]
        print("%-20s p50 <=%s  p99 <=%s ms (histogram bucket bounds, n=%d)" % (name, v["p50"], v["p99"], v["n"]))
    healthy = summ["healthy"]
    if a.peer:
        sbs = summ["side_by_side"]
        if "error" in sbs:
            print("side by side: %s" % sbs["error"])
            healthy = False
        else:
            from rich.console import Console
            Console(width=120).print(report.side_by_side_table(sbs, floor))
            healthy = healthy and sbs["peer"]["lost"] == 0
    print("report: %s/report/report.html (summary.json: side_by_side)" % state)
    sys.exit(0 if healthy else 1)


if __name__ == "__main__":
    main()
