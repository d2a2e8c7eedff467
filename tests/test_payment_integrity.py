"""Only authentic, never-seen, fresh payments are announced; everything else gets the right ack.

Two levels, both against a real mosquitto:

- the real firmware app (`Soundbox` on the simulator's HAL) in this process, so a test can
  hold its clock "untrusted", restart it, or take its payment key away;
- the whole stack as real processes (cloud handler, `soundbox sim`), reusing
  test_end_to_end's Stack, for spoofed, replayed, stale and malformed notifications and
  an offline backlog.

Forged and stale notifications are published straight onto the plain broker: on the
mutual-TLS broker only the cloud's identity may publish on sb/<id>/notify. Valid MACs
for them are computed here from the test PKI's keys (`Pki.payment_key`), exactly as the
cloud does.
"""

import asyncio
import json
import os
import threading
import time

import paho.mqtt.client as mqtt
import pytest

from soundbox import payment, voice
from soundbox import desk as payment_desk
from soundbox.ledger import Ledger
from soundbox.storage import FileStorage
from apprig import AppOnThread
from test_end_to_end import Stack, eventually, journal, plain_stack  # noqa: F401 (a fixture)


def wall_ms():
    return time.time_ns() // 1000000


# ---- a cloud stand-in that can sign, forge and replay ------------------------------

class Desk:
    """A paho client on the plain broker: publishes raw notifications, collects acks."""

    def __init__(self, broker):
        self.acks = []
        self.notified = []  # every sb/+/notify payload seen (the cloud's real ones too)
        self.lock = threading.Lock()
        subscribed = threading.Event()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        c.on_message = self._on_message
        c.on_subscribe = lambda *a: subscribed.set()
        c.connect(broker.host, broker.port)
        c.loop_start()
        c.subscribe([("sb/+/ack", 1), ("sb/+/notify", 1)])
        assert subscribed.wait(5)
        self.client = c

    def _on_message(self, client, userdata, msg):
        with self.lock:
            if msg.topic.endswith("/ack"):
                self.acks.append(json.loads(msg.payload))
            else:
                self.notified.append((msg.topic, msg.payload))

    def publish(self, device, payload):
        if isinstance(payload, dict):
            payload = json.dumps(payload)
        self.client.publish("sb/%s/notify" % device, payload, qos=1).wait_for_publish(5)

    def ack(self, txn, timeout=15):
        """The first ack for txn (waits for it)."""
        found = eventually(lambda: self.acks_for(txn), timeout)
        assert found, "no ack for %s within %d s; acks: %s" % (txn, timeout, self.acks)
        return found[0]

    def acks_for(self, txn):
        with self.lock:
            return [a for a in self.acks if a["txn"] == txn]

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def signed(key, device, txn, amount, ts=None, provider=None):
    return payment.sign(key, device, txn, amount, wall_ms() if ts is None else ts, provider=provider)


# ---- the firmware app in this process ------------------------------------------------

class RecordingSink:
    def __init__(self):
        self.played = []  # (name, words)

    async def play(self, tokens, name=None):
        self.played.append((name, " ".join(tokens)))


class StuckSink(RecordingSink):
    """A speaker that starts every announcement and never finishes one."""

    async def play(self, tokens, name=None):
        self.played.append((name, " ".join(tokens)))
        await asyncio.Event().wait()


class GatedSink(RecordingSink):
    """A speaker that finishes nothing until the test opens its gate."""

    def __init__(self):
        super().__init__()
        self.gate = threading.Event()

    async def play(self, tokens, name=None):
        self.played.append((name, " ".join(tokens)))
        while not self.gate.is_set():
            await asyncio.sleep(0.02)


