"""The real firmware app on a broken link: cut, blackhole, refused, slow, broker restart.

Each device is the real `Soundbox` app on the simulator's HAL (`SimHal`) in an asyncio
loop on a background thread, with its own payment key, talking plain MQTT to a private
mosquitto through `netproxy.Proxy`. A paho client plays the cloud: it publishes signed
notifications QoS 1 on sb/<id>/notify and collects the acks. The speaker is the
simulator's TimingSink over the real voice pack, sped up 50x so a test is not dominated
by speech, behind a gate the test can hold to keep an announcement "playing" while it
breaks the link. Every announcement goes into
the simulator's journal (JSON Lines), which is how exactly-once is checked.

Timings are measured, printed (run with -s to see them) and bounded by assertions.
"""

import asyncio
import copy
import json
import os
import socket
import statistics
import threading
import time
from collections import Counter

import paho.mqtt.client as mqtt
import pytest

from netproxy import Proxy
from soundbox import payment
from soundbox.mqttclient import Client
from soundbox.mqttsession import Session
from soundbox_fw.app import Soundbox
from soundbox_sim.audio import TimingSink
from soundbox_sim.fleet import Journal, JournalingSink
from soundbox_sim.hal import SimHal
from soundbox_tools.voicepack import load_index

KEEPALIVE_S = 2
SPEEDUP = 50  # announcements take 1/50 of their spoken length
BACKOFF_BASE_S = 0.5  # soundbox.backoff.Backoff default
CONNACK_TIMEOUT_S = 10  # mqttsession.Session default connect_timeout_ms, not settable from the app


def wait_for(check, timeout, what, devices=None):
    """Poll check() until it returns something truthy; fail naming `what` (and the devices' log)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = "; device log:\n" + devices.log_text() if devices else ""
            raise AssertionError("timed out after %.1f s waiting for %s%s" % (timeout, what, detail))
        time.sleep(0.02)


def wall_ms():
    return time.time_ns() // 1000000


def report(name, **values):
    print("\n[link-faults] %s: %s" % (name, ", ".join("%s=%s" % kv for kv in values.items())))


# ---- the devices -----------------------------------------------------------

class GatedSink:
    """Notes when each announcement starts and lets the test hold playback."""

    def __init__(self, inner, started, gate):
        self.inner = inner
        self.started = started
        self.gate = gate

    async def play(self, tokens, name=None):
        self.started.append(name)
        await self.gate.wait()
        await self.inner.play(tokens, name)


class Devices:
    """Real firmware apps in one asyncio loop on a background thread."""

    def __init__(self, tmp_path, voice_pack, port, ids, identities, keepalive=KEEPALIVE_S):
        self.ids = ids
        self.port = port
        self.keepalive = keepalive
        self.state_dir = tmp_path / "devices"
        self.journal_path = str(tmp_path / "journal.jsonl")
        self.index = copy.deepcopy(load_index(voice_pack))
        for clip in self.index["clips"].values():
            clip["ms"] = clip["ms"] / SPEEDUP
        self.started = []  # txns whose announcement began, in order
        self.logs = []  # (monotonic s, device, message)
        self.apps = {}
        self.identities = identities
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="devices", daemon=True)
        self._thread.start()
        assert self._ready.wait(10) and self._thread.is_alive(), "device loop did not start"

    def _main(self):
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._run())
        finally:
            self._ready.set()  # a start-up failure must not leave the test waiting
            self.loop.close()

    async def _run(self):
        self.gate = asyncio.Event()
        self.gate.set()
        self._stop = asyncio.Event()
        journal = Journal(self.journal_path)
        timing = TimingSink(self.index)
        for device_id in self.ids:
            sink = JournalingSink(GatedSink(timing, self.started, self.gate), device_id, journal)
            log = lambda msg, d=device_id: self.logs.append((time.monotonic(), d, msg))
            hal = SimHal(str(self.state_dir / device_id), sink, log)
            self.apps[device_id] = Soundbox(hal, {"device_id": device_id, "broker_host": "127.0.0.1",
                                                  "broker_port": self.port, "keepalive": self.keepalive,
                                                  "identity": self.identities.dir(device_id)})
        tasks = [asyncio.ensure_future(app.run()) for app in self.apps.values()]
        self._ready.set()
        await self._stop.wait()
        await asyncio.gather(*(app.stop() for app in self.apps.values()), return_exceptions=True)
        # A device in a reconnect backoff only notices stop() when its sleep ends.
        _, late = await asyncio.wait(tasks, timeout=2)
        for task in late:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        journal.close()

    def call(self, fn):
        """Run fn() on the device loop and wait for it."""
        done = threading.Event()
        self.loop.call_soon_threadsafe(lambda: (fn(), done.set()))
        assert done.wait(5)

    def hold(self):
        self.call(self.gate.clear)

    def release(self):
        self.call(self.gate.set)

    def connected(self, device_id):
        return self.apps[device_id].mqtt.connected

    def pending_acks(self, device_id):
        """QoS 1 publishes the device's session still owes the broker (in flight + queued)."""
        session = self.apps[device_id].mqtt.session
        return len(session.inflight) + len(session.queued)

    def journal(self):
        if not os.path.exists(self.journal_path):
            return []
        with open(self.journal_path) as f:
            return [json.loads(line) for line in f]

    def played(self, txn):
        return sum(1 for j in self.journal() if j["txn"] == txn)

    def log_text(self):
        lines = ["%.3f %s %s" % entry for entry in self.logs]
        return "\n".join(lines + ["(now %.3f) device loop tasks:" % time.monotonic(), self.tasks_text()])

    def tasks_text(self):
        """Where every task of the device loop is waiting (for failure messages)."""
        out = []

        def dump():
            for task in asyncio.all_tasks(self.loop):
                frames = task.get_stack()
                where = " <- ".join("%s:%d" % (f.f_code.co_name, f.f_lineno) for f in reversed(frames))
                out.append("  %s" % (where or task))

        try:
            self.call(dump)
        except (AssertionError, RuntimeError):
            out.append("  (device loop not answering)")
        return "\n".join(out)

    def stop(self):
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(15)


