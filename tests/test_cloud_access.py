"""Who may do what on the cloud's HTTP API, against a real mosquitto, real SQLite and real HTTP.

The permission matrix: every route x every role x the caller's own / another tenant's
object, asserting the status and, for each refused call, that nothing was published to
any box and nothing stored. Then keys (expired, revoked, rate-limited), the audit trail,
and tenants' isolation on payments.
"""
import http.client
import json
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from soundbox_cloud.auth import KeyStore, PERMISSIONS
from soundbox_cloud.mqttlink import now_ms

from cloudapi import RunningCloud, request
from test_cloud import FakeDevice, wait_until

OWN, OTHER = "sb-0001", "sb-0002"     # registered to tenants t1 and t2
ROLES = ("admin", "operator", "psp", "viewer")


class Watcher:
    """Records everything the cloud publishes to boxes (notifications, commands, OTA)."""

    def __init__(self, broker, cloud):
        self.cloud = cloud
        self.seen = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="watcher")
        self.client.on_message = lambda c, u, msg: self.seen.append((msg.topic, msg.payload))
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.client.subscribe([("sb/+/notify", 1), ("sb/+/cmd", 1), ("sb/+/ota/#", 1)])
        assert subscribed.wait(5)

    def settle(self):
        """Wait until a marker the cloud's own connection publishes now has come back: what
        that connection published before it has too (one publisher's order is kept)."""
        marker = "sb/watcher-%d/cmd" % time.monotonic_ns()
        self.cloud.link.publish(marker, b"{}", qos=1)
        wait_until(lambda: any(topic == marker for topic, _ in self.seen))
        self.seen = [s for s in self.seen if s[0] != marker]

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def stack(broker, tmp_path, pki):
    """A cloud with devices sb-0001 (tenant t1) and sb-0002 (tenant t2), online, and a key
    per role: admin, and operator / psp / viewer of t1. No background ticks: nothing is
    published but what the calls ask for."""
    cloud = RunningCloud(broker.url, tmp_path / "cloud.db", pki.root, tick_s=0)
    devices = [FakeDevice(broker, d) for d in (OWN, OTHER)]
    for dev in devices:
        dev.publish("status", {"state": "online", "fw": "1.0.0"}, retain=True)
    wait_until(lambda: len(cloud.get("/devices")[1]) == 2)
    for device, tenant in ((OWN, "t1"), (OTHER, "t2")):
        assert cloud.post("/devices", {"id": device, "tenant": tenant, "name": "Shop " + tenant,
                                       "vpa": "shop@upi", "language": "hi"})[0] == 201
    keys = {"admin": cloud.key}
    keys.update({role: cloud.new_key(role, "t1") for role in ROLES[1:]})
    watcher = Watcher(broker, cloud.cloud)
    yield cloud, keys, devices, watcher
    watcher.close()
    for dev in devices:
        dev.close()
    cloud.close()


def fixtures_for(cloud):
    """One payment and one command per tenant's device, made by the admin."""
    made = {}
    for device in (OWN, OTHER):
        txn = "txn-of-" + device
        assert cloud.post_payment({"device": device, "amount": 100, "txn": txn})[0] == 202
        status, command = cloud.post("/devices/%s/commands" % device, {"cmd": "volume", "level": 2})
        assert status == 202
        made[device] = {"txn": txn, "command": command["id"]}
    return made


# (name, action, method, path for a device and its fixtures, body for a device, success status)
ROUTES = [
    ("pay", "payments:create", "POST", "/payments", lambda d, f: {"device": d, "amount": 500, "txn": "m-%s" % d}, 202),
    ("payment", "payments:read", "GET", "/payments/{txn}", None, 200),
    ("device", "devices:read", "GET", "/devices/{device}", None, 200),
    ("tags", "devices:read", "GET", "/devices/{device}/tags", None, 200),
    ("tag", "devices:write", "POST", "/devices/{device}/tags", lambda d, f: {"add": ["north"]}, 200),
    ("register", "devices:write", "POST", "/devices", lambda d, f: {"id": d, "name": "Renamed"}, 201),
    ("move", "devices:move", "POST", "/devices/{device}/move", lambda d, f: {"tenant": "t3"}, 200),
    ("command", "commands:send", "POST", "/devices/{device}/commands", lambda d, f: {"cmd": "replay"}, 202),
    ("command status", "commands:read", "GET", "/devices/{device}/commands/{command}", None, 200),
]
TENANTLESS = [   # routes with no tenant's object in the path: only the role decides
    ("stats", "stats:read", "GET", "/stats", None, 200),
    ("devices", "devices:read", "GET", "/devices", None, 200),
    ("artifacts", "ota:read", "GET", "/ota/artifacts", None, 200),
    ("campaigns", "ota:read", "GET", "/ota/campaigns", None, 200),
    ("audit", "audit:read", "GET", "/audit?limit=5", None, 200),
]


