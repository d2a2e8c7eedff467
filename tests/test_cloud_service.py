"""The cloud as a service a PSP talks to: strict bodies, bursts of clients, outcomes by
webhook and deadline, commands with results, metrics and docs. Real mosquitto, real HTTP,
real SQLite; the "boxes" are paho clients speaking the wire contract (the firmware's side
of commands is tested in test_commands.py)."""
import json
import logging
import os
import socket
import stat
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from soundbox_cloud.errors import CloudError
from soundbox_cloud.logsetup import LOGGER, log_to_stderr
from soundbox_cloud.webhooks import verify_signature

from cloudapi import RunningCloud, request
from test_cloud import DEVICE, FakeDevice, wait_until
from test_webhooks import Receiver


@pytest.fixture
def cloud(broker, tmp_path, pki):
    running = RunningCloud(broker.url, tmp_path / "cloud.db", pki.root, tick_s=0.2, webhook_every_s=0.1,
                           ack_deadline_s=1.5, private_webhooks=True)   # the receiver is on loopback
    yield running
    running.close()


@pytest.fixture
def device(broker, cloud):
    dev = FakeDevice(broker, DEVICE)
    dev.publish("status", {"state": "online", "fw": "1.0.0"}, retain=True)
    wait_until(lambda: cloud.get("/devices")[1])
    yield dev
    dev.close()


def raw(cloud, data):
    """Send raw request bytes; the status line and body of the answer."""
    with socket.create_connection(("127.0.0.1", cloud.server.port), timeout=5) as sock:
        sock.sendall(data)
        answer = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_one_strict_body_parser(cloud, device):
    body = b'{"device": "sb-0001", "amount": 100, "amount": 99999999999, "txn": "dup"}'
    status, answer = cloud("POST", "/payments", body)
    assert (status, answer["field"]) == (400, "body") and "duplicate key 'amount'" in answer["error"]
    auth = b"Authorization: Bearer " + cloud.key.encode()
    good = b'{"device":"sb-0001","amount":100,"txn":"cl"}'
    status, _ = raw(cloud, b"POST /payments HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\nContent-Length: %d\r\n"
                    b"Content-Length: 5\r\nConnection: close\r\n\r\n" % len(good) + good)
    assert status == 400   # two different lengths: which one did a proxy in front believe?
    assert cloud.get("/payments/dup")[0] == 404 and cloud.get("/payments/cl")[0] == 404
    assert device.notifications == []
    status, answer = cloud("POST", "/payments", b"[" * 100_000)
    assert status in (400, 413) and answer["field"] == "body"


def test_500_concurrent_posts_are_all_accepted_and_delivered(cloud, device):
    def post(i):
        return request(cloud.url, "POST", "/payments", {"device": DEVICE, "amount": 100 + i, "txn": "burst-%d" % i},
                       key=cloud.key, timeout=60)[0]
    barrier = threading.Barrier(100)

    def post_together(i):
        if i < 100:
            barrier.wait(10)   # the first hundred arrive at the same instant
        return post(i)
    with ThreadPoolExecutor(200) as pool:
        statuses = list(pool.map(post_together, range(500)))
    assert statuses == [202] * 500   # none reset, none refused
    wait_until(lambda: len(device.notifications) >= 500, 30)
    assert sorted(n["txn"] for _, n in device.notifications) == sorted(
        "burst-%d" % i for i in range(500))
    assert cloud.get("/stats")[1]["sent"] == 500


def test_outcomes_reach_the_psp_by_signed_webhook_despite_a_failing_receiver(cloud, device):
    receiver = Receiver(statuses=(500, 503, 200))
    try:
        assert cloud.post("/devices", {"id": DEVICE, "tenant": "shop"})[0] == 201
        psp = cloud.new_key("psp", "shop")
        status, hook = request(cloud.url, "PUT", "/webhook", {"url": receiver.url}, key=psp)
        assert status == 200 and hook["secret"].startswith("whsec_") and hook["url"] == receiver.url
        assert "secret" not in request(cloud.url, "GET", "/webhook", key=psp)[1]
        assert cloud.post_payment({"device": DEVICE, "amount": 25000, "txn": "hooked"}, key=psp)[0] == 202
        wait_until(lambda: device.notifications)
        device.ack("hooked", "announced")
        wait_until(lambda: len(receiver.requests) >= 3, 15)   # backoff 1 s, then 2 s
        last = receiver.requests[2]
        headers = {k.lower(): v for k, v in last["headers"].items()}
        assert verify_signature(hook["secret"], headers["soundbox-signature"], last["body"])
        assert not verify_signature("whsec_other", headers["soundbox-signature"], last["body"])
        event = json.loads(last["body"])
        assert event["type"] == "payment.announced" and event["id"] == headers["soundbox-event-id"]
        assert {k: event["data"][k] for k in ("txn", "device", "amount", "status")} == {
            "txn": "hooked", "device": DEVICE, "amount": 25000, "status": "announced"}
        assert len({r["body"] for r in receiver.requests}) == 1   # the same event, retried
    finally:
        receiver.close()