class Box(AppOnThread):
    """One real Soundbox app (sb-0001) on SimHal, on an event loop in a background thread."""

    def __init__(self, broker, state_dir, identity_dir, trusted=True, freshness_s=None, sink=None):
        config = {} if freshness_s is None else {"freshness_s": freshness_s}
        super().__init__(broker, state_dir, identity_dir, sink or RecordingSink(), trusted=trusted, **config)

    def played(self, name=None):
        """What the speaker said, health prompts ("clock not set") left out."""
        return [p for p in self.sink.played if p[0] not in voice.PROMPTS and (name is None or p[0] == name)]

    def prompts(self):
        return [p[0] for p in self.sink.played if p[0] in voice.PROMPTS]


@pytest.fixture
def desk(broker):
    d = Desk(broker)
    yield d
    d.close()


@pytest.fixture
def key(pki):
    return pki.payment_key("sb-0001")


def test_untrusted_clock_holds_verified_payments_across_a_restart_then_judges_them(
        broker, tmp_path, pki, key, desk):
    box = Box(broker, tmp_path / "state", pki.device_dir("sb-0001"), trusted=False, freshness_s=60)
    try:
        desk.publish("sb-0001", signed(key, "sb-0001", "H-FRESH", 25000))
        desk.publish("sb-0001", signed(key, "sb-0001", "H-OLD", 700, ts=wall_ms() - 3600000))
        forged = signed(key, "sb-0001", "H-FORGED", 100)
        forged["amount"] = 100000  # the amount changed after signing
        desk.publish("sb-0001", forged)
        # Verification needs no clock: the forgery is refused at once, the others wait.
        assert desk.ack("H-FORGED")["reason"] == "bad MAC"
        desk.publish("sb-0001", signed(key, "sb-0001", "H-FRESH", 25000))  # a resend while held
        assert desk.ack("H-FRESH")["status"] == "duplicate"
        assert eventually(lambda: len(box.app.desk.held) == 2, 5)
        assert box.prompts() == ["clock_not_set"]  # said once, not once per payment
    finally:
        box.stop()
    assert box.played() == []

    # Power cycle while the clock is still unset: the held payments come back from flash.
    box = Box(broker, tmp_path / "state", pki.device_dir("sb-0001"), trusted=False, freshness_s=60)
    try:
        assert [h[0] for h in box.app.desk.held.entries] == ["H-FRESH", "H-OLD"]
        time.sleep(1.5)
        assert box.played() == [] and len(desk.acks_for("H-OLD")) == 0
        box.clock.is_trusted = True  # NTP synced
        assert eventually(lambda: len(box.played()) == 2, 10), box.logs
        # The resend may be redelivered to the restarted box (QoS 1 is at least once): more
        # "duplicate" acks, but one announcement.
        statuses = [a["status"] for a in desk.acks_for("H-FRESH")]
        assert statuses[-1] == "announced" and set(statuses[:-1]) == {"duplicate"}, statuses
        stale = desk.ack("H-OLD")
        assert stale["status"] == "stale" and stale["play"] is None and "over the 60 s limit" in stale["reason"]
        # Judged in arrival order: the fresh one is announced, the old one only in the summary.
        summary = " ".join(voice.offline_summary_tokens(1, 700, "en-IN"))
        assert box.played() == [("H-FRESH", " ".join(voice.announcement_tokens(25000, "en-IN"))),
                                (payment_desk.SUMMARY_NAME, summary)]
        assert box.app.desk.held.entries == []
    finally:
        box.stop()
    assert json.loads((tmp_path / "state" / payment_desk.HELD_FILE).read_text()) == []


