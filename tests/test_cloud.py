"""The reference cloud handler against a real mosquitto, real SQLite files and real HTTP.

The "device" here is a plain paho client that publishes what the wire contract says a
soundbox publishes. The end-to-end test with the real simulated firmware lives elsewhere.
"""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from soundbox import payment as payment_rule  # not `payment`: the helper below
from soundbox_cloud.cloud import Cloud
from soundbox_cloud.client import PayError, pay
from soundbox_cloud.errors import BrokerUnavailable
from soundbox_cloud.mqttlink import now_ms
from soundbox_cloud.percentiles import nearest_rank
from soundbox_tools import procs

from cloudapi import RunningCloud, make_key, request
from test_webhooks import Receiver

DEVICE = "sb-0001"
OTHER_DEVICE = "sb-0002"


def wait_until(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met within %.1f s" % timeout)


class FakeDevice:
    """A paho client standing in for a soundbox: reports status, watches every notify, sends acks."""

    def __init__(self, broker, device_id):
        self.id = device_id
        self.notifications = []   # (topic, decoded JSON) for every sb/+/notify seen
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device_id)
        self.client.on_message = lambda client, userdata, msg: self.notifications.append(
            (msg.topic, json.loads(msg.payload)))
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.client.subscribe("sb/+/notify", qos=1)
        assert subscribed.wait(5)

    def publish(self, kind, message, retain=False):
        payload = message if isinstance(message, bytes) else json.dumps(message)
        self.client.publish("sb/%s/%s" % (self.id, kind), payload, qos=1, retain=retain).wait_for_publish(5)

    def ack(self, txn, status, play_delay_ms=40):
        rx = now_ms()
        announced = status == "announced"
        self.publish("ack", {"txn": txn, "status": status, "reason": "" if announced else "seen before",
                             "rx": rx, "play": rx + play_delay_ms if announced else None,
                             "done": rx + 900 if announced else None})

    def close(self):
        self.client.disconnect()   # wakes paho's loop, so loop_stop returns at once
        self.client.loop_stop()


@pytest.fixture
def cloud(broker, db, pki):
    """The cloud on each engine (the `db` fixture: SQLite, PostgreSQL)."""
    running = RunningCloud(broker.url, db, pki.root)
    yield running
    running.close()


@pytest.fixture
def device(broker, cloud):
    """sb-0001, registered with the cloud through its retained online status."""
    dev = FakeDevice(broker, DEVICE)
    dev.publish("status", {"state": "online", "fw": "0.1.0"}, retain=True)
    wait_until(lambda: cloud.get("/devices")[1])
    yield dev
    dev.close()


def payment(txn="txn-1", amount=25000, device=DEVICE, provider=None):
    body = {"device": device, "amount": amount, "txn": txn}
    if provider is not None:
        body["provider"] = provider
    return body


def test_valid_payment_is_published_once_with_the_contract_json(cloud, device, pki):
    before = now_ms()
    status, body = cloud.post_payment(payment("txn-1", 25000))
    after = now_ms()
    assert (status, body) == (202, {"txn": "txn-1", "device": DEVICE, "amount": 25000,
                                    "status": "sent", "sends": 1})
    wait_until(lambda: device.notifications)
    time.sleep(0.3)   # room for a stray second copy to show up
    assert len(device.notifications) == 1
    topic, note = device.notifications[0]
    assert topic == "sb/sb-0001/notify"
    assert set(note) == {"txn", "amount", "currency", "ts", "mac"}
    assert (note["txn"], note["amount"], note["currency"]) == ("txn-1", 25000, "INR")
    assert before <= note["ts"] <= after
    # Signed with the key the PKI put into sb-0001's bundle, over sb-0001's id.
    parsed = payment_rule.parse_notification(json.dumps(note).encode())
    assert payment_rule.authentic(parsed, pki.payment_key(DEVICE), DEVICE)
    assert not payment_rule.authentic(parsed, pki.payment_key(OTHER_DEVICE), DEVICE)
    status, record = cloud.get("/payments/txn-1")
    assert status == 200
    assert (record["status"], record["sent_ms"], record["acks"]) == ("sent", note["ts"], [])


