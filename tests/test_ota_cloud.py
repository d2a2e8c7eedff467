"""Cloud side of OTA: artifact store, chunk server, campaign engine, HTTP API and CLI.

The chunk server and the HTTP API run against a real mosquitto with a plain paho client
playing the device (it publishes what the wire protocol says a device publishes). The
campaign engine's unit tests use a real SQLite file, real artifacts and an injected clock;
only its publish callable is a recorder, standing in for the MQTT client, so each test can
see exactly which jobs and cancels went out at which tick.
"""
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from paho.mqtt.enums import CallbackAPIVersion

from soundbox import otamanifest
from soundbox.otatransfer import ChunkRefused, Transfer
from soundbox_cloud.artifacts import ArtifactError, ArtifactStore, manifest_id
from soundbox_cloud.campaign_store import CampaignStore
from soundbox_cloud.campaigns import Campaigns, in_window, wave_sizes
from soundbox_cloud.chunkserver import DEFAULT_BURST, REFUSED_INDEX, ChunkServer
from soundbox_cloud.client import ApiError, call
from soundbox_cloud.cloud import Cloud
from soundbox_cloud.errors import Rejected
from soundbox_cloud.store import Store
from soundbox_tools import cli, cliargs, ota, procs
from test_cloud import wait_until

from cloudapi import RunningCloud, make_key, request

MODEL = "soundbox-sim"
T0 = 1_700_000_000_000   # 2023-11-14 22:13:20 UTC, in ms


def chunk_table(data, chunk_size=4096):
    """Every chunk's SHA-256, 32 bytes each, in order (what the manifest names by its hash)."""
    return b"".join(hashlib.sha256(data[i:i + chunk_size]).digest() for i in range(0, len(data), chunk_size))


def split_job(payload):
    """(JSON head, chunk table or None) of a message on sb/<id>/ota/job."""
    head, newline, table = payload.partition(b"\n")
    return json.loads(head), (table if newline else None)


# The release keys every test here signs with: `soundbox ota keygen` in the session's PKI (which
# keeps keys that exist, so the end-to-end tests trust the same ones), as the cloud reads them.
RELEASE = {}


@pytest.fixture(scope="module", autouse=True)
def release_keys(pki):
    ota.keygen(pki.root)
    RELEASE["keys"] = [ota.load_key(p) for p in sorted(ota.key_dir(pki.root).glob("release-*.key"))]
    RELEASE["trusted"] = str(ota.key_dir(pki.root) / "trusted.json")
    return RELEASE["keys"]


def artifact_store(directory, **kw):
    """An ArtifactStore that checks signatures against the session's trusted release keys."""
    return ArtifactStore(directory, trusted=RELEASE["trusted"], **kw)