def test_the_provider_is_said_kept_across_a_restart_and_an_unknown_one_left_out(broker, tmp_path, pki, key, desk):
    box = Box(broker, tmp_path / "state", pki.device_dir("sb-0001"), trusted=False)
    try:
        desk.publish("sb-0001", signed(key, "sb-0001", "P-PHONEPE", 25000, provider="phonepe"))
        forged = dict(signed(key, "sb-0001", "P-FORGED", 100, provider="paytm"), provider="phonepe")
        desk.publish("sb-0001", forged)
        assert desk.ack("P-FORGED")["reason"] == "bad MAC"  # the provider is signed
        assert eventually(lambda: len(box.app.desk.held) == 1, 5)
    finally:
        box.stop()
    box = Box(broker, tmp_path / "state", pki.device_dir("sb-0001"), trusted=False)
    try:
        assert box.app.desk.held.entries[0][4] == "phonepe"  # held on flash with its provider
        box.clock.is_trusted = True
        assert eventually(lambda: len(box.played()) == 1, 10), box.logs
        said = " ".join(voice.announcement_tokens(25000, "en-IN", "phonepe"))
        assert box.played() == [("P-PHONEPE", said)] and "phone" in said
        # A provider id this box does not know: authentic, announced without the provider.
        desk.publish("sb-0001", signed(key, "sb-0001", "P-NEW", 500, provider="newpay"))
        assert desk.ack("P-NEW")["status"] == "announced"
        assert box.played("P-NEW") == [("P-NEW", " ".join(voice.announcement_tokens(500, "en-IN")))]
    finally:
        box.stop()


@pytest.mark.parametrize("down_s", [0, 3])
def test_payments_whose_words_a_restart_cut_short_are_said_or_summarised_after_it(
        broker, tmp_path, pki, key, desk, down_s):
    """Accepted (in the ledger, PUBACKed) but not said when the box went down: at the next
    start each is said if still fresh, else rolled into the offline summary; acked once."""
    box = Box(broker, tmp_path / "state", pki.device_dir("sb-0001"), freshness_s=2, sink=StuckSink())
    try:
        for txn, amount in (("U-1", 100), ("U-2", 250), ("U-3", 5000)):
            desk.publish("sb-0001", signed(key, "sb-0001", txn, amount))
        # U-1 is playing, U-2 and U-3 wait behind it; all three are accepted.
        assert eventually(lambda: len(box.app.desk.unsaid) == 3, 5), box.logs
        assert box.sink.played == [("U-1", " ".join(voice.announcement_tokens(100, "en-IN")))]
    finally:
        box.stop()  # mid-announcement: as a power cut would, it leaves them unsaid
    assert desk.acks == []
    time.sleep(down_s)  # with 3 s down they are older than the 2 s limit when the box is back

    box = Box(broker, tmp_path / "state", pki.device_dir("sb-0001"), freshness_s=2)
    try:
        assert eventually(lambda: len(box.app.desk.unsaid) == 0 and len(box.played()) >= 1, 10), (box.logs, box.app.desk.unsaid.entries, box.sink.played, desk.acks)
        for txn in ("U-1", "U-2", "U-3"):
            desk.ack(txn)
        time.sleep(0.5)
        statuses = {a["txn"]: a["status"] for a in desk.acks}
        assert len(desk.acks) == 3  # one ack each
        if down_s:
            assert statuses == {"U-1": "stale", "U-2": "stale", "U-3": "stale"}
            assert eventually(lambda: box.played(payment_desk.SUMMARY_NAME), 5)
            assert box.played() == [(payment_desk.SUMMARY_NAME, " ".join(voice.offline_summary_tokens(3, 5350, "en-IN")))]
        else:
            assert statuses == {"U-1": "announced", "U-2": "announced", "U-3": "announced"}
            assert [p[0] for p in box.played()] == ["U-1", "U-2", "U-3"]  # in order, each once
        desk.publish("sb-0001", signed(key, "sb-0001", "U-2", 250))  # the cloud resends one
        assert eventually(lambda: len(desk.acks_for("U-2")) == 2, 5)
        assert desk.acks_for("U-2")[1]["status"] == "duplicate"
    finally:
        box.stop()
    assert Ledger(FileStorage(str(tmp_path / "state"))).unsaid.entries == []  # nothing left to say on flash


