"""`soundbox sim`: a scenario run from start to report.

The parent process starts what the run needs (mosquitto, the cloud handler, unless
attached to an outside broker), spreads the devices over worker processes (one asyncio
loop each: worker.py), or runs some of them as real MicroPython processes
([fleet] micropython = K, mpfleet.py), sends the scenario's payments through the cloud's HTTP API and
its faults to the workers at their times, samples every counter once a second (JSON
Lines) and, at the end, reads the cloud's records and the devices' journals to say
what was lost, duplicated or refused, and how long each step took (report.py).
"""

import hashlib
import json
import math
import multiprocessing
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Optional

from soundbox_cloud.client import ApiError, call
from soundbox_cloud.errors import BrokerUnavailable
from soundbox_cloud.mqttlink import parse_broker_url
from soundbox_sim import cloudkeys, faults
from soundbox_sim import payments as paymod
from soundbox_sim import report, worker
from soundbox_sim.fleet import device_ids
from soundbox_sim.metrics import Counters, JsonLines
from soundbox_sim.mpfleet import choose_ids
from soundbox_sim.record import Phase, RunRecord
from soundbox_sim.scenario import fault_targets
from soundbox_sim.schema import AUTO

DEFAULT_RATE = {True: 200.0, False: 1000.0}  # connects/s: mTLS, plain
ONLINE_TIMEOUT_S = 60
FINAL_TIMEOUT_S = 60
SETTLE_IDLE_S = 8
FDS_PER_DEVICE = 3  # its socket, a proxied one, and slack for files it opens
TMPFS = "/dev/shm"
# A device's flash: a few small JSON files (a 4 KiB page each) and its ledger's ring
# file, which grows as its 18 blocks of 4 KiB are used (72 KiB once it has wrapped).
FLASH_PER_DEVICE = 96 << 10
# The cloud's SQLite took 209 KB for 600 payments to 40 devices (WAL included): a
# peak-hour run's 30,000 payments need ~10 MB.
CLOUD_DB_ROOM = 64 << 20
TENANT = "sim"  # the tenant a run registers its devices to, in the cloud it starts


def ramp_note(ramps):
    """The workers' ramp controllers' state (a tick's "ramp", from fleet.py) for a progress line:
    numbers and dicts of numbers are summed over the workers; "" when no worker sends one."""
    ramps = [r for r in ramps if r is not None]
    if not ramps:
        return ""
    if all(isinstance(r, (int, float)) for r in ramps):
        return "; ramp %g" % sum(ramps)
    if all(isinstance(r, dict) for r in ramps):
        keys = sorted({k for r in ramps for k in r})
        parts = []
        for k in keys:
            vals = [r[k] for r in ramps if k in r]
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
                parts.append("%s %g" % (k, round(sum(vals), 1)))
            else:
                parts.append("%s %s" % (k, "/".join(str(v) for v in vals)))
        return "; ramp " + ", ".join(parts)
    return "; ramp " + " / ".join(str(r) for r in ramps)


class RunError(Exception):
    """A run could not start or went wrong in a way the user can act on (one line)."""


def _id_list(ids, most=6):
    return ", ".join(ids) if len(ids) <= most else "%s, ... %s" % (", ".join(ids[:most - 1]), ids[-1])


@dataclass
class Options:
    """What the command line adds to (or overrides in) the scenario (built by keyword)."""

    workers: Optional[int] = None  # None: default_workers
    certs: str = os.path.join(".state", "certs")
    state: str = os.path.join(".state", "sim")
    voice: str = os.path.join(".state", "voice")
    report_dir: Optional[str] = None  # None: <state>/report
    broker_url: Optional[str] = None  # attach to this broker: devices only
    journal: Optional[str] = None
    wav_device: Optional[str] = None
    out: str = "out"
    live: bool = True
    prometheus: Optional[int] = None  # port for a /metrics endpoint
    floor: bool = True
    extra_config: Optional[dict] = None
    # Where device flash goes: a directory of this run is made under it (default: tmpfs
    # when it has room, else the state directory), removed at the end unless keep_flash.
    flash_dir: Optional[str] = None
    keep_flash: bool = False
    quiet: bool = False
    # A fleet run beside ours for comparison (bench/peer_fleet.PeerFleet): same broker,
    # cloud and payment schedule, on its own device ids (sb-N+1 .. sb-2N).
    companion: object = None


def default_workers(devices):
    """One asyncio loop per core, but no worker for fewer than 250 devices."""
    return max(1, min(os.cpu_count() or 1, math.ceil(devices / 250)))