def state_of(cloud):
    """What a refused call must not have changed."""
    store = cloud.cloud.store
    return (store.counts()["sent"], [(d["id"], d["tenant"], d["name"]) for d in store.devices()],
            {d: cloud.cloud.campaign_store.tags(d) for d in (OWN, OTHER)},
            store._all("SELECT id, status FROM commands ORDER BY id"))


def test_permission_matrix(stack):
    cloud, keys, devices, watcher = stack
    made = fixtures_for(cloud)
    seen = []
    for role in ROLES:
        for name, action, method, path, body, ok in ROUTES:
            # A payment read for the admin would hit the txn it just paid; use the fixtures'.
            for target in (OWN, OTHER):
                if role == "admin" and name == "move":
                    continue   # moving devices away would change the rest of the matrix: below
                watcher.settle()   # what earlier calls published has arrived
                before, published = state_of(cloud), len(watcher.seen)
                url = path.format(device=target, txn=made[target]["txn"], command=made[target]["command"])
                payload = body(target, made[target]) if body else None
                status, answer = request(cloud.url, method, url, payload, key=keys[role])
                allowed = role in PERMISSIONS[action]
                if not allowed:
                    expected = 403
                elif role != "admin" and target == OTHER:
                    expected = 404
                else:
                    expected = ok
                seen.append((role, name, target, status))
                assert status == expected, (role, name, target, status, answer)
                watcher.settle()
                if status >= 400:
                    assert set(answer) == {"error", "field"} and answer["error"], answer
                    assert len(watcher.seen) == published, (role, name, target, watcher.seen[published:])
                    assert state_of(cloud) == before, (role, name, target)
        for name, action, method, path, body, ok in TENANTLESS:
            status, answer = request(cloud.url, method, path, key=keys[role])
            assert status == (ok if role in PERMISSIONS[action] else 403), (role, name, status, answer)
    # A tenant's reads show only its own: a t1 viewer lists sb-0001 alone, its stats count t1's payments.
    assert [d["id"] for d in request(cloud.url, "GET", "/devices", key=keys["viewer"])[1]] == [OWN]
    assert request(cloud.url, "GET", "/stats", key=keys["viewer"])[1]["sent"] == 2   # fixture + psp's
    # Only the admin moves a device; the new owner's keys reach it, the old owner's get 404.
    assert cloud.post("/devices/%s/move" % OTHER, {"tenant": "t1"})[0] == 200
    assert request(cloud.url, "GET", "/devices/%s" % OTHER, key=keys["viewer"])[0] == 200
    assert request(cloud.url, "GET", "/payments/txn-of-%s" % OTHER, key=keys["viewer"])[0] == 404   # t2's past
    assert len(seen) == len(ROLES) * len(ROUTES) * 2 - 2


def test_missing_malformed_expired_and_revoked_keys_get_401_and_publish_nothing(stack):
    cloud, keys, devices, watcher = stack
    store = KeyStore(cloud.db_path)
    try:
        expired, _ = store.create("psp", "t1", expires_s=60, now_ms=now_ms() - 120_000)
        revoked, record = store.create("psp", "t1")
        assert cloud.post_payment({"device": OWN, "amount": 1, "txn": "ok-before"}, key=revoked)[0] == 202
        store.revoke(record["id"])   # from another connection, while the cloud runs: bites at once
    finally:
        store.close()
    watcher.settle()
    published = len(watcher.seen)
    pay = {"device": OWN, "amount": 100, "txn": "no-key"}
    for headers, reason in (({}, "missing API key"), ({"Authorization": "Basic YWRtaW46YWRtaW4="}, "missing API key"),
                            ({"Authorization": "Bearer sbk_nothex_x"}, "malformed API key"),
                            ({"Authorization": "Bearer " + keys["psp"][:-2] + "xx"}, "unknown or revoked"),
                            ({"Authorization": "Bearer " + revoked}, "unknown or revoked"),
                            ({"Authorization": "Bearer " + expired}, "expired")):
        status, answer = request(cloud.url, "POST", "/payments", pay, headers=headers)
        assert (status, answer["field"]) == (401, "authorization") and reason in answer["error"], (headers, answer)
        assert keys["psp"] not in answer["error"]
    watcher.settle()
    assert len(watcher.seen) == published and cloud.get("/payments/no-key")[0] == 404


