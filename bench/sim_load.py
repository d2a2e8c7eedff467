"""Benchmark: capacity and steady load of the fleet simulator, the machine floor beside it.

    .venv/bin/python bench/sim_load.py --devices 10000 --rate 500 --seconds 60 [--plain] [--workers 2]

Runs the `peak-hour` scenario (mosquitto + cloud handler + N real-firmware devices in
worker processes, all on this machine) with the devices, payment rate and duration given,
then prints: provisioning, ramp time, RSS and CPU per device, CPU per payment,
notify->announce and notify->ack p50/p99/p99.9, lost/duplicated/invalid, and a loopback
TCP ping-pong between two processes (the floor) measured right after.
"""

import argparse
import json
import os
import sys
import tempfile

from soundbox_sim import runner, scenario


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=10000)
    p.add_argument("--rate", type=float, default=500, help="payments per second")
    p.add_argument("--seconds", type=float, default=60, help="payments for this long")
    p.add_argument("--connect-rate", type=float)
    p.add_argument("--workers", type=int)
    p.add_argument("--plain", action="store_true")
    p.add_argument("--certs", default=os.path.join(".state", "certs"))
    p.add_argument("--state", default=None)
    a = p.parse_args()
    s = scenario.load("peak-hour")
    s["fleet"].update(devices=a.devices, tls=not a.plain, connect_rate=a.connect_rate,
                      languages={"en-IN": 1.0})
    s["payments"].update(rate=a.rate, duration=a.seconds)
    s["run"]["duration"] = a.seconds
    state = a.state or tempfile.mkdtemp(prefix="bench-sim-")
    opts = runner.Options(workers=a.workers, certs=a.certs, state=state, live=False, quiet=False)
    r = runner.Runner(s, opts)
    summ = r.run()
    floor = summ["floor_ping_pong_ms"]
    lat = summ["latency_exact_ms"]
    pay = summ["payments"]
    print()
    print("devices %d (%s), workers %d, connect rate %g/s" % (summ["devices"], "mTLS" if summ["tls"] else "plain",
                                                             summ["workers"], summ["connect_rate"]))
    print("provisioning (cached after the first run): %.1f s" % summ["provision_s"])
    print("ramp: %s s to all connected; connects %s" % (summ["ramp_s"], json.dumps(summ["connects"])))
    print("RSS per device (workers, after the ramp): %.1f KiB" % summ["memory"]["kib_per_device"])
    print("worker CPU: ramp %.1f s (%.2f ms/device), whole run %.1f s; CPU per payment %s ms"
          % (summ["cpu"]["ramp_cpu_s"], summ["cpu"]["ramp_cpu_s"] * 1000 / summ["devices"],
             summ["cpu"]["workers_cpu_s"], summ["cpu"].get("ms_per_payment")))
    print("payments scheduled %d, accepted %d, played %d; lost %d, duplicated %d, invalid acks %d"
          % (pay["scheduled"], pay["accepted"], pay["played"], pay["lost"], pay["duplicated"], pay["invalid_acks"]))
    for name in ("notify_to_receive", "notify_to_announce", "notify_to_ack"):
        v = lat[name]
        print("%-20s p50 %s  p99 %s  p99.9 %s ms  (n=%d)   | floor ping-pong p50 %.3f p99 %.3f ms"
              % (name, v["p50"], v["p99"], v["p99_9"], v["n"], floor["p50"], floor["p99"]))
    for name in ("tcp_connect", "tls_handshake", "connect_to_connack"):
        v = summ["latency_ms"][name]
        print("%-20s p50 <=%s  p99 <=%s ms (histogram bucket bounds, n=%d)" % (name, v["p50"], v["p99"], v["n"]))
    print("report: %s/report/report.html" % state)
    sys.exit(0 if summ["healthy"] else 1)


if __name__ == "__main__":
    main()