def fast_dir(need_bytes, fallback, where=TMPFS):
    """`where` (tmpfs) if it is a writable directory with need_bytes free, else `fallback`.
    On ext4 every rename of a device's flash file and every SQLite commit waits for the
    journal (~0.1 ms a rename here, 11x tmpfs); on tmpfs neither does."""
    try:
        room = free_bytes(where)
    except OSError:
        return fallback
    if os.path.isdir(where) and os.access(where, os.W_OK | os.X_OK) and room >= need_bytes:
        return where
    return fallback


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def flash_need(scenario):
    """Bytes the fleet's flash may take: per device, its files plus an OTA image and its chunk table."""
    ota = scenario.get("ota") or {}
    size = ota.get("size", 0)
    return scenario["fleet"]["devices"] * (FLASH_PER_DEVICE + size + size // 64)


def language_plan(langs, ids, seed):
    """{device id: lang} with each language's share of the fleet (rounded), shuffled by seed."""
    order = list(ids)
    random.Random(seed).shuffle(order)
    plan, start = {}, 0
    items = sorted(langs.items())
    for i, (lang, share) in enumerate(items):
        end = len(order) if i == len(items) - 1 else start + round(share * len(order))
        for d in order[start:end]:
            plan[d] = lang
        start = end
    return plan


# ---- identities ------------------------------------------------------------------------

def provision(certs, n, log):
    """Device identities sb-0001..N in `certs` (a dev CA is made if there is none).

    Cached between runs: a stamp file records the CA fingerprint and how many devices
    were complete, so a repeat run checks nothing per device; when it is missing or
    stale, only the bundles that lack a file are issued (about 1,000 per second).
    """
    from soundbox_tools.pki import BUNDLE_FILES, Pki

    pki = Pki(certs)
    if not pki.exists():
        pki.init()
    with open(pki.path("ca.pem"), "rb") as f:
        ca = hashlib.sha256(f.read()).hexdigest()[:16]
    stamp = os.path.join(pki.root, "devices", ".complete")
    try:
        with open(stamp) as f:
            done = json.load(f)
    except (OSError, ValueError):
        done = {}
    # "layout": a stamp from before DER bundles must not vouch for PEM-only ones
    if done.get("ca") == ca and done.get("layout") == "der" and done.get("count", 0) >= n:
        return pki, 0
    ids = device_ids(n)
    missing = [d for d in ids if not all(os.path.exists(os.path.join(pki.root, "devices", d, f))
                                         for f in BUNDLE_FILES)]
    started = time.monotonic()
    if missing:
        log("issuing %d device identities ..." % len(missing))
        pki.issue_devices(missing)
    os.makedirs(os.path.dirname(stamp), exist_ok=True)
    with open(stamp, "w") as f:
        json.dump({"ca": ca, "layout": "der",
                   "count": max(n, done.get("count", 0) if done.get("ca") == ca else n)}, f)
    return pki, (len(missing), time.monotonic() - started)


# ---- the run ------------------------------------------------------------------------------

class Runner:
    def __init__(self, scenario, opts, console=None):
        self.s = scenario
        self.o = opts
        self.console = console
        fleet = scenario["fleet"]
        self.n = fleet["devices"]
        self.tls = fleet["tls"]
        # connects/s, or "auto": each worker's Fleet ramps in a closed loop (fleet.py)
        self.rate = fleet["connect_rate"] or DEFAULT_RATE[self.tls]
        self.idle_s = scenario["run"].get("idle", 0)
        self.ids = device_ids(self.n)
        # Some devices as real MicroPython processes (mpfleet.py), spread evenly over the ids.
        k = fleet.get("micropython") or 0
        if not 0 <= k <= self.n:
            raise RunError("micropython = %d: must be between 0 and the fleet's %d devices" % (k, self.n))
        self.mp_ids = choose_ids(self.ids, k)
        self.runtimes = dict.fromkeys(self.mp_ids, "micropython")  # id -> runtime; absent: cpython
        self.cpy_ids = [d for d in self.ids if d not in self.runtimes]
        self.mp = None  # mpfleet.MicroPythonFleet, made in prepare (it checks the binary)
        for i, f in enumerate(scenario["faults"]):
            pool = self._fault_pool(f)
            if not faults.KINDS[f["kind"]].broker and not pool:
                raise RunError("fault %d (%s%s) has no device to hit: the fleet has %d on MicroPython of %d"
                               % (i + 1, f["kind"], " on %s" % f.get("runtime") if f.get("runtime") else "",
                                  len(self.mp_ids), self.n))
        self.workers = opts.workers or default_workers(len(self.cpy_ids))
        if self.workers > len(self.cpy_ids):
            self.workers = len(self.cpy_ids)  # 0 when every device runs on MicroPython
        self.seed = scenario["run"]["seed"]
        self.counters = Counters()
        self.lock = threading.Lock()
        self.ticks = {}  # worker -> its last tick (or final)
        self.finals = {}  # worker -> its final message (histograms), sent when it stops
        self.errors = []  # a worker's or the registration's: the loop raises the first
        self.stop_requested = threading.Event()
        self.send_lock = threading.Lock()  # the OTA poller sends power cuts from its thread
        self.extra_config = dict(opts.extra_config or {})
        self.companion = opts.companion
        self.companion_ids = device_ids(2 * self.n)[self.n:] if self.companion else []
        # made in prepare: the report's directory, the device flash (one directory per device),
        # the PKI, each device's language
        self.report_dir = None
        self.flash = None
        self.pki = None
        self.langs = {}
        self.rollout = None  # ota.Rollout when the scenario has [ota] and the cloud is ours
        # made in start_services: the broker's address; ours: the broker, the cloud (its process,
        # HTTP API and SQLite) and its keys (admin for reads and OTA, psp for payments)
        self.host = self.port = None
        self.broker = None
        self.cloud = None
        self.api = None
        self.db_path = None
        self.keys = None
        self.registration = None  # the thread registering the devices to TENANT while they ramp up
        # made in start_workers and _run
        self.procs = []
        self.conns = []
        self.plan = []  # [(t after payments start, device, amount, txn)] to our fleet
        self.companion_plan = []
        self.sender = None  # paymod.PaymentSender, once the scenario runs
        self.record = RunRecord(scenario=scenario["name"], scenario_file=scenario["path"], devices=self.n,
                                workers=self.workers, tls=self.tls, connect_rate=self.rate, runtimes=self.runtimes,
                                companion_ids=self.companion_ids,
                                companion_name=self.companion.name if self.companion else None)

    # ---- helpers ---------------------------------------------------------------------------

    def log(self, text):
        if not self.o.quiet:
            if self.console is not None:
                self.console.print("sim: " + text, highlight=False)
            else:
                print("sim: " + text, flush=True)

    def event(self, text):
        t0 = self.record.t0
        t = time.monotonic() - t0 if t0 else 0.0
        self.record.events.append((round(t, 3), text))
        self.log("[%.1f s] %s" % (t, text))

    def _get(self, path, timeout=10):
        """A read of the cloud's API with the admin key; ApiError when it cannot answer."""
        return call(self.api, "GET", path, timeout=timeout, api_key=self.keys.admin)

    # ---- set-up -----------------------------------------------------------------------------

    def prepare(self):
        from soundbox_tools.voicepack import build_pack

        if self.mp_ids:  # before anything starts: no micropython binary is a one-line error
            from soundbox_sim.mpfleet import MicroPythonFleet
            from soundbox_tools.mpdevice import MicroPythonError
            try:
                self.mp = MicroPythonFleet(self.mp_ids, self.o.state, self._mp_journal(), self.event)
            except MicroPythonError as e:
                raise RunError(str(e)) from None
        os.makedirs(self.o.state, exist_ok=True)
        self.report_dir = self.o.report_dir or os.path.join(self.o.state, "report")
        os.makedirs(self.report_dir, exist_ok=True)
        self.flash = self._make_flash()
        need = self.n * FDS_PER_DEVICE // max(1, self.workers) + 512
        problem = worker.ensure_fd_limit(max(need, self.n + 1024))  # the broker inherits ours
        if problem:
            raise RunError(problem)
        langs = self.s["fleet"]["languages"]
        for lang in langs:
            build_pack(lang, self.o.voice)
        self.langs = language_plan(langs, self.ids, self.seed)
        started = time.monotonic()
        self.pki, issued = provision(self.o.certs, self.n + len(self.companion_ids), self.log)
        if issued:
            self.log("issued %d device identities in %.1f s" % issued)
        self.record.provision_s = time.monotonic() - started
        if self.s["ota"]:
            self._prepare_ota()

    def _make_flash(self):
        """This run's flash directory, under --flash-dir or, by default, tmpfs if it has room."""
        need = flash_need(self.s)
        parent = self.o.flash_dir or fast_dir(need, self.o.state)
        try:
            os.makedirs(parent, exist_ok=True)
            flash = tempfile.mkdtemp(prefix="soundbox-flash-", dir=parent)
            free = free_bytes(flash)
        except OSError as e:
            raise RunError("cannot make the device flash directory under %s: %s" % (parent, e.strerror or e)) from None
        if self.o.flash_dir:
            why = "--flash-dir"
        elif parent == TMPFS:
            why = "tmpfs"
        else:
            why = "%s is not writable or has less than the %d MiB it may need" % (TMPFS, need >> 20)
        fate = "kept (--keep-flash)" if self.o.keep_flash else "removed at the end"
        self.log("device flash in %s (%s; %s)" % (flash, why, fate))
        if free < need:
            self.log("warning: %s has %d MiB free; %d devices may need up to %d MiB"
                     % (parent, free >> 20, self.n, need >> 20))
        return flash

    def _drop_flash(self):
        """Keep the devices' log next to the report, then remove the run's flash (unless kept)."""
        if self.flash is None:
            return
        log = os.path.join(self.flash, "devices.log")
        try:
            if os.path.exists(log):
                (shutil.copy if self.o.keep_flash else shutil.move)(log, os.path.join(self.o.state, "devices.log"))
        except OSError as e:
            self.log("could not keep %s: %s" % (log, e))
        if not self.o.keep_flash:
            shutil.rmtree(self.flash, ignore_errors=True)

    def _prepare_ota(self):
        from soundbox_sim import ota
        if self.o.broker_url:
            self.log("OTA skipped: attached to an outside broker (--broker), no cloud here")
            return
        if self.mp_ids:
            self.log("OTA: the campaign targets the %d CPython devices; the MicroPython ones are left out"
                     % len(self.cpy_ids))
        self.rollout = ota.Rollout(self.s["ota"], None, self.pki.root, self.o.state, self.cpy_ids, self.send,
                                   self.event)
        try:
            self.extra_config.update(self.rollout.prepare(self.flash))
        except ota.OtaError as e:
            raise RunError(str(e)) from None
        self.log("OTA: devices start from factory state; signed release %s" % self.rollout.release)

    def _chunk_limit(self):
        """The scenario's OTA chunk limit as the cloud's flags (none: the cloud's default)."""
        ota_spec = self.s.get("ota") or {}
        return [arg for key in ("chunk_rate", "chunk_burst") if ota_spec.get(key) is not None
                for arg in ("--" + key.replace("_", "-"), str(ota_spec[key]))]

    def start_services(self):
        from soundbox_tools import procs
        from soundbox_tools.broker import Mosquitto

        if self.o.broker_url:
            try:
                host, port, tls = parse_broker_url(self.o.broker_url)
            except BrokerUnavailable as e:
                raise RunError(str(e)) from None
            self.host, self.port, self.tls = host, port, tls
            self.record.tls = tls  # the URL's scheme, not the scenario's
            return
        self.broker = Mosquitto(os.path.join(self.o.state, "broker"), pki=self.pki if self.tls else None).start()
        self.host, self.port = self.broker.host, self.broker.port
        # The cloud's SQLite on tmpfs when there is one: a commit per ack must not wait for a disk.
        db_dir = fast_dir(CLOUD_DB_ROOM, self.o.state)
        self.db_path = os.path.join(db_dir, "soundbox-sim-%d.db" % os.getpid())
        self._drop_db()
        api_port = procs.free_port()
        self.api = "http://127.0.0.1:%d" % api_port
        ota_dir = os.path.join(self.o.state, "cloud-ota")  # this run's artifacts only
        shutil.rmtree(ota_dir, ignore_errors=True)
        self.cloud = procs.spawn([sys.executable, "-m", "soundbox_tools.cli", "cloud", "--broker", self.broker.url,
                                  "--http", "127.0.0.1:%d" % api_port, "--db", self.db_path,
                                  "--certs", self.pki.root, "--ota-dir", ota_dir] + self._chunk_limit(),
                                 log_path=os.path.join(self.o.state, "cloud.log"))
        if not procs.wait_port("127.0.0.1", api_port, 20, self.cloud):
            raise RunError("cloud handler did not start; see %s/cloud.log" % self.o.state)
        try:
            self.keys = cloudkeys.create_keys(self.db_path, TENANT)
        except cloudkeys.CloudKeyError as e:
            raise RunError(str(e)) from None
        if self.rollout is not None:
            self.rollout.api, self.rollout.api_key = self.api, self.keys.admin
        # While the fleet ramps up: the payments (psp key of TENANT) wait for it, nothing else does.
        self.registration = threading.Thread(target=self._register, name="register", daemon=True)
        self.registration.start()

    def _register(self):
        ids = self.ids + self.companion_ids
        started = time.monotonic()
        try:
            cloudkeys.register_devices(self.api, self.keys.admin, TENANT, ids)
        except cloudkeys.CloudKeyError as e:
            self.errors.append(str(e))
            return
        self.record.register_s = time.monotonic() - started
        self.log("registered %d devices to tenant %s in %.2f s" % (len(ids), TENANT, self.record.register_s))

    def _registered(self):
        """Wait for the registration (it runs during the ramp); RunError if it failed."""
        if self.registration is not None:
            self.registration.join()
        if self.errors:
            raise RunError(self.errors[0])

    def start_workers(self):
        ctx = multiprocessing.get_context("spawn")
        journal_dir = os.path.join(self.o.state, "journals")
        shutil.rmtree(journal_dir, ignore_errors=True)
        os.makedirs(journal_dir)
        journals = []
        proxy = any(f["kind"] in faults.PROXIED for f in self.s["faults"])
        fleet = self.s["fleet"]
        for i in range(self.workers):
            ids = self.cpy_ids[i::self.workers]
            journal = self.o.journal or os.path.join(journal_dir, "w%d.jsonl" % i)
            journals.append(journal)
            spec = {"index": i, "ids": ids, "host": self.host, "port": self.port, "tls": self.tls,
                    "identity_root": os.path.join(self.pki.root, "devices"),
                    "state_dir": self.flash, "pack_dir": self.o.voice,
                    "journal": journal, "connect_rate": self.worker_rate(),
                    "keepalive": fleet["keepalive"], "freshness_s": fleet["freshness_s"],
                    "langs": {d: self.langs[d] for d in ids}, "speedup": fleet["speedup"],
                    "extra_config": self.extra_config, "proxy": proxy, "seed": self.seed + i,
                    "wav_device": self.o.wav_device, "out_dir": self.o.out,
                    "fd_needed": len(ids) * FDS_PER_DEVICE + 256}
            parent, child = ctx.Pipe()
            p = ctx.Process(target=worker.main, args=(child, spec), name="sim-worker-%d" % i)
            p.start()
            child.close()
            self.procs.append(p)
            self.conns.append(parent)
        if self.mp is not None:
            journals.append(self.mp.journal)
            self._start_micropython()
        self.record.journals = sorted(set(journals))
        if self.companion:
            self.companion.start(self.companion_ids, self.host, self.port, os.path.join(self.pki.root, "devices"),
                                 self.tls, self.rate, self.workers, fleet["keepalive"])

    def worker_rate(self):
        """A worker's share of the connect rate; "auto" stays "auto" (each worker adapts its own)."""
        return self.rate if self.rate == AUTO else self.rate / self.workers

    def rate_text(self):
        return "adaptive (auto)" if self.rate == AUTO else "%g connects/s" % self.rate

    def _mp_journal(self):
        return self.o.journal or os.path.join(self.o.state, "journals", "micropython.jsonl")

    def _start_micropython(self):
        fleet = self.s["fleet"]
        # The sim's slot keys are not theirs; the trusted release keys and the MQTT version are.
        extra = {k: v for k, v in self.extra_config.items() if k in ("ota_keys", "mqtt")}
        self.mp.start(self.host, self.port, self.tls, os.path.join(self.pki.root, "devices"), self.o.voice,
                      self.langs, fleet["keepalive"], freshness_s=fleet["freshness_s"], speedup=fleet["speedup"],
                      extra=extra)
        self.log("%d devices on MicroPython (%s), state in %s" % (len(self.mp_ids), _id_list(self.mp_ids),
                                                                   self.mp.root))

    def runtime_gauges(self):
        """{runtime: {"devices", "connected", "connects", "rss_kib_per_device"}}, the runtimes
        this run has. RSS: a worker's above its base (the shared code and packs), a MicroPython
        process's whole (its interpreter and heap: nothing is shared)."""
        g, totals = self._worker_gauges()
        out = {}
        if self.cpy_ids:
            out["cpython"] = {"devices": len(self.cpy_ids), "connected": g["connected"],
                              "connects": totals.get("connect.succeeded", 0),
                              "rss_kib_per_device": round((g["rss_kib"] - g["base_rss_kib"]) / len(self.cpy_ids), 1)}
        if self.mp is not None:
            m = self.mp.gauges()
            out["micropython"] = {"devices": len(self.mp_ids), "connected": m["connected"],
                                  "connects": m["connects"],
                                  "rss_kib_per_device": round(m["rss_kib"] / max(1, m["running"]), 1),
                                  "rss_in_cpython_wrapper": self.mp.wrapped}
        return out

    # ---- the loop ------------------------------------------------------------------------------

    def send(self, msg):
        with self.send_lock:
            for c in list(self.conns):
                try:
                    c.send(msg)
                except (BrokenPipeError, OSError):
                    pass

    def poll_workers(self, timeout):
        for msg in worker.receive(self.conns, timeout):
            msg["at"] = time.monotonic()  # when it came: a worker's CPU over a window is between two ticks
            if msg["type"] == "tick":
                self.ticks[msg["w"]] = msg
            elif msg["type"] == "final":
                self.ticks[msg["w"]] = msg
                self.finals[msg["w"]] = msg
            elif msg["type"] == "error":
                self.errors.append(msg["error"])

    def gauges(self):
        """The whole fleet's gauges (MicroPython devices' started/connected/refused/announced
        included; RSS and CPU are the workers') and the workers' counter totals."""
        g, totals = self._worker_gauges()
        if self.mp is not None:
            m = self.mp.gauges()
            for k in ("started", "connected", "refused", "announced"):
                g[k] += m[k]
        return g, totals

    def _worker_gauges(self):
        ticks = list(self.ticks.values())
        g = {k: sum(t[k] for t in ticks) for k in ("started", "connected", "refused", "announced")}
        g["rss_kib"] = sum(t["rss_kib"] for t in ticks)
        g["cpu_s"] = round(sum(t["cpu_s"] for t in ticks), 2)
        g["base_rss_kib"] = sum(t["base"]["rss_kib"] for t in ticks)
        g["base_cpu_s"] = sum(t["base"]["cpu_s"] for t in ticks)
        totals = {}
        for t in ticks:
            for k, v in t["counters"].items():
                totals[k] = totals.get(k, 0) + v
        return g, totals

    def sample(self, out):
        g, totals = self.gauges()
        for k, v in totals.items():
            self.counters.set(k, v)
        self.counters.set("devices.started", g["started"])
        self.counters.set("devices.connected", g["connected"])
        self.counters.set("announcements", g["announced"])
        self.counters.set("workers.cpu_s", g["cpu_s"])
        self.counters.set("workers.rss_kib", g["rss_kib"])
        if self.mp is not None:
            m = self.mp.gauges()
            for k in ("connected", "connects", "announced", "rss_kib"):
                self.counters.set("micropython." + k, m[k])
        if self.companion:
            c = self.companion.gauges()
            for k in ("connected", "acks", "rss_kib", "cpu_s"):
                self.counters.set("companion." + k, c[k])
        if self.rollout is not None and self.rollout.counts:
            for k, v in self.rollout.counts.items():
                self.counters.set("ota." + k, v)
        if self.sender is not None:
            with self.lock:
                pass  # payments.* are counted by the sender under the lock
        with self.lock:
            records = self.counters.sample(time.monotonic() - self.record.t0)
        out.write_all(records)
        self.record.latest = {r["counter"]: r for r in records}
        return g

    def timeline(self):
        """[(t after ready, action, text)] for the scenario's payments, faults and OTA."""
        items = []
        rng = random.Random(self.seed * 7919 + 1)
        start = self.s["payments"]["start"]
        taken = set()  # faults hit devices no earlier fault hit, while there are enough
        for f in self.s["faults"]:
            pool = self._fault_pool(f)
            busy = set()
            if f.get("idle_s"):
                busy = {d for t, d, _, _ in self.plan if f["at"] - f["idle_s"] <= start + t <= f["at"]}
            want = f["devices"] or (math.ceil((f["share"] or 1) * len(pool)))
            if len(pool) - len(busy | taken) >= want:
                busy |= taken
            ids = fault_targets(f, pool, rng, busy)
            taken.update(ids)
            entry = {"kind": f["kind"], "at": f["at"], "duration": f["duration"], "devices": ids}
            if self.mp_ids and not faults.KINDS[f["kind"]].broker:
                entry["micropython"] = [d for d in ids if d in self.runtimes]
            self.record.faults.append(entry)
            items.extend(self._fault_steps(f, ids))
        if self.rollout is not None:
            # Power cuts during OTA are the rollout's: they hit boxes while they download.
            items.append((self.s["ota"]["at"], lambda: self.event(self.rollout.start()),
                          "OTA: upload %s and create the campaign" % self.rollout.artifact))
        return sorted(items, key=lambda x: x[0])

    def _fault_pool(self, f):
        """The devices a fault may hit: its runtime's; and network faults (the workers' proxy) and
        clock skew (the CPython HAL's clock) cannot reach a MicroPython process."""
        runtime = f.get("runtime")
        if runtime == "micropython":
            return list(self.mp_ids)
        if runtime == "cpython" or f["kind"] not in faults.ON_MICROPYTHON:
            return list(self.cpy_ids)
        return list(self.ids)

    def _fault_steps(self, f, ids):
        """[(t, action, text)] of one fault: its kind's begin and end (faults.py), carried out
        where the kind acts: here (the broker), in the workers, in the MicroPython processes."""
        kind = faults.KINDS[f["kind"]]
        mp = sum(1 for d in ids if d in self.runtimes)
        who = "%d devices" % len(ids) + (" (%d on MicroPython)" % mp if mp else "")
        return [(t, lambda p=params: self._carry_out(kind, ids, p), text) for t, params, text in kind.steps(f, who)]

    def _carry_out(self, kind, ids, params):
        if kind.broker is not None:
            kind.broker(self, params)
        if kind.worker is not None:
            self.send(dict(params, op=kind.name, ids=ids))
        if kind.micropython is not None and self.mp is not None:
            kind.micropython(self.mp, ids, params)

    def restart_broker(self, down_s):
        if self.broker is None:
            self.event("broker restart skipped: the broker is not ours (--broker)")
            return

        def bounce():
            self.broker.stop()
            time.sleep(down_s)
            self.broker.start()
            self.event("broker back")
        threading.Thread(target=bounce, name="broker-restart", daemon=True).start()

    def end_time(self):
        """Seconds after ready at which the scenario is over (payments sent, faults done)."""
        pay = self.s["payments"]
        ends = [self.s["run"]["duration"]]
        if self.plan:
            ends.append(pay["start"] + self.plan[-1][0] + 0.5)
        for f in self.s["faults"]:
            ends.append(f["at"] + faults.KINDS[f["kind"]].lasts(f))
        if self.rollout is not None:
            ends.append(self.s["ota"]["at"] + 1)
        return max(ends)

    def run(self):
        try:
            return self._run()
        finally:
            self._stop_services()   # teardown did, unless set-up failed (e.g. the cloud did not start)
            self._drop_flash()   # after analyse: the OTA summary reads the devices' slots
            self._drop_db()      # analyse did, unless the run failed: tmpfs is memory

    def _stop_services(self):
        from soundbox_tools import procs
        if self.mp is not None:
            self.mp.stop()       # does nothing when already stopped
        procs.stop(self.cloud)   # both do nothing when already stopped
        if self.broker:
            self.broker.stop()

    def _drop_db(self):
        if self.db_path is None:
            return
        for suffix in ("", "-wal", "-shm"):
            try:
                os.remove(self.db_path + suffix)
            except OSError:
                pass

    def _run(self):
        rec = self.record
        rec.enter(Phase.STARTING, time.monotonic())
        self.prepare()
        self.start_services()
        run_tag = "%s-%s" % (self.s["name"][:12], time.strftime("%H%M%S"))
        self.plan = paymod.schedule(self.s["payments"], self.ids, self.seed, run_tag) if self.api else []
        # The companion gets the same schedule (same rate, same times' law) on its own ids.
        self.companion_plan = (paymod.schedule(self.s["payments"], self.companion_ids, self.seed + 1, run_tag + "-c")
                               if self.api and self.companion else [])
        if self.s["payments"]["rate"] or self.s["payments"]["bursts"]:
            if not self.api:
                self.log("payments skipped: attached to an outside broker (--broker), no cloud here")
        self.start_workers()
        rec.enter(Phase.CONNECTING, time.monotonic())  # the run's clock starts
        self.event("%d devices over %s in %d worker(s)%s, ramp %s"
                   % (self.n, "mTLS" if self.tls else "plain MQTT", self.workers,
                      " and %d on MicroPython" % len(self.mp_ids) if self.mp_ids else "", self.rate_text()))
        metrics_out = JsonLines(os.path.join(self.report_dir, "metrics.jsonl"))
        prom = self._prometheus() if self.o.prometheus else None
        live = report.LiveView(rec, self.console) if self.o.live and self.console is not None else None
        previous = {sig: signal.signal(sig, lambda *a: self.stop_requested.set())
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            if live:
                live.start()
            self._loop(metrics_out, live)
        finally:
            for sig, h in previous.items():
                signal.signal(sig, h)
            if live:
                live.stop()
            self.teardown()
            metrics_out.close()
            if prom:
                prom.shutdown()
        return self.analyse()

    def _loop(self, metrics_out, live):
        next_tick = time.monotonic()
        timeline, online_deadline, end_t, idle_until = None, None, None, None
        ramp_timeout = self.s["run"]["ramp_timeout"]
        rec = self.record
        while not self.stop_requested.is_set():
            # Wake at least every 50 ms: faults must happen on time (idle_s relies on it).
            self.poll_workers(min(0.05, max(0.0, next_tick - time.monotonic())))
            if self.errors:
                raise RunError(self.errors[0])
            if len(self.conns) < self.workers and not self.finals:
                raise RunError("a simulator worker died; see %s" % os.path.join(self.o.state, "devices.log"))
            now = time.monotonic()
            if now < next_tick:
                if rec.phase == Phase.RUNNING and self._due(timeline, now, end_t):
                    break
                continue
            next_tick += 1.0
            g = self.sample(metrics_out)
            if live:
                live.update(g)
            elif int(now - rec.t0) % 5 == 0:
                peer = " (companion: %d/%d connected)" % (self.companion.gauges()["connected"], self.n) \
                    if self.companion else ""
                ramp = ramp_note([t.get("ramp") for t in self.ticks.values()]) if rec.phase == Phase.CONNECTING else ""
                self.log("%d/%d connected, %d announced%s%s" % (g["connected"], self.n, g["announced"], peer, ramp))
            if rec.phase == Phase.CONNECTING:
                if g["started"] == self.n and g["connected"] == self.n and self._companion_connected():
                    rec.ramp_s = now - rec.t0
                    rec.ramp_gauges = g
                    self.event("all %d devices connected in %.1f s" % (self.n, rec.ramp_s))
                    online_deadline = now + ONLINE_TIMEOUT_S
                    rec.enter(Phase.AWAITING_CLOUD, now)
                elif now - rec.t0 > ramp_timeout:
                    self.event("ramp timeout: %d/%d connected after %g s%s; going on"
                               % (g["connected"], self.n, ramp_timeout, " (companion: %d/%d)" % (
                                   self.companion.gauges()["connected"], self.n) if self.companion else ""))
                    rec.ramp_s = None
                    rec.ramp_gauges = g
                    online_deadline = now  # one look at the cloud, then on
                    rec.enter(Phase.AWAITING_CLOUD, now)
                continue
            if rec.phase == Phase.AWAITING_CLOUD:
                companion = self.companion.gauges()["connected"] if self.companion else 0
                if idle_until is None:
                    if self.api and now < online_deadline and self._cloud_online() < g["connected"] + companion:
                        continue
                    idle_until = now + self.idle_s
                    if self.idle_s:
                        self._snapshot("idle_start", g)
                        self.event("idle window: %g s, every device connected, no payments" % self.idle_s)
                if now < idle_until:
                    continue
                rec.enter(Phase.RUNNING, now)
                self._snapshot("start", g)
                self.event("scenario starts")
                timeline = self.timeline()
                end_t = self.end_time()
                if self.plan:
                    self._registered()
                    self.sender = paymod.PaymentSender(self.api, self.counters, self.lock, self.keys.psp)
                    plan = sorted(self.plan + self.companion_plan, key=lambda p: p[0])
                    self.sender.start(plan, now + self.s["payments"]["start"])
                    self.event("sending %d payments%s" % (len(plan), " (%d to the companion fleet)"
                                                           % len(self.companion_plan) if self.companion else ""))
            if self._due(timeline, now, end_t):
                break
        if not self.stop_requested.is_set():
            rec.enter(Phase.SETTLING, time.monotonic())
            self._settle(metrics_out)
        if Phase.RUNNING in rec.began:
            self._snapshot("end", self.gauges()[0])

    def _companion_connected(self):
        return not self.companion or self.companion.gauges()["connected"] == len(self.companion_ids)

    def _snapshot(self, name, g):
        """Both fleets' RSS and CPU at the start of the idle window, the start and the end of the
        payments; "marks": each worker's last tick then, {w: [when it came, its cpu_s]}."""
        snap = {"ours": dict(g), "t": time.monotonic(),
                "marks": {"ours": {str(w): [t["at"], t["cpu_s"]] for w, t in self.ticks.items()}}}
        if self.companion:
            snap["peer"] = self.companion.gauges()
            snap["marks"]["peer"] = self.companion.marks()
        self.record.snapshots[name] = snap

    def _due(self, timeline, now, end_t):
        """Carry out what is due on the timeline; True when the scenario is over."""
        t = now - self.record.began[Phase.RUNNING]
        while timeline and timeline[0][0] <= t:
            _, action, text = timeline.pop(0)
            self.event(text)
            action()
        if t < end_t or timeline:
            return False
        if self.rollout is not None and not self.rollout.finished():
            # The scenario lasts until the campaign ends, or [ota].timeout after it began.
            if t < self.s["ota"]["at"] + self.s["ota"]["timeout"]:
                return False
            self.event("OTA campaign still %s after its %g s timeout; going on"
                       % ((self.rollout.latest or {}).get("state", "not started"), self.s["ota"]["timeout"]))
        return True

    def _cloud_online(self):
        try:
            return sum(1 for d in self._get("/devices") if d["state"] == "online")
        except ApiError:
            return 0

    def _settle(self, metrics_out):
        """Wait until the sender is done and every accepted payment has a final ack (or settle runs out)."""
        if not self.api:
            return
        deadline = time.monotonic() + self.s["run"]["settle"]
        if self.sender:
            self.sender.done.wait(max(0, deadline - time.monotonic()))
        last, still_since = None, time.monotonic()
        while time.monotonic() < deadline and not self.stop_requested.is_set():
            self.poll_workers(0.3)
            g = self.sample(metrics_out)
            try:
                pending = self._get("/stats", timeout=30)["pending"]
            except ApiError:
                continue
            if pending == 0:
                break
            # Nothing moving (no acks, no announcements) for a while: what is missing will not come.
            if (pending, g["announced"]) != last:
                last, still_since = (pending, g["announced"]), time.monotonic()
            elif time.monotonic() - still_since > SETTLE_IDLE_S:
                self.event("settle: %d payments without a final ack and nothing moving for %g s"
                           % (pending, SETTLE_IDLE_S))
                break
        self.event("settled")

    # ---- tear-down -------------------------------------------------------------------------------

    def teardown(self):
        if self.sender:
            self.sender.stop()
        if self.rollout is not None:
            self.rollout.stop()
        if self.companion:
            self.companion.stop()
        self.send({"op": "stop"})
        if self.mp is not None:
            self.mp.stop()  # its gauges are noted first, as the workers' final tick is
        deadline = time.monotonic() + FINAL_TIMEOUT_S
        while len(self.finals) < len(self.procs) and self.conns and time.monotonic() < deadline:
            self.poll_workers(1.0)
        for p in self.procs:
            p.join(max(0.1, deadline - time.monotonic()))
            if p.is_alive():
                p.terminate()
                p.join(5)
        self._stop_services()
        self.record.enter(Phase.STOPPED, time.monotonic())

    def _prometheus(self):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        runner = self

        class Metrics(BaseHTTPRequestHandler):
            def do_GET(self):
                body = report.prometheus_text(runner.record.latest).encode()
                self.send_response(200 if self.path == "/metrics" else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.o.prometheus), Metrics)
        threading.Thread(target=server.serve_forever, name="prometheus", daemon=True).start()
        self.log("Prometheus metrics on http://127.0.0.1:%d/metrics" % server.server_address[1])
        return server

    # ---- analysis ------------------------------------------------------------------------------

    def analyse(self):
        floor = None
        if self.o.floor:
            from soundbox_sim.floor import ping_pong
            floor = ping_pong(1000)
        from soundbox_sim.environment import describe
        rec = self.record
        if self.rollout is not None:  # the devices have stopped: their slots say what they run
            rec.ota = self.rollout.summary(self.flash)
        rec.db_path = self.db_path
        rec.scheduled = len(self.plan)
        if self.sender is not None:
            rec.accepted, rec.rejected = self.sender.accepted, self.sender.rejected
        rec.worker_finals = dict(self.finals)
        rec.end_gauges, rec.end_totals = self.gauges()
        rec.runtime_gauges = self.runtime_gauges()
        summary, payment_rows = report.build_summary(rec, floor, describe(self.broker))
        summary["device_flash"] = {"dir": self.flash, "kept": self.o.keep_flash}
        if self.sender is not None:  # how late the payments left against their schedule: was the rate held?
            from soundbox_sim.metrics import exact_percentiles
            summary["payments_send_lag_ms"] = exact_percentiles([round(v) for v in self.sender.lag_ms])
        if self.api and self.db_path and os.path.exists(self.db_path):
            if not summary["healthy"]:  # keep the evidence for the zero counts that were not zero
                summary["cloud_db"] = os.path.join(self.report_dir, "cloud.db")
                shutil.copy(self.db_path, summary["cloud_db"])
            self._drop_db()
        report.write_all(summary, self.report_dir, payment_rows)
        return summary
