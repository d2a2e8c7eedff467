"""Run N copies of the real firmware app in one asyncio loop against a broker.

Each device is the real `soundbox_fw.app.Soundbox` on its own SimHal (a directory for
flash); what is immutable is shared by the whole fleet: the code, one open voice pack
per language, the journal. Devices start on an open-loop schedule (connect_rate per
second, with jitter) whether or not earlier ones have connected, as boxes switched on
across a city would; or, with connect_rate "auto", in a closed loop: the next box starts
while fewer than AUTO_IN_FLIGHT started boxes wait for their first CONNACK, so the ramp
runs as fast as the broker and this process absorb connects instead of queueing them.
A device can be restarted cleanly, power-cut, or wedged (silent).
"""

import asyncio
import json
import os
import random
import time

from soundbox import clock
from soundbox.desk import said_txns
from soundbox_fw.app import Soundbox
from soundbox_sim.audio import PackShelf, TimingSink, WavSink
from soundbox_sim.hal import HostClock, SimHal
from soundbox_sim.link import Link, LinkStats, install_context_cache
from soundbox_sim.schema import AUTO
from soundbox_sim.slots import enable_ota

STOP_TIMEOUT_S = 5
AUTO_IN_FLIGHT = 16  # boxes between start and first CONNACK on the "auto" ramp
AUTO_STALL_S = 5.0  # a box waiting longer than this stops holding the ramp back


def slim_events(*owners):
    """Give the asyncio.Events these objects hold a list for their waiters.

    asyncio.Event keeps waiters in a deque, which allocates a 64-slot block (760 bytes)
    at once; a device's app, MQTT client and buttons hold about eight Events, each with
    one waiter at most. Event only appends, removes and iterates its waiters, which a
    list does as well. An Event whose waiters are not an empty deque is left alone.
    """
    import collections

    for owner in owners:
        for value in getattr(owner, "__dict__", {}).values():
            if isinstance(value, asyncio.Event):
                waiters = getattr(value, "_waiters", None)
                if type(waiters) is collections.deque and not waiters:
                    value._waiters = []


def device_ids(n):
    return ["sb-%04d" % (i + 1) for i in range(n)]


class Journal:
    """Append-only JSON Lines record of every announcement the fleet actually played.
    Several worker processes may append to one file: each record is one write()."""

    def __init__(self, path):
        self.path = path
        self.count = 0
        self._file = open(path, "a") if path else None

    def write(self, record):
        self.count += 1
        if self._file:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()

    def close(self):
        if self._file:
            self._file.close()
            self._file = None


class JournalingSink:
    """Wraps a device's audio sink to note what was played, when (host clock, not the
    device's possibly skewed one: the cloud's timestamps are on the same clock)."""

    __slots__ = ("inner", "device_id", "journal")

    def __init__(self, inner, device_id, journal):
        self.inner = inner
        self.device_id = device_id
        self.journal = journal

    def __getattr__(self, name):
        # set_volume, set_language: whatever the wrapped sink offers, the app may call
        return getattr(self.inner, name)

    async def play(self, tokens, name=None):
        start = clock.wall_ms()
        await self.inner.play(tokens, name)
        end, words = clock.wall_ms(), " ".join(tokens)
        # A merged announcement played each of its payments: one record per txn keeps
        # the journal's per-txn counts right.
        txns, merged = said_txns(name)
        for txn in txns:
            record = {"device": self.device_id, "txn": txn, "start": start, "end": end, "words": words}
            if merged:
                record["merged"] = merged
            self.journal.write(record)


class SimDevice:
    """One box: its link and speaker outlive restarts; app, HAL and task are per boot.
    Its HAL's log and reboot and its client's connect hooks are methods of this object
    (a bound method is a third of a closure with its cells, and there are thousands)."""

    __slots__ = ("id", "fleet", "link", "sink", "clock", "app", "task", "boots", "live", "silent",
                 "app_on_connect", "app_on_disconnect")

    def __init__(self, device_id, fleet, link, sink):
        self.id = device_id
        self.fleet = fleet
        self.link = link
        self.sink = sink
        self.clock = HostClock()  # survives a reboot: a skewed RTC stays skewed
        self.app = None
        self.task = None
        self.boots = 0
        self.live = False  # has a CONNACK on its current connection
        self.silent = False  # wedged or without power: no app running
        self.app_on_connect = self.app_on_disconnect = None  # the app's own client callbacks

    def log(self, msg):
        self.fleet._log.write("%.3f %s %s\n" % (time.time(), self.id, msg))

    def reboot(self):
        """hal.reboot: the app asked to restart; done from outside the app's own task."""
        return self.fleet._spawn_restart(self.id)

    async def on_connect(self, client, session_present):
        """Counts the connect and times CONNECT->CONNACK, then runs the app's callback."""
        if not self.live:
            self.fleet.live += 1
        self.live = True
        self.link.on_connack()
        self.fleet._connacked(self)
        await self.app_on_connect(client, session_present)

    def on_disconnect(self):
        self.link.on_closed(self.live)
        self.gone()
        self.app_on_disconnect()

    def gone(self):
        """Its connection ended (closed, cut, or its app stopped)."""
        if self.live:
            self.fleet.live -= 1
        self.live = False