def test_webhooks_may_not_point_into_the_clouds_own_network(broker, tmp_path, pki, device):
    strict = RunningCloud(broker.url, tmp_path / "strict.db", pki.root, tick_s=0)
    try:
        assert strict.post("/devices", {"id": DEVICE, "tenant": "shop"})[0] == 201
        psp = strict.new_key("psp", "shop")
        for url in ("http://127.0.0.1:5432/", "http://10.0.0.7/hook", "http://169.254.169.254/latest",
                    "http://[::1]:8080/", "http://localhost/x", "ftp://example.com/"):
            status, answer = request(strict.url, "PUT", "/webhook", {"url": url}, key=psp)
            assert (status, answer["field"]) == (400, "url"), (url, answer)
        assert request(strict.url, "GET", "/webhook", key=psp)[0] == 404
    finally:
        strict.close()


def test_a_payment_nobody_acks_times_out_and_a_late_ack_still_settles_it(cloud, device):
    assert cloud.post_payment({"device": DEVICE, "amount": 700, "txn": "silent"})[0] == 202
    wait_until(lambda: cloud.get("/payments/silent")[1]["status"] == "timed_out", 10)
    assert cloud.get("/stats")[1]["timed_out"] == 1
    device.ack("silent", "announced")
    wait_until(lambda: cloud.get("/payments/silent")[1]["status"] == "announced")


def test_commands_get_ids_and_the_boxes_answer_is_kept(broker, cloud, device):
    commands = []
    box = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="cmd-box")
    box.on_message = lambda c, u, msg: commands.append(json.loads(msg.payload))
    subscribed = threading.Event()
    box.on_subscribe = lambda *args: subscribed.set()
    box.connect(broker.host, broker.port)
    box.loop_start()
    box.subscribe("sb/%s/cmd" % DEVICE, qos=1)
    assert subscribed.wait(5)
    try:
        status, sent = cloud.post("/devices/%s/commands" % DEVICE, {"cmd": "volume", "level": 4, "id": "mine"})
        assert status == 202 and sent["id"].startswith("c-") and sent["command"] == {
            "cmd": "volume", "level": 4, "id": sent["id"]}
        path = "/devices/%s/commands/%s" % (DEVICE, sent["id"])
        assert cloud.get(path)[1]["status"] == "sent"
        wait_until(lambda: [c for c in commands if c.get("id") == sent["id"]])
        box.publish("sb/%s/cmdack" % DEVICE, json.dumps({"id": sent["id"], "cmd": "volume", "ok": True,
                                                        "reason": ""}), qos=1)
        record = wait_until(lambda: (lambda r: r if r["status"] == "ok" else None)(cloud.get(path)[1]))
        assert record["command"]["level"] == 4 and record["acked_ms"] >= record["sent_ms"]
        # Bad commands are refused with the device's own rule; nothing is published.
        assert cloud.post("/devices/%s/commands" % DEVICE, {"cmd": "volume", "level": True}) == (
            400, {"error": "level must be an integer 1-5", "field": "level"})
        # A box that answers nothing gets at most 5 commands a minute: no queue of replays.
        answers = [cloud.post("/devices/%s/commands" % DEVICE, {"cmd": "replay"})[0] for _ in range(6)]
        assert answers == [202] * 5 + [429]
        wait_until(lambda: len([c for c in commands if c["cmd"] == "replay"]) == 5)
        assert cloud.get("/devices/%s/commands/c-nope" % DEVICE)[0] == 404
    finally:
        box.disconnect()
        box.loop_stop()


