"""Scenario files (TOML): what fleet to run, what payments to send, what to break, when.

Every key is checked before anything starts: an unknown key, a wrong type or an
impossible value is a ScenarioError naming the key and its line in the file.
Times (`at`, `duration`, ...) are seconds after the whole fleet is connected.

    [fleet]                       devices, tls, languages {lang = share}, connect_rate
                                  (connects/s, or "auto": an adaptive closed-loop ramp),
                                  keepalive, freshness_s, speedup (audio runs faster),
                                  micropython (how many of the devices run as real
                                  MicroPython processes: every (devices/K)-th id)
    [run]                         duration, settle, ramp_timeout, seed, idle (s with
                                  no payments once all are connected: idle CPU)
    [payments]                    rate (Poisson, per second), start, duration, target
                                  ("round_robin" | "random"), amounts {median_rupees,
                                  sigma, max_rupees, paise_share}, daily_curve
                                  {hours = [24 factors], hour_s}
    [[payments.bursts]]           at, count, over
    [[faults]]                    at, kind, share | devices, duration, runtime
                                  ("cpython" | "micropython": draw only from those
                                  devices) and per kind: latency delay_ms, loss loss,
                                  clock_skew skew_s, broker_restart down_s (each kind's
                                  keys and effects: faults.py)
    [ota]                         at, artifact ("firmware-<version>": the run builds,
                                  signs and uploads that simulator image), size (bytes),
                                  waves, success_threshold, error_threshold,
                                  max_concurrent, power_cut_share (cut while downloading),
                                  timeout (s after `at` the run waits for the campaign),
                                  chunk_rate, chunk_burst (each device's chunk limit at
                                  the cloud, bytes; default the cloud's 1 MiB/s, 4 MiB)
"""

import math
import os
import re
import tomllib

from soundbox.voice import LANGUAGES
from soundbox_sim import faults
from soundbox_sim.schema import BOOL, INT, MAX_DEVICES, NUM, RATE, STR, check_connect_rate, num, one_of, type_name

SCENARIO_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scenarios")
TARGETS = ("round_robin", "random")


class ScenarioError(Exception):
    """A scenario file problem: one line naming the file, the line and the key."""


# ---- the schema: key -> (types, check(value) -> problem or None, default) ----------

FLEET = {
    "devices": (INT, num(1, MAX_DEVICES), 10),
    "tls": (BOOL, None, True),
    "languages": (dict, None, None),
    "connect_rate": (RATE, check_connect_rate, None),  # None: the runner's default for tls
    "keepalive": (INT, num(2, 3600), 60),
    "freshness_s": (NUM, num(1, 86400), None),
    "speedup": (NUM, num(0.01, 1000), 1.0),
    "micropython": (INT, num(0, MAX_DEVICES), 0),
}
RUN = {
    "duration": (NUM, num(0, 86400), 10),
    "settle": (NUM, num(0, 3600), 60),
    "ramp_timeout": (NUM, num(1, 3600), 300),
    "seed": (INT, None, 1),
    # seconds every device (and a companion fleet's) stays connected with no payments before the
    # timeline starts: the workers' idle CPU is measured over it (report: idle and marginal CPU)
    "idle": (NUM, num(0, 3600), 0),
}
PAYMENTS = {
    "rate": (NUM, num(0, 100000), 0),
    "start": (NUM, num(0, 86400), 0),
    "duration": (NUM, num(0, 86400), None),
    "target": (STR, one_of(TARGETS), "random"),
    "amounts": (dict, None, None),
    "daily_curve": (dict, None, None),
    "bursts": (list, None, None),
}
AMOUNTS = {
    "median_rupees": (NUM, num(1, 10000000), 150),
    "sigma": (NUM, num(0, 5), 1.2),
    "max_rupees": (NUM, num(1, 99999999), 200000),
    "paise_share": (NUM, num(0, 1), 0.15),
}
CURVE = {
    "hours": (list, None, None),
    "hour_s": (NUM, num(0, 3600, lo_open=True), 3600),
}
BURST = {
    "at": (NUM, num(0, 86400), None),
    "count": (INT, num(1, 10000000), None),
    "over": (NUM, num(0, 3600), 1.0),
}
FAULT = faults.schema()  # the common keys and each kind's own (faults.py)
OTA_ARTIFACT = re.compile(r"firmware-\d+(\.\d+){0,3}")
OTA = {
    "at": (NUM, num(0, 86400), None),
    "artifact": (STR, lambda v: None if OTA_ARTIFACT.fullmatch(v) else
                 "must be firmware-<version> (a simulator image the run builds and signs), e.g. firmware-2.0.0", None),
    "size": (INT, num(64, 4 << 20), 256 * 1024),  # the sim's firmware slot holds 4 MiB
    "waves": (list, None, [1.0]),
    "success_threshold": (NUM, num(0, 1), 0.95),
    "error_threshold": (NUM, num(0, 1), 0.05),
    "power_cut_share": (NUM, num(0, 1), 0.0),
    "max_concurrent": (INT, num(1, MAX_DEVICES), 50),
    "timeout": (NUM, num(1, 86400), 300),
    # each device's chunk limit at the cloud (soundbox cloud --chunk-rate/--chunk-burst), bytes
    "chunk_rate": (INT, num(1024, 1 << 30), None),
    "chunk_burst": (INT, num(16384, 1 << 30), None),  # at least the largest chunk a manifest allows
}
TOP = {"fleet": FLEET, "run": RUN, "payments": PAYMENTS, "faults": None, "ota": OTA}