class Fleet:
    """ids: which device ids this fleet runs (default sb-0001..sb-N); langs: {id: lang}
    overriding `lang`; extra_config: keys merged into every device's config;
    proxy: (host, port) of a netfaults.FaultProxy the links go through."""

    def __init__(self, n, host, port, state_dir, pack_dir, wav_device=None, out_dir="out",
                 journal_path=None, connect_rate=200.0, keepalive=60, identity_root=None, tls=False,
                 freshness_s=None, lang="en-IN", ids=None, langs=None, extra_config=None, jitter=0.5,
                 speedup=1.0, proxy=None, seed=0):
        self.ids = list(ids) if ids is not None else device_ids(n)
        self.host, self.port = host, port
        self.state_dir = state_dir
        self.pack_dir = pack_dir  # holds <lang>.pack
        self.lang = lang
        self.langs = langs or {}
        self.extra_config = dict(extra_config or {})
        self.wav_device = wav_device
        self.out_dir = out_dir
        self.connect_rate = connect_rate
        self.jitter = jitter  # each start is delayed by up to jitter / connect_rate seconds
        self.keepalive = keepalive
        # <root>/<device id>/ holds each device's identity: payment key always, TLS files for mqtts.
        self.identity_root = identity_root
        self.tls = tls
        self.freshness_s = freshness_s  # None: the firmware's default
        self.speedup = speedup
        self.proxy = proxy
        self.seed = seed
        if tls:
            install_context_cache()
        self.journal = Journal(journal_path)
        self.stats = LinkStats()
        self.devices = []  # the running apps, in start order (kept current across restarts)
        self.slots = {}  # id -> SimDevice
        self.started = 0
        self.live = 0  # devices with a CONNACK on their current connection
        self._shelf = None
        self._restarts = set()
        self._locks = {}
        self._awaiting = {}  # "auto" ramp: slot -> when it started, until its first CONNACK
        self._connack = asyncio.Event()
        os.makedirs(state_dir, exist_ok=True)
        self._log = open(os.path.join(state_dir, "devices.log"), "a", buffering=1)  # line: readable live

    def connected(self):
        """Devices with a CONNACK on their current connection (counted as they come and go:
        the progress tick asks every second, and a scan of 10,000 boxes is not free)."""
        return self.live

    def refused(self):
        """Devices whose last connect was refused by the broker (bad or revoked identity)."""
        return sum(1 for s in self.slots.values() if s.app is not None and s.app.mqtt.refused is not None)

    # ---- one device ---------------------------------------------------------------

    def _slot(self, device_id):
        shelf = self._shelf
        lang = self.langs.get(device_id, self.lang)
        # A sink per device: each box can be switched to its own language by command.
        if device_id == self.wav_device:
            sink = WavSink(shelf(lang), os.path.join(self.out_dir, device_id), shelf)
        else:
            sink = TimingSink(shelf(lang), shelf, self.speedup)
        link = Link(device_id, self.stats, self.proxy)
        return SimDevice(device_id, self, link, JournalingSink(sink, device_id, self.journal))

    def _config(self, device_id):
        config = {"device_id": device_id, "broker_host": self.host, "broker_port": self.port,
                  "keepalive": self.keepalive, "lang": self.langs.get(device_id, self.lang)}
        if self.identity_root:
            config["identity"] = os.path.join(self.identity_root, device_id)
            if self.tls:
                config["tls"] = {"identity": config["identity"]}
        if self.freshness_s is not None:
            config["freshness_s"] = self.freshness_s
        config.update(self.extra_config)
        return config

    def _boot(self, slot):
        device_id = slot.id
        hal = SimHal(os.path.join(self.state_dir, device_id), slot.sink, slot.log,
                     open_connection=slot.link.open_connection, reboot=slot.reboot, clock=slot.clock)
        config = self._config(device_id)
        if config.get("ota_keys"):
            enable_ota(hal, os.path.join(self.state_dir, device_id))  # A/B slots in its state dir
        app = Soundbox(hal, config)
        slim_events(app, app.mqtt, hal.buttons, getattr(app, "updater", None))
        client = app.mqtt  # count connects and time CONNECT->CONNACK around its callbacks
        slot.app_on_connect, slot.app_on_disconnect = client.on_connect, client.on_disconnect
        client.on_connect, client.on_disconnect = slot.on_connect, slot.on_disconnect
        slot.link.fresh_start()
        slot.gone()
        slot.app, slot.silent = app, False
        slot.boots += 1
        slot.task = asyncio.ensure_future(app.run())
        return app

    def _refresh_devices(self):
        self.devices = [s.app for s in self.slots.values() if s.app is not None]

    async def restart(self, device_id, power_cut=False, down_s=0.0):
        """Stop one device and boot it again on the same storage.

        Clean (power_cut=False): the app leaves as it would on a reboot it asked for
        (offline status, DISCONNECT). Power cut: its task is cancelled after the link is
        cut without a FIN or close_notify; the broker finds out by keepalive or when
        the rebooted box takes its session over. down_s: seconds without power first.
        """
        lock = self._locks.get(device_id)
        if lock is None:
            lock = self._locks[device_id] = asyncio.Lock()
        async with lock:  # two faults on one box at once: one after the other, never two apps
            await self._restart(self.slots[device_id], power_cut, down_s)

    async def _restart(self, slot, power_cut, down_s):
        app, task = slot.app, slot.task
        slot.app, slot.silent = None, True
        if app is not None:
            if power_cut:
                slot.link.cut_silently()
                task.cancel()
            else:
                try:
                    await asyncio.wait_for(app.stop(), STOP_TIMEOUT_S)
                except Exception:
                    pass
                if not task.done():
                    task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        slot.gone()  # a cancelled app may not have told its client's callback
        if down_s:
            await asyncio.sleep(down_s)
        self._boot(slot)
        self._refresh_devices()

    async def silence(self, device_id, duration_s):
        """Wedge a device for duration_s: it stops reading and writing without closing
        (half-open), then its watchdog reboots it."""
        await self.restart(device_id, power_cut=True, down_s=duration_s)

    def skew_clock(self, device_id, skew_ms):
        self.slots[device_id].clock.skew_ms = skew_ms

    def _spawn_restart(self, device_id, power_cut=False):
        """hal.reboot: the app asked to restart; do it from outside the app's own task."""
        task = asyncio.ensure_future(self.restart(device_id, power_cut))
        self._restarts.add(task)
        task.add_done_callback(self._restarts.discard)
        return task

    # ---- the fleet ----------------------------------------------------------------

    async def start_all(self, stop_event=None):
        """Boot every device, on the open-loop schedule or the closed "auto" loop;
        returns when all have been started."""
        self._shelf = self._shelf or PackShelf(self.pack_dir)
        loop = asyncio.get_running_loop()
        rng = random.Random(self.seed)
        begin = loop.time()
        for i, device_id in enumerate(self.ids):
            if stop_event is not None and stop_event.is_set():
                break
            if self.connect_rate == AUTO:
                await self._ramp_room(loop)
            else:
                due = begin + (i + rng.random() * self.jitter) / self.connect_rate
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
            slot = self.slots[device_id] = self._slot(device_id)
            self._boot(slot)
            self.devices.append(slot.app)
            self.started += 1
            if self.connect_rate == AUTO:
                self._awaiting[slot] = loop.time()

    async def _ramp_room(self, loop):
        """Wait until fewer than AUTO_IN_FLIGHT started boxes still await a first CONNACK."""
        while True:
            stalled = loop.time() - AUTO_STALL_S
            for slot in [s for s, t in self._awaiting.items() if t < stalled]:
                del self._awaiting[slot]
            if len(self._awaiting) < AUTO_IN_FLIGHT:
                return
            self._connack.clear()
            try:
                await asyncio.wait_for(self._connack.wait(), 0.1)
            except asyncio.TimeoutError:
                pass

    def _connacked(self, slot):
        if self._awaiting.pop(slot, None) is not None:
            self._connack.set()

    async def stop_all(self):
        for t in list(self._restarts):
            t.cancel()
        slots = list(self.slots.values())
        await asyncio.gather(*(asyncio.wait_for(s.app.stop(), STOP_TIMEOUT_S) for s in slots if s.app),
                             return_exceptions=True)
        tasks = [s.task for s in slots if s.task is not None]
        _, late = await asyncio.wait(tasks, timeout=2) if tasks else (None, [])
        for t in late:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for s in slots:
            s.link.release_held()
        self.journal.close()
        self._log.close()

    async def run(self, stop_event, progress=None):
        """Start devices (start_all), run until stop_event, then stop them all."""
        starter = asyncio.ensure_future(self.start_all(stop_event))
        while not stop_event.is_set():
            if progress:
                progress(self)
            try:
                await asyncio.wait_for(stop_event.wait(), 1)
            except asyncio.TimeoutError:
                pass
        starter.cancel()
        await asyncio.gather(starter, return_exceptions=True)
        await self.stop_all()