def test_a_full_hold_acks_failed_and_records_nothing(broker, tmp_path, pki, key, desk, monkeypatch):
    monkeypatch.setattr(payment_desk, "HOLD_LIMIT", 2)
    box = Box(broker, tmp_path / "state", pki.device_dir("sb-0001"), trusted=False)
    try:
        for txn in ("F-1", "F-2", "F-3"):
            desk.publish("sb-0001", signed(key, "sb-0001", txn, 100))
        failed = desk.ack("F-3")
        assert failed["status"] == "failed" and "send again later" in failed["reason"]
        box.clock.is_trusted = True
        assert eventually(lambda: len(box.played()) == 2, 10)
        desk.publish("sb-0001", signed(key, "sb-0001", "F-3", 100))  # the cloud sends it again
        assert eventually(lambda: [a["status"] for a in desk.acks_for("F-3")] == ["failed", "announced"], 10)
    finally:
        box.stop()


def test_a_full_speaker_queue_takes_the_next_payment_only_when_there_is_room(broker, tmp_path, pki, key, desk,
                                                                             monkeypatch):
    monkeypatch.setattr(payment_desk, "QUEUE_LIMIT", 2)
    box = Box(broker, tmp_path / "state", pki.device_dir("sb-0001"), sink=GatedSink())
    txns = ["W-%d" % i for i in range(5)]
    try:
        for txn in txns:
            desk.publish("sb-0001", signed(key, "sb-0001", txn, 100))
        # W-0 is being said and W-1, W-2 wait: W-3 is not taken (not recorded, no PUBACK yet).
        assert eventually(lambda: len(box.app.desk.unsaid) == 3, 5), box.logs
        time.sleep(0.5)
        assert [e[0] for e in box.app.desk.unsaid.entries] == txns[:3] and "W-3" not in box.app.desk.ledger
        assert desk.acks == []
        box.sink.gate.set()
        for txn in txns:
            assert desk.ack(txn)["status"] == "announced"
    finally:
        box.stop()
    assert [p[0] for p in box.played()] == txns  # in arrival order, each once


@pytest.mark.parametrize("content", [b"{torn", b"7", json.dumps([["ok-1", 100, 5, 6], ["bad txn", 1, 5, 6],
                                                                   ["ok-2", 2.5, 5, 6], "x"]).encode()])
def test_a_damaged_hold_file_loses_only_what_is_unreadable(broker, tmp_path, pki, content):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / payment_desk.HELD_FILE).write_bytes(content)
    box = Box(broker, tmp_path / "state", pki.device_dir("sb-0001"), trusted=False)
    try:
        kept = [h[0] for h in box.app.desk.held.entries]
    finally:
        box.stop()
    if content.startswith(b"["):
        assert kept == ["ok-1"]
    else:
        assert kept == [] and any("held.json unreadable, its payments lost" in line for line in box.logs)


def test_without_its_payment_key_the_box_announces_nothing(broker, tmp_path, pki, key, desk):
    empty = tmp_path / "no-identity"
    empty.mkdir()
    box = Box(broker, tmp_path / "state", empty)
    try:
        desk.publish("sb-0001", signed(key, "sb-0001", "K-1", 100))
        assert desk.ack("K-1")["reason"] == "no payment key on the device"
    finally:
        box.stop()
    assert box.played(payment_desk.SUMMARY_NAME) == [] and not any(p[0] == "K-1" for p in box.played())
    assert any("no key at" in line for line in box.logs)


def test_a_mac_failure_logs_the_txn_but_no_key_material(broker, tmp_path, pki, key, desk):
    box = Box(broker, tmp_path / "state", pki.device_dir("sb-0001"))
    try:
        forged = signed(pki.payment_key("sb-0002"), "sb-0001", "M-1", 100)
        desk.publish("sb-0001", forged)
        assert desk.ack("M-1")["reason"] == "bad MAC"
    finally:
        box.stop()
    text = "\n".join(box.logs)
    assert "M-1" in text and "bad MAC" in text
    expected = payment.mac(key, "sb-0001", "M-1", 100, "INR", forged["ts"]).hex()
    for secret in (key.hex(), expected, forged["mac"]):
        assert secret not in text and secret.upper() not in text


# ---- the whole stack as real processes -----------------------------------------------

