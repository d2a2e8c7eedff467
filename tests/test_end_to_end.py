"""A payment's whole trip with real parts: a private mosquitto (mutual TLS, ACL),
the cloud handler and the simulator each as their own process, the real
firmware in the simulator, real certificates from the project's PKI. Every API call
carries a key made in the running cloud's database (an admin key unless a test says)."""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import paho.mqtt.client as mqtt
import pytest

from cloudapi import make_key
from soundbox_cloud.auth import TOKEN
from soundbox_tools import procs

SOUNDBOX = [sys.executable, "-m", "soundbox_tools.cli"]


def http(method, url, body=None, key=None):
    """One JSON request; with key, as Authorization: Bearer key. Returns (status, JSON)."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = "Bearer " + key
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def eventually(check, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def journal(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f]


class Stack:
    def __init__(self, broker, tmp_path, voice_pack, devices=2, pki=None, sim_args=()):
        self.broker, self.tmp, self.voice, self.devices = broker, tmp_path, voice_pack, devices
        # The PKI signs payments (cloud) and holds each device's payment key, TLS or not.
        self.certs = ["--certs", str(pki.root)] if pki else []
        self.sim_args = list(sim_args)
        self.journal = str(tmp_path / "announcements.jsonl")
        port = procs.free_port()
        self.api = "http://127.0.0.1:%d" % port
        self.db = str(tmp_path / "cloud.db")
        self.cloud = procs.spawn(SOUNDBOX + ["cloud", "--broker", broker.url, "--http", "127.0.0.1:%d" % port,
                                             "--db", self.db] + self.certs,
                                 log_path=str(tmp_path / "cloud.log"))
        assert procs.wait_port("127.0.0.1", port, 15, self.cloud), (tmp_path / "cloud.log").read_text()
        # The running cloud reads keys from its database on every request: no restart needed.
        self.key = make_key(self.db)
        self.sim = None
        self.start_sim()

    def start_sim(self):
        self.sim = procs.spawn(SOUNDBOX + ["sim", "--devices", str(self.devices), "--broker", self.broker.url,
                                           "--state", str(self.tmp / "devices"), "--voice", self.voice,
                                           "--wav-device", "sb-0001", "--out", str(self.tmp / "out"),
                                           "--journal", self.journal, "--keepalive", "5"] + self.certs
                               + self.sim_args,
                               log_path=str(self.tmp / "sim.log"))
        online = lambda: sum(d["state"] == "online" for d in self.get("/devices")[1]) == self.devices
        assert eventually(online), (self.tmp / "sim.log").read_text()

    def stop_sim(self):
        self.sim.terminate()
        assert self.sim.wait(15) == 0

    def get(self, path, key=None):
        return http("GET", self.api + path, key=key or self.key)

    def post(self, path, body, key=None):
        return http("POST", self.api + path, body, key=key or self.key)

    def payment(self, txn):
        return self.get("/payments/" + txn)[1]

    def acks(self, txn, n, timeout=30):
        acks = eventually(lambda: len(self.payment(txn)["acks"]) >= n and self.payment(txn)["acks"], timeout)
        assert acks, "no %d acks for %s within %d s: %s" % (n, txn, timeout, self.payment(txn))
        return acks

    def close(self):
        procs.stop(self.sim)
        procs.stop(self.cloud)


@pytest.fixture
def stack(tls_broker, tmp_path, voice_pack, pki):
    s = Stack(tls_broker, tmp_path, voice_pack, pki=pki)
    yield s
    s.close()


@pytest.fixture
def plain_stack(broker, tmp_path, voice_pack, pki):
    s = Stack(broker, tmp_path, voice_pack, pki=pki)
    yield s
    s.close()


def test_payment_is_announced_once_acked_and_readable(stack):
    status, body = stack.post("/payments", {"device": "sb-0001", "amount": 25050, "txn": "E2E-1"})
    assert status == 202, body
    (ack,) = stack.acks("E2E-1", 1)
    assert ack["status"] == "announced" and ack["reason"] == ""
    record = stack.payment("E2E-1")
    assert record["status"] == "announced" and record["amount"] == 25050
    assert ack["rx"] <= ack["play"] <= ack["done"]
    played = [j for j in journal(stack.journal) if j["txn"] == "E2E-1"]
    assert len(played) == 1
    assert played[0]["words"] == "received two hundred fifty rupees and fifty paise"
    wavs = os.listdir(stack.tmp / "out" / "sb-0001")
    assert len(wavs) == 1 and wavs[0].endswith("E2E-1.wav")


def test_the_provider_posted_to_the_cloud_is_said_by_the_box(stack):
    body = {"device": "sb-0001", "amount": 25000, "txn": "E2E-PP", "provider": "phonepe"}
    assert stack.post("/payments", body)[0] == 202
    assert stack.acks("E2E-PP", 1)[0]["status"] == "announced"
    (played,) = [j for j in journal(stack.journal) if j["txn"] == "E2E-PP"]
    assert played["words"] == "received two hundred fifty rupees on phonepe"


def test_same_transaction_twice_is_announced_once_and_second_ack_says_duplicate(stack):
    for _ in range(2):
        assert stack.post("/payments", {"device": "sb-0002", "amount": 100, "txn": "E2E-2"})[0] == 202
    acks = stack.acks("E2E-2", 2)
    assert sorted(a["status"] for a in acks) == ["announced", "duplicate"]
    assert stack.payment("E2E-2")["status"] == "announced"
    assert len([j for j in journal(stack.journal) if j["txn"] == "E2E-2"]) == 1


def test_ledger_survives_a_device_restart(stack):
    stack.post("/payments", {"device": "sb-0001", "amount": 500, "txn": "E2E-3"})
    stack.acks("E2E-3", 1)
    stack.stop_sim()
    assert eventually(lambda: stack.get("/devices")[1][0]["state"] == "offline", 10)
    stack.start_sim()
    stack.post("/payments", {"device": "sb-0001", "amount": 500, "txn": "E2E-3"})
    acks = stack.acks("E2E-3", 2)
    assert [a["status"] for a in acks] == ["announced", "duplicate"]
    assert len([j for j in journal(stack.journal) if j["txn"] == "E2E-3"]) == 1


def test_malformed_notifications_get_invalid_acks_and_the_device_keeps_running(plain_stack, broker):
    # Straight onto the device's topic, bypassing the cloud's own validation. On the TLS
    # broker only the cloud's identity may publish there, so this runs on the plain one.
    stack = plain_stack
    acks = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = lambda c, u, m: acks.append(json.loads(m.payload))
    client.connect(broker.host, broker.port)
    client.subscribe("sb/sb-0002/ack", 1)
    client.loop_start()
    try:
        time.sleep(0.3)
        for payload in (b"{not json", b'{"txn": "BAD-1", "amount": 250.0}', b'{"amount": 100}',
                        b'{"txn": "BAD-2", "amount": 100, "currency": "USD"}'):
            client.publish("sb/sb-0002/notify", payload, qos=1).wait_for_publish(5)
        assert eventually(lambda: len(acks) >= 4, 10)
        assert all(a["status"] == "invalid" and a["reason"] for a in acks)
        assert acks[1]["txn"] == "BAD-1" and "float" in acks[1]["reason"]
    finally:
        client.loop_stop()
        client.disconnect()
    stack.post("/payments", {"device": "sb-0002", "amount": 700, "txn": "E2E-4"})
    assert stack.acks("E2E-4", 1)[0]["status"] == "announced"
    assert not any(j["txn"] in ("BAD-1", "BAD-2") for j in journal(stack.journal))


@pytest.mark.parametrize("mqtt", ["3.1.1", "5"])
def test_devices_reconnect_and_get_payments_sent_while_the_broker_was_down(tls_broker, tmp_path, voice_pack, pki,
                                                                           mqtt):
    broker = tls_broker
    s = Stack(broker, tmp_path, voice_pack, devices=1, pki=pki, sim_args=["--mqtt", mqtt])
    try:
        # On 5 the box's persistent session rests on its Session Expiry: it must outlive the restart.
        broker.stop()
        time.sleep(1)
        broker.start()  # same port; in-memory sessions are gone, devices resubscribe
        assert eventually(lambda: s.post("/payments", {"device": "sb-0001", "amount": 4200, "txn": "E2E-5"})[0] == 202
                          and s.acks("E2E-5", 1), 60)
        assert s.payment("E2E-5")["status"] == "announced"
    finally:
        s.close()


def test_cli_says_in_one_line_when_broker_or_cloud_is_unreachable(tmp_path):
    dead = "mqtt://127.0.0.1:%d" % procs.free_port()
    r = subprocess.run(SOUNDBOX + ["cloud", "--broker", dead, "--http", "127.0.0.1:%d" % procs.free_port(),
                                   "--db", str(tmp_path / "c.db")], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = subprocess.run(SOUNDBOX + ["pay", "sb-0001", "100", "--cloud", "http://127.0.0.1:%d" % procs.free_port()],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "Traceback" not in r.stderr and "cannot reach" in r.stderr
    r = subprocess.run(SOUNDBOX + ["pay", "sb-0001", "2.50"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "integer paise" in r.stderr


def soundbox(*argv, env_key=None):
    """The CLI as a process; SOUNDBOX_API_KEY is env_key (unset if None), not the caller's."""
    env = {k: v for k, v in os.environ.items() if k != "SOUNDBOX_API_KEY"}
    if env_key is not None:
        env["SOUNDBOX_API_KEY"] = env_key
    return subprocess.run(SOUNDBOX + list(argv), capture_output=True, text=True, timeout=60, env=env)