class Identities:
    """Each device's payment key in its identity directory (payment.key, hex), as the PKI
    bundle delivers it; the cloud side signs notifications with the same keys."""

    def __init__(self, root, ids=("sb-0001", "sb-0002")):
        self.root = root
        self.keys = {}
        for device_id in ids:
            self.keys[device_id] = os.urandom(payment.KEY_SIZE)
            os.makedirs(self.dir(device_id))
            with open(os.path.join(self.dir(device_id), "payment.key"), "w") as f:
                f.write(self.keys[device_id].hex())

    def dir(self, device_id):
        return os.path.join(str(self.root), device_id)


# ---- the cloud side --------------------------------------------------------

class Desk:
    """A paho client standing in for the cloud: signed notifications out (QoS 1), acks and status in."""

    def __init__(self, broker, keys, client_id="test-desk", clean=True):
        self.keys = keys  # device id -> payment key
        self.lock = threading.Lock()
        self.acks = []  # (wall ms received, device, ack dict)
        self.status = {}  # device -> last state
        self.sent = {}  # txn -> wall ms published
        self._subscribed = threading.Event()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean)
        c.max_inflight_messages_set(100)
        c.reconnect_delay_set(1, 2)
        c.on_socket_open = lambda cl, ud, sock: sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.on_connect = self._on_connect
        c.on_subscribe = lambda *a: self._subscribed.set()
        c.on_message = self._on_message
        c.connect(broker.host, broker.port, keepalive=10)
        c.loop_start()
        self.client = c
        assert self._subscribed.wait(10), "test desk could not subscribe"

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        client.subscribe([("sb/+/ack", 1), ("sb/+/status", 1)])

    def _on_message(self, client, userdata, msg):
        device, kind = msg.topic.split("/")[1:3]
        body = json.loads(msg.payload) if msg.payload else {}
        with self.lock:
            if kind == "ack":
                self.acks.append((wall_ms(), device, body))
            elif kind == "status":
                self.status[device] = body.get("state")

    def pay(self, device, txn, amount):
        ts = wall_ms()
        self.sent[txn] = ts
        payload = json.dumps(payment.sign(self.keys[device], device, txn, amount, ts))
        return self.client.publish("sb/%s/notify" % device, payload, qos=1)

    def acks_for(self, txn, status="announced"):
        with self.lock:
            return [(at, a) for at, _, a in self.acks if a.get("txn") == txn and a.get("status") == status]

    def all_acks(self):
        with self.lock:
            return list(self.acks)

    def online(self, device):
        with self.lock:
            return self.status.get(device) == "online"

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def proxy(broker):
    p = Proxy(broker.host, broker.port)
    yield p
    p.close()