# ---- where a key is in the file -------------------------------------------------------

_HEADER = re.compile(r"\s*(\[\[?)\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"\s*([A-Za-z0-9_\-]+|\"[^\"]*\")\s*=")


def key_lines(text):
    """{(table, index, key): line} for every `key =` line; index counts [[array]] tables."""
    lines, table, index, seen = {}, "", None, {}
    for n, line in enumerate(text.splitlines(), 1):
        m = _HEADER.match(line)
        if m:
            table = m.group(2).replace(" ", "")
            if m.group(1) == "[[":
                seen[table] = seen.get(table, -1) + 1
                index = seen[table]
            else:
                index = None
            lines.setdefault((table, index, None), n)
            continue
        m = _KEY.match(line)
        if m:
            lines.setdefault((table, index, m.group(1).strip('"')), n)
    return lines


class _Checker:
    def __init__(self, path, text):
        self.path = path
        self.lines = key_lines(text)

    def fail(self, table, key, problem, index=None):
        line = self.lines.get((table, index, key)) or self.lines.get((table, index, None))
        name = table + ("[%d]" % (index + 1) if index is not None else "") + ("." + key if key else "")
        where = "%s:%s" % (self.path, line) if line else self.path
        raise ScenarioError("%s: %s %s" % (where, name.lstrip("."), problem))

    def table(self, table, values, schema, index=None):
        if not isinstance(values, dict):
            self.fail(table, None, "must be a table", index)
        out = {}
        for key, value in values.items():
            if key not in schema:
                self.fail(table, key, "is not a known key (known: %s)" % ", ".join(sorted(schema)), index)
            types, check, _ = schema[key]
            if types is dict or types is list:
                if not isinstance(value, types):
                    self.fail(table, key, "must be a %s" % ("table" if types is dict else "list"), index)
            elif isinstance(value, bool) and types is not BOOL or not isinstance(value, types):
                self.fail(table, key, "must be %s, not %r" % (type_name(types), value), index)
            elif check and check(value):
                self.fail(table, key, "%s, not %r" % (check(value), value), index)
            out[key] = value
        for key, (_, _, default) in schema.items():
            out.setdefault(key, default)
        return out


def resolve(name):
    """A scenario path, or the name of one shipped in simulator/scenarios/ (smoke, peak-hour ...)."""
    if os.path.exists(name):
        return name
    shipped = os.path.join(SCENARIO_DIR, name if name.endswith(".toml") else name + ".toml")
    if os.path.exists(shipped):
        return shipped
    known = sorted(f[:-5] for f in os.listdir(SCENARIO_DIR) if f.endswith(".toml"))
    raise ScenarioError("no scenario file %r (shipped: %s)" % (name, ", ".join(known)))


def load(path):
    path = resolve(path)
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError:
        raise ScenarioError("%s: not UTF-8 text" % path) from None
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError("%s: not valid TOML: %s" % (path, e)) from None
    return parse(data, path, text)


def parse(data, path="<scenario>", text=""):
    c = _Checker(path, text)
    for key in data:
        if key not in TOP:
            c.fail("", key, "is not a known section (known: %s)" % ", ".join(sorted(TOP)))
    s = {"name": os.path.splitext(os.path.basename(path))[0], "path": path}
    s["fleet"] = fleet = c.table("fleet", data.get("fleet", {}), FLEET)
    s["run"] = c.table("run", data.get("run", {}), RUN)
    s["payments"] = pay = c.table("payments", data.get("payments", {}), PAYMENTS)
    fleet["languages"] = _languages(c, fleet["languages"])
    if fleet["micropython"] > fleet["devices"]:
        c.fail("fleet", "micropython", "is %d but the fleet has only %d devices"
               % (fleet["micropython"], fleet["devices"]))
    pay["amounts"] = c.table("payments.amounts", pay["amounts"] or {}, AMOUNTS)
    pay["daily_curve"] = _curve(c, pay["daily_curve"]) if pay["daily_curve"] is not None else None
    bursts = pay["bursts"] or []
    pay["bursts"] = [c.table("payments.bursts", b, BURST, i) for i, b in enumerate(bursts)]
    for i, b in enumerate(pay["bursts"]):
        _required(c, "payments.bursts", b, ("at", "count"), i)
    raw_faults = data.get("faults", [])
    if not isinstance(raw_faults, list):
        c.fail("faults", None, "must be an array of tables: [[faults]]")
    s["faults"] = [_fault(c, f, i, fleet["devices"]) for i, f in enumerate(raw_faults)]
    s["ota"] = _ota(c, data["ota"]) if "ota" in data else None
    return s


def _required(c, table, values, keys, index=None):
    for key in keys:
        if values.get(key) is None:
            c.fail(table, None, "needs %s" % key, index)


def _languages(c, langs):
    if langs is None:
        return {"en-IN": 1.0}
    if not langs:
        c.fail("fleet", "languages", "must name at least one language")
    for lang, share in langs.items():
        if lang not in LANGUAGES:
            c.fail("fleet", "languages", "has unknown language %r (known: %s)" % (lang, ", ".join(LANGUAGES)))
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
            c.fail("fleet", "languages", "share of %s must be a number in (0, 1], not %r" % (lang, share))
    total = sum(langs.values())
    if abs(total - 1) > 1e-6:
        c.fail("fleet", "languages", "shares must add up to 1, not %g" % total)
    return dict(langs)


def _curve(c, curve):
    curve = c.table("payments.daily_curve", curve, CURVE)
    hours = curve["hours"]
    if hours is None or len(hours) != 24:
        c.fail("payments.daily_curve", "hours", "must list 24 factors, one per hour")
    for h in hours:
        if isinstance(h, bool) or not isinstance(h, (int, float)) or not 0 <= h <= 100:
            c.fail("payments.daily_curve", "hours", "factors must be numbers 0-100, not %r" % (h,))
    return curve


def _fault(c, raw, i, devices):
    f = c.table("faults", raw, FAULT, i)
    _required(c, "faults", f, ("at", "kind"), i)
    kind = faults.KINDS[f["kind"]]
    for key in kind.needs:
        if f.get(key) is None:
            c.fail("faults", None, "of kind %s needs %s" % (kind.name, key), i)
    allowed = kind.allowed()
    for key in raw:
        if key not in allowed:
            c.fail("faults", key, "does not apply to a %s fault" % kind.name, i)
    if f["share"] is not None and f["devices"] is not None:
        c.fail("faults", "devices", "give share or devices, not both", i)
    if f["devices"] is not None and f["devices"] > devices:
        c.fail("faults", "devices", "is %d but the fleet has only %d devices" % (f["devices"], devices), i)
    return f


def _ota(c, raw):
    o = c.table("ota", raw, OTA)
    _required(c, "ota", o, ("at", "artifact"))
    waves = o["waves"]
    if not waves:
        c.fail("ota", "waves", "must list at least one wave")
    last = 0
    for w in waves:
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not last < w <= 1:
            c.fail("ota", "waves", "must be increasing shares of the fleet in (0, 1], got %r" % (waves,))
        last = w
    if waves[-1] != 1:
        c.fail("ota", "waves", "must end with 1.0 (the whole fleet), got %r" % (waves,))
    return o


def fault_targets(fault, ids, rng, busy=()):
    """The device ids a fault hits: all, a share (rounded up), or a count, drawn by rng;
    never one in `busy` (devices with a payment just before an idle_s fault)."""
    if faults.KINDS[fault["kind"]].broker:
        return []  # it hits no device
    ids = [d for d in ids if d not in busy] if busy else ids
    if fault["devices"] is not None:
        n = fault["devices"]
    elif fault["share"] is not None:
        n = max(1, math.ceil(fault["share"] * len(ids)))
    else:
        return list(ids)
    return sorted(rng.sample(list(ids), min(n, len(ids))))
