"""Every fault a scenario can inject, one entry per kind, under one name everywhere: the
scenario's `kind`, the runner's timeline and the command a worker (or the MicroPython fleet)
carries out.

An entry says which keys a [[faults]] table of its kind needs and may have (with their
checks), what it does when it begins and, if it lasts, when it ends (the parameters of the
command and the line for the run's events), and where it acts:
    broker       the runner itself (the broker is the parent's process)
    worker       each worker, on its share of the ids (fleet.py, or its proxy: netfaults.py)
    micropython  the MicroPython processes (mpfleet.py), if it can reach them
Adding a fault is adding an entry here, plus its effect where it acts.
"""

from dataclasses import dataclass, field
from typing import Callable, Optional

from soundbox_sim.schema import INT, MAX_DEVICES, NUM, STR, num, one_of

RUNTIMES = ("cpython", "micropython")

# Keys every fault table may have (whether a kind takes one is its entry's needs/may).
COMMON = {
    "at": (NUM, num(0, 86400), None),
    "share": (NUM, num(0, 1, lo_open=True), None),
    "devices": (INT, num(1, MAX_DEVICES), None),
    "duration": (NUM, num(0, 86400), None),
    # Only devices with no payment scheduled in the idle_s before `at` (nothing queued on
    # their speaker): what a reboot does to payments sent while it is down, apart from
    # what it does to an announcement it cuts short.
    "idle_s": (NUM, num(0, 3600, lo_open=True), None),
    # Only devices on this runtime ([fleet] micropython = K of them on MicroPython).
    "runtime": (STR, one_of(RUNTIMES), None),
}
PICK = ("share", "devices")  # how many devices it hits


@dataclass(frozen=True)
class Kind:
    name: str
    begin: Callable  # (fault, who) -> (command parameters, event text), at `at`
    end: Optional[Callable] = None  # fault -> (parameters, text) at `at` + duration, or None
    keys: dict = field(default_factory=dict)  # its own keys: key -> (types, check, default)
    needs: tuple = ()  # keys it cannot do without, beyond at and kind
    may: tuple = ()
    broker: Optional[Callable] = None  # (runner, params)
    worker: Optional[Callable] = None  # (worker's devices, ids, params)
    micropython: Optional[Callable] = None  # (MicroPythonFleet, ids, params)
    proxy: bool = False  # acts in the workers' fault proxy: the links go through one

    def steps(self, f, who):
        """[(t, params, text)]: its begin and, if it has one now, its end."""
        params, text = self.begin(f, who)
        out = [(f["at"], params, text)]
        ending = self.end(f) if self.end else None
        if ending:
            out.append((f["at"] + f["duration"],) + ending)
        return out

    def lasts(self, f):
        """Seconds after `at` until it is over."""
        return (f["duration"] or 0) + (f["down_s"] if self.broker else 0)

    def allowed(self):
        keys = set(self.needs) | set(self.may) | {"at", "kind", "down_s"}  # down_s: taken (and unused) by any kind
        if not self.broker:
            keys.add("idle_s")
        if self.micropython:
            keys.add("runtime")
        return keys


# ---- the effects' calls, where they act ------------------------------------------------------

def _on_proxy(method, param):
    def act(w, ids, p):
        if w.proxy is not None:  # none: this run has no network fault (runner: start_workers)
            getattr(w.proxy, method)(ids, p[param])
    return act


def _each_device(act):
    return lambda w, ids, p: [act(w, d, p) for d in ids]


def _power_cut_s(f):
    return f["duration"] or 1.0  # off for a second unless told

KINDS = {k.name: k for k in (
    Kind("broker_restart", keys={"down_s": (NUM, num(0, 3600), 1.0)}, may=("down_s",),
         begin=lambda f, who: ({"down_s": f["down_s"]}, "broker restart (down %g s)" % f["down_s"]),
         broker=lambda runner, p: runner.restart_broker(p["down_s"])),
    Kind("partition", needs=("duration",), may=PICK, proxy=True,
         begin=lambda f, who: ({"on": True}, "partition " + who),
         end=lambda f: ({"on": False}, "partition healed"),
         worker=_on_proxy("partition", "on")),
    Kind("latency", keys={"delay_ms": (NUM, num(0, 60000), None)}, needs=("delay_ms", "duration"), may=PICK,
         proxy=True,
         begin=lambda f, who: ({"delay_ms": f["delay_ms"]}, "latency +%g ms on %s" % (f["delay_ms"], who)),
         end=lambda f: ({"delay_ms": 0}, "latency removed"),
         worker=_on_proxy("latency", "delay_ms")),
    Kind("loss", keys={"loss": (NUM, num(0, 0.9), None)}, needs=("loss", "duration"), may=PICK, proxy=True,
         begin=lambda f, who: ({"loss": f["loss"]}, "loss %g%% on %s" % (f["loss"] * 100, who)),
         end=lambda f: ({"loss": 0}, "loss removed"),
         worker=_on_proxy("loss", "loss")),
    Kind("reboot", may=PICK,
         begin=lambda f, who: ({}, "reboot " + who),
         worker=_each_device(lambda w, d, p: w.spawn(w.fleet.restart(d))),
         micropython=lambda mp, ids, p: mp.restart(ids)),
    Kind("power_cut", may=PICK + ("duration",),
         begin=lambda f, who: ({"down_s": _power_cut_s(f)}, "power cut on %s (off %g s)" % (who, _power_cut_s(f))),
         worker=_each_device(lambda w, d, p: w.spawn(w.fleet.restart(d, power_cut=True, down_s=p["down_s"]))),
         micropython=lambda mp, ids, p: mp.restart(ids, True, p["down_s"])),
    Kind("clock_skew", keys={"skew_s": (NUM, num(-86400 * 365, 86400 * 365), None)}, needs=("skew_s",),
         may=PICK + ("duration",),
         begin=lambda f, who: ({"skew_ms": int(f["skew_s"] * 1000)}, "clock skew %+g s on %s" % (f["skew_s"], who)),
         end=lambda f: ({"skew_ms": 0}, "clock skew removed") if f["duration"] else None,
         worker=_each_device(lambda w, d, p: w.fleet.skew_clock(d, p["skew_ms"]))),
    Kind("silent", needs=("duration",), may=PICK,
         begin=lambda f, who: ({"duration": f["duration"]}, "%s go silent (half-open) for %g s" % (who, f["duration"])),
         worker=_each_device(lambda w, d, p: w.spawn(w.fleet.silence(d, p["duration"]))),
         micropython=lambda mp, ids, p: mp.silence(ids, p["duration"])),
)}
NAMES = tuple(KINDS)
PROXIED = tuple(k.name for k in KINDS.values() if k.proxy)
ON_MICROPYTHON = tuple(k.name for k in KINDS.values() if k.micropython)  # what a MicroPython process can take


def schema():
    """The [[faults]] table's keys: the common ones, `kind`, and every kind's own."""
    out = dict(COMMON, kind=(STR, one_of(NAMES), None))
    for k in KINDS.values():
        for key, rule in k.keys.items():
            assert out.setdefault(key, rule) is rule, "two kinds define %s" % key
    return out
