"""Commands on sb/<id>/cmd with real parts: the firmware app in this process on the
simulator's HAL, a real mosquitto, notifications signed with the test PKI's keys.

The rule itself (soundbox.commands.parse) is checked by tests/core/test_command_rule.py,
on CPython and on the MicroPython VMs; here: the same rule on any input (hypothesis), and
the box's side: the cmdack echoes the command's id, a burst of replays never holds back
a payment, reboot acks and lets the speaker finish before it restarts, telemetry now.
"""

import asyncio
import json
import threading

import paho.mqtt.client as mqtt
from hypothesis import given
from hypothesis import strategies as st

from soundbox import commands, voice, voice_tokens
from soundbox_fw import stored
from soundbox_sim.audio import TimingSink
from soundbox_tools.mpdevice import REBOOT_EXIT, MicroPythonDevice, device_config
from apprig import AppOnThread
from test_end_to_end import eventually
from test_payment_integrity import desk, signed  # noqa: F401 (desk: a fixture)

DEVICE = "sb-0001"
FIELDS = {"volume": {"cmd", "id", "level"}, "language": {"cmd", "id", "lang"}}
CLIP_MS = 40  # every clip lasts this long: an announcement takes a few hundred ms


# ---- the rule on any input -------------------------------------------------------------

def test_the_box_and_the_rule_agree_on_levels_and_languages():
    assert commands.VOLUME_LEVELS == stored.VOLUME_LEVELS
    assert commands.LANGUAGES is voice.LANGUAGES


_values = st.none() | st.booleans() | st.integers(-2, 8) | st.floats(allow_nan=False) | st.text(max_size=45) \
    | st.sampled_from(commands.COMMANDS + voice.LANGUAGES + ("a" * 40, "a" * 41))


@given(st.dictionaries(st.sampled_from(("cmd", "id", "level", "lang", "other")), _values)
       | st.lists(_values, max_size=2) | _values)
def test_parse_either_gives_only_known_fields_or_names_the_field(body):
    try:
        out = commands.parse(body)
    except commands.CommandError as e:
        assert e.field in ("body", "cmd", "id", "level", "lang") and e.reason and str(e) == e.reason
        return
    assert out is not body and set(out) == FIELDS.get(out["cmd"], {"cmd", "id"})
    assert all(out[k] == body[k] and type(out[k]) is type(body[k]) for k in out if k in body)
    assert out["id"] is None or commands.valid_id(out["id"])


# ---- the box ---------------------------------------------------------------------------

def every_clip():
    """A voice-pack index (as TimingSink takes it) with every token of every language."""
    return {"lang": "all", "clips": {t: {"ms": CLIP_MS} for lang in voice.LANGUAGES for t in voice_tokens.tokens(lang)}}


class HeldSink(TimingSink):
    """The simulator's timing sink, which the test can hold at the start of an announcement:
    `started` notes each start, `played` each one let through, as (name, words)."""

    def __init__(self):
        super().__init__(every_clip())
        self.started = []
        self.played = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def play(self, tokens, name=None):
        self.started.append(name)
        await self.gate.wait()
        self.played.append((name, " ".join(tokens)))
        await super().play(tokens, name)


def announced_once(desk, txns, timeout=20):
    """{txn: its one ack}, which says "announced"."""
    assert eventually(lambda: all(desk.acks_for(t) for t in txns), timeout), desk.acks
    acks = {}
    for t in txns:
        found = desk.acks_for(t)
        assert len(found) == 1 and found[0]["status"] == "announced", found
        acks[t] = found[0]
    return acks


class Rig(AppOnThread):
    """The app with a speaker the test can hold, to queue things behind an announcement."""

    def __init__(self, broker, state_dir, pki, reboot=None):
        super().__init__(broker, state_dir, pki.device_dir(DEVICE), HeldSink(), DEVICE, reboot)

    def call(self, fn):
        """fn() run on the app's loop (its state is only touched there); its result."""
        async def run():
            return fn()
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(5)

    def hold_speaker(self):
        self.call(self.sink.gate.clear)

    def release_speaker(self):
        self.call(self.sink.gate.set)

    def waiting(self, txn):
        return self.call(lambda: any(txn in u.txns for u in self.app.desk.pending))