def signed_manifest(data, version="2.0.0", counter=2, chunk_size=4096, kind="firmware", art_name=None):
    return {"format": 1, "model": MODEL, "kind": kind, "name": art_name or kind, "version": version,
            "counter": counter, "size": len(data), "chunk_size": chunk_size,
            "sha256": hashlib.sha256(data).hexdigest(),
            "chunk_table": hashlib.sha256(chunk_table(data, chunk_size)).hexdigest(),
            "expires": max(T0 // 1000, int(time.time())) + 30 * 86400}


def release(directory, name, data, version="2.0.0", counter=2, chunk_size=4096, kind="firmware", art_name=None,
            signers=None):
    """Write <name>.bin + a signed <name>.manifest.json (real P-256 signature, by the first release
    key unless `signers` says otherwise); returns the envelope."""
    manifest = signed_manifest(data, version, counter, chunk_size, kind, art_name)
    envelope = ota.sign(manifest, RELEASE["keys"][:1] if signers is None else signers)
    (directory / (name + ".bin")).write_bytes(data)
    (directory / (name + ".manifest.json")).write_text(json.dumps(envelope))
    return envelope


def payload_bytes(n, seed=b"fw"):
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(seed + counter.to_bytes(4, "big")).digest()
        counter += 1
    return bytes(out[:n])


# ---- artifact store ------------------------------------------------------------------

def test_artifact_registers_and_reads_chunks_from_the_file(tmp_path):
    data = payload_bytes(3 * 4096 + 100)
    envelope = release(tmp_path, "fw-2", data)
    store = artifact_store(tmp_path)
    [artifact] = store.load_all()
    assert artifact.id == manifest_id(envelope["manifest"]) == store.get("fw-2").id
    assert store.get(artifact.id) is artifact and artifact.chunk_count == 4
    assert artifact.chunk(0) == data[:4096] and artifact.chunk(3) == data[3 * 4096:]
    assert artifact.table == chunk_table(data)   # computed from the binary, sent with each job
    store.close()


@pytest.mark.parametrize("damage, reason", [
    (lambda d: d[:-1], "is 16383 bytes but its manifest says 16384"),
    (lambda d: d[:5] + b"X" + d[6:], "has sha256"),
])
def test_mismatched_binary_is_refused_with_the_reason(tmp_path, caplog, damage, reason):
    data = payload_bytes(4 * 4096)
    release(tmp_path, "bad", data)
    (tmp_path / "bad.bin").write_bytes(damage(data))
    store = artifact_store(tmp_path)
    with pytest.raises(ArtifactError, match=reason):
        store.register("bad")
    assert store.load_all() == [] and "bad.bin " + reason.split(" but")[0] in caplog.text
    assert store.get("bad") is None


def test_mix_and_match_chunk_is_refused(tmp_path):
    """Whole-file hash matches a manifest (signed by a trusted key, say by mistake), but its
    chunk table is another's."""
    data = payload_bytes(2 * 4096)
    envelope = release(tmp_path, "mix", data)
    manifest = json.loads(envelope["manifest"])
    manifest["chunk_table"] = hashlib.sha256(chunk_table(payload_bytes(2 * 4096, b"other"))).hexdigest()
    (tmp_path / "mix.manifest.json").write_text(json.dumps(ota.sign(manifest, RELEASE["keys"][:1])))
    with pytest.raises(ArtifactError, match="mix.bin: its chunk table does not match the manifest's chunk_table"):
        artifact_store(tmp_path).register("mix")
    manifest["chunk_table"] = "deadbeef"
    (tmp_path / "mix.manifest.json").write_text(json.dumps(ota.sign(manifest, RELEASE["keys"][:1])))
    with pytest.raises(ArtifactError, match="chunk_table must be 64 lower-case hex digits"):
        artifact_store(tmp_path).register("mix")


def test_malformed_envelopes_are_refused(tmp_path):
    store = artifact_store(tmp_path)
    for raw, reason in ((b"{", "not JSON"), (b'{"manifest": {}}', "JSON string"),
                        (b'{"manifest": "{}", "signatures": [{}]}', "format must be 1")):
        (tmp_path / "x.bin").write_bytes(b"1")
        (tmp_path / "x.manifest.json").write_bytes(raw)
        with pytest.raises(ArtifactError, match=reason):
            store.register("x")
    with pytest.raises(ArtifactError, match="name must match"):
        store.register("../etc/passwd")


# ---- running cloud against a real broker -----------------------------------------------

class Device:
    """A paho client standing in for a soundbox's OTA agent (no ESP32 here)."""

    def __init__(self, broker, device_id):
        self.id = device_id
        self.chunks = []    # (index, bytes)
        self.jobs = []      # the JSON heads of job messages
        self.tables = []    # the chunk tables after them (None for a cancel)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device_id)
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.client.subscribe([("sb/%s/ota/chunk" % device_id, 0), ("sb/%s/ota/job" % device_id, 1)])
        assert subscribed.wait(5)

    def _on_message(self, client, userdata, msg):
        if msg.topic.endswith("/chunk"):
            self.chunks.append((int.from_bytes(msg.payload[:4], "big"), msg.payload[4:]))
        else:
            head, table = split_job(msg.payload)
            self.jobs.append(head)
            self.tables.append(table)

    def publish(self, kind, message, qos=1, retain=False):
        payload = message if isinstance(message, bytes) else json.dumps(message)
        self.client.publish("sb/%s/%s" % (self.id, kind), payload, qos=qos, retain=retain).wait_for_publish(5)

    def announce(self, version="1.0.0"):
        self.publish("status", {"state": "online", "fw": version}, retain=True)
        self.publish("telemetry", {"battery": 90, "fw": version, "heap": 1, "model": MODEL,
                                   "versions": {"firmware": version, "app": version}}, qos=0)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def ota_cloud(broker, tmp_path, pki):
    """A RunningCloud (Cloud + HTTP API, admin key) serving fw-2; .data and .envelope are fw-2's."""
    ota_dir = tmp_path / "ota"
    ota_dir.mkdir()
    data = payload_bytes(20 * 1024 + 7)
    envelope = release(ota_dir, "fw-2", data, chunk_size=1024)
    running = RunningCloud(broker.url, tmp_path / "cloud.db", pki.root, ota_dir=ota_dir, tick_s=0.05)
    running.data, running.envelope = data, envelope
    yield running
    running.close()


def api(running, method, path, body=None, data=None, key=None):
    """client.call on the running cloud's API with its admin key (or `key`); ApiError when refused."""
    return call(running.url, method, path, body=body, data=data, api_key=key or running.key)


@pytest.fixture
def dev(broker):
    d = Device(broker, "sb-0001")
    yield d
    d.close()


def test_requested_chunks_come_back_as_exact_binary(ota_cloud, dev):
    mid = manifest_id(ota_cloud.envelope["manifest"])
    dev.publish("ota/req", {"campaign": "c-1", "manifest": mid, "chunks": [[0, 1], [20, 20]]}, qos=0)
    wait_until(lambda: len(dev.chunks) == 3)
    data = ota_cloud.data
    assert dev.chunks == [(0, data[:1024]), (1, data[1024:2048]), (20, data[20 * 1024:])]
    assert len(dev.chunks[2][1]) == 7   # the short last chunk


@pytest.mark.parametrize("request_body", [
    {"manifest": "0123456789abcdef", "chunks": [[0, 0]]},        # unknown manifest
    {"chunks": [[20, 21]]},                                      # past the last chunk
    {"chunks": [[-1, 0]]},                                       # negative
    {"chunks": [[0, 16]]},                                       # 17 chunks
    {"chunks": [[0, 9], [10, 16]]},                              # 17 over two ranges
    {"chunks": [[0, 10 ** 12]]},                                 # huge range, refused without expanding
    {"chunks": [[3, 1]]},                                        # backwards
    {"chunks": "0-3"},                                           # not ranges
    b"\xff not json",
])
def test_bad_chunk_requests_are_refused_and_the_server_keeps_serving(ota_cloud, dev, caplog, request_body):
    mid = manifest_id(ota_cloud.envelope["manifest"])
    if isinstance(request_body, dict):
        request_body = dict({"campaign": "c-1", "manifest": mid}, **request_body)
    dev.publish("ota/req", request_body, qos=0)
    dev.publish("ota/req", {"campaign": "c-1", "manifest": mid, "chunks": [[5, 5]]}, qos=0)
    wait_until(lambda: dev.chunks)
    time.sleep(0.1)
    assert dev.chunks == [(5, ota_cloud.data[5 * 1024:6 * 1024])]   # only the good request was answered
    assert ota_cloud.cloud.bad_messages == 1 and "dropped ota/req from sb-0001" in caplog.text


def test_sixteen_chunks_is_the_largest_request(ota_cloud, dev):
    mid = manifest_id(ota_cloud.envelope["manifest"])
    dev.publish("ota/req", {"campaign": "c-1", "manifest": mid, "chunks": [[0, 7], [12, 19]]}, qos=0)
    wait_until(lambda: len(dev.chunks) == 16)
    assert [i for i, _ in dev.chunks] == list(range(8)) + list(range(12, 20))


def test_campaign_over_the_broker_sends_the_job_and_follows_status(ota_cloud, dev, broker):
    dev.announce("1.0.0")
    wait_until(lambda: (ota_cloud.cloud.campaign_store.profiles().get("sb-0001") or {}).get("model") == MODEL)
    status = api(ota_cloud, "POST", "/ota/campaigns", {"artifact": "fw-2", "waves": [100]})
    cid = status["id"]
    wait_until(lambda: dev.jobs)
    assert dev.jobs == [{"campaign": cid, "envelope": ota_cloud.envelope}]
    assert dev.tables == [chunk_table(ota_cloud.data, 1024)]   # binary, after the JSON line
    mid = manifest_id(ota_cloud.envelope["manifest"])
    report = {"campaign": cid, "manifest": mid, "kind": "firmware", "name": "firmware", "version": "2.0.0",
              "reason": "", "have": 0, "total": 21, "running": "1.0.0"}
    dev.publish("ota/status", dict(report, state="downloading"))
    wait_until(lambda: api(ota_cloud, "GET", "/ota/campaigns/" + cid)["devices"][0]["state"] == "downloading")
    dev.publish("ota/status", dict(report, state="confirmed", have=21, running="2.0.0"))
    done = wait_until(lambda: (lambda s: s if s["state"] == "completed" else None)(
        api(ota_cloud, "GET", "/ota/campaigns/" + cid)))
    assert done["totals"]["succeeded"] == 1 and done["waves"][0]["states"] == {"confirmed": 1}
    assert ota_cloud.cloud.campaign_store.profiles()["sb-0001"]["versions"]["firmware"] == "2.0.0"


def test_broker_acl_lets_the_cloud_serve_ota(tls_broker, tmp_path, pki):
    """Over mTLS the broker's cloud roles must allow the cloud's OTA topics (mosquitto drops
    silently): jobs and statuses on the cloud's connection, chunks on its bulk one."""
    from soundbox_tools.broker import dynsec_config
    roles = {r["rolename"]: {(a["acltype"], a["topic"]) for a in r["acls"] if a["allow"]}
             for r in dynsec_config([], "secret")["roles"]}
    for right in (("publishClientSend", "sb/+/ota/job"), ("publishClientReceive", "sb/+/ota/status"),
                  ("subscribePattern", "$share/+/sb/+/ota/status")):
        assert right in roles["cloud"]
    for right in (("publishClientSend", "sb/+/ota/chunk"), ("publishClientReceive", "sb/+/ota/req"),
                  ("subscribePattern", "$share/+/sb/+/ota/req")):
        assert right in roles["cloud-bulk"]
    ota_dir = tmp_path / "ota"
    ota_dir.mkdir()
    envelope = release(ota_dir, "fw-2", payload_bytes(2048), chunk_size=1024)
    device_dir = pki.device_dir("sb-0001")
    with Cloud(tls_broker.url, tmp_path / "c.db", certs=pki.root, ota_dir=ota_dir, tick_s=0) as cloud:
        got = []
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="sb-0001")
        client.tls_set(ca_certs=os.path.join(pki.root, "ca.pem"), certfile=os.path.join(device_dir, "device.pem"),
                       keyfile=os.path.join(device_dir, "device.key"))
        client.on_message = lambda c, u, msg: got.append(msg.payload)
        subscribed = threading.Event()
        client.on_subscribe = lambda *a: subscribed.set()
        client.connect(tls_broker.host, tls_broker.port)
        client.loop_start()
        try:
            client.subscribe("sb/sb-0001/ota/chunk", 0)
            assert subscribed.wait(5)
            client.publish("sb/sb-0001/ota/req", json.dumps({"campaign": "c", "manifest": manifest_id(
                envelope["manifest"]), "chunks": [[1, 1]]}), qos=0)
            wait_until(lambda: got)
            assert got == [(1).to_bytes(4, "big") + payload_bytes(2048)[1024:]]
            assert cloud.chunks.chunks_sent == 1
        finally:
            client.disconnect()
            client.loop_stop()


# ---- HTTP API and CLI -----------------------------------------------------------------

def put(running, path, data, key=None):
    return api(running, "PUT", path, data=data, key=key)


def test_upload_over_http_checks_the_binary_against_the_envelope(ota_cloud, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    data = payload_bytes(5000, b"v3")
    envelope = release(src, "fw-3", data, version="3.0.0", counter=3)
    raw = (src / "fw-3.manifest.json").read_bytes()
    with pytest.raises(ApiError, match="upload fw-3.manifest.json before fw-3.bin") as e:
        put(ota_cloud, "/ota/artifacts/fw-3.bin", data)
    assert e.value.status == 409
    assert put(ota_cloud, "/ota/artifacts/fw-3.manifest.json", raw)["next"] == "PUT /ota/artifacts/fw-3.bin"
    with pytest.raises(ApiError, match="fw-3.bin is 4999 bytes but its manifest says 5000") as e:
        put(ota_cloud, "/ota/artifacts/fw-3.bin", data[:-1])
    assert e.value.status == 422 and not os.path.exists(os.path.join(ota_cloud.cloud.artifacts.directory, "fw-3.bin"))
    assert api(ota_cloud, "GET", "/ota/artifacts")[0]["name"] == "fw-2"   # still only the first one
    summary = put(ota_cloud, "/ota/artifacts/fw-3.bin", data)
    assert summary["manifest"] == manifest_id(envelope["manifest"]) and summary["chunks"] == 2
    assert [a["name"] for a in api(ota_cloud, "GET", "/ota/artifacts")] == ["fw-2", "fw-3"]
    with pytest.raises(ApiError, match="not JSON") as e:
        put(ota_cloud, "/ota/artifacts/fw-4.manifest.json", b"nope")
    assert e.value.status == 422
    with pytest.raises(ApiError, match="already registered"):
        put(ota_cloud, "/ota/artifacts/fw-3.manifest.json", raw)


def refused_upload(running, name, envelope):
    """The (status, field, reason) the cloud answers an envelope upload it refuses."""
    with pytest.raises(ApiError) as e:
        put(running, "/ota/artifacts/%s.manifest.json" % name, json.dumps(envelope).encode())
    return e.value.status, e.value.field, str(e.value)


def test_an_upload_devices_could_not_verify_is_refused_with_the_reason(ota_cloud, tmp_path):
    """The cloud runs the device's trust rule against <certs>/ota/trusted.json before it stores
    anything: a stranger's signature, a forged manifest, a key change signed by one of the two
    trusted keys, a new key that is not hex. Nothing is stored; a good upload still works."""
    data = payload_bytes(5000, b"v3")
    stranger = ec.generate_private_key(ec.SECP256R1())
    manifest = signed_manifest(data, version="3.0.0", counter=3)
    status, field, reason = refused_upload(ota_cloud, "fw-3", ota.sign(manifest, [stranger]))
    assert (status, field) == (422, "signatures") and reason.startswith("fw-3.manifest.json: signatures: untrusted key")
    forged = ota.sign(manifest, RELEASE["keys"][:1])
    forged["manifest"] = forged["manifest"].replace('"counter":3', '"counter":9')
    assert refused_upload(ota_cloud, "fw-3", forged)[1:] == ("signatures", "fw-3.manifest.json: signatures: bad signature")
    rotation = dict(manifest, keys=[ota.public_bytes(stranger).hex()])
    assert refused_upload(ota_cloud, "fw-3", ota.sign(rotation, RELEASE["keys"][:1]))[2] == \
        "fw-3.manifest.json: signatures: key change needs signatures by 2 of the 2 trusted keys, 1 verified"
    bad_key = dict(manifest, keys=["zz" * 65])
    assert refused_upload(ota_cloud, "fw-3", ota.sign(bad_key, RELEASE["keys"]))[2] == \
        "fw-3.manifest.json: devices would refuse it: malformed manifest: key zzzzzzzzzzzzzzzz... is not hex"
    assert not os.path.exists(os.path.join(ota_cloud.cloud.artifacts.directory, "fw-3.manifest.json"))
    good = ota.sign(rotation, RELEASE["keys"])  # both keys: the key change is accepted
    assert put(ota_cloud, "/ota/artifacts/fw-3.manifest.json", json.dumps(good).encode())["stored"] == "fw-3.manifest.json"
    assert put(ota_cloud, "/ota/artifacts/fw-3.bin", data)["version"] == "3.0.0"


def test_an_artifact_without_a_trusted_key_list_is_not_registered(tmp_path, caplog):
    release(tmp_path, "fw-2", payload_bytes(5000))
    store = ArtifactStore(tmp_path, trusted=str(tmp_path / "missing.json"))
    assert store.load_all() == [] and store.get("fw-2") is None
    assert "fw-2.manifest.json: cannot verify signatures: no trusted release key list at %s" \
        % (tmp_path / "missing.json") in caplog.text
    with pytest.raises(ArtifactError, match="the cloud has no trusted release key list"):
        ArtifactStore(tmp_path).register("fw-2")


def test_a_job_larger_than_the_device_packet_limit_is_refused_at_upload(ota_cloud):
    """`ota sign --chunk-size 256` on a 512 KiB image: 2048 chunks make a 64 KiB chunk table,
    over the 64 KiB MQTT packet a device takes (it would drop the link on every redelivery)."""
    data = payload_bytes(512 * 1024, b"big")
    status, field, reason = refused_upload(ota_cloud, "fw-big", ota.sign(signed_manifest(data, chunk_size=256),
                                                                   RELEASE["keys"][:1]))
    assert (status, field) == (422, "chunk_size")
    room = otamanifest.job_room(otamanifest.longest_job_topic())
    assert reason.startswith("fw-big.manifest.json: the job message would be ") and (
        "over the %d a device takes on %s (its MQTT packet limit is 65536 bytes): 2048 chunks of 256 bytes make "
        "a 65536-byte chunk table, the envelope" % (room, otamanifest.longest_job_topic())) in reason
    fits = ota.sign(signed_manifest(data, chunk_size=1024), RELEASE["keys"][:1])  # 512 chunks: 16 KiB of table
    assert put(ota_cloud, "/ota/artifacts/fw-big.manifest.json", json.dumps(fits).encode())["stored"]
    assert put(ota_cloud, "/ota/artifacts/fw-big.bin", data)["chunks"] == 512


def test_a_job_padded_with_signatures_is_refused_at_upload(ota_cloud):
    """A release re-uploaded with thousands of extra signatures, or with few but huge ones: the
    first is over the signature limit, the second over the packet limit; both are refused."""
    data = payload_bytes(5000, b"v3")
    envelope = ota.sign(signed_manifest(data, version="3.0.0", counter=3), RELEASE["keys"][:1])
    padded = dict(envelope, signatures=envelope["signatures"] + [{"key": "00" * 8, "sig": "30" * 70}] * 3000)
    assert refused_upload(ota_cloud, "fw-3", padded) == (
        422, "signatures", "fw-3.manifest.json: signatures: malformed envelope: 3001 signatures, at most 8")
    huge = dict(envelope, signatures=envelope["signatures"] + [{"key": "00" * 8, "sig": "30" * 5000}] * 7)
    status, field, reason = refused_upload(ota_cloud, "fw-3", huge)
    assert (status, field) == (422, "envelope") and "the envelope and its signatures take 7" in reason
    assert api(ota_cloud, "GET", "/ota/artifacts")[0]["name"] == "fw-2" and len(api(ota_cloud, "GET", "/ota/artifacts")) == 1


@pytest.mark.parametrize("method, path, body, status, reason", [
    ("POST", "/ota/campaigns", {"artifact": "nope"}, 404, "no registered artifact"),
    ("POST", "/ota/campaigns", {"artifact": "fw-2", "waves": [50, 10, 100]}, 400, "waves must be increasing"),
    ("POST", "/ota/campaigns", {"artifact": "fw-2", "waves": [1, 50]}, 400, "ending at 100"),
    ("POST", "/ota/campaigns", {"artifact": "fw-2", "window": "25:00-01:00"}, 400, "HH:MM-HH:MM"),
    ("POST", "/ota/campaigns", {"artifact": "fw-2", "tz": "Mars/Olympus"}, 400, "IANA time zone"),
    ("POST", "/ota/campaigns", {"artifact": "fw-2", "max_concurrent": 0}, 400, "max_concurrent must be"),
    ("POST", "/ota/campaigns", {"artifact": "fw-2", "colour": "red"}, 400, "unknown field 'colour'"),
    ("POST", "/ota/campaigns", {"artifact": "fw-2", "target": {"model": "soundbox-esp32"}}, 422,
     "built for soundbox-sim"),
    ("POST", "/ota/campaigns", {"artifact": "fw-2"}, 422, "no device matches"),
    ("POST", "/ota/campaigns", [1], 400, "JSON object"),
    ("GET", "/ota/campaigns/c-nope", None, 404, "unknown campaign c-nope"),
    ("POST", "/ota/campaigns/c-nope/abort", None, 404, "unknown campaign"),
    ("DELETE", "/ota/campaigns", None, 405, "not allowed"),
    ("GET", "/ota/campaigns/c-1/abort", None, 405, "not allowed"),
    ("GET", "/ota/nothing", None, 404, "no such path"),
    ("POST", "/devices/sb-0009/tags", {"add": ["pilot"]}, 404, "unknown device"),
    ("POST", "/ota/artifacts", {"name": "absent"}, 404, "cannot read absent.manifest.json"),
])
def test_bad_ota_requests_get_a_4xx_with_the_reason(ota_cloud, method, path, body, status, reason):
    with pytest.raises(ApiError) as e:
        api(ota_cloud, method, path, body=body, data=b"" if body is None and method == "POST" else None)
    assert e.value.status == status and reason in str(e.value)


def test_tags_target_a_campaign(ota_cloud, broker):
    devices = [Device(broker, "sb-%04d" % n) for n in (1, 2, 3)]
    try:
        for d in devices:
            d.announce("1.0.0")
        wait_until(lambda: sum(p["model"] == MODEL for p in ota_cloud.cloud.campaign_store.profiles().values()) == 3)
        assert api(ota_cloud, "POST", "/devices/sb-0002/tags", {"add": ["pilot", "delhi"]})["tags"] == \
            ["delhi", "pilot"]
        with pytest.raises(ApiError, match=r"add must be a list of at most 100 tags \(\[A-Za-z0-9\]") as e:
            api(ota_cloud, "POST", "/devices/sb-0002/tags", {"add": ["bad tag"]})
        assert (e.value.status, e.value.field) == (400, "add")
        status = api(ota_cloud, "POST", "/ota/campaigns", {"artifact": "fw-2", "target": {"tags": ["pilot"]}})
        assert [d["device"] for d in status["devices"]] == ["sb-0002"]
        wait_until(lambda: devices[1].jobs)
        with pytest.raises(ApiError, match="still running") as e:
            api(ota_cloud, "POST", "/ota/campaigns", {"artifact": "fw-2"})
        assert e.value.status == 409
        assert devices[0].jobs == devices[2].jobs == []
    finally:
        for d in devices:
            d.close()

def test_ota_rollout_stays_inside_the_callers_tenant(ota_cloud, broker):
    """Over the real HTTP API: a tenant's operator rolls out to its own devices only (another
    tenant's box of the same model is left alone and cannot be named), another tenant's
    operator cannot see or steer the campaign (404, as for an unknown id), a viewer cannot
    start one (403), and only the platform (admin) may publish artifacts (403, nothing written)."""
    owners = {"sb-0001": "t1", "sb-0002": "t2", "sb-0003": "t1"}
    for device, tenant in owners.items():
        assert ota_cloud("POST", "/devices", {"id": device, "tenant": tenant})[0] == 201
    devices = {d: Device(broker, d) for d in owners}
    try:
        for d in devices.values():
            d.announce("1.0.0")
        wait_until(lambda: sum(p["model"] == MODEL for p in ota_cloud.cloud.campaign_store.profiles().values()) == 3)
        t1, t2 = ota_cloud.new_key("operator", "t1"), ota_cloud.new_key("operator", "t2")
        viewer = ota_cloud.new_key("viewer", "t1")
        status, body = ota_cloud("POST", "/ota/campaigns", {"artifact": "fw-2", "target": {"devices": ["sb-0002"]}},
                                 key=t1)
        assert (status, body["field"]) == (422, "target.devices") and "unknown device sb-0002" in body["error"]
        status, body = ota_cloud("POST", "/ota/campaigns", {"artifact": "fw-2", "waves": [100]}, key=viewer)
        assert status == 403 and "role viewer may not ota:rollout" in body["error"]
        assert ota_cloud.cloud.campaign_store.campaigns() == []   # neither refusal made a campaign

        status, created = ota_cloud("POST", "/ota/campaigns", {"artifact": "fw-2", "waves": [100]}, key=t1)
        assert status == 201, created
        cid = created["id"]
        assert sorted(d["device"] for d in created["devices"]) == ["sb-0001", "sb-0003"]
        wait_until(lambda: devices["sb-0001"].jobs and devices["sb-0003"].jobs)
        assert devices["sb-0002"].jobs == []   # jobs go out in the creating tick: none was sent to t2's box

        for method, path in (("GET", "/ota/campaigns/" + cid), ("POST", "/ota/campaigns/%s/pause" % cid)):
            status, body = ota_cloud(method, path, key=t2)
            assert (status, body["error"]) == (404, "unknown campaign %s" % cid), (method, body)
        assert ota_cloud("GET", "/ota/campaigns", key=t2) == (200, [])
        assert [c["id"] for c in ota_cloud("GET", "/ota/campaigns", key=t1)[1]] == [cid]
        status, seen = ota_cloud("GET", "/ota/campaigns/" + cid, key=viewer)
        assert status == 200 and seen["state"] == "running"   # t2's pause did nothing

        src = ota_cloud.cloud.artifacts.directory
        before = sorted(os.listdir(src))
        data = payload_bytes(3000, b"t1")
        envelope = ota.sign(signed_manifest(data, version="3.0.0", counter=3), RELEASE["keys"][:1])
        for filename, upload in (("fw-3.manifest.json", json.dumps(envelope).encode()), ("fw-3.bin", data)):
            status, body = ota_cloud("PUT", "/ota/artifacts/" + filename, upload, key=t1)
            assert status == 403 and "role operator may not ota:publish" in body["error"], (filename, body)
        assert ota_cloud("POST", "/ota/artifacts", {"name": "fw-2"}, key=t1)[0] == 403
        assert sorted(os.listdir(src)) == before and ota_cloud.cloud.artifacts.get("fw-3") is None
        # The same upload by the admin is stored: the operator was refused for its role alone.
        assert ota_cloud("PUT", "/ota/artifacts/fw-3.manifest.json", json.dumps(envelope).encode())[0] == 201
        assert ota_cloud("PUT", "/ota/artifacts/fw-3.bin", data)[1]["version"] == "3.0.0"
    finally:
        for d in devices.values():
            d.close()



def test_cli_create_status_abort_and_errors(ota_cloud, dev, capsys):
    dev.announce("1.0.0")
    wait_until(lambda: (ota_cloud.cloud.campaign_store.profiles().get("sb-0001") or {}).get("model") == MODEL)
    base = ["--cloud", ota_cloud.url, "--api-key", ota_cloud.key]
    assert cli.main(["ota", "campaign", "create", "--artifact", "fw-2", "--waves", "100"] + base) == 0
    out = capsys.readouterr().out
    assert "created: soundbox-sim firmware 2.0.0 to 1 devices in 1 waves" in out
    cid = out.split()[1]
    assert cli.main(["ota", "campaign", "status", cid, "--devices"] + base) == 0
    out = capsys.readouterr().out
    assert "%s running, wave 1/1: 0/1 succeeded" % cid in out and "sb-0001" in out and "sent" in out
    assert cli.main(["ota", "campaign", "abort", cid] + base) == 0
    assert "aborted" in capsys.readouterr().out
    wait_until(lambda: {"campaign": cid, "cancel": True} in dev.jobs)
    # --watch on a finished campaign (stdout is not a terminal here): plain lines, then it returns.
    assert cli.main(["ota", "campaign", "status", cid, "--watch"] + base) == 0
    assert "aborted" in capsys.readouterr().out
    for argv, reason in (
            (["status", "c-nope"], "unknown campaign c-nope"),
            (["resume", cid], "campaign %s is aborted" % cid),
            (["create"], "exactly one of --artifact"),
            (["create", "--artifact", "fw-2", "--waves", "1,x"], "--waves must be comma-separated"),
            (["create", "--upload", "/nonexistent/x.bin"], "cannot read /nonexistent/x.manifest.json")):
        assert cli.main(["ota", "campaign"] + argv + base) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("soundbox ota: ") and reason in err and "\n" not in err


def test_cli_upload_creates_the_campaign_from_files(ota_cloud, dev, tmp_path, capsys):
    dev.announce("1.0.0")
    wait_until(lambda: (ota_cloud.cloud.campaign_store.profiles().get("sb-0001") or {}).get("model") == MODEL)
    src = tmp_path / "rel"
    src.mkdir()
    release(src, "firmware-3.0.0", payload_bytes(3000, b"3"), version="3.0.0", counter=3)
    assert cli.main(["ota", "campaign", "create", "--upload", str(src / "firmware-3.0.0.bin"),
                     "--cloud", ota_cloud.url, "--api-key", ota_cloud.key]) == 0
    assert "firmware 3.0.0 to 1 devices" in capsys.readouterr().out
    assert ota_cloud.cloud.artifacts.get("firmware-3.0.0") is not None


# ---- campaign engine with an injected clock --------------------------------------------

class Rig:
    """The engine over a real SQLite file and real artifacts; publish is recorded."""

    def __init__(self, tmp_path, n_devices, version="1.0.0"):
        self.now = T0
        self.sent = []        # (topic, decoded JSON head)
        self.tables = []      # the chunk table after each head (None for a cancel)
        self.connected = True
        ota = tmp_path / "ota"
        ota.mkdir()
        self.data = payload_bytes(8192)
        self.envelope = release(ota, "fw-2", self.data)
        self.manifest = manifest_id(self.envelope["manifest"])
        self.store = Store(tmp_path / "c.db")
        self.campaign_store = CampaignStore(tmp_path / "c.db")
        self.artifacts = artifact_store(ota)
        self.artifacts.load_all()
        self.engine = Campaigns(self.campaign_store, self.artifacts, self._publish, clock=lambda: self.now / 1000)
        self.ids = ["sb-%04d" % n for n in range(1, n_devices + 1)]
        for d in self.ids:
            self.store.set_device_status(d, "online", version, T0)
            self.campaign_store.set_profile(d, MODEL, {"firmware": version}, T0)

    def _publish(self, topic, payload):
        if not self.connected:
            return False
        head, table = split_job(payload)
        self.sent.append((topic, head))
        self.tables.append(table)
        return True

    def jobs(self):
        return [t.split("/")[1] for t, p in self.sent if "envelope" in p]

    def cancels(self):
        return [t.split("/")[1] for t, p in self.sent if p.get("cancel")]

    def create(self, **body):
        return self.engine.create(dict({"artifact": "fw-2"}, **body))["id"]

    def report(self, cid, device, state, reason=""):
        return self.engine.on_status(device, {"campaign": cid, "manifest": self.manifest, "kind": "firmware",
                                              "name": "firmware", "version": "2.0.0", "state": state,
                                              "reason": reason, "have": 2, "total": 2, "running": "1.0.0"})

    def tick(self, advance_ms=1000):
        self.now += advance_ms
        self.engine.tick()

    def status(self, cid):
        return self.engine.status(cid)

    def close(self):
        self.campaign_store.close()
        self.store.close()
        self.artifacts.close()


@pytest.fixture
def rig_factory(tmp_path):
    rigs = []

    def make(n, **kw):
        rigs.append(Rig(tmp_path, n, **kw))
        return rigs[-1]
    yield make
    for r in rigs:
        r.close()


def test_wave_sizes_are_cumulative_and_never_empty_at_the_start():
    assert wave_sizes([1, 10, 50, 100], 100) == [1, 10, 50, 100]
    assert wave_sizes([1, 10, 50, 100], 50) == [1, 5, 25, 50]
    assert wave_sizes([1, 10, 50, 100], 3) == [1, 1, 2, 3]
    assert wave_sizes([0.5, 100], 1000) == [5, 1000]


def test_waves_advance_when_the_success_rate_is_reached(rig_factory):
    rig = rig_factory(100)
    cid = rig.create(waves=[1, 10, 50, 100], success_rate=90, max_concurrent=1000)
    [first] = rig.jobs()
    assert rig.sent[0] == ("sb/%s/ota/job" % first, {"campaign": cid, "envelope": rig.envelope})
    assert rig.tables[0] == chunk_table(rig.data)
    rig.tick()
    assert rig.jobs() == [first]        # wave 2 waits for wave 1
    rig.report(cid, first, "downloading")
    rig.report(cid, first, "confirmed")
    rig.tick()
    assert len(rig.jobs()) == 10 and rig.status(cid)["wave"] == 2
    wave2 = rig.jobs()[1:]
    for d in wave2[:8]:                  # 8 of 9 = 89 % < 90 %
        rig.report(cid, d, "confirmed")
    rig.tick()
    assert len(rig.jobs()) == 10
    rig.report(cid, wave2[8], "confirmed")
    rig.tick()
    assert len(rig.jobs()) == 50 and rig.status(cid)["wave"] == 3
    for d in rig.jobs()[10:]:
        rig.report(cid, d, "confirmed")
    rig.tick()
    assert len(rig.jobs()) == 100 and len(set(rig.jobs())) == 100
    for d in rig.jobs()[50:]:
        rig.report(cid, d, "confirmed")
    rig.tick()
    status = rig.status(cid)
    assert status["state"] == "completed" and status["totals"]["succeeded"] == 100
    assert [w["devices"] for w in status["waves"]] == [1, 9, 40, 50]


def test_failures_pause_only_after_the_minimum_sample(rig_factory):
    rig = rig_factory(40)
    cid = rig.create(waves=[50, 100], success_rate=50, max_failure_rate=30, min_sample=5, max_concurrent=100)
    wave1 = rig.jobs()
    assert len(wave1) == 20
    rig.report(cid, wave1[0], "rolled_back", "self-test failed")
    rig.report(cid, wave1[1], "refused", "bad signature")
    rig.tick()
    assert rig.status(cid)["state"] == "running"     # 2 of 2 failed, but only 2 finished
    rig.report(cid, wave1[2], "confirmed")
    rig.report(cid, wave1[3], "confirmed")
    rig.tick()
    assert rig.status(cid)["state"] == "running"     # 2 of 4
    rig.report(cid, wave1[4], "confirmed")
    rig.tick()
    status = rig.status(cid)
    assert status["state"] == "paused" and "2 of 5 finished devices failed (40%, limit 30%)" in status["reason"]
    for d in wave1[5:]:                              # wave 1 now passes its 50 %, but the campaign is paused
        rig.report(cid, d, "confirmed")
    rig.tick()
    assert len(rig.jobs()) == 20 and rig.status(cid)["wave"] == 1
    rig.engine.resume(cid)                           # operator accepts the two failures
    assert len(rig.jobs()) == 40 and rig.status(cid)["state"] == "running"


def test_failure_count_threshold_and_a_broken_wave_stop_the_next_wave(rig_factory):
    rig = rig_factory(50)
    cid = rig.create(waves=[10, 100], max_failures=3, max_failure_rate=None)
    wave1 = rig.jobs()
    assert len(wave1) == 5
    for d in wave1[:2]:
        rig.report(cid, d, "failed", "stalled")
    rig.tick()
    # max_failures not reached, but with 95 % needed, 2 failures out of 5 already doom wave 1.
    status = rig.status(cid)
    assert status["state"] == "paused" and "wave 1 cannot reach 95% success: 2 of 5 devices failed" in status["reason"]
    assert len(rig.jobs()) == 5
    rig.engine.resume(cid)
    for d in wave1[2:]:
        rig.report(cid, d, "rolled_back")
    rig.tick()
    status = rig.status(cid)
    assert status["state"] == "paused" and "3 devices failed (limit 3)" in status["reason"]
    assert len(rig.jobs()) == 5 and status["waves"][0]["failed"] == 5


def test_concurrent_downloads_are_capped(rig_factory):
    rig = rig_factory(10)
    cid = rig.create(waves=[100], max_concurrent=3, success_rate=50)
    assert len(rig.jobs()) == 3
    first = rig.jobs()
    rig.report(cid, first[0], "downloading")
    rig.report(cid, first[1], "installing")
    rig.tick()
    assert len(rig.jobs()) == 3
    rig.report(cid, first[0], "confirmed")
    rig.tick()
    assert len(rig.jobs()) == 4
    rig.report(cid, first[1], "failed")
    rig.report(cid, first[2], "refused")
    rig.tick()
    assert len(rig.jobs()) == 6
    assert rig.status(cid)["totals"]["active"] == 3


def test_jobs_start_only_inside_the_maintenance_window(rig_factory):
    rig = rig_factory(4)
    rig.now = 1_700_000_000_000 - (22 * 3600 + 13 * 60 + 20) * 1000 + 30 * 60 * 1000   # 00:30 UTC
    cid = rig.create(waves=[100], window="01:00-03:00", tz="UTC")
    rig.tick(29 * 60 * 1000)            # 00:59
    assert rig.jobs() == [] and rig.status(cid)["totals"]["pending"] == 4
    rig.tick(60 * 1000)                  # 01:00
    assert len(rig.jobs()) == 4
    assert in_window("23:00-02:00", "UTC", T0 - (22 * 3600 + 13 * 60 + 20) * 1000 + 23 * 3600 * 1000)
    assert in_window("23:00-02:00", "UTC", T0 - (22 * 3600 + 13 * 60 + 20) * 1000 + 90 * 60 * 1000)
    assert not in_window("23:00-02:00", "UTC", T0 - (22 * 3600 + 13 * 60 + 20) * 1000 + 2 * 3600 * 1000)
    # Asia/Kolkata is UTC+05:30: 20:00 UTC is 01:30 there.
    assert in_window("01:00-03:00", "Asia/Kolkata", T0 - (22 * 3600 + 13 * 60 + 20) * 1000 + 20 * 3600 * 1000)


def test_a_device_that_stops_acking_payments_after_updating_is_a_failure(rig_factory):
    rig = rig_factory(2)
    cid = rig.create(waves=[100], ack_timeout_s=30, max_failures=1, soak_s=600)
    quiet, fine = sorted(rig.jobs())
    for d in (quiet, fine):
        rig.report(cid, d, "confirmed")
    confirmed_at = rig.now
    # A payment before the update, never acked, does not count against the new version.
    rig.store.record_send(quiet, 100, "T-before", confirmed_at - 5000)
    rig.store.record_send(quiet, 100, "T-after", confirmed_at + 1000)
    rig.store.record_send(fine, 100, "T-fine", confirmed_at + 1000)
    rig.store.add_ack(fine, {"txn": "T-fine", "status": "announced", "reason": "", "rx": None, "play": None,
                             "done": None}, confirmed_at + 1500)
    rig.tick(30_000)                     # 29 s after the payment: still within the timeout
    assert rig.status(cid)["state"] == "running"
    rig.tick(1_000)
    status = rig.status(cid)
    states = {d["device"]: d for d in status["devices"]}
    assert states[quiet]["state"] == "stopped_acking" and "payment T-after not acked" in states[quiet]["reason"]
    assert states[fine]["state"] == "confirmed"
    assert status["state"] == "paused" and "1 devices failed" in status["reason"]
    rig.report(cid, quiet, "confirmed")   # a late report does not undo the cloud's verdict
    assert rig.status(cid)["totals"]["failed"] == 1


def test_abort_cancels_devices_still_downloading_only(rig_factory):
    rig = rig_factory(6)
    cid = rig.create(waves=[100], max_concurrent=3)
    a, b, c = rig.jobs()
    rig.report(cid, a, "downloading")
    rig.report(cid, b, "confirmed")
    rig.engine.abort(cid)
    assert sorted(rig.cancels()) == sorted([a, c])
    assert rig.sent[-1][1] == {"campaign": cid, "cancel": True} and rig.tables[-1] is None   # JSON only
    status = rig.status(cid)
    assert status["state"] == "aborted"
    assert status["waves"][0]["states"] == {"cancelled": 5, "confirmed": 1}
    rig.tick()
    assert len(rig.jobs()) == 3
    rig.report(cid, a, "downloading")     # in flight before the cancel: ignored
    assert rig.status(cid)["waves"][0]["states"]["cancelled"] == 5
    with pytest.raises(Rejected, match="already aborted"):
        rig.engine.abort(cid)
    with pytest.raises(Rejected, match="is aborted"):
        rig.engine.resume(cid)


def test_a_campaign_is_refused_when_its_devices_could_not_take_the_job(rig_factory, tmp_path, monkeypatch):
    """Checked again at creation, with the campaign's own id and devices: a trusted key list
    that no longer holds the signer, a manifest that expired since its upload, a job message
    over the devices' packet limit. Each is a 422 naming the field; no job goes out."""
    rig = rig_factory(3)
    other = ec.generate_private_key(ec.SECP256R1())
    ota.write_trusted(tmp_path / "rotated.json", [ota.public_bytes(other).hex()])
    trusted, rig.artifacts.trusted = rig.artifacts.trusted, str(tmp_path / "rotated.json")
    with pytest.raises(Rejected) as e:
        rig.create()
    assert (e.value.http_status, e.value.field) == (422, "signatures")
    assert str(e.value).startswith("artifact fw-2: signatures: untrusted key: signed by ")
    rig.artifacts.trusted = trusted
    expires = json.loads(rig.envelope["manifest"])["expires"]
    rig.now = expires * 1000
    with pytest.raises(Rejected, match="artifact fw-2: devices would refuse it: expired manifest: expired 0 s ago"):
        rig.create()
    rig.now = T0
    job = len(rig.artifacts.get("fw-2").job("c-12345678"))
    monkeypatch.setattr(otamanifest, "MAX_PACKET", job + otamanifest.PUBLISH_OVERHEAD + len("sb/sb-0001/ota/job") - 1)
    with pytest.raises(Rejected) as e:
        rig.create()
    assert (e.value.http_status, e.value.field) == (422, "envelope")  # a 2-chunk table: the envelope is most of it
    assert "the job message would be %d bytes, over the %d a device takes on sb/sb-0001/ota/job" % (job, job - 1) \
        in str(e.value)
    assert rig.sent == [] and rig.engine.list() == []
    monkeypatch.undo()
    assert rig.create() and rig.jobs()


def test_stalled_devices_time_out_and_free_their_slot(rig_factory):
    rig = rig_factory(2)
    cid = rig.create(waves=[100], max_concurrent=1, stall_timeout_s=60, max_failure_rate=None,
                     success_rate=50)
    [first] = rig.jobs()
    rig.report(cid, first, "downloading")
    rig.tick(59_000)
    assert rig.jobs() == [first]
    rig.tick(1_000)
    states = {d["device"]: d["state"] for d in rig.status(cid)["devices"]}
    assert states[first] == "timed_out" and len(rig.jobs()) == 2


def test_jobs_wait_while_the_broker_is_unreachable(rig_factory):
    rig = rig_factory(2)
    rig.connected = False
    cid = rig.create(waves=[100])
    assert rig.jobs() == [] and rig.status(cid)["totals"]["pending"] == 2
    rig.connected = True
    rig.tick()
    assert len(rig.jobs()) == 2


def test_targets_follow_model_version_and_explicit_devices(rig_factory):
    rig = rig_factory(4)
    rig.campaign_store.set_profile("sb-0002", None, {"firmware": "2.0.0"}, T0)   # already updated
    rig.campaign_store.set_profile("sb-0003", "soundbox-esp32", None, T0)        # another model
    cid = rig.create(waves=[100])
    assert sorted(d["device"] for d in rig.status(cid)["devices"]) == ["sb-0001", "sb-0004"]
    rig.engine.abort(cid)
    cid = rig.create(waves=[100], target={"versions": ["1.0.0"], "devices": ["sb-0004"]})
    assert [d["device"] for d in rig.status(cid)["devices"]] == ["sb-0004"]
    rig.engine.abort(cid)
    with pytest.raises(Rejected, match="unknown device sb-0099"):
        rig.create(target={"devices": ["sb-0099"]})
    with pytest.raises(Rejected, match="no device matches"):
        rig.create(target={"versions": ["0.9.0"]})


def test_campaign_state_survives_a_restart(rig_factory, tmp_path):
    rig = rig_factory(3)
    cid = rig.create(waves=[100], max_concurrent=2)
    first = rig.jobs()
    rig.report(cid, first[0], "confirmed")
    again = Campaigns(CampaignStore(tmp_path / "c.db"), rig.artifacts, rig._publish, clock=lambda: rig.now / 1000)
    try:
        again.tick(rig.now + 1000)
        assert len(rig.jobs()) == 3 and again.status(cid)["totals"]["succeeded"] == 1
    finally:
        again.store.close()


# ---- per-device chunk rate limit --------------------------------------------------------

class Clock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def chunk_server(tmp_path, size, clock, **limit):
    """A ChunkServer over a real artifact of `size` bytes; publish is recorded per topic."""
    ota = tmp_path / "ota"
    ota.mkdir()
    data = payload_bytes(size)
    envelope = release(ota, "fw-2", data, chunk_size=1024 if size < 65536 else 4096)
    store = artifact_store(ota)
    store.load_all()
    sent = {}
    server = ChunkServer(store, lambda topic, payload: sent.setdefault(topic.split("/")[1], []).append(payload),
                         clock=clock, **limit)
    return server, store, sent, data, json.loads(envelope["manifest"]), manifest_id(envelope["manifest"])


def request(mid, first, last):
    return json.dumps({"campaign": "c-1", "manifest": mid, "chunks": [[first, last]]}).encode()


def notices(payloads):
    return [json.loads(p[4:]) for p in payloads if p[:4] == REFUSED_INDEX.to_bytes(4, "big")]


def test_a_flooding_device_is_throttled_with_a_reason_while_another_downloads_at_full_speed(tmp_path):
    """Default limits, and time does not move at all: an honest download of a 1 MiB image
    fits in its device's burst, so it is never refused however fast it goes, while a
    device asking for the same window over and over runs dry and is told why."""
    clock = Clock()
    server, store, sent, data, manifest, mid = chunk_server(tmp_path, 1 << 20, clock)
    try:
        chunk = manifest["chunk_size"]
        table = store.get(mid).table
        transfer = Transfer(lambda i: min(chunk, manifest["size"] - i * chunk), len(table) // 32,
                            lambda i: table[32 * i:32 * i + 32])
        requests = 0
        while not transfer.done:
            for _ in range(10):   # the flooder asks ten times for each honest request
                server.handle("sb-0666", request(mid, 0, 15))
            ranges = transfer.request(int(clock.now * 1000))
            assert ranges, "the honest device had to wait for a timeout"
            requests += 1
            server.handle("sb-0001", json.dumps({"campaign": "c-1", "manifest": mid, "chunks": ranges}).encode())
            for payload in sent.pop("sb-0001"):
                index, chunk_data = transfer.accept(payload)   # a notice would be refused here
                transfer.mark(index)
        assert requests == 16 and transfer.retries == 0   # 256 chunks, 16 a request, none asked twice
        flood = sent["sb-0666"]
        served = [p for p in flood if p[:4] != REFUSED_INDEX.to_bytes(4, "big")]
        assert len(served) * 4096 == DEFAULT_BURST   # its burst, then nothing while the clock stands still
        [notice] = notices(flood)   # one notice: refusals are not echoed one for one
        assert notice["manifest"] == mid and "rate limit" in notice["reason"] and notice["retry_ms"] > 0
        with pytest.raises(ChunkRefused, match="beyond the manifest"):   # not a chunk: the updater reads it as a notice
            transfer.accept([p for p in flood if p[:4] == REFUSED_INDEX.to_bytes(4, "big")][0])
        assert server.throttled_requests == 160 - DEFAULT_BURST // (16 * 4096)
        assert server.throttled_chunks == 16 * server.throttled_requests
        assert server.notices_sent == 1 and server.chunks_sent == 256 + len(served)
    finally:
        store.close()


def test_the_bucket_refills_at_its_rate_up_to_its_burst(tmp_path):
    clock = Clock()
    server, store, sent, data, manifest, mid = chunk_server(tmp_path, 20 * 1024, clock, rate=4096, burst=8192)
    try:
        assert server.handle("sb-0002", request(mid, 0, 15)) == 8    # the burst: 8 chunks of 1 KiB
        [notice] = notices(sent["sb-0002"])
        assert notice["retry_ms"] == 251   # 1 KiB at 4 KiB/s, rounded up
        assert "8 chunks refused" in notice["reason"] and "4096 bytes/s (burst 8192)" in notice["reason"]
        assert server.handle("sb-0002", request(mid, 8, 15)) == 0     # dry
        assert server.stats() == {"rate": 4096, "burst": 8192, "chunks_sent": 8, "bytes_sent": 8192,
                                  "throttled_requests": 2, "throttled_chunks": 16, "notices_sent": 1,
                                  "devices_limited": 1}
        clock.now += 0.5
        assert server.handle("sb-0002", request(mid, 8, 15)) == 2     # half a second: 2 KiB
        clock.now += 60
        assert server.handle("sb-0002", request(mid, 10, 19)) == 8    # a minute: full again, never more than the burst
        # One notice a second at most: the dry and the half-second refusals were not told again.
        assert len(notices(sent["sb-0002"])) == 2
        assert server.handle("sb-0003", request(mid, 0, 7)) == 8       # another device has its own bucket
        chunks = [p for p in sent["sb-0002"] if p[:4] != REFUSED_INDEX.to_bytes(4, "big")]
        assert [int.from_bytes(p[:4], "big") for p in chunks] == list(range(8)) + [8, 9] + list(range(10, 18))
        assert chunks[9][4:] == data[9 * 1024:10 * 1024]
        assert server.throttled_requests == 4 and server.chunks_sent == 26
        # sb-0002 was refused last time and cannot pay for that chunk yet; sb-0003 got all it asked
        assert server.stats()["devices_limited"] == 1
        clock.now += 0.25   # 1 KiB at 4 KiB/s: it could pay now, so it is not held back any more
        assert server.stats()["devices_limited"] == 0
        clock.now += 60   # buckets that have filled up are forgotten: the table holds active devices only
        server.handle("sb-0004", request(mid, 0, 0))
        assert server.limit.tracked() == 1
    finally:
        store.close()


def test_a_chunk_limit_can_be_turned_off(tmp_path):
    server, store, sent, data, manifest, mid = chunk_server(tmp_path, 20 * 1024, Clock(), rate=None)
    try:
        for _ in range(10):
            assert server.handle("sb-0002", request(mid, 0, 15)) == 16
        assert server.throttled_requests == 0 and not notices(sent["sb-0002"])
        stats = server.stats()
        assert (stats["rate"], stats["burst"], stats["devices_limited"]) == (None, None, 0)
        assert stats["chunks_sent"] == 160 and stats["bytes_sent"] == 160 * 1024
    finally:
        store.close()


def test_a_flooding_device_is_throttled_over_the_broker_and_the_others_are_served(broker, tmp_path, pki):
    """... and GET /stats counts what was served and what the limit held back."""
    ota_dir = tmp_path / "ota"
    ota_dir.mkdir()
    data = payload_bytes(20 * 1024 + 7)
    mid = manifest_id(release(ota_dir, "fw-2", data, chunk_size=1024)["manifest"])
    # A burst that holds the whole 21 KiB artifact and a rate too small to matter during the test.
    running = RunningCloud(broker.url, tmp_path / "c.db", pki.root, ota_dir=ota_dir, tick_s=0,
                           chunk_rate=1, chunk_burst=24 * 1024)
    cloud = running.cloud
    try:
        flooder, honest = Device(broker, "sb-0666"), Device(broker, "sb-0001")
        try:
            assert api(running, "GET", "/stats")["ota_chunks"] == {
                "rate": 1, "burst": 24 * 1024, "chunks_sent": 0, "bytes_sent": 0, "throttled_requests": 0,
                "throttled_chunks": 0, "notices_sent": 0, "devices_limited": 0}
            for _ in range(20):
                flooder.publish("ota/req", {"campaign": "c-1", "manifest": mid, "chunks": [[0, 15]]}, qos=0)
            honest.publish("ota/req", {"campaign": "c-1", "manifest": mid, "chunks": [[0, 15]]}, qos=0)
            honest.publish("ota/req", {"campaign": "c-1", "manifest": mid, "chunks": [[16, 20]]}, qos=0)
            wait_until(lambda: len(honest.chunks) == 21 and cloud.chunks.throttled_requests == 19)
            assert sorted(honest.chunks) == [(i, data[i * 1024:(i + 1) * 1024]) for i in range(21)]
            refused = wait_until(lambda: [c for i, c in flooder.chunks if i == REFUSED_INDEX])
            reason = json.loads(refused[0])
            assert reason["manifest"] == mid and reason["reason"].startswith("rate limit: ")
            assert len([i for i, c in flooder.chunks if i != REFUSED_INDEX]) == 24   # its burst, no more
            assert cloud.bad_messages == 0   # throttling is not an error in the handler's log
            # The flooder's 20 requests of 16 chunks: 16 served, then 8 of 16, then 18 refused whole.
            stats = wait_until(lambda: (lambda s: s if s["notices_sent"] == len(
                [i for i, c in flooder.chunks if i == REFUSED_INDEX]) else None)(
                    api(running, "GET", "/stats")["ota_chunks"]))
            assert stats["notices_sent"] >= 1   # at most one a second to the flooder, however fast it asks
            assert stats["chunks_sent"] == 21 + 24 and stats["bytes_sent"] == len(data) + 24 * 1024
            assert stats["throttled_requests"] == 19 and stats["throttled_chunks"] == 8 + 18 * 16
            assert stats["devices_limited"] == 1   # the flooder: at 1 byte/s its next chunk is far off
        finally:
            flooder.close()
            honest.close()
    finally:
        running.close()


@pytest.mark.parametrize("argv, line, limit", [
    (["--chunk-rate", "512KiB", "--chunk-burst", "1MiB"], "OTA chunks 512 KiB/s per device, burst 1 MiB",
     (512 * 1024, 1 << 20)),
    ([], "OTA chunks 1 MiB/s per device, burst 4 MiB", (1 << 20, 4 << 20)),
    (["--chunk-rate", "off"], "OTA chunks not rate-limited", (None, None)),
])
def test_cloud_cli_takes_the_chunk_limit_and_says_it_at_startup(broker, tmp_path, pki, argv, line, limit):
    import signal
    import subprocess
    import sys

    from soundbox_tools import procs
    port = procs.free_port()
    proc = subprocess.Popen([sys.executable, "-m", "soundbox_tools.cli", "cloud", "--broker", broker.url,
                             "--http", "127.0.0.1:%d" % port, "--db", str(tmp_path / "c.db"),
                             "--certs", pki.root] + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert first == "cloud handler listening on http://127.0.0.1:%d (broker %s; %s)\n" % (
            port, broker.url, line), first or proc.communicate(timeout=10)[1]
        stats = call("http://127.0.0.1:%d" % port, "GET", "/stats", api_key=make_key(tmp_path / "c.db"))["ota_chunks"]
        assert (stats["rate"], stats["burst"]) == limit
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_cloud_process_logs_its_artifacts_and_campaigns_on_stderr(broker, tmp_path, pki, dev):
    """`soundbox cloud` sets up its logging: the artifact store's and the campaign engine's
    info lines reach its stderr with a time and a level (left unconfigured, Python drops
    info lines)."""
    ota_dir = tmp_path / "ota"
    ota_dir.mkdir()
    release(ota_dir, "fw-2", payload_bytes(3000), chunk_size=1024)
    port = procs.free_port()
    url = "http://127.0.0.1:%d" % port
    proc = subprocess.Popen([sys.executable, "-m", "soundbox_tools.cli", "cloud", "--broker", broker.url,
                             "--http", "127.0.0.1:%d" % port, "--db", str(tmp_path / "c.db"),
                             "--certs", pki.root, "--ota-dir", str(ota_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert first.startswith("cloud handler listening on " + url), first or proc.communicate(timeout=10)[1]
        key = make_key(tmp_path / "c.db")
        dev.announce("1.0.0")

        def create():   # refused (no device matches) until the box's telemetry is in
            try:
                return call(url, "POST", "/ota/campaigns", body={"artifact": "fw-2", "waves": [100]}, api_key=key)
            except ApiError:
                return None
        cid = wait_until(create)["id"]
        wait_until(lambda: dev.jobs)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    stamp = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO "
    assert re.search(stamp + r"OTA artifact fw-2 registered: firmware firmware 2\.0\.0 ", err, re.M), err
    assert re.search(stamp + r"campaign %s created: firmware 2\.0\.0 to 1 devices in 1 waves$" % cid, err, re.M), err


@pytest.mark.parametrize("argv, message", [
    (["--chunk-rate", "fast"], "argument --chunk-rate: 'fast' is not a size"),
    (["--chunk-rate=-1MiB"], "argument --chunk-rate: '-1MiB' is not a size"),
    (["--chunk-rate", "1 parsec"], "give bytes, or a number with KiB, MiB or GiB (e.g. 512KiB), or off"),
    (["--chunk-rate", "0.5"], "'0.5' is less than 1 byte a second; use off for no limit"),
    (["--chunk-burst", "8KiB"], "'8KiB' is less than one chunk (16 KiB at most)"),
    (["--chunk-burst", "off"], "argument --chunk-burst: a burst cannot be off; use --chunk-rate off"),
])
def test_cloud_cli_refuses_a_bad_chunk_limit_with_the_reason(capsys, argv, message):
    with pytest.raises(SystemExit) as refused:
        cli.main(["cloud", "--broker", "mqtt://127.0.0.1:1"] + argv)
    err = capsys.readouterr().err
    assert refused.value.code == 2 and message in err and "Traceback" not in err


@pytest.mark.parametrize("text, size", [("65536", 65536), ("512KiB", 512 * 1024), ("1MiB", 1 << 20),
                                        ("1.5 MiB", 3 << 19), ("2MB", 2_000_000), ("4m", 4 << 20)])
def test_sizes_are_read_in_bytes(text, size):
    assert cliargs.parse_size(text) == size
    assert cliargs.chunk_rate_arg(text + "/s") == size