def test_a_psp_pays_only_its_own_tenants_devices(stack):
    cloud, keys, devices, watcher = stack
    other_psp = cloud.new_key("psp", "t2")
    assert cloud.post_payment({"device": OWN, "amount": 2500, "txn": "t1-pay"}, key=keys["psp"])[0] == 202
    watcher.settle()
    published = len(watcher.seen)
    status, answer = cloud.post_payment({"device": OWN, "amount": 99_999_999_999, "txn": "t2-pay"}, key=other_psp)
    assert (status, answer) == (404, {"error": "unknown device %s" % OWN, "field": "device"})
    # t2 cannot read t1's payment, nor learn which device a taken txn went to.
    assert request(cloud.url, "GET", "/payments/t1-pay", key=other_psp)[0] == 404
    status, answer = cloud.post_payment({"device": OTHER, "amount": 2500, "txn": "t1-pay"}, key=other_psp)
    assert status == 409 and OWN not in answer["error"] and "2500" not in answer["error"]
    watcher.settle()
    assert len(watcher.seen) == published


def test_no_tenant_can_claim_a_box_the_platform_has_not_assigned(broker, stack):
    cloud, keys, devices, watcher = stack
    stray = FakeDevice(broker, "sb-0003")
    try:
        stray.publish("status", {"state": "online", "fw": "1.0.0"}, retain=True)
        wait_until(lambda: cloud.get("/devices/sb-0003")[0] == 200)   # online, assigned to nobody
        for device in ("sb-0003", "sb-0999"):
            status, answer = cloud.post("/devices", {"id": device, "name": "Mine now"}, key=keys["operator"])
            assert (status, answer["field"]) == (404, "device"), answer
        assert cloud.cloud.store.device("sb-0003")["tenant"] is None and cloud.cloud.store.device("sb-0999") is None
        assert cloud.post("/devices", {"id": "sb-0003", "tenant": "t1"})[0] == 201   # the admin assigns it
        assert cloud.post("/devices", {"id": "sb-0003", "name": "Mine now"}, key=keys["operator"])[0] == 201
    finally:
        stray.close()


def test_rate_limit_answers_429_with_retry_after(stack):
    cloud, keys, devices, watcher = stack
    slow = cloud.new_key("viewer", "t1", rate=1)   # burst: 2 requests
    statuses = [request(cloud.url, "GET", "/devices", key=slow)[0] for _ in range(3)]
    assert statuses == [200, 200, 429]
    conn = http.client.HTTPConnection("127.0.0.1", cloud.server.port, timeout=5)
    conn.request("GET", "/devices", headers={"Authorization": "Bearer " + slow})
    response = conn.getresponse()
    body = json.loads(response.read())
    conn.close()
    assert response.status == 429 and int(response.getheader("Retry-After")) >= 1 and "rate limit" in body["error"]
    # Another key is not slowed by this one.
    assert request(cloud.url, "GET", "/devices", key=keys["viewer"])[0] == 200


def test_every_state_changing_call_leaves_an_audit_row_and_no_token(stack):
    cloud, keys, devices, watcher = stack
    assert cloud.post_payment({"device": OWN, "amount": 100, "txn": "audited"}, key=keys["psp"])[0] == 202
    assert cloud.post_payment({"device": OWN, "amount": 100, "txn": "refused"}, key=keys["viewer"])[0] == 403
    assert cloud.post("/devices/%s/commands" % OWN, {"cmd": "replay"}, key=keys["operator"])[0] == 202
    assert cloud.post("/devices/%s/commands" % OWN, {"cmd": "replay"}, key=keys["viewer"])[0] == 403
    assert cloud.post("/devices/%s/commands" % OTHER, {"cmd": "replay"}, key=keys["operator"])[0] == 404
    rows = cloud.cloud.audit.rows(limit=10)
    got = [(r["role"], r["action"], r["target"], r["status"]) for r in rows[:4]]
    assert got == [("operator", "commands:send", OTHER, 404), ("viewer", "commands:send", OWN, 403),
                   ("operator", "commands:send", OWN, 200), ("viewer", "payments:create", "refused", 403)]
    assert all(r["at_ms"] and r["key_id"] for r in rows[:4])
    status, listed = cloud.get("/audit?limit=4")
    assert status == 200 and [(r["action"], r["status"]) for r in listed] == [(a, s) for _, a, _, s in got]
    assert cloud.get("/audit?limit=0")[0] == 400 and cloud.get("/audit?limit=x")[0] == 400
    # An accepted payment is its own audit record: which key sent it, when.
    psp_key_id = keys["psp"][len("sbk_"):len("sbk_") + 10]
    record = cloud.cloud.store._one("SELECT key_id, sent_ms FROM payments WHERE txn = 'audited'")
    assert record["key_id"] == psp_key_id and record["sent_ms"]
    with open(cloud.db_path, "rb") as f:
        data = f.read()
    for token in keys.values():
        secret = token[len("sbk_") + 11:]   # sbk_<10 hex id>_<secret>
        assert token.encode() not in data and secret.encode() not in data