class Cloud:
    """Sends commands to sb/<id>/cmd; collects cmdacks and telemetry."""

    def __init__(self, broker):
        self.acks = []
        self.telemetry = []
        self.lock = threading.Lock()
        subscribed = threading.Event()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        c.on_message = self._on_message
        c.on_subscribe = lambda *a: subscribed.set()
        c.connect(broker.host, broker.port)
        c.loop_start()
        c.subscribe([("sb/+/cmdack", 1), ("sb/+/telemetry", 1)])
        assert subscribed.wait(5)
        self.client = c

    def _on_message(self, client, userdata, msg):
        with self.lock:
            (self.acks if msg.topic.endswith("/cmdack") else self.telemetry).append(json.loads(msg.payload))

    def publish(self, command):
        payload = command if isinstance(command, bytes) else json.dumps(command)
        self.client.publish("sb/%s/cmd" % DEVICE, payload, qos=1).wait_for_publish(5)

    def acks_for(self, command_id):
        with self.lock:
            return [a for a in self.acks if a["id"] == command_id]

    def ack(self, command_id, timeout=10):
        found = eventually(lambda: self.acks_for(command_id), timeout)
        assert found, "no cmdack for %s; got %s" % (command_id, self.acks)
        return found[0]

    def send(self, command):
        """Publish a command (it must have an id) and return the box's answer to it."""
        self.publish(command)
        return self.ack(command["id"])

    def send_unnamed(self, command):
        """Publish a command without a usable id; the next cmdack is its answer."""
        before = len(self.acks)
        self.publish(command)
        assert eventually(lambda: len(self.acks) > before, 10), "no cmdack"
        with self.lock:
            return self.acks[before]

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def test_the_cmdack_echoes_the_command_id_even_when_refused(broker, tmp_path, pki):
    cloud = Cloud(broker)
    rig = Rig(broker, tmp_path / "state", pki)
    try:
        assert cloud.send({"cmd": "volume", "level": 2, "id": "c-1"}) == {"id": "c-1", "cmd": "volume", "ok": True,
                                                                         "reason": ""}
        assert eventually(lambda: rig.sink.volume == 2)
        assert cloud.send({"cmd": "volume", "level": True, "id": "c-2"}) == {
            "id": "c-2", "cmd": "volume", "ok": False, "reason": "level must be an integer 1-5"}
        answer = cloud.send({"cmd": "language", "lang": "fr", "id": "c.3"})
        assert answer["id"] == "c.3" and answer["reason"].startswith("lang must be one of en-IN, hi"), answer
        assert cloud.send({"cmd": "config", "id": "c_4"}) == {
            "id": "c_4", "cmd": None, "ok": False,
            "reason": "cmd must be one of language, reboot, replay, telemetry, volume"}
        # An older cloud sends no id: the answer's is null.
        assert cloud.send_unnamed({"cmd": "replay"}) == {"id": None, "cmd": "replay", "ok": False,
                                                         "reason": "nothing announced yet"}
        assert cloud.send_unnamed(b"{torn") == {"id": None, "cmd": None, "ok": False,
                                                "reason": "command must be a JSON object"}
        assert cloud.send_unnamed({"cmd": "volume", "level": 3, "id": "no spaces"}) == {
            "id": None, "cmd": "volume", "ok": False, "reason": "id must be 1-40 characters [A-Za-z0-9._-]"}
        assert rig.app.volume == 2
    finally:
        rig.stop()
        cloud.close()


