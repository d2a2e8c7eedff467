"""Profile: where the memory of a simulated device goes.

    .venv/bin/python bench/mem_profile.py [--devices 500] [--certs .state/certs] [--trace]

Starts a private mosquitto (plain and mutual TLS, the project's config) and measures,
each in a fresh process, N of one thing at a time: RSS and glibc malloc in-use bytes
(OpenSSL's allocations; tracemalloc does not see them) per item, after the heap's free
pages are handed back (worker.release_free_memory, as the simulator's workers do):

  ctx          N SSLContexts as the SDK builds them (one device identity each)
  tcp          N bare asyncio TCP connections
  tls-own-ctx  N bare asyncio TLS connections, each with its own device context
  tls-shared   N bare TLS connections the simulator's way: one context per CA, each
               connection given its device's certificate, on the simulator's lean
               socket stream (link.py, sockstream.py)
  fleet-plain  N real-firmware devices over plain MQTT
  fleet-tls    N real-firmware devices over mutual TLS (what bench/sim_load.py runs)

With --trace, the fleet runs again under tracemalloc and the Python heap per device is
listed by file, then by line (tracemalloc inflates RSS: its RSS is not reported).
"""

import argparse
import asyncio
import ctypes
import gc
import json
import os
import subprocess
import sys
import tempfile
import time

MODES = ("ctx", "tcp", "tls-own-ctx", "tls-shared", "fleet-plain", "fleet-tls")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]


def malloc_in_use_kib():
    """Bytes glibc's malloc has handed out (not pymalloc's arenas, which it maps itself)."""
    try:
        fn = ctypes.CDLL(None).mallinfo2
    except AttributeError:
        return None
    fn.restype = _MallInfo2
    m = fn()
    return (m.uordblks + m.hblkhd) / 1024


def settle():
    from soundbox_sim.worker import release_free_memory, rss_kib

    gc.collect()
    release_free_memory()
    return rss_kib(), malloc_in_use_kib()


# ---- one measurement, in a fresh process --------------------------------------------------

async def _connections(args, make_ssl):
    import asyncio.sslproto

    from soundbox_sim.link import Link, LinkStats

    asyncio.sslproto.SSLProtocol.max_size = 4 * 1024  # asyncio's 256 KiB TLS read buffer, as the simulator once capped it
    stats = LinkStats()
    held = []
    for i in range(args.devices):
        device = "sb-%04d" % (i + 1)
        ssl_arg = make_ssl(device) if make_ssl else None
        hostname = "localhost" if ssl_arg else None
        if args.mode == "tls-shared":  # the simulator's own link and stream
            _, writer = await Link(device, stats).open_connection("127.0.0.1", args.port, ssl=ssl_arg,
                                                                  server_hostname=hostname)
        else:
            _, writer = await asyncio.open_connection("127.0.0.1", args.port, ssl=ssl_arg,
                                                      server_hostname=hostname)
        held.append(writer)
        if i % 50 == 49:
            await asyncio.sleep(0.05)  # let the broker keep up: no handshake timeouts
    await asyncio.sleep(1)
    return held


async def _fleet(args, tls):
    from soundbox_sim.audio import PackShelf
    from soundbox_sim.fleet import Fleet

    f = Fleet(args.devices, "127.0.0.1", args.port, os.path.join(args.work, args.mode), args.voice,
              connect_rate=400, identity_root=os.path.join(args.certs, "devices"), tls=tls)
    f._shelf = PackShelf(args.voice)
    f._shelf("en-IN")  # shared by the fleet: opened before the baseline
    stop = asyncio.Event()
    return f, stop