def test_a_payment_names_its_provider_signed_and_kept(cloud, device, pki):
    status, body = cloud.post_payment(payment("txn-pp", 25000, provider="phonepe"))
    assert (status, body["provider"]) == (202, "phonepe")
    wait_until(lambda: device.notifications)
    _, note = device.notifications[0]
    assert note["provider"] == "phonepe"
    parsed = payment_rule.parse_notification(json.dumps(note).encode())
    assert parsed.provider == "phonepe" and payment_rule.authentic(parsed, pki.payment_key(DEVICE), DEVICE)
    assert cloud.get("/payments/txn-pp")[1]["provider"] == "phonepe"
    # The same txn again with another provider (or none) is a clash, not a second payment.
    for other in ("paytm", None):
        status, body = cloud.post_payment(payment("txn-pp", 25000, provider=other))
        assert (status, body["field"]) == (409, "provider") and "with provider phonepe" in body["error"]
    assert cloud.post_payment(payment("txn-pp", 25000, provider="phonepe"))[1]["sends"] == 2


def test_handler_sockets_have_nagle_off(cloud):
    for connection in (cloud.cloud.link.main, cloud.cloud.link.bulk):
        assert connection.client.socket().getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


BAD_PAYMENTS = [
    # (what, raw body, status, field, words the reason must contain)
    ("not JSON", b"{not json", 400, "body", "not valid JSON"),
    ("not UTF-8", b'\xff\xfe{"a"', 400, "body", "not valid JSON"),
    ("JSON array", b"[1, 2]", 400, "body", "JSON object"),
    ("deeply nested", b"[" * 15000, 400, "body", "not valid JSON"),
    ("5000-digit amount", b'{"device":"sb-0001","txn":"t","amount":' + b"9" * 5000 + b"}",
     400, "body", "not valid JSON"),
    ("missing device", {"amount": 100, "txn": "t"}, 400, "device", "missing field 'device'"),
    ("missing amount", {"device": DEVICE, "txn": "t"}, 400, "amount", "missing field 'amount'"),
    ("missing txn", {"device": DEVICE, "amount": 100}, 400, "txn", "missing field 'txn'"),
    ("amount as string", payment(amount="250"), 400, "amount", "integer number of paise"),
    ("amount float", payment(amount=250.0), 400, "amount", "not a float"),
    ("amount bool", payment(amount=True), 400, "amount", "not a boolean"),
    ("amount NaN", b'{"device":"sb-0001","txn":"t","amount":NaN}', 400, "amount", "not a float"),
    ("amount null", payment(amount=None), 400, "amount", "integer number of paise"),
    ("amount zero", payment(amount=0), 422, "amount", "at least 1 paisa"),
    ("amount negative", payment(amount=-500), 422, "amount", "at least 1 paisa"),
    ("amount too big", payment(amount=99_999_999_999 + 1), 422, "amount", "at most 99999999999"),
    ("txn empty", payment(txn=""), 400, "txn", "1-64 printable ASCII"),
    ("txn with space", payment(txn="txn 1"), 400, "txn", "1-64 printable ASCII"),
    ("txn too long", payment(txn="t" * 65), 400, "txn", "1-64 printable ASCII"),
    ("txn not ASCII", payment(txn="₹250"), 400, "txn", "1-64 printable ASCII"),
    ("txn control char", payment(txn="t\n1"), 400, "txn", "1-64 printable ASCII"),
    ("txn a number", payment(txn=123), 400, "txn", "1-64 printable ASCII"),
    ("device uppercase", payment(device="SB-0001"), 400, "device", "must match"),
    ("device leading dash", payment(device="-sb1"), 400, "device", "must match"),
    ("device too long", payment(device="s" * 33), 400, "device", "must match"),
    ("device wildcard", payment(device="sb/+"), 400, "device", "must match"),
    ("device a number", payment(device=1), 400, "device", "must match"),
    ("unknown device", payment(device="sb-9999"), 404, "device", "unknown device sb-9999"),
    ("oversized body", b'{"pad":"' + b"x" * (16 * 1024) + b'"}', 413, "body", "larger than"),
    ("unknown provider", payment(provider="amazonpay"), 422, "provider", "unknown provider 'amazonpay'; known: bhim"),
    ("provider uppercase", payment(provider="PhonePe"), 422, "provider", "unknown provider"),
    ("provider a number", payment(provider=7), 422, "provider", "unknown provider 7"),
]