def test_a_cloud_started_after_its_boxes_asks_them_for_telemetry(broker, tmp_path, pki):
    asked = threading.Event()
    box = FakeDevice(broker, DEVICE)
    box.client.message_callback_add("sb/%s/cmd" % DEVICE, lambda c, u, msg: (
        json.loads(msg.payload)["cmd"] == "telemetry" and asked.set()))
    box.client.subscribe("sb/%s/cmd" % DEVICE, qos=1)
    box.publish("status", {"state": "online", "fw": "1.0.0"}, retain=True)
    late = RunningCloud(broker.url, tmp_path / "late.db", pki.root, tick_s=0.2)
    try:
        assert asked.wait(10)
        box.publish("telemetry", {"fw": "1.0.0", "model": "soundbox-esp32", "versions": {"firmware": "1.0.0"}})
        wait_until(lambda: (late.cloud.campaign_store.profiles().get(DEVICE) or {}).get("model") == "soundbox-esp32")
    finally:
        late.close()
        box.close()


def test_metrics_health_ready_and_docs(cloud, device):
    assert cloud.post_payment({"device": DEVICE, "amount": 100, "txn": "m-1"})[0] == 202
    device.ack("m-1", "announced")
    wait_until(lambda: cloud.get("/payments/m-1")[1]["status"] == "announced")
    import urllib.request
    with urllib.request.urlopen(cloud.url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    assert 'soundbox_payments{status="announced"} 1.0' in text
    assert "soundbox_devices_online 1.0" in text
    assert 'soundbox_http_requests_total{code="202",method="POST",route="/payments"} 1.0' in text
    assert "soundbox_notify_to_ack_seconds_count 1.0" in text
    assert request(cloud.url, "GET", "/ready") == (200, {"ok": True, "broker": "connected"})
    status, schema = request(cloud.url, "GET", "/openapi.json")
    assert status == 200 and schema["paths"]["/payments"]["post"]["requestBody"]["content"]["application/json"]
    assert schema["components"]["securitySchemes"]
    with urllib.request.urlopen(cloud.url + "/docs", timeout=5) as response:
        assert b"swagger" in response.read().lower()


def test_other_processes_see_the_clouds_writes_after_opening_its_database(cloud, device):
    """A key made from another process (`soundbox cloud key create`) opens and closes the
    database while the cloud runs; the cloud's later writes must still reach the file."""
    read = ("import sqlite3, sys; db = sqlite3.connect(sys.argv[1]);"
            " print(db.execute('SELECT COUNT(*) FROM payments').fetchone()[0]); db.close()")
    assert subprocess.run([sys.executable, "-c", read, str(cloud.db_path)], capture_output=True, text=True,
                          check=True).stdout == "0\n"
    assert cloud.post_payment({"device": DEVICE, "amount": 100, "txn": "seen"})[0] == 202
    assert subprocess.run([sys.executable, "-c", read, str(cloud.db_path)], capture_output=True, text=True,
                          check=True).stdout == "1\n"


def test_databases_are_private(cloud):
    for path in (cloud.db_path, str(cloud.db_path) + "-wal"):
        if os.path.exists(path):
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path


def test_a_body_trickled_past_the_time_limit_gets_408(cloud, device, monkeypatch):
    from soundbox_cloud import http_app
    monkeypatch.setattr(http_app, "BODY_TIMEOUT_S", 0.5)
    with socket.create_connection(("127.0.0.1", cloud.server.port), timeout=10) as sock:
        sock.sendall(b"POST /payments HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + cloud.key.encode()
                     + b"\r\nContent-Length: 100\r\n\r\n{\"device\"")   # and then nothing
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 408") and b'"field":"body"' in answer
    assert device.notifications == []


def test_a_taken_http_port_is_one_line_before_the_broker_is_touched(tmp_path, pki):
    """The API's socket is bound first: nothing listens at this broker URL, yet the answer
    is about the port (and none of the cloud's own connections can take the port first)."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with socket.create_server(("127.0.0.1", 0)) as nobody:
            broker_url = "mqtt://127.0.0.1:%d" % nobody.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "soundbox_tools.cli", "cloud", "--broker", broker_url,
                            "--http", "127.0.0.1:%d" % port, "--db", str(tmp_path / "c.db"), "--certs", pki.root],
                           capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "cannot listen on http://127.0.0.1:%d" % port in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and "broker" not in r.stderr, r.stderr


def test_log_to_stderr_takes_a_known_level_and_comes_off_again():
    with pytest.raises(CloudError, match="log level must be one of debug, info, warning, error, got 'loud'"):
        log_to_stderr("loud")
    logger = logging.getLogger(LOGGER)
    before = (list(logger.handlers), logger.level)
    undo = log_to_stderr("warning")
    assert len(logger.handlers) == len(before[0]) + 1 and logger.level == logging.WARNING
    undo()
    assert (logger.handlers, logger.level) == before
