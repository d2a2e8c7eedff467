"""The box's voice UX with real parts: the firmware app in this process on the simulator's
HAL, a real mosquitto, notifications signed with the test PKI's keys.

Queue merging, commands on sb/<id>/cmd (volume, language, replay) and their persistence,
the replay / today / volume keys, health prompts, the cloud's command endpoint, and the
time from receiving a notification to the start of its audio over a small in-process fleet.
"""

import json
import statistics
import threading

import paho.mqtt.client as mqtt
import pytest

from soundbox import voice, voice_tokens
from soundbox import desk as payment_desk
from soundbox_fw import app as firmware
from soundbox_fw import stored
from soundbox_sim.audio import TimingSink
from cloudapi import RunningCloud
from apprig import AppOnThread
from test_end_to_end import eventually
from test_payment_integrity import Desk, desk, signed, wall_ms  # noqa: F401 (desk: a fixture)

CLIP_MS = 40  # every clip lasts this long: an announcement takes a few hundred ms


def every_clip(ms=CLIP_MS):
    """A voice-pack index (as TimingSink takes it) with every token of every language."""
    clips = {}
    for lang in voice.LANGUAGES:
        for token in voice_tokens.tokens(lang):
            clips[token] = {"ms": ms}
    return {"lang": "all", "clips": clips}


class RecordingSink(TimingSink):
    """The simulator's timing sink (so set_volume is the real one), noting what it said."""

    def __init__(self, ms=CLIP_MS):
        super().__init__(every_clip(ms))
        self.played = []  # (name, words), as each starts
        self.finished = []  # names, as each ends

    async def play(self, tokens, name=None):
        self.played.append((name, " ".join(tokens)))
        await super().play(tokens, name)
        self.finished.append(name)


class Box(AppOnThread):
    """The app with a speaker that records what it said."""

    def __init__(self, broker, state_dir, pki, device="sb-0001", ms=CLIP_MS):
        super().__init__(broker, state_dir, pki.device_dir(device), RecordingSink(ms), device)

    def press(self, name):
        self.loop.call_soon_threadsafe(self.hal.buttons.press, name)

    def said(self, name=None):
        return [p for p in self.sink.played if name is None or p[0] == name]


class Console:
    """Sends commands to sb/<id>/cmd and collects the devices' cmdacks."""

    def __init__(self, broker):
        self.answers = []
        subscribed = threading.Event()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        c.on_message = lambda client, userdata, msg: self.answers.append((msg.topic, json.loads(msg.payload)))
        c.on_subscribe = lambda *a: subscribed.set()
        c.connect(broker.host, broker.port)
        c.loop_start()
        c.subscribe([("sb/+/cmdack", 1)])
        assert subscribed.wait(5)
        self.client = c

    def send(self, device, command, timeout=10):
        """Publish one command and return the device's answer to it."""
        before = len(self.answers)
        payload = command if isinstance(command, (bytes, str)) else json.dumps(command)
        self.client.publish("sb/%s/cmd" % device, payload, qos=1).wait_for_publish(5)
        assert eventually(lambda: len(self.answers) > before, timeout), "no cmdack from %s" % device
        topic, answer = self.answers[before]
        assert topic == "sb/%s/cmdack" % device
        return answer

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def console(broker):
    c = Console(broker)
    yield c
    c.close()


def announced_once(desk, txns, timeout=20):
    assert eventually(lambda: all(desk.acks_for(t) for t in txns), timeout), desk.acks
    acks = {}
    for t in txns:
        found = desk.acks_for(t)
        assert len(found) == 1 and found[0]["status"] == "announced", found
        acks[t] = found[0]
    return acks


# ---- 1. queue policy ---------------------------------------------------------------

def test_a_burst_is_merged_and_every_payment_acked_announced_once(broker, tmp_path, pki, desk):
    key = pki.payment_key("sb-0001")
    box = Box(broker, tmp_path / "state", pki)
    amounts = [100, 25000, 50, 999950, 1, 700, 12345, 20000]
    txns = ["Q-%d" % i for i in range(len(amounts))]
    try:
        for txn, amount in zip(txns, amounts):
            desk.publish("sb-0001", signed(key, "sb-0001", txn, amount))
        acks = announced_once(desk, txns)
    finally:
        box.stop()
    said = box.said()
    assert len(said) < len(amounts), said
    merged = [(name, words) for name, words in said if name.startswith(payment_desk.MERGED_NAME + " ")]
    assert merged, said
    by_txn = dict(zip(txns, amounts))
    heard = []
    for name, words in said:
        group = name.split(" ")[1:] if name.startswith(payment_desk.MERGED_NAME + " ") else [name]
        heard.extend(group)
        if len(group) == 1:
            assert words == " ".join(voice.announcement_tokens(by_txn[group[0]]))
            assert acks[group[0]]["reason"] == ""
            continue
        assert len(group) > payment_desk.MERGE_ABOVE
        total = sum(by_txn[t] for t in group)
        assert words == " ".join(voice.merged_tokens(len(group), total)), (words, total)
        first = acks[group[0]]
        for t in group:  # one announcement: the same play and done times, and why
            assert (acks[t]["play"], acks[t]["done"]) == (first["play"], first["done"])
            assert acks[t]["reason"] == "merged with %d others" % (len(group) - 1)
    assert heard == txns  # arrival order, each payment said once