@pytest.fixture
def identities(tmp_path):
    return Identities(tmp_path / "identity")


@pytest.fixture
def desk(broker, identities):
    d = Desk(broker, identities.keys)
    yield d
    d.close()


@pytest.fixture
def rig(tmp_path, voice_pack, proxy, identities):
    """One device, sb-0001, connected to the broker through the proxy."""
    devices = Devices(tmp_path, voice_pack, proxy.port, ["sb-0001"], identities)
    yield devices
    devices.stop()


def wait_online(devices, desk, device_id="sb-0001", timeout=10):
    wait_for(lambda: devices.connected(device_id) and desk.online(device_id), timeout,
             "%s online" % device_id, devices)


def assert_exactly_once(devices, desk, txns):
    played = Counter(j["txn"] for j in devices.journal())
    assert {t: played[t] for t in txns} == {t: 1 for t in txns}, played
    announced = Counter(a["txn"] for _, _, a in desk.all_acks() if a["status"] == "announced")
    assert set(announced) >= set(txns), "announced acks missing for %s" % (set(txns) - set(announced))


# ---- a) cut -----------------------------------------------------------------

def test_cut_link_payments_sent_meanwhile_are_announced_once_and_held_acks_delivered(rig, proxy, desk):
    wait_online(rig, desk)
    rig.hold()
    desk.pay("sb-0001", "CUT-1", 25000).wait_for_publish(5)
    wait_for(lambda: "CUT-1" in rig.started, 5, "CUT-1 to start playing", rig)

    proxy.refuse(True)  # the link stays down until we say so
    cut_at = time.monotonic()
    proxy.cut()
    wait_for(lambda: not rig.connected("sb-0001"), 5, "the device to notice the cut", rig)
    noticed_s = time.monotonic() - cut_at
    for txn in ("CUT-2", "CUT-3"):  # the broker keeps these for the persistent session
        desk.pay("sb-0001", txn, 100).wait_for_publish(5)
    rig.release()  # CUT-1 finishes while offline: its ack can only wait in the session
    wait_for(lambda: rig.played("CUT-1") == 1, 5, "CUT-1 to finish playing offline", rig)
    assert rig.pending_acks("sb-0001") >= 1
    assert desk.acks_for("CUT-1") == []
    allowed_wall, allowed_at = wall_ms(), time.monotonic()
    proxy.refuse(False)
    refused_attempts = sum(1 for r in proxy.attempts(since=cut_at) if r.refused)
    wait_for(lambda: rig.connected("sb-0001"), 2 ** refused_attempts * BACKOFF_BASE_S + 3,
             "reconnect after the link came back", rig)
    reconnect_s = time.monotonic() - allowed_at
    for txn in ("CUT-1", "CUT-2", "CUT-3"):
        wait_for(lambda: desk.acks_for(txn), 10, "announced ack for %s" % txn, rig)
    assert_exactly_once(rig, desk, ["CUT-1", "CUT-2", "CUT-3"])
    (held_at, held), = desk.acks_for("CUT-1")
    assert held["done"] < allowed_wall <= held_at, "CUT-1 acked before the link came back?"
    wait_for(lambda: rig.pending_acks("sb-0001") == 0, 5, "the broker to PUBACK every held ack", rig)
    report("cut", device_noticed_s="%.3f" % noticed_s, refused_attempts=refused_attempts,
           reconnect_after_allow_s="%.2f" % reconnect_s,
           held_ack_delivered_after_allow_ms=held_at - allowed_wall)


# ---- b) blackhole -----------------------------------------------------------