@pytest.mark.parametrize("what,body,status,field,reason", BAD_PAYMENTS, ids=[c[0] for c in BAD_PAYMENTS])
def test_bad_payment_gets_a_reason_and_publishes_nothing(cloud, device, capfd, what, body, status, field,
                                                         reason):
    got_status, got = cloud.post_payment(body)
    assert got_status == status
    assert set(got) == {"error", "field"} and got["field"] == field
    assert reason in got["error"]
    # A valid payment afterwards travels the same connection, so once it arrives anything the bad
    # request had published would already be in front of it.
    assert cloud.post_payment(payment("sentinel"))[0] == 202
    wait_until(lambda: device.notifications)
    assert [note["txn"] for _, note in device.notifications] == ["sentinel"]
    assert "Traceback" not in "".join(capfd.readouterr())


def test_same_txn_is_republished_and_a_clash_is_refused(broker, cloud, device):
    other = FakeDevice(broker, OTHER_DEVICE)
    other.publish("status", {"state": "online", "fw": "0.1.0"}, retain=True)
    wait_until(lambda: len(cloud.get("/devices")[1]) == 2)
    assert cloud.post_payment(payment("txn-7", 500))[1]["sends"] == 1
    status, body = cloud.post_payment(payment("txn-7", 500))
    assert (status, body["sends"]) == (202, 2)   # the device dedups it and acks "duplicate"
    status, body = cloud.post_payment(payment("txn-7", 501))
    assert (status, body["field"]) == (409, "txn") and "already sent to sb-0001 for 500 paise" in body["error"]
    status, body = cloud.post_payment(payment("txn-7", 500, device=OTHER_DEVICE))
    assert (status, body["field"]) == (409, "txn")
    assert cloud.post_payment(payment("sentinel"))[0] == 202
    wait_until(lambda: len(device.notifications) == 3)
    assert [(topic, note["txn"], note["amount"]) for topic, note in device.notifications] == [
        ("sb/sb-0001/notify", "txn-7", 500), ("sb/sb-0001/notify", "txn-7", 500),
        ("sb/sb-0001/notify", "sentinel", 25000)]
    assert cloud.get("/payments/txn-7")[1]["sends"] == 2
    other.close()


def test_concurrent_posts_of_one_txn_count_every_send(cloud, device):
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: cloud.post_payment(payment("txn-c", 900)), range(8)))
    assert sorted(body["sends"] for status, body in answers if status == 202) == list(range(1, 9))
    wait_until(lambda: len(device.notifications) == 8)
    assert cloud.get("/payments/txn-c")[1]["sends"] == 8


