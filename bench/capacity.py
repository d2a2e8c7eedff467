"""Benchmark: the most boxes this machine holds at a payment rate, with nothing lost and
announcements on time.

    .venv/bin/python bench/capacity.py [--sizes 5000,10000,15000,20000] [--rate 500] [--seconds 60]
    .venv/bin/python bench/capacity.py --sizes 500,1000 --rate 50 --seconds 10      (a quick look)

Runs the `peak-hour` scenario (mosquitto + cloud + N real-firmware devices in worker
processes, soundbox_sim.runner) once per fleet size, smallest first, and stops at the
first size that misses. A size holds when:

  - every device connected (the ramp ended before its timeout),
  - every scheduled payment was accepted and none was refused, and the sender kept the
    rate (its p99 lateness against the schedule under --max-lag-ms),
  - lost, duplicated and invalid acks are all 0,
  - notify->announce p99 (cloud's notification stamp to the speaker starting) < --p99-ms.

Per size it prints: ramp s, connected, payments accepted, notify->announce p99, lost,
and worker CPU (whole run; during the payments as a share of the cores, and marginal
ms per payment when --idle-seconds gives an idle window). Then the answer: the largest
size that held. Exit status 0 when at least one size held.
"""

import argparse
import json
import os
import sys
import tempfile

from soundbox_sim import runner, scenario
from soundbox_sim.schema import parse_connect_rate

DEFAULT_SIZES = (5000, 10000, 15000, 20000)


def sizes_arg(text):
    try:
        sizes = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("must be fleet sizes separated by commas, e.g. 5000,10000, not %r"
                                         % text) from None
    if not sizes or any(n < 1 for n in sizes):
        raise argparse.ArgumentTypeError("must be one or more fleet sizes of at least 1, not %r" % text)
    return sorted(set(sizes))


def connect_rate_arg(text):
    try:
        return parse_connect_rate(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).replace("--connect-rate ", "")) from None


def misses(summ, rate, seconds, p99_limit, max_lag_ms):
    """What a run missed (empty: it held)."""
    out = []
    pay = summ["payments"]
    if summ["ramp_s"] is None or summ["connected_at_end"] < summ["devices"]:
        out.append("%d/%d connected" % (summ["connected_at_end"], summ["devices"]))
    if pay["accepted"] < pay["scheduled"] or pay["rejected"]:
        out.append("%d of %d payments accepted, %d refused" % (pay["accepted"], pay["scheduled"], pay["rejected"]))
    lag = (summ.get("payments_send_lag_ms") or {}).get("p99")
    if lag is not None and lag > max_lag_ms:
        out.append("sender %d ms late (p99): the rate was not held" % lag)
    for k, v in summ["zero_counts"].items():
        if v:
            out.append("%s %d" % (k.replace("_", " "), v))
    p99 = summ["latency_exact_ms"]["notify_to_announce"]["p99"]
    if rate and seconds and (p99 is None or p99 >= p99_limit):
        out.append("notify->announce p99 %s ms >= %g" % (p99, p99_limit))
    return out


def row(summ, cores):
    """The table's figures of one run."""
    cpu = summ["cpu"]
    win = cpu.get("windows") or {}
    busy = None
    if win.get("payment_window_cpu_s") is not None and win.get("payment_window_s"):
        busy = win["payment_window_cpu_s"] / win["payment_window_s"] / cores * 100
    return {"devices": summ["devices"], "ramp_s": summ["ramp_s"], "connected": summ["connected_at_end"],
            "accepted": summ["payments"]["accepted"], "scheduled": summ["payments"]["scheduled"],
            "announce_p99_ms": summ["latency_exact_ms"]["notify_to_announce"]["p99"],
            "lost": summ["payments"]["lost"], "send_lag_p99_ms": (summ.get("payments_send_lag_ms") or {}).get("p99"),
            "workers_cpu_s": cpu["workers_cpu_s"], "payments_cpu_pct_of_cores": None if busy is None else round(busy),
            "idle_cpu_us_per_device_s": win.get("idle_cpu_us_per_device_s"),
            "marginal_cpu_ms_per_payment": win.get("marginal_cpu_ms_per_payment")}