def test_blackhole_is_detected_within_one_and_a_half_keepalives_and_pending_work_is_delivered(rig, proxy, desk):
    wait_online(rig, desk)
    rig.hold()
    desk.pay("sb-0001", "HOLE-1", 4200).wait_for_publish(5)
    wait_for(lambda: "HOLE-1" in rig.started, 5, "HOLE-1 to start playing", rig)
    (link,) = proxy.open_links()

    proxy.blackhole(True)
    dead_at = time.monotonic()
    rig.release()  # HOLE-1's ack goes into the dead link
    desk.pay("sb-0001", "HOLE-2", 990).wait_for_publish(5)  # the broker sends it into the dead link too
    limit_s = 1.5 * KEEPALIVE_S
    wait_for(lambda: link.client_gone, limit_s + 2, "the device to give up on the dead link", rig)
    detect_s = link.client_gone - dead_at
    assert detect_s <= limit_s + 0.5, "dead link found after %.2f s (keepalive %d s)" % (detect_s, KEEPALIVE_S)
    assert any("no PINGRESP" in msg for _, _, msg in rig.logs), rig.log_text()
    assert rig.played("HOLE-1") == 1 and desk.acks_for("HOLE-1") == []

    # The device backs off, then tries again: into the blackhole, where its CONNECT is lost.
    retry = wait_for(lambda: [r for r in proxy.attempts() if r.opened > link.client_gone], 2 * BACKOFF_BASE_S + 2,
                     "a reconnect attempt after the backoff", rig)[0]
    backoff_s = retry.opened - link.client_gone
    lifted_at = time.monotonic()
    proxy.blackhole(False)
    wait_for(lambda: rig.connected("sb-0001"), CONNACK_TIMEOUT_S + 2 * BACKOFF_BASE_S + 3,
             "reconnect after the blackhole lifted", rig)
    recover_s = time.monotonic() - lifted_at
    for txn in ("HOLE-1", "HOLE-2"):
        wait_for(lambda: desk.acks_for(txn), 10, "announced ack for %s" % txn, rig)
    assert_exactly_once(rig, desk, ["HOLE-1", "HOLE-2"])
    assert link.dropped > 0
    report("blackhole", detect_s="%.2f" % detect_s, limit_s=limit_s, first_retry_after_s="%.2f" % backoff_s,
           reconnect_after_lift_s="%.2f" % recover_s, bytes_dropped=link.dropped)


# ---- c) refused -------------------------------------------------------------

def test_refused_connections_are_retried_with_growing_backoff_not_a_hot_loop(tmp_path, voice_pack, proxy, desk,
                                                                             identities):
    window_s = 5.0
    proxy.refuse(True)
    devices = Devices(tmp_path, voice_pack, proxy.port, ["sb-0001"], identities)
    try:
        first = wait_for(proxy.attempts, 5, "a first connection attempt", devices)[0]
        time.sleep(max(0.0, first.opened + window_s - time.monotonic()))
        attempts = [r.opened for r in proxy.attempts() if r.opened <= first.opened + window_s]
        gaps = [b - a for a, b in zip(attempts, attempts[1:])]
        # Full jitter below a doubling ceiling: a 0.5 s base without growth would make
        # 12+ attempts in 5 s, a hot loop thousands; correct backoff makes about 4-6.
        assert 2 <= len(attempts) < 9, "attempts at %s" % ["%.2f" % (t - first.opened) for t in attempts]
        for i, gap in enumerate(gaps):
            assert gap <= BACKOFF_BASE_S * 2 ** i + 0.3, "gap %d was %.2f s" % (i, gap)
        assert not devices.connected("sb-0001")

        allowed_at = time.monotonic()
        proxy.refuse(False)
        pending_max_s = BACKOFF_BASE_S * 2 ** (sum(1 for r in proxy.attempts() if r.refused) - 1)
        wait_online(devices, desk, timeout=pending_max_s + 3)
        report("refused", window_s=window_s, attempts=len(attempts),
               gaps_s=["%.2f" % g for g in gaps], connected_after_allow_s="%.2f" % (time.monotonic() - allowed_at),
               bound_s=pending_max_s)
        desk.pay("sb-0001", "REF-1", 100)
        wait_for(lambda: desk.acks_for("REF-1"), 10, "announced ack for REF-1", devices)
        assert_exactly_once(devices, desk, ["REF-1"])
    finally:
        devices.stop()


# ---- d) delay ---------------------------------------------------------------