def test_few_waiting_payments_are_said_one_by_one(broker, tmp_path, pki, desk):
    key = pki.payment_key("sb-0001")
    box = Box(broker, tmp_path / "state", pki)
    try:
        for i in range(3):
            desk.publish("sb-0001", signed(key, "sb-0001", "S-%d" % i, 100 * (i + 1)))
        announced_once(desk, ["S-0", "S-1", "S-2"])
    finally:
        box.stop()
    assert [name for name, _ in box.said()] == ["S-0", "S-1", "S-2"]


# ---- 2./3. commands, volume, language ------------------------------------------------

def test_volume_command_and_keys_persist_and_say_the_ends(broker, tmp_path, pki, console):
    box = Box(broker, tmp_path / "state", pki)
    try:
        assert box.sink.volume == stored.DEFAULT_VOLUME  # applied at start
        assert console.send("sb-0001", {"cmd": "volume", "level": 5}) == {"id": None, "cmd": "volume", "ok": True,
                                                                            "reason": ""}
        assert box.sink.volume == 5
        assert eventually(lambda: box.said("volume_max") == [("volume_max", "maximum volume")])
        box.press("volume_up")  # already at the top: says it again, stays 5
        assert eventually(lambda: len(box.said("volume_max")) == 2)
        for bad in (0, 6, True, 2.0, "3", None):
            answer = console.send("sb-0001", {"cmd": "volume", "level": bad})
            assert answer["ok"] is False and "level must be an integer 1-5" in answer["reason"], answer
        assert box.sink.volume == 5
        box.press("volume_down")
        assert eventually(lambda: box.sink.volume == 4)
    finally:
        box.stop()
    box = Box(broker, tmp_path / "state", pki)  # power cycle: the level is on flash
    try:
        assert box.sink.volume == 4
        for _ in range(3):
            box.press("volume_down")
        assert eventually(lambda: box.said("volume_min") == [("volume_min", "minimum volume")])
        assert box.sink.volume == 1 and box.said("volume_max") == []
    finally:
        box.stop()


def test_language_command_is_persisted_and_unknown_ones_refused(broker, tmp_path, pki, console, desk):
    key = pki.payment_key("sb-0001")
    box = Box(broker, tmp_path / "state", pki)
    try:
        answer = console.send("sb-0001", {"cmd": "language", "lang": "xx"})
        assert answer["ok"] is False and answer["reason"].startswith("lang must be one of "), answer
        assert console.send("sb-0001", {"cmd": "language", "lang": "hi"})["ok"] is True
    finally:
        box.stop()
    box = Box(broker, tmp_path / "state", pki)
    try:
        desk.publish("sb-0001", signed(key, "sb-0001", "L-1", 25000))
        announced_once(desk, ["L-1"])
        assert box.said("L-1") == [("L-1", "दो सौ पचास रुपये प्राप्त हुए")]
        for bad, reason in ((b"{torn", "command must be a JSON object"), ({"cmd": "selfdestruct"}, "cmd must be one of "),
                            ({"lang": "hi"}, "missing field 'cmd'")):
            answer = console.send("sb-0001", bad)
            assert answer["ok"] is False and answer["reason"].startswith(reason), answer
        assert box.app.lang == "hi"
    finally:
        box.stop()


# ---- 4. replay and today -------------------------------------------------------------