def table(rows, title):
    from rich.table import Table

    t = Table(title=title)
    for col in ("devices", "ramp s", "connected", "payments", "announce p99 ms", "lost", "CPU s (run)",
                "CPU % of cores (payments)", "marginal ms/payment", "verdict"):
        t.add_column(col, justify="right")
    for r in rows:
        t.add_row(str(r["devices"]), "-" if r["ramp_s"] is None else "%.1f" % r["ramp_s"], str(r["connected"]),
                  "%d/%d" % (r["accepted"], r["scheduled"]), _s(r["announce_p99_ms"]), str(r["lost"]),
                  "%.1f" % r["workers_cpu_s"], _s(r["payments_cpu_pct_of_cores"]),
                  _s(r["marginal_cpu_ms_per_payment"]), "held" if not r["misses"] else "; ".join(r["misses"]))
    return t


def _s(v):
    return "-" if v is None else str(v)


def run_size(a, n, state):
    s = scenario.load("peak-hour")
    s["fleet"].update(devices=n, tls=not a.plain, connect_rate=a.connect_rate, languages={"en-IN": 1.0},
                      speedup=a.speedup)
    s["payments"].update(rate=a.rate, duration=a.seconds)
    s["run"].update(duration=a.seconds, idle=a.idle_seconds)
    opts = runner.Options(workers=a.workers, certs=a.certs, state=state, live=False, quiet=not a.verbose)
    return runner.Runner(s, opts).run()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=sizes_arg, default=list(DEFAULT_SIZES),
                   help="fleet sizes to try, smallest first (default %s)" % ",".join(map(str, DEFAULT_SIZES)))
    p.add_argument("--rate", type=float, default=500, help="payments per second (default 500)")
    p.add_argument("--seconds", type=float, default=60, help="payments for this long at each size (default 60)")
    p.add_argument("--p99-ms", type=float, default=250, help="notify->announce p99 must be under this (default 250)")
    p.add_argument("--max-lag-ms", type=float, default=1000,
                   help="the payment sender's p99 lateness against its schedule must be at most this (default 1000)")
    p.add_argument("--connect-rate", type=connect_rate_arg, default="auto",
                   help='connects per second, or "auto" (default): an adaptive closed-loop ramp')
    p.add_argument("--idle-seconds", type=float, default=0,
                   help="an idle window before the payments (idle and marginal CPU figures; default 0)")
    p.add_argument("--speedup", type=float, default=1.0, help="announcements play this many times faster (default 1)")
    p.add_argument("--workers", type=int)
    p.add_argument("--plain", action="store_true")
    p.add_argument("--certs", default=os.path.join(".state", "certs"))
    p.add_argument("--state", default=None, help="run directories go under this (default: a new one on /dev/shm)")
    p.add_argument("--verbose", action="store_true", help="the runner's progress lines")
    a = p.parse_args()
    if a.rate <= 0 or a.seconds <= 0 or a.p99_ms <= 0 or not 0 <= a.idle_seconds <= 3600:
        p.error("--rate, --seconds and --p99-ms must be > 0, --idle-seconds 0-3600")
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    root = a.state or tempfile.mkdtemp(prefix="bench-capacity-", dir=shm)
    cores = os.cpu_count() or 1
    title = "capacity at %g payments/s for %g s, notify->announce p99 < %g ms, 0 lost (%d cores)" % (
        a.rate, a.seconds, a.p99_ms, cores)
    rows, held = [], None
    from rich.console import Console
    console = Console(width=150)
    for n in a.sizes:
        print("capacity: %d devices ..." % n, flush=True)
        try:
            summ = run_size(a, n, os.path.join(root, str(n)))
        except runner.RunError as e:
            print("capacity: %d devices: the run failed: %s" % (n, e))
            break
        r = row(summ, cores)
        r["misses"] = misses(summ, a.rate, a.seconds, a.p99_ms, a.max_lag_ms)
        rows.append(r)
        console.print(table([r], "%d devices" % n))
        if r["misses"]:
            break
        held = n
    console.print(table(rows, title))
    with open(os.path.join(root, "capacity.json"), "w") as f:
        json.dump({"rate": a.rate, "seconds": a.seconds, "p99_ms": a.p99_ms, "sizes": a.sizes, "runs": rows,
                   "held": held}, f, indent=1)
    if held is None:
        print("answer: none of the sizes tried held %g payments/s (%s)" % (a.rate, "; ".join(rows[0]["misses"])
                                                                          if rows else "no run finished"))
    else:
        more = " (the largest tried)" if held == a.sizes[-1] else ""
        print("answer: this machine holds %d boxes at %g payments/s%s" % (held, a.rate, more))
    print("capacity: runs in %s (capacity.json)" % root)
    sys.exit(0 if held is not None else 1)


if __name__ == "__main__":
    main()