def played_txns(stack):
    return [j["txn"] for j in journal(stack.journal)]


def test_spoofed_notifications_are_refused_and_the_box_keeps_working(plain_stack, desk, pki):
    key, other = pki.payment_key("sb-0001"), pki.payment_key("sb-0002")
    garbage_mac = signed(key, "sb-0001", "S-1", 25000)
    garbage_mac["mac"] = "5a" * 32
    desk.publish("sb-0001", garbage_mac)
    desk.publish("sb-0001", signed(other, "sb-0001", "S-2", 25000))  # made with sb-0002's key
    # Genuinely signed for sb-0002, replayed onto sb-0001: the device id is in the MAC.
    desk.publish("sb-0001", signed(other, "sb-0002", "S-3", 25000))
    for txn in ("S-1", "S-2", "S-3"):
        ack = desk.ack(txn)
        assert (ack["status"], ack["reason"], ack["play"]) == ("invalid", "bad MAC", None), ack
    assert plain_stack.post("/payments", {"device": "sb-0001", "amount": 900, "txn": "S-OK"})[0] == 202
    assert plain_stack.acks("S-OK", 1)[0]["status"] == "announced"
    assert played_txns(plain_stack) == ["S-OK"]


def test_a_captured_notification_replayed_is_a_duplicate_also_after_a_restart(plain_stack, desk):
    assert plain_stack.post("/payments", {"device": "sb-0002", "amount": 4200, "txn": "R-1"})[0] == 202
    assert plain_stack.acks("R-1", 1)[0]["status"] == "announced"
    [(topic, captured)] = [n for n in desk.notified if b'"R-1"' in n[1]]
    desk.publish("sb-0002", captured)  # byte for byte what the cloud sent: the MAC is valid
    assert eventually(lambda: [a["status"] for a in desk.acks_for("R-1")] == ["announced", "duplicate"])
    plain_stack.stop_sim()
    plain_stack.start_sim()
    before = len(desk.acks_for("R-1"))  # QoS 1 may redeliver the first replay after the restart
    desk.publish("sb-0002", captured)
    assert eventually(lambda: len(desk.acks_for("R-1")) > before)
    statuses = [a["status"] for a in desk.acks_for("R-1")]
    assert statuses[0] == "announced" and set(statuses[1:]) == {"duplicate"}, statuses
    # Each repeat says how the box finished it (from the ledger on flash, also after the
    # restart): a cloud that lost the first ack settles the payment by it.
    assert [a.get("was") for a in desk.acks_for("R-1")] == [None] + ["announced"] * (len(statuses) - 1)
    assert played_txns(plain_stack) == ["R-1"]


def test_an_authentic_but_stale_payment_goes_to_the_summary_not_announced_alone(plain_stack, desk, pki):
    key = pki.payment_key("sb-0001")
    desk.publish("sb-0001", signed(key, "sb-0001", "O-1", 15050, ts=wall_ms() - 10 * 60 * 1000))
    ack = desk.ack("O-1")
    assert ack["status"] == "stale" and "over the 120 s limit" in ack["reason"], ack
    words = " ".join(voice.offline_summary_tokens(1, 15050, "en-IN"))
    assert eventually(lambda: [j["words"] for j in journal(plain_stack.journal)] == [words], 10), journal(plain_stack.journal)
    assert "O-1" not in played_txns(plain_stack)
    desk.publish("sb-0001", signed(key, "sb-0001", "O-1", 15050, ts=wall_ms()))  # fresh ts, same txn
    acks = eventually(lambda: len(desk.acks_for("O-1")) == 2 and desk.acks_for("O-1"))
    assert [(a["status"], a.get("was")) for a in acks] == [("stale", None), ("duplicate", "stale")], acks