def test_replay_says_only_announced_payments_and_long_press_says_today(broker, tmp_path, pki, console, desk):
    key = pki.payment_key("sb-0001")
    box = Box(broker, tmp_path / "state", pki)
    try:
        box.press("replay")
        box.press("today")
        assert eventually(lambda: box.said("today") == [("today", "no payments today")])
        assert box.said("replay") == []  # nothing announced yet
        assert console.send("sb-0001", {"cmd": "replay"}) == {"id": None, "cmd": "replay", "ok": False,
                                                               "reason": "nothing announced yet"}
        desk.publish("sb-0001", signed(key, "sb-0001", "P-1", 25000))
        announced_once(desk, ["P-1"])
        forged = signed(key, "sb-0001", "P-2", 100)
        forged["amount"] = 900000
        desk.publish("sb-0001", forged)
        assert desk.ack("P-2")["status"] == "invalid"
        box.press("replay")
        local = (desk.ack("P-1")["rx"] // 60000 + 330) % 1440  # received at, India time, in minutes
        words = " ".join(voice.replay_tokens(1, 25000, local // 60, local % 60))
        assert words.startswith("received two hundred fifty rupees at ")
        assert eventually(lambda: box.said("replay") == [("replay", words)])
        # One replay at most waits or plays: the next is taken once this one has been said.
        assert eventually(lambda: "replay" in box.sink.finished)
        assert console.send("sb-0001", {"cmd": "replay"})["ok"] is True
        assert eventually(lambda: len(box.said("replay")) == 2)
        desk.publish("sb-0001", signed(key, "sb-0001", "P-3", 150))
        announced_once(desk, ["P-3"])
        # A payment from an earlier day (stale) is not today's.
        desk.publish("sb-0001", signed(key, "sb-0001", "P-old", 5000, ts=wall_ms() - 2 * 86400000))
        assert desk.ack("P-old")["status"] == "stale"
    finally:
        box.stop()
    box = Box(broker, tmp_path / "state", pki)  # today's tally survives a restart
    try:
        box.press("today")
        words = " ".join(voice.today_tokens(2, 25150))
        assert eventually(lambda: box.said("today") == [("today", words)]), box.said()
        assert words == "today two payments received total two hundred fifty one rupees and fifty paise"
    finally:
        box.stop()


# ---- 5. health prompts -----------------------------------------------------------------

def test_plugging_in_the_charger_is_said_and_no_network_wins_over_server_unreachable(
        broker, tmp_path, pki, monkeypatch):
    monkeypatch.setattr(firmware, "HEALTH_POLL_S", 0.1)
    monkeypatch.setattr(firmware, "UNREACHABLE_MS", 500)
    box = Box(broker, tmp_path / "state", pki)
    try:
        box.hal.battery.level = 10
        assert eventually(lambda: box.said("low_battery"), 5)
        box.hal.battery.plugged = True  # on mains now: "charging", and low battery is not nagged
        assert eventually(lambda: box.said("charging") == [("charging", "charging")], 5)
        box.hal.network_up = lambda: False  # the WiFi is gone, so the broker is unreachable too
        broker.stop()
        assert eventually(lambda: box.said("no_network"), 10), box.logs
        assert not box.said("server_unreachable")
        broker.start()
        assert eventually(lambda: box.app.mqtt.connected, 20), box.logs
    finally:
        box.stop()


def test_the_chargers_edge_and_a_lost_link_wake_the_health_checks_between_slow_polls(
        broker, tmp_path, pki, monkeypatch):
    """With the battery polled once an hour, plugging in is still said at once (the HAL's
    `battery.changed`, set by the charge pin's interrupt on the ESP32) and a lost link is
    said UNREACHABLE_MS after it went down (the disconnect wakes the checks)."""
    import asyncio
    from soundbox_sim.hal import SimBattery
    monkeypatch.setattr(firmware, "HEALTH_POLL_S", 3600)
    monkeypatch.setattr(firmware, "UNREACHABLE_MS", 1000)
    monkeypatch.setattr(SimBattery, "changed", asyncio.Event(), raising=False)
    box = Box(broker, tmp_path / "state", pki)
    try:
        assert eventually(lambda: box.app.mqtt.connected, 10), box.logs
        edge = SimBattery.changed
        seen = threading.Event()  # set once the edge is in: the health checks clear it when they look
        box.loop.call_soon_threadsafe(lambda: (edge.set(), seen.set()))  # while unplugged: nothing to say
        assert seen.wait(5) and eventually(lambda: not edge.is_set(), 5)
        box.hal.battery.plugged = True
        assert not box.said("charging")  # no poll for an hour: only the edge can tell
        box.loop.call_soon_threadsafe(edge.set)
        assert eventually(lambda: box.said("charging") == [("charging", "charging")], 5), box.said()
        broker.stop()
        assert eventually(lambda: not box.app.mqtt.connected, 10)
        assert eventually(lambda: box.said("server_unreachable"), 10), box.logs
        broker.start()
        assert eventually(lambda: box.app.mqtt.connected, 20), box.logs
    finally:
        box.stop()


def test_server_unreachable_and_low_battery_are_said_once(broker, tmp_path, pki, monkeypatch):
    monkeypatch.setattr(firmware, "HEALTH_POLL_S", 0.1)
    monkeypatch.setattr(firmware, "UNREACHABLE_MS", 1000)
    box = Box(broker, tmp_path / "state", pki)
    try:
        box.hal.battery.level = 14
        assert eventually(lambda: box.said("low_battery"), 5)
        broker.stop()
        assert eventually(lambda: not box.app.mqtt.connected, 10)
        assert not box.said("server_unreachable")  # not for a short blip
        assert eventually(lambda: box.said("server_unreachable"), 10), box.logs
        broker.start()
        assert eventually(lambda: box.app.mqtt.connected, 20), box.logs
        import time
        time.sleep(0.5)  # several more health checks: rate-limited, not said again
        assert [p[0] for p in box.said() if p[0] in voice.PROMPTS] == ["low_battery", "server_unreachable"]
        assert box.said("low_battery") == [("low_battery", "low battery")]
    finally:
        box.stop()


# ---- 2. the cloud's command endpoint ----------------------------------------------------

def test_cloud_command_endpoint_publishes_and_refuses_bad_input(broker, tmp_path, pki, console):
    cloud = RunningCloud(broker.url, str(tmp_path / "cloud.db"), str(pki.root))
    box = Box(broker, tmp_path / "state", pki)
    try:
        assert eventually(lambda: any(d["id"] == "sb-0001" for d in cloud.get("/devices")[1]), 10), \
            cloud.get("/devices")
        status, body = cloud.post("/devices/sb-0001/commands", {"cmd": "volume", "level": 1})
        assert status == 202 and body["id"].startswith("c-"), body
        assert body == {"id": body["id"], "device": "sb-0001", "status": "sent",
                        "command": {"cmd": "volume", "level": 1, "id": body["id"]}}
        assert eventually(lambda: box.sink.volume == 1)
        assert eventually(lambda: console.answers and console.answers[-1][1]["ok"] is True)
        assert console.answers[-1][1]["id"] == body["id"]  # the box's ack names the command
        answers = len(console.answers)
        for path, cmd, code, field in (
                ("/devices/sb-0001/commands", {"cmd": "volume", "level": 7}, 400, "level"),
                ("/devices/sb-0001/commands", {"cmd": "volume", "level": True}, 400, "level"),
                ("/devices/sb-0001/commands", {"cmd": "language", "lang": "fr"}, 400, "lang"),
                ("/devices/sb-0001/commands", {"cmd": "config"}, 400, "cmd"),
                ("/devices/sb-0001/commands", {}, 400, "cmd"),
                ("/devices/sb-0001/commands", [1], 400, "body"),
                ("/devices/SB_1/commands", {"cmd": "replay"}, 400, "device"),
                ("/devices/sb-0099/commands", {"cmd": "replay"}, 404, "device")):
            status, body = cloud.post(path, cmd)
            assert status == code and body["field"] == field and body["error"], (cmd, status, body)
        assert cloud("POST", "/devices/sb-0001/commands", {"cmd": "replay"}, key="not-a-key")[0] == 401
        status, body = cloud.get("/devices/sb-0001/commands")
        assert status == 405
        status, body = cloud.post("/devices/sb-0001/commands", {"cmd": "language", "lang": "mr"})
        assert status == 202, body
        assert eventually(lambda: box.app.lang == "mr")
        # Only the good command reached the box: the refused ones were never published, so
        # the next answer (which may trail the language switch a little) is the language one.
        assert eventually(lambda: len(console.answers) >= answers + 1)
        assert [(a[1]["cmd"], a[1]["id"]) for a in console.answers[answers:]] == [("language", body["id"])]
        status, record = cloud.get("/devices/sb-0001/commands/" + body["id"])
        assert eventually(lambda: cloud.get("/devices/sb-0001/commands/" + body["id"])[1]["status"] == "ok"), record
    finally:
        box.stop()
        cloud.close()


# ---- 6. time to first audio over an in-process fleet --------------------------------------

def test_time_to_first_audio_over_an_in_process_fleet(broker, tmp_path, pki, desk):
    ids = ["sb-%04d" % n for n in range(1, 5)]
    boxes = [Box(broker, tmp_path / d, pki, device=d, ms=5) for d in ids]
    txns = []
    try:
        for i in range(40):
            device = ids[i % len(ids)]
            txn = "T-%02d" % i
            desk.publish(device, signed(pki.payment_key(device), device, txn, 100 + i))
            txns.append(txn)
            if i % len(ids) == len(ids) - 1:
                import time
                time.sleep(0.15)  # each box has said the last one before the next arrives
        acks = announced_once(desk, txns, timeout=30)
    finally:
        for box in boxes:
            box.stop()
    waits = sorted(a["play"] - a["rx"] for a in acks.values())
    p50 = statistics.median(waits)
    p99 = waits[max(0, -(-99 * len(waits) // 100) - 1)]
    print("\n[voice-ux] time to first audio (notify received -> audio starts), %d payments on %d boxes: "
          "p50 %d ms, p99 %d ms" % (len(waits), len(ids), p50, p99))
    assert all(w >= 0 for w in waits)
    assert p50 < 50 and p99 < 500, waits