def test_http_round_trip_is_not_held_by_nagle(cloud, device):
    # With Nagle on, each answer waited for the client's delayed ACK: 44 ms a request on loopback.
    url = urlsplit(cloud.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
    took = []
    for i in range(21):
        started = time.perf_counter()
        conn.request("POST", "/payments", json.dumps(payment("txn-n%d" % i)).encode(),
                     headers={"Authorization": "Bearer " + cloud.key})
        response = conn.getresponse()
        response.read()
        took.append(time.perf_counter() - started)
        assert response.status == 202
    conn.close()
    assert sorted(took)[10] < 0.020


def test_payment_is_refused_while_the_broker_is_down(broker, cloud, device):
    broker.stop()
    wait_until(lambda: cloud.get("/ready")[0] == 503)
    assert cloud.get("/health") == (200, {"ok": False, "broker": "disconnected"})   # alive, not ready
    status, body = cloud.post_payment(payment("txn-down"))
    assert (status, body["field"]) == (503, "broker") and "retry the same txn" in body["error"]
    assert cloud.get("/payments/txn-down")[0] == 404


def test_acks_update_the_payment_and_stats(cloud, device):
    for txn in ("paid", "refused", "waiting"):
        assert cloud.post_payment(payment(txn, 1000))[0] == 202
    wait_until(lambda: len(device.notifications) == 3)
    device.ack("paid", "announced", play_delay_ms=40)
    device.ack("refused", "invalid")
    status, paid = wait_until(lambda: (lambda r: r if r[1]["status"] == "announced" else None)(
        cloud.get("/payments/paid")))
    assert status == 200
    [ack] = paid["acks"]
    assert ack["status"] == "announced" and ack["play"] == ack["rx"] + 40
    assert paid["latency_ms"] == {"notify_to_receive": ack["rx"] - paid["sent_ms"],
                                  "notify_to_announce": ack["play"] - paid["sent_ms"],
                                  "notify_to_ack": ack["received_ms"] - paid["sent_ms"]}
    wait_until(lambda: cloud.get("/payments/refused")[1]["status"] == "invalid")
    stats = cloud.get("/stats")[1]
    latency = stats.pop("latency_ms")
    chunks = stats.pop("ota_chunks")   # the OTA chunk server's counters: nothing asked here
    assert stats.pop("webhooks") == {"pending": 0, "delivered": 0, "dead": 0, "attempts": 0}   # none set
    assert stats.pop("device_messages_dropped") == {"malformed": 0, "telemetry_over_limit": 0}
    assert stats == {"sent": 3, "announced": 1, "acked": 2, "invalid": 1, "stale": 0, "duplicate_acks": 0,
                     "duplicated": 0, "pending": 1, "unknown_acks": 0, "excess_acks": 0,
                     "resends": 0, "resends_given_up": 0, "timed_out": 0}
    assert chunks == {"rate": 1 << 20, "burst": 4 << 20, "chunks_sent": 0, "bytes_sent": 0, "throttled_requests": 0,
                      "throttled_chunks": 0, "notices_sent": 0, "devices_limited": 0}
    assert latency["notify_to_announce"]["n"] == 1
    assert latency["notify_to_announce"]["p50"] == paid["latency_ms"]["notify_to_announce"]
    assert latency["notify_to_ack"]["n"] == 2


def test_duplicate_ack_does_not_overwrite_announced(cloud, device):
    cloud.post_payment(payment("txn-d", 700))
    wait_until(lambda: device.notifications)
    device.ack("txn-d", "announced")
    device.ack("txn-d", "duplicate")
    record = wait_until(lambda: (lambda r: r if len(r["acks"]) == 2 else None)(cloud.get("/payments/txn-d")[1]))
    assert record["status"] == "announced"
    assert [a["status"] for a in record["acks"]] == ["announced", "duplicate"]
    stats = cloud.get("/stats")[1]
    assert (stats["announced"], stats["duplicate_acks"], stats["duplicated"]) == (1, 1, 0)
    device.ack("txn-d", "announced")   # a device that announced the same payment twice
    wait_until(lambda: cloud.get("/stats")[1]["duplicated"] == 1)


def test_bad_or_foreign_acks_are_dropped_and_the_handler_keeps_going(broker, cloud, device, capfd):
    cloud.post_payment(payment("txn-f", 300))
    wait_until(lambda: device.notifications)
    for garbage in (b"garbage", b"[]", b'{"status":"lost","txn":"txn-f"}', b"[" * 5000):
        device.publish("ack", garbage)
    intruder = FakeDevice(broker, OTHER_DEVICE)
    intruder.ack("txn-f", "announced")   # not the payment's device: kept, never counted
    device.ack("txn-f", "invalid")
    record = wait_until(lambda: (lambda r: r if r["status"] != "sent" else None)(cloud.get("/payments/txn-f")[1]))
    assert record["status"] == "invalid"
    assert [(a["device"], a["status"]) for a in record["acks"]] == [(OTHER_DEVICE, "announced"),
                                                                   (DEVICE, "invalid")]
    assert cloud.cloud.bad_messages == 4
    assert "Traceback" not in "".join(capfd.readouterr())
    intruder.close()


def test_device_registry_follows_status_and_telemetry(cloud, device):
    [registered] = cloud.get("/devices")[1]
    assert (registered["id"], registered["state"], registered["fw"]) == (DEVICE, "online", "0.1.0")
    device.publish("telemetry", {"battery": 80, "fw": "0.1.1", "heap": None})
    wait_until(lambda: cloud.get("/devices")[1][0]["fw"] == "0.1.1")
    device.publish("status", {"state": "offline", "fw": "0.1.1"}, retain=True)
    wait_until(lambda: cloud.get("/devices")[1][0]["state"] == "offline")
    assert cloud.get("/health") == (200, {"ok": True, "broker": "connected"})


def test_handler_started_later_learns_devices_from_retained_status(broker, db, pki):
    dev = FakeDevice(broker, DEVICE)
    dev.publish("status", {"state": "online", "fw": "0.1.0"}, retain=True)
    late = RunningCloud(broker.url, db, pki.root)
    try:
        wait_until(lambda: late.get("/devices")[1])
        assert late.post_payment(payment("txn-late"))[0] == 202
    finally:
        late.close()
        dev.close()


def test_lookups_and_unknown_paths_answer_in_json(cloud):
    assert cloud.get("/payments/nope") == (404, {"error": "unknown txn nope", "field": "txn"})
    assert cloud.get("/payments/a%20b")[0] == 400
    assert cloud.get("/nowhere") == (404, {"error": "no such path: /nowhere", "field": None})
    assert cloud("DELETE", "/payments")[0] == 405
    assert cloud("GET", "/payments")[0] == 405
    assert cloud("HEAD", "/stats")[0] == 405
    stats = cloud.get("/stats")[1]
    assert stats["latency_ms"]["notify_to_ack"] == {"p50": None, "p90": None, "p99": None, "n": 0}


def test_refused_request_with_unread_body_does_not_poison_keep_alive(cloud, device):
    url = urlsplit(cloud.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
    conn.request("POST", "/nowhere", json.dumps(payment("txn-k")).encode())
    response = conn.getresponse()
    assert (response.status, json.loads(response.read())["error"]) == (404, "no such path: /nowhere")
    conn.request("GET", "/health")   # http.client reconnects if the server closed the connection
    response = conn.getresponse()
    assert (response.status, json.loads(response.read())) == (200, {"ok": True, "broker": "connected"})
    conn.close()


def test_percentiles_are_nearest_rank():
    assert nearest_rank(range(1, 101)) == {"p50": 50, "p90": 90, "p99": 99, "n": 100}
    assert nearest_rank([30, 10, 20]) == {"p50": 20, "p90": 30, "p99": 30, "n": 3}
    assert nearest_rank([7]) == {"p50": 7, "p90": 7, "p99": 7, "n": 1}
    assert nearest_rank([]) == {"p50": None, "p90": None, "p99": None, "n": 0}
    # a fractional p (the simulator's 99.9) is named with an underscore
    assert nearest_rank(range(1, 1001), (99.9,)) == {"p99_9": 999, "n": 1000}


def test_pay_client_returns_the_record_and_the_servers_reason(cloud, device):
    answer = pay(cloud.url, DEVICE, 12345, api_key=cloud.key)
    assert answer["status"] == "sent" and answer["amount"] == 12345 and answer["txn"].startswith("txn-")
    with pytest.raises(PayError) as refused:
        pay(cloud.url, DEVICE, 250.0, txn="t-float", api_key=cloud.key)
    assert (refused.value.status, refused.value.field) == (400, "amount")
    assert "not a float" in str(refused.value)
    url = "http://127.0.0.1:%d" % procs.free_port()
    with pytest.raises(PayError, match="^cannot reach cloud handler at %s$" % url):
        pay(url, DEVICE, 100)


def test_unreachable_broker_fails_fast_with_one_line(tmp_path, pki):
    url = "mqtt://127.0.0.1:%d" % procs.free_port()
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable) as failed:
        Cloud(url, tmp_path / "cloud.db", certs=pki.root)
    assert time.monotonic() - started < 3
    assert str(failed.value) == "cannot reach MQTT broker at %s: Connection refused" % url


def test_silent_broker_port_fails_within_a_few_seconds(tmp_path, pki):
    # Something listens but never speaks MQTT (a wrong port): no CONNACK ever comes.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        url = "mqtt://127.0.0.1:%d" % silent.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable, match="did not answer within"):
            Cloud(url, tmp_path / "cloud.db", certs=pki.root)
        assert time.monotonic() - started < 8


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_stops_cleanly_on_signal(broker, tmp_path, pki, signum):
    port = procs.free_port()
    code = "from soundbox_cloud.service import serve; serve(%r, '127.0.0.1', %d, %r, certs=%r)" % (
        broker.url, port, str(tmp_path / "cloud.db"), pki.root)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        line = proc.stdout.readline()
        assert line == ("cloud handler listening on http://127.0.0.1:%d (broker %s; OTA chunks 1 MiB/s per "
                        "device, burst 4 MiB)\n" % (port, broker.url))
        api = "http://127.0.0.1:%d" % port
        assert request(api, "GET", "/health")[0] == 200
        assert request(api, "POST", "/payments", payment(device="sb-9999"))[0] == 401
        key = make_key(tmp_path / "cloud.db")   # made by another process while the cloud runs
        assert request(api, "POST", "/payments", payment(device="sb-9999"), key=key)[0] == 404
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert (out, err) == ("", "")
    assert os.path.exists(tmp_path / "cloud.db")


# ---- payment integrity: signing and the "stale" status ------------------------------------

def test_a_resend_is_signed_with_the_first_sends_ts(cloud, device, pki):
    cloud.post_payment(payment("txn-r", 600))
    time.sleep(0.05)
    cloud.post_payment(payment("txn-r", 600))
    wait_until(lambda: len(device.notifications) == 2)
    first, again = (note for _, note in device.notifications)
    # Freshness is the payment's age: a box that missed it for long must not hear it as new.
    assert first == again
    assert cloud.get("/payments/txn-r")[1]["sent_ms"] == first["ts"]


def test_stale_ack_settles_the_payment_and_is_counted(cloud, device):
    cloud.post_payment(payment("txn-old", 800))
    wait_until(lambda: device.notifications)
    device.ack("txn-old", "stale")
    wait_until(lambda: cloud.get("/payments/txn-old")[1]["status"] == "stale")
    device.ack("txn-old", "duplicate")   # a replay of it later
    wait_until(lambda: len(cloud.get("/payments/txn-old")[1]["acks"]) == 2)
    stats = cloud.get("/stats")[1]
    assert cloud.get("/payments/txn-old")[1]["status"] == "stale"
    assert (stats["stale"], stats["acked"], stats["announced"], stats["pending"]) == (1, 1, 0, 0)


@pytest.fixture
def hooked(broker, db, pki):
    """(cloud, box, PSP's webhook receiver): sb-0001 is tenant "shop"'s, whose PSP has a webhook."""
    receiver = Receiver()
    running = RunningCloud(broker.url, db, pki.root, webhook_every_s=0.1, private_webhooks=True)  # on loopback
    box = None
    try:
        assert running.post("/devices", {"id": DEVICE, "tenant": "shop"})[0] == 201
        psp = running.new_key("psp", "shop")
        assert request(running.url, "PUT", "/webhook", {"url": receiver.url}, key=psp)[0] == 200
        box = FakeDevice(broker, DEVICE)
        box.publish("status", {"state": "online", "fw": "0.1.0"}, retain=True)
        wait_until(lambda: running.get("/devices/" + DEVICE)[1].get("state") == "online")
        yield running, box, receiver
    finally:
        if box is not None:
            box.close()
        running.close()
        receiver.close()


def duplicate_ack(box, txn, **was):
    box.publish("ack", dict({"txn": txn, "status": "duplicate", "reason": "already announced", "rx": now_ms(),
                             "play": None, "done": None}, **was))


def hook_events(receiver):
    return [(e["type"], e["data"]["txn"]) for e in (json.loads(r["body"]) for r in receiver.requests)]


def test_a_duplicate_saying_how_the_box_finished_settles_the_payment_and_tells_the_psp_once(hooked):
    # The broker lost the box's "announced" (a restart, kill -9); the cloud asked again and the
    # box answered from its ledger: "duplicate", was "announced".
    cloud, box, receiver = hooked
    for txn in ("heard", "older-box", "odd-was", "old"):
        assert cloud.post_payment(payment(txn, 500))[0] == 202
    wait_until(lambda: len(box.notifications) == 4)
    duplicate_ack(box, "older-box")  # an older box says no "was": nothing settles, as before
    duplicate_ack(box, "odd-was", was="duplicate")  # not a final status: ignored
    duplicate_ack(box, "heard", was="announced")
    record = wait_until(lambda: (lambda r: r if r["status"] == "announced" else None)(
        cloud.get("/payments/heard")[1]))
    assert [(a["status"], a["reason"]) for a in record["acks"]] == [("duplicate", "already announced")]
    wait_until(lambda: receiver.requests)
    duplicate_ack(box, "heard", was="announced")  # asked again: settled already, no second event
    duplicate_ack(box, "old", was="stale")
    wait_until(lambda: cloud.get("/payments/old")[1]["status"] == "stale")
    wait_until(lambda: len(receiver.requests) == 2)
    time.sleep(0.5)  # a second event for "heard" would be out by now (the outbox runs every 0.1 s)
    assert sorted(hook_events(receiver)) == [("payment.announced", "heard"), ("payment.stale", "old")]
    assert len(cloud.get("/payments/heard")[1]["acks"]) == 2
    for txn in ("older-box", "odd-was"):
        assert cloud.get("/payments/" + txn)[1]["status"] == "duplicate", txn
    stats = cloud.get("/stats")[1]
    assert (stats["announced"], stats["stale"], stats["duplicate_acks"], stats["duplicated"]) == (1, 1, 5, 0)
    assert stats["pending"] == 0 and stats["latency_ms"]["notify_to_ack"]["n"] == 4


def test_announced_replaces_an_earlier_invalid_ack(cloud, device):
    # A forged notification (bad MAC) under a real txn reaches the box first; the real one
    # then plays. The record must say what the merchant heard.
    cloud.post_payment(payment("txn-x", 900))
    wait_until(lambda: device.notifications)
    device.ack("txn-x", "invalid")
    wait_until(lambda: cloud.get("/payments/txn-x")[1]["status"] == "invalid")
    device.ack("txn-x", "announced")
    wait_until(lambda: cloud.get("/payments/txn-x")[1]["status"] == "announced")
    device.ack("txn-x", "invalid")
    wait_until(lambda: len(cloud.get("/payments/txn-x")[1]["acks"]) == 3)
    assert cloud.get("/payments/txn-x")[1]["status"] == "announced"


def test_cloud_without_a_payment_master_secret_says_so_in_one_line(broker, tmp_path):
    (tmp_path / "empty").mkdir()
    r = subprocess.run([sys.executable, "-m", "soundbox_tools.cli", "cloud", "--broker", broker.url,
                        "--http", "127.0.0.1:%d" % procs.free_port(), "--db", str(tmp_path / "c.db"),
                        "--certs", str(tmp_path / "empty")], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "payment-master.key" in r.stderr
    assert "pki init" in r.stderr
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "payment-master.key").write_text("not hex at all\n")
    r = subprocess.run([sys.executable, "-m", "soundbox_tools.cli", "cloud", "--broker", broker.url,
                        "--http", "127.0.0.1:%d" % procs.free_port(), "--db", str(tmp_path / "c.db"),
                        "--certs", str(tmp_path / "bad")], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "is not hex" in r.stderr and "not hex at all" not in r.stderr


def test_cloud_derives_the_key_the_device_bundle_holds(pki):
    from soundbox_cloud.keys import PaymentKeys
    with open(os.path.join(pki.device_dir("sb-0002"), "payment.key"), "rb") as f:
        on_device = payment_rule.parse_key(f.read())
    keys = PaymentKeys(pki.root)
    assert keys.key("sb-0002") == on_device != keys.key("sb-0001")


def test_a_database_from_before_providers_opens_and_keeps_its_payments(tmp_path):
    import sqlite3

    from soundbox_cloud.store import Store

    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE payments (txn TEXT PRIMARY KEY, device TEXT NOT NULL, amount INTEGER NOT NULL,
            sent_ms INTEGER NOT NULL, sends INTEGER NOT NULL DEFAULT 1, status TEXT NOT NULL DEFAULT 'sent');
        INSERT INTO payments (txn, device, amount, sent_ms) VALUES ('old-1', 'sb-0001', 500, 1);
    """)
    old.close()
    store = Store(path)
    try:
        assert store.payment("old-1")["provider"] is None and store.payment("old-1")["amount"] == 500
        assert store.record_send("sb-0001", 700, "new-1", 2, "upi")["provider"] == "upi"
    finally:
        store.close()