def test_malformed_notifications_get_invalid_acks_with_the_reason(plain_stack, desk, pki):
    key = pki.payment_key("sb-0001")
    good = signed(key, "sb-0001", "X-0", 500)
    cases = [
        ("X-1", {k: v for k, v in signed(key, "sb-0001", "X-1", 500).items() if k != "mac"}, "missing field: mac"),
        ("X-2", dict(signed(key, "sb-0001", "X-2", 500), amount=500.0), "amount must be integer paise, not a float"),
        ("X-3", dict(signed(key, "sb-0001", "X-3", 500), currency="USD"), "unknown currency: USD"),
        ("X-4", dict(signed(key, "sb-0001", "X-4", 500), mac=good["mac"][:40]), "mac must be 64 hex digits"),
        ("X-5", dict(signed(key, "sb-0001", "X-5", 500), ts="yesterday"), "ts must be a positive integer"),
        ("X-6", {k: v for k, v in signed(key, "sb-0001", "X-6", 500).items() if k != "ts"}, "missing field: ts"),
    ]
    for txn, body, _ in cases:
        desk.publish("sb-0001", body)
    bombs = [("X-7", b'{"txn": "X-7", "amount": 5', "notification is not valid JSON"),
             ("X-8", b'{"txn": "X-8", "x": ' + b"[" * 1000 + b"]" * 1000 + b"}", "notification is 2021 bytes, over"),
             ("X-9", b'{"txn": "X-9", "amount": 5, "\xc3": 1}', "notification is not valid JSON")]
    for _, payload, _ in bombs:
        desk.publish("sb-0001", payload)
    desk.publish("sb-0001", b"[" * 1000 + b"]" * 1000)  # no txn to be read: acked without one
    for txn, _, reason in cases + bombs:
        ack = desk.ack(txn)
        assert ack["status"] == "invalid" and ack["reason"].startswith(reason), ack
    assert eventually(lambda: [a for a in desk.acks if a["txn"] is None])[0]["reason"].startswith("notification is 2000")
    desk.publish("sb-0001", good)
    assert desk.ack("X-0")["status"] == "announced"
    assert played_txns(plain_stack) == ["X-0"]


def test_an_offline_backlog_is_one_summary_with_stale_acks(broker, tmp_path, voice_pack, pki):
    stack = Stack(broker, tmp_path, voice_pack, devices=1, pki=pki, sim_args=["--freshness", "3"])
    try:
        stack.stop_sim()
        amounts = [25000, 1, 999950, 50]
        for i, amount in enumerate(amounts):
            assert stack.post("/payments",
                        {"device": "sb-0001", "amount": amount, "txn": "B-%d" % i})[0] == 202
        time.sleep(4)  # the box stays off until every one of them is older than --freshness 3
        stack.start_sim()
        for i in range(len(amounts)):
            ack = stack.acks("B-%d" % i, 1)[0]
            assert ack["status"] == "stale" and ack["play"] is None, ack
            assert stack.payment("B-%d" % i)["status"] == "stale"
        words = " ".join(voice.offline_summary_tokens(len(amounts), sum(amounts), "en-IN"))
        assert eventually(lambda: journal(stack.journal), 10)
        time.sleep(3)  # past the debounce: a second summary would have come by now
        assert [(j["txn"], j["words"]) for j in journal(stack.journal)] == [(payment_desk.SUMMARY_NAME, words)]
        stats = stack.get("/stats")[1]
        assert (stats["stale"], stats["announced"], stats["pending"]) == (4, 0, 0)
        # Life goes on: the next payment is announced on its own.
        assert stack.post("/payments", {"device": "sb-0001", "amount": 100, "txn": "B-new"})[0] == 202
        assert stack.acks("B-new", 1)[0]["status"] == "announced"
    finally:
        stack.close()


def test_sim_rejects_a_bad_freshness_in_one_line(broker, tmp_path, pki):
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "soundbox_tools.cli", "sim", "--broker", broker.url,
                        "--freshness", "0", "--certs", pki.root, "--state", str(tmp_path / "s")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "Traceback" not in r.stderr and "--freshness" in r.stderr
    assert not os.path.exists(tmp_path / "s")