def one_line_error(r):
    assert r.returncode != 0, r.stdout
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    return r.stderr


def new_key(stack, *options):
    r = soundbox("cloud", "key", "create", "--db", stack.db, *options)
    assert r.returncode == 0, r.stderr
    token = r.stdout.splitlines()[0]
    assert TOKEN.fullmatch(token), r.stdout
    return token


def test_a_psp_pays_a_device_registered_to_its_tenant_through_the_cli_until_its_key_is_revoked(stack):
    admin = new_key(stack, "--role", "admin")
    psp = new_key(stack, "--role", "psp", "--tenant", "shop1")
    # Online but tenant-less, sb-0001 is not yet the PSP's to pay.
    r = soundbox("pay", "sb-0001", "100", "--txn", "CLI-0", "--cloud", stack.api, "--api-key", psp)
    assert "unknown device sb-0001" in one_line_error(r)

    r = soundbox("cloud", "device", "register", "sb-0001", "--tenant", "shop1", "--name", "Asha Stores",
                 "--vpa", "asha@bank", "--cloud", stack.api, "--api-key", admin)
    assert r.returncode == 0, r.stderr
    registered = json.loads(r.stdout)
    assert (registered["id"], registered["tenant"], registered["state"]) == ("sb-0001", "shop1", "online"), registered
    assert (registered["name"], registered["vpa"]) == ("Asha Stores", "asha@bank"), registered

    r = soundbox("pay", "sb-0001", "25000", "--txn", "CLI-1", "--cloud", stack.api, "--api-key", psp)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "payment CLI-1: 25000 paise to sb-0001, status sent"
    assert stack.acks("CLI-1", 1)[0]["status"] == "announced"
    assert [j["words"] for j in journal(stack.journal) if j["txn"] == "CLI-1"] == ["received two hundred fifty rupees"]
    status, record = stack.get("/payments/CLI-1", key=psp)   # the PSP reads its own payment
    assert (status, record["tenant"], record["status"]) == (200, "shop1", "announced"), record
    # Another tenant's (here: no tenant's) device stays out of the PSP's reach.
    r = soundbox("pay", "sb-0002", "100", "--txn", "CLI-X", "--cloud", stack.api, "--api-key", psp)
    assert "unknown device sb-0002" in one_line_error(r)

    r = soundbox("pay", "sb-0001", "100", "--txn", "CLI-NOKEY", "--cloud", stack.api)
    assert "missing API key" in one_line_error(r)
    r = soundbox("pay", "sb-0001", "300", "--txn", "CLI-2", "--cloud", stack.api, env_key=psp)
    assert r.returncode == 0, r.stderr
    assert stack.acks("CLI-2", 1)[0]["status"] == "announced"

    key_id = TOKEN.fullmatch(psp).group(1)
    r = soundbox("cloud", "key", "revoke", key_id, "--db", stack.db)
    assert r.returncode == 0 and "revoked" in r.stdout, r.stderr
    # At once: the running cloud reads the key's row on every request.
    status, body = stack.post("/payments", {"device": "sb-0001", "amount": 100, "txn": "CLI-3"}, key=psp)
    assert (status, body["field"]) == (401, "authorization") and "revoked" in body["error"], body
    r = soundbox("pay", "sb-0001", "100", "--txn", "CLI-4", "--cloud", stack.api, env_key=psp)
    assert "unknown or revoked API key" in one_line_error(r)
    assert stack.get("/payments/CLI-3")[0] == stack.get("/payments/CLI-4")[0] == 404   # nothing was sent
    assert [j["txn"] for j in journal(stack.journal) if j["txn"].startswith("CLI-")] == ["CLI-1", "CLI-2"]


def test_language_switched_by_the_cloud_is_spoken_from_that_language_pack(stack):
    status, body = stack.post("/devices/sb-0001/commands", {"cmd": "language", "lang": "hi"})
    assert status == 202, body
    # The box keeps its language across a restart, and plays the next payment in Hindi
    # from the Hindi pack (the simulator builds it on first use, as a device downloads one).
    stack.stop_sim()
    stack.start_sim()
    assert stack.post("/payments", {"device": "sb-0001", "amount": 25000, "txn": "LANG-1"})[0] == 202
    ack = stack.acks("LANG-1", 1, timeout=60)[0]
    assert ack["status"] == "announced", ack
    (played,) = [j for j in journal(stack.journal) if j["txn"] == "LANG-1"]
    assert "दो सौ पचास रुपये" in played["words"], played["words"]