def test_slow_link_still_announces_each_payment_once(tmp_path, voice_pack, proxy, desk, identities):
    delay_ms = 200
    proxy.delay(delay_ms)
    devices = Devices(tmp_path, voice_pack, proxy.port, ["sb-0001"], identities)
    try:
        wait_online(devices, desk)
        txns = ["SLOW-%d" % i for i in range(5)]
        transport, round_trip = [], []
        for i, txn in enumerate(txns):
            desk.pay("sb-0001", txn, 100 * (i + 1)).wait_for_publish(5)
            (acked_at, ack), = wait_for(lambda: desk.acks_for(txn), 10, "announced ack for " + txn, devices)
            transport.append(ack["rx"] - desk.sent[txn])
            round_trip.append(acked_at - desk.sent[txn])
            # One delay on the way in, one on the way out, on top of the audio.
            assert ack["rx"] - desk.sent[txn] >= delay_ms - 5
            assert acked_at - ack["done"] >= delay_ms - 5
            assert ack["rx"] - desk.sent[txn] < delay_ms + 1000
        assert_exactly_once(devices, desk, txns)
        assert all(len(desk.acks_for(t)) == 1 for t in txns)
        report("delay %d ms each way" % delay_ms,
               notify_to_rx_ms="p50 %d max %d" % (statistics.median(transport), max(transport)),
               notify_to_ack_ms="p50 %d max %d" % (statistics.median(round_trip), max(round_trip)))
    finally:
        devices.stop()


# ---- e) broker restart mid-stream --------------------------------------------

def test_broker_restart_mid_stream_loses_and_duplicates_nothing(broker, tmp_path, voice_pack, identities):
    # Needs the broker's persistence (broker.py): without it a restart forgets the devices'
    # sessions and the QoS 1 notifications queued for them (measured: 9 of 30 acked).
    ids = ["sb-0001", "sb-0002"]
    desk = Desk(broker, identities.keys, client_id="test-desk-restart", clean=False)  # acks queue for it too
    devices = Devices(tmp_path, voice_pack, broker.port, ids, identities)
    try:
        for d in ids:
            wait_online(devices, desk, d)
        txns = [("RST-%02d" % i, ids[i % 2]) for i in range(30)]
        restarted = threading.Event()
        down = []

        def restart():
            stopped = time.monotonic()
            broker.stop()
            broker.start()  # same port
            down.append(time.monotonic() - stopped)
            restarted.set()

        unsent = 0
        for i, (txn, device) in enumerate(txns):
            info = desk.pay(device, txn, 100 + i)  # paho keeps what the broker has not acknowledged
            unsent += info.rc != mqtt.MQTT_ERR_SUCCESS
            if i == 10:
                threading.Thread(target=restart, daemon=True).start()
            time.sleep(0.05)
        assert restarted.wait(15), "broker did not come back"
        wait_for(lambda: all(desk.acks_for(t) for t, _ in txns), 25,
                 "an announced ack for every notification; have %d of %d"
                 % (len({a["txn"] for _, _, a in desk.all_acks()}), len(txns)), devices)
        assert_exactly_once(devices, desk, [t for t, _ in txns])
        # QoS 1 may deliver an ack twice across the restart (the device resends what the
        # broker never PUBACKed); a copy must be the same ack, not a second announcement.
        copies = {}
        for _, device, ack in desk.all_acks():
            copies.setdefault((device, ack["txn"], ack["status"]), []).append(ack)
        for key, acks in copies.items():
            assert all(a == acks[0] for a in acks), "different acks for %s: %s" % (key, acks)
        report("broker restart", notifications=len(txns), published_while_disconnected=unsent,
               broker_down_s="%.2f" % down[0], announced_once=len(txns),
               duplicate_status_acks=sum(1 for (_, _, s) in copies if s == "duplicate"),
               redelivered_ack_copies=sum(len(a) - 1 for a in copies.values()))
    finally:
        devices.stop()
        desk.close()


# ---- stopping while the link is down -----------------------------------------

class SteadyBackoff:
    """Always the same reconnect delay, so the test knows the driver is mid-sleep."""

    def __init__(self, delay_ms):
        self.delay_ms = delay_ms

    def next_delay_ms(self, r):
        return self.delay_ms

    def reset(self):
        pass

    def give_up_fast(self):
        pass


def test_stop_does_not_wait_out_the_reconnect_backoff(proxy):
    proxy.refuse(True)  # every attempt fails: the driver goes back to sleep each time

    async def main():
        client = Client(Session("sb-0001", keepalive_s=KEEPALIVE_S), "127.0.0.1", proxy.port, on_message=None,
                        backoff=SteadyBackoff(20000), log=lambda m: None)
        task = asyncio.ensure_future(client.run())
        while not proxy.attempts():
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # refused; now in the 20 s backoff sleep
        stopped_at = time.monotonic()
        await client.stop()
        done, _ = await asyncio.wait([task], timeout=2)
        task.cancel()
        assert done, "run() still asleep %.1f s after stop()" % (time.monotonic() - stopped_at)

    asyncio.run(main())