async def measure(args):
    import tracemalloc

    from soundbox import tls
    from soundbox_sim.link import der_context  # the device's DER identity as a CPython context

    identity = os.path.join(args.certs, "devices")
    result = {"mode": args.mode, "n": args.devices}
    if args.mode.startswith("fleet"):
        f, stop = await _fleet(args, args.mode == "fleet-tls")
    der_context(os.path.join(identity, "sb-0001"))  # warm OpenSSL's own tables first
    rss0, heap0 = settle()
    if args.trace:
        tracemalloc.start()
        snap0 = tracemalloc.take_snapshot()
    keep = None
    if args.mode == "ctx":
        keep = [der_context(os.path.join(identity, "sb-%04d" % (i + 1))) for i in range(args.devices)]
    elif args.mode == "tcp":
        keep = await _connections(args, None)
    elif args.mode == "tls-own-ctx":
        keep = await _connections(args, lambda d: der_context(os.path.join(identity, d)))
    elif args.mode == "tls-shared":
        from soundbox_sim.link import install_context_cache

        install_context_cache()
        keep = await _connections(args, lambda d: tls.client_context(os.path.join(identity, d)))
        result["shared_ca"] = tls.client_context.shared_ca
    else:
        starter = asyncio.ensure_future(f.start_all(stop))
        started = time.monotonic()
        while f.connected() < args.devices and time.monotonic() - started < 120:
            await asyncio.sleep(0.2)
        result["ramp_s"] = round(time.monotonic() - started, 1)
        result["connected"] = f.connected()
        await asyncio.sleep(3)  # past CONNACK, SUBACK, the first telemetry
    rss1, heap1 = settle()
    result["rss_kib"] = round((rss1 - rss0) / args.devices, 1)
    result["malloc_kib"] = round((heap1 - heap0) / args.devices, 1) if heap0 is not None else None
    if args.trace:
        snap1 = tracemalloc.take_snapshot()
        for key in ("filename", "lineno"):
            stats = snap1.compare_to(snap0, key)
            result["python_kib"] = round(sum(s.size_diff for s in stats) / 1024 / args.devices, 2)
            result["by_" + key] = [(str(s.traceback), round(s.size_diff / 1024 / args.devices, 2),
                                    round(s.count_diff / args.devices, 1)) for s in stats[:args.top]]
    if keep is not None:
        result["items"] = len(keep)  # (alive until here)
    print(json.dumps(result), flush=True)
    os._exit(0)  # the measurement is taken: skip the orderly goodbye of N connections


# ---- the parent: broker, identities, one child per mode, the table ----------------------------

def run_child(args, mode, port, trace=False):
    cmd = [sys.executable, __file__, "--child", mode, "--port", str(port), "--devices", str(args.devices),
           "--certs", args.certs, "--voice", args.voice, "--work", args.work, "--top", str(args.top)]
    if trace:
        cmd.append("--trace")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise SystemExit("mem_profile: %s failed:\n%s" % (mode, out.stderr[-3000:]))
    return json.loads(lines[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=500)
    p.add_argument("--certs", default=os.path.join(".state", "certs"))
    p.add_argument("--voice", default=os.path.join(".state", "voice"))
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--trace", action="store_true", help="also list the fleet's Python heap per device")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.devices < 1:
        p.error("--devices must be at least 1")
    if a.child:
        from soundbox_sim.worker import ensure_fd_limit

        problem = ensure_fd_limit(a.devices * 3 + 256)
        if problem:
            raise SystemExit("mem_profile: " + problem)
        a.mode = a.child
        asyncio.run(measure(a))
        return
    modes = [m.strip() for m in a.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        p.error("unknown mode(s) %s; known: %s" % (", ".join(unknown), ", ".join(MODES)))
    from soundbox_sim.runner import provision
    from soundbox_sim.worker import ensure_fd_limit
    from soundbox_tools.broker import Mosquitto
    from soundbox_tools.voicepack import build_pack

    problem = ensure_fd_limit(a.devices * 3 + 1024)  # the brokers inherit it
    if problem:
        raise SystemExit("mem_profile: " + problem)
    pki, _ = provision(a.certs, a.devices, print)
    build_pack("en-IN", a.voice)
    a.work = tempfile.mkdtemp(prefix="mem-profile-")
    results = []
    with Mosquitto(os.path.join(a.work, "broker-plain")) as plain, \
            Mosquitto(os.path.join(a.work, "broker-tls"), pki=pki) as mtls:
        for mode in modes:
            port = plain.port if mode in ("tcp", "fleet-plain") else mtls.port
            r = run_child(a, mode, port)
            results.append(r)
            print("%-12s %7.1f KiB RSS  %7s KiB malloc  per item%s" % (
                mode, r["rss_kib"], r["malloc_kib"],
                "  (ramp %s s, %s connected)" % (r["ramp_s"], r["connected"]) if "ramp_s" in r else ""), flush=True)
        if a.trace:
            for mode in [m for m in modes if m.startswith("fleet")]:
                r = run_child(a, mode, plain.port if mode == "fleet-plain" else mtls.port, trace=True)
                print("\n%s: Python heap %.2f KiB per device (tracemalloc), by file:" % (mode, r["python_kib"]))
                for where, kib, count in r["by_filename"]:
                    print("  %6.2f KiB %6.1f objects  %s" % (kib, count, where))
                print("by line:")
                for where, kib, count in r["by_lineno"]:
                    print("  %6.2f KiB %6.1f objects  %s" % (kib, count, where))


if __name__ == "__main__":
    main()