def test_forty_replays_never_hold_back_a_payment(broker, tmp_path, pki, desk):
    key = pki.payment_key(DEVICE)
    cloud = Cloud(broker)
    rig = Rig(broker, tmp_path / "state", pki)
    try:
        desk.publish(DEVICE, signed(key, DEVICE, "P-0", 25000))
        announced_once(desk, ["P-0"])  # something to replay
        rig.hold_speaker()
        desk.publish(DEVICE, signed(key, DEVICE, "P-1", 10000))
        assert eventually(lambda: "P-1" in rig.sink.started), rig.logs  # being said (held)
        for i in range(40):
            cloud.publish({"cmd": "replay", "id": "r-%d" % i})
        answers = [cloud.ack("r-%d" % i) for i in range(40)]
        assert answers[0]["ok"] is True, answers[0]
        refused = [a for a in answers[1:] if (a["ok"], a["reason"]) == (False, "replay already pending")]
        assert len(refused) == 39, answers
        desk.publish(DEVICE, signed(key, DEVICE, "P-2", 5000))
        assert eventually(lambda: rig.waiting("P-2")), rig.logs  # queued behind the waiting replay
        rig.release_speaker()
        acks = announced_once(desk, ["P-1", "P-2"])
        assert eventually(lambda: len(rig.sink.played) == 4), rig.sink.played
        # The payment that came after the replays was said before the one replay that waited.
        assert [p[0] for p in rig.sink.played] == ["P-0", "P-1", "P-2", "replay"], rig.sink.played
        assert acks["P-2"]["reason"] == ""  # said on its own, not merged
        # Once said, a replay is taken again.
        assert eventually(lambda: rig.call(rig.app.speaker_idle)), rig.sink.played
        assert cloud.send({"cmd": "replay", "id": "r-again"})["ok"] is True
    finally:
        rig.stop()
        cloud.close()


class RebootHook:
    """hal.reboot for a rig: notes what the box had published and left unacked, then cuts its
    connection as a reset does (unsent bytes lost), and returns (the test process lives on)."""

    def __init__(self):
        self.rig = None
        self.published = []  # topics the app published, in order
        self.calls = []  # [(topics published so far, QoS 1 publishes not yet PUBACKed)]
        self.called = threading.Event()

    def attach(self, rig):
        self.rig = rig
        client = rig.app.mqtt
        publish = client.publish

        async def noting(topic, payload, qos=0, retain=False, expiry_s=None):
            self.published.append(topic)
            return await publish(topic, payload, qos, retain, expiry_s)

        client.publish = noting

    def __call__(self):
        client = self.rig.app.mqtt
        self.calls.append((list(self.published), len(client.session.inflight) + len(client.session.queued)))
        if client._writer is not None:
            client._writer.transport.abort()
        self.called.set()


def test_reboot_acks_first_and_restarts_once_the_speaker_is_done(broker, tmp_path, pki, desk):
    key = pki.payment_key(DEVICE)
    cloud = Cloud(broker)
    hook = RebootHook()
    rig = Rig(broker, tmp_path / "state", pki, reboot=hook)
    hook.attach(rig)
    try:
        rig.hold_speaker()
        desk.publish(DEVICE, signed(key, DEVICE, "B-1", 25000))
        assert eventually(lambda: "B-1" in rig.sink.started), rig.logs
        assert cloud.send({"cmd": "reboot", "id": "b-1"}) == {"id": "b-1", "cmd": "reboot", "ok": True, "reason": ""}
        assert not hook.called.is_set()  # the payment is still being said
        rig.release_speaker()
        announced_once(desk, ["B-1"])
        assert hook.called.wait(10), rig.logs
        assert len(hook.calls) == 1
        topics, unacked = hook.calls[0]
        # The cmdack went out before the restart, and the payment's ack after its words; the
        # broker had both (nothing in flight) when the box restarted.
        assert topics[-2:] == ["sb/%s/cmdack" % DEVICE, "sb/%s/ack" % DEVICE] and unacked == 0, topics
    finally:
        rig.stop()
    # The restarted box is not handed the reboot again: it was PUBACKed before the reset.
    again = RebootHook()
    rig = Rig(broker, tmp_path / "state", pki, reboot=again)
    again.attach(rig)
    try:
        assert cloud.send({"cmd": "telemetry", "id": "after"})["ok"] is True
        assert not again.called.is_set() and len(cloud.acks_for("b-1")) == 1, cloud.acks
    finally:
        rig.stop()
        cloud.close()


def test_a_second_reboot_while_one_is_under_way_is_refused(broker, tmp_path, pki):
    cloud = Cloud(broker)
    rig = Rig(broker, tmp_path / "state", pki, reboot=lambda: None)  # a restart that never comes
    try:
        assert cloud.send({"cmd": "reboot", "id": "r1"})["ok"] is True
        assert cloud.send({"cmd": "reboot", "id": "r2"}) == {"id": "r2", "cmd": "reboot", "ok": False,
                                                             "reason": "a restart is already under way"}
    finally:
        rig.stop()
        cloud.close()


def test_a_box_that_cannot_restart_keeps_taking_payments(broker, tmp_path, pki, desk):
    key = pki.payment_key(DEVICE)
    cloud = Cloud(broker)
    rig = Rig(broker, tmp_path / "state", pki)  # SimHal's own reboot: refuses outside a Fleet
    try:
        assert cloud.send({"cmd": "reboot", "id": "r1"})["ok"] is True
        assert eventually(lambda: any("reboot failed" in line for line in rig.logs)), rig.logs
        desk.publish(DEVICE, signed(key, DEVICE, "K-1", 25000))
        announced_once(desk, ["K-1"])
    finally:
        rig.stop()
        cloud.close()


def test_telemetry_command_publishes_telemetry_now(broker, tmp_path, pki):
    cloud = Cloud(broker)  # subscribed first: it sees the telemetry sent on connect as well
    rig = Rig(broker, tmp_path / "state", pki)
    try:
        assert eventually(lambda: len(cloud.telemetry) == 1), cloud.telemetry
        assert cloud.telemetry[0]["battery"] == 100
        rig.call(lambda: setattr(rig.hal.battery, "level", 42))
        assert cloud.send({"cmd": "telemetry", "id": "t-1"}) == {"id": "t-1", "cmd": "telemetry", "ok": True,
                                                                 "reason": ""}
        assert eventually(lambda: len(cloud.telemetry) == 2), cloud.telemetry
        fresh = cloud.telemetry[1]
        assert fresh["battery"] == 42 and fresh["fw"] and "heap" in fresh, fresh
    finally:
        rig.stop()
        cloud.close()


# ---- the same on the real MicroPython unix port --------------------------------------------

def test_commands_on_the_micropython_unix_port(broker, tmp_path, pki, desk, micropython, voice_pack):
    """The unmodified firmware as a MicroPython process: ids echoed, one replay at most, telemetry
    now, and reboot acked, then the process exits for its launcher to start it again (the unix
    HAL's reset), and the restarted box is not handed the reboot a second time."""
    cloud = Cloud(broker)
    config = device_config(DEVICE, broker.host, broker.port, pki.device_dir(DEVICE), None, voice_pack, tls=False,
                           keepalive=5)
    box = MicroPythonDevice(tmp_path / "mp", config, binary=micropython).start()
    try:
        assert eventually(lambda: len(cloud.telemetry) == 1, 30), box.log_text()
        assert cloud.send({"cmd": "telemetry", "id": "t-1"})["ok"] is True
        assert eventually(lambda: len(cloud.telemetry) == 2), cloud.telemetry
        assert cloud.send({"cmd": "volume", "level": True, "id": "v-1"}) == {
            "id": "v-1", "cmd": "volume", "ok": False, "reason": "level must be an integer 1-5"}
        desk.publish(DEVICE, signed(pki.payment_key(DEVICE), DEVICE, "M-1", 25000))
        announced_once(desk, ["M-1"])
        for i in range(3):  # well within one replay's seconds of audio
            cloud.publish({"cmd": "replay", "id": "r-%d" % i})
        assert [(a["ok"], a["reason"]) for a in (cloud.ack("r-%d" % i) for i in range(3))] == [
            (True, ""), (False, "replay already pending"), (False, "replay already pending")]
        assert cloud.send({"cmd": "reboot", "id": "b-1"}) == {"id": "b-1", "cmd": "reboot", "ok": True, "reason": ""}
        assert eventually(lambda: box.boots == 2 and len(cloud.telemetry) == 3, 30), box.log_text()
        assert box.exits == [REBOOT_EXIT], box.log_text()
        assert cloud.send({"cmd": "telemetry", "id": "after"})["ok"] is True
        assert len(cloud.acks_for("b-1")) == 1 and box.exits == [REBOOT_EXIT] and box.boots == 2, box.log_text()
        assert "Traceback" not in box.log_text(), box.log_text()
    finally:
        box.stop()
        cloud.close()
