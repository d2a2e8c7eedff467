"""The mutual-TLS broker against real mosquitto, real certificates and real clients.

Negative checks ("nothing of B's reaches A") end with a marker sent after the forbidden
traffic through the same broker: mosquitto handles one client's packets in order, so
once the marker has arrived, anything forbidden would have arrived too.
"""
import datetime
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from soundbox import mqttcodec
from soundbox_tools import procs
from soundbox_tools.pki import Pki

SOUNDBOX = [sys.executable, "-m", "soundbox_tools.cli"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 10


def eventually(check, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


class Peer:
    """A paho client (mutual TLS when given identity files) that records what happens to it."""

    def __init__(self, broker, files=None, client_id="", clean=True):
        self.messages = []  # (topic, payload, retain)
        self.disconnects = []
        self.session_present = None
        self._connected = threading.Event()
        self._subacks = {}
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean,
                        protocol=mqtt.MQTTv311)
        if files:
            c.tls_set(ca_certs=files["ca"], certfile=files["cert"], keyfile=files["key"])
        c.on_connect = self._on_connect
        c.on_disconnect = lambda client, userdata, flags, rc, props: self.disconnects.append(rc)
        c.on_message = lambda client, userdata, m: self.messages.append((m.topic, m.payload, m.retain))
        c.on_subscribe = lambda client, userdata, mid, codes, props: self._subacks.__setitem__(mid, codes)
        c.reconnect_delay_set(0.2, 1)
        self.client = c
        c.connect(broker.host, broker.port, keepalive=30)
        c.loop_start()
        assert self._connected.wait(TIMEOUT), "no CONNACK from %s" % broker.url

    def _on_connect(self, client, userdata, flags, rc, props):
        if not rc.is_failure:
            self.session_present = flags.session_present
            self._connected.set()

    def subscribe(self, *filters, qos=1):
        _, mid = self.client.subscribe([(f, qos) for f in filters])
        assert eventually(lambda: mid in self._subacks)
        return [int(code.value) for code in self._subacks[mid]]

    def publish(self, topic, payload, qos=1, retain=False):
        self.client.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(TIMEOUT)

    def payloads(self, topic_filter=None):
        return [p for t, p, _ in self.messages if topic_filter is None or mqtt.topic_matches_sub(topic_filter, t)]

    def wait_for(self, payload):
        assert eventually(lambda: payload in self.payloads()), "%r never arrived; got %r" % (payload, self.messages)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def connect(pki):
    """connect(broker, identity, **kw) -> Peer; every peer is closed after the test."""
    peers = []

    def make(broker, identity=None, files=None, client_id=None, clean=True):
        files = files or (pki.files(identity) if identity and broker.pki else None)
        peer = Peer(broker, files, client_id if client_id is not None else (identity or ""), clean)
        peers.append(peer)
        return peer

    yield make
    for peer in peers:
        peer.close()


def mqtt_over_tls(broker, files, max_version=None):
    """One TLS handshake (identity files: ca, and cert + key unless absent) and an MQTT
    CONNECT on a raw socket: ("CONNACK <code>", tls version) or ("refused: <reason>", None)."""
    ctx = ssl.create_default_context(cafile=files["ca"])
    if files.get("cert"):
        ctx.load_cert_chain(files["cert"], files["key"])
    if max_version:
        ctx.maximum_version = max_version
    return connect_with(broker, ctx)


def connect_with(broker, ctx):
    """mqtt_over_tls with a client context already made."""
    connect = mqttcodec.encode(mqttcodec.Packet(mqttcodec.CONNECT, client_id="probe", keepalive=30))
    with socket.create_connection((broker.host, broker.port), timeout=TIMEOUT) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(connect)
                data = s.recv(4)
                version = s.version()
        except (ssl.SSLError, ConnectionError) as e:
            return "refused: %s" % (getattr(e, "reason", None) or e), None
    if not data:
        return "refused: connection closed", None
    packet, _ = mqttcodec.decode(data)
    return "CONNACK %d" % packet.code, version


def probe(broker, files):
    """What the broker says to these identity files now: "CONNACK 0" or "refused: ..."."""
    return mqtt_over_tls(broker, files)[0]


def refusal(broker, files):
    """The broker's alert for identity files it refuses, whatever the TLS version.

    Over TLS 1.2 the broker judges the client certificate inside the handshake and its
    alert always arrives. Over TLS 1.3 it judges after the client's side of the handshake
    has finished; mosquitto then closes at once, and our CONNECT, already on its way, often
    meets a reset instead of the alert. So: refused over 1.3, and the reason from 1.2.
    """
    verdict = probe(broker, files)
    assert verdict.startswith("refused: "), verdict
    return mqtt_over_tls(broker, files, max_version=ssl.TLSVersion.TLSv1_2)[0]


# ---- each device only on its own topics ----------------------------------------------

def test_a_device_receives_nothing_of_another_devices_topics(tls_broker, connect):
    b = connect(tls_broker, "sb-0002")
    b.publish("sb/sb-0002/status", b"B-status", retain=True)
    a = connect(tls_broker, "sb-0001")
    # Refused at SUBSCRIBE (0x80), not only filtered at delivery; its own topic granted.
    assert a.subscribe("sb/sb-0002/#", "sb/+/notify", "sb/#", "#", "$share/x/sb/+/ack",
                       "sb/sb-0001/notify") == [0x80] * 5 + [1]
    cloud = connect(tls_broker, "cloud")
    cloud.publish("sb/sb-0002/notify", b"B-notify")
    b.publish("sb/sb-0002/ack", b"B-ack")
    b.publish("sb/sb-0002/telemetry", b"B-telemetry", qos=0)
    cloud.publish("sb/sb-0001/notify", b"A-marker")
    a.wait_for(b"A-marker")
    assert a.payloads() == [b"A-marker"]


def test_a_device_cannot_publish_on_another_devices_topics(tls_broker, connect):
    b = connect(tls_broker, "sb-0002")
    b.subscribe("sb/sb-0002/#")
    b.publish("sb/sb-0002/status", b"B-online", retain=True)
    b.wait_for(b"B-online")
    cloud = connect(tls_broker, "cloud")
    cloud.subscribe("$share/cloud/sb/+/ack", "$share/cloud/sb/+/telemetry", "sb/+/status")
    a = connect(tls_broker, "sb-0001")
    for topic, payload in (("sb/sb-0002/notify", b"forged-notify"), ("sb/sb-0002/ack", b"forged-ack"),
                           ("sb/sb-0002/telemetry", b"forged-telemetry"), ("sb/sb-0003/ack", b"forged-3")):
        a.publish(topic, payload)
    a.publish("sb/sb-0002/status", b"forged-offline", retain=True)
    a.publish("sb/sb-0001/ack", b"A-marker")
    cloud.wait_for(b"A-marker")
    assert not [p for p in cloud.payloads() + b.payloads() if p.startswith(b"forged")]
    # B's retained status was not overwritten either: a new subscriber still gets B's own.
    late = connect(tls_broker, "sb-0002")  # same identity: replaces b's connection
    late.subscribe("sb/sb-0002/status")
    late.wait_for(b"B-online")
    assert late.payloads("sb/sb-0002/status") == [b"B-online"]


def test_the_cloud_notifies_any_device_and_reads_acks_telemetry_and_status(tls_broker, connect):
    devices = [connect(tls_broker, "sb-0001"), connect(tls_broker, "sb-0003")]
    devices[0].subscribe("sb/sb-0001/notify", "sb/sb-0001/ota/chunk")
    devices[1].subscribe("sb/sb-0003/notify", "sb/sb-0003/ota/chunk")
    devices[1].publish("sb/sb-0003/status", b"online-3", retain=True)
    cloud = connect(tls_broker, "cloud")
    assert cloud.subscribe("$share/cloud/sb/+/ack", "sb/+/status") == [1, 1]
    bulk = connect(tls_broker, "cloud-bulk")   # the cloud's second identity: telemetry, chunks
    assert bulk.subscribe("$share/cloud/sb/+/telemetry", "$share/cloud/sb/+/ota/req") == [1, 1]
    cloud.wait_for(b"online-3")  # retained, through the plain subscription
    for n, d in ((1, devices[0]), (3, devices[1])):
        cloud.publish("sb/sb-%04d/notify" % n, b"pay-%d" % n)
        bulk.publish("sb/sb-%04d/ota/chunk" % n, b"chunk-%d" % n, qos=0)
        d.wait_for(b"pay-%d" % n)
        d.wait_for(b"chunk-%d" % n)
        d.publish("sb/sb-%04d/ack" % n, b"ack-%d" % n)
        d.publish("sb/sb-%04d/telemetry" % n, b"tele-%d" % n, qos=0)
        cloud.wait_for(b"ack-%d" % n)
        bulk.wait_for(b"tele-%d" % n)
    assert sorted(devices[0].payloads()) == [b"chunk-1", b"pay-1"]  # each device saw only its own
    # Neither identity may send what the other sends (least privilege, checked by delivery;
    # each one's last message is a marker: one publisher's messages keep their order).
    cloud.publish("sb/sb-0001/ota/chunk", b"cloud-chunk", qos=0)
    bulk.publish("sb/sb-0001/notify", b"bulk-pay")
    cloud.publish("sb/sb-0001/notify", b"pay-last")
    bulk.publish("sb/sb-0001/ota/chunk", b"chunk-last", qos=0)
    devices[0].wait_for(b"pay-last")
    devices[0].wait_for(b"chunk-last")
    assert sorted(devices[0].payloads()) == [b"chunk-1", b"chunk-last", b"pay-1", b"pay-last"]


# ---- who may connect ------------------------------------------------------------------

def test_good_identities_connect_over_tls_1_2_or_1_3(tls_broker, pki):
    assert mqtt_over_tls(tls_broker, pki.files("sb-0001")) == ("CONNACK 0", "TLSv1.3")
    assert mqtt_over_tls(tls_broker, pki.files("cloud"), ssl.TLSVersion.TLSv1_2) == ("CONNACK 0", "TLSv1.2")


# What the device itself loads: the DER files, on the real MicroPython unix port (mbedTLS,
# no PEM parser) and, on CPython, through the simulator's der_context.
DEVICE_CONNECT = """
import sys, asyncio
from soundbox import tls, mqttcodec

async def main():
    try:
        ctx = tls.client_context(sys.argv[1])
    except tls.TlsSetupError as e:
        print("setup error:", e)
        return
    r, w = await asyncio.open_connection("127.0.0.1", int(sys.argv[2]), ssl=ctx, server_hostname="localhost")
    w.write(mqttcodec.encode(mqttcodec.Packet(mqttcodec.CONNECT, client_id="probe", keepalive=30)))
    await w.drain()
    print("reply", bytes(await r.read(4)).hex())

asyncio.run(main())
"""


def micropython_connect(micropython, broker, identity, tmp_path):
    script = tmp_path / "device_connect.py"
    script.write_text(DEVICE_CONNECT)
    env = dict(os.environ, MICROPYPATH="%s:.frozen" % os.path.join(ROOT, "sdk"))
    out = subprocess.run([micropython, str(script), str(identity), str(broker.port)], env=env,
                         capture_output=True, text=True, timeout=TIMEOUT * 3)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_the_device_connects_with_its_der_identity_on_micropython(tls_broker, pki, micropython, tmp_path):
    d = pki.device_dir("sb-0001")
    assert micropython_connect(micropython, tls_broker, d, tmp_path) == "reply 20020000"  # CONNACK 0

    old = tmp_path / "old-layout"  # a bundle from before the DER files: told to re-provision
    old.mkdir()
    for name in ("ca.pem", "device.pem", "device.key"):
        shutil.copy(os.path.join(d, name), old / name)
    said = micropython_connect(micropython, tls_broker, old, tmp_path)
    assert said.startswith("setup error: identity in %s is in the old PEM layout" % old), said
    assert "re-provision it" in said and "\n" not in said


def test_the_simulator_loads_the_same_der_identity_on_cpython(tls_broker, pki):
    from soundbox_sim.link import der_context

    ctx = der_context(pki.device_dir("sb-0001"))
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert connect_with(tls_broker, ctx) == ("CONNACK 0", "TLSv1.3")


def test_no_certificate_is_refused(tls_broker, pki):
    assert refusal(tls_broker, {"ca": pki.path("ca.pem")}) == "refused: SSLV3_ALERT_HANDSHAKE_FAILURE"


def test_a_certificate_from_another_ca_is_refused(tls_broker, pki, tmp_path):
    other = Pki(tmp_path / "other").init()
    other.issue_device("sb-0001")
    files = dict(other.files("sb-0001"), ca=pki.path("ca.pem"))  # trusts our broker, wrong issuer
    assert refusal(tls_broker, files) == "refused: TLSV1_ALERT_UNKNOWN_CA"


def test_an_expired_certificate_is_refused(tls_broker, pki):
    long_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=30)
    pki.issue_device("sb-expired", days=10, not_before=long_ago)
    assert refusal(tls_broker, pki.files("sb-expired")) == "refused: SSLV3_ALERT_CERTIFICATE_EXPIRED"
    pki.issue_device("sb-expired")  # the same id, valid again
    assert probe(tls_broker, pki.files("sb-expired")) == "CONNACK 0"


def test_a_revoked_certificate_is_refused_after_reload_and_its_live_session_ended(tls_broker, pki, connect):
    pki.issue_devices(["sb-revoked", "sb-revoked-2"])
    tls_broker.reload()  # issued after start: let in (a running broker also notices by itself)
    assert {"sb-revoked", "sb-revoked-2"} <= tls_broker.devices
    live = connect(tls_broker, "sb-revoked")
    cloud = connect(tls_broker, "cloud")
    cloud.subscribe("$share/cloud/sb/+/ack")
    live.publish("sb/sb-revoked/ack", b"before-revocation")
    cloud.wait_for(b"before-revocation")
    pki.revoke("sb-revoked")
    pki.revoke("sb-revoked-2")
    # SIGHUP: mosquitto 2.0.11 re-reads the CRL for new handshakes; the sync deletes both
    # from the broker's plugin, which disconnects the live session at once.
    tls_broker.reload()
    assert not {"sb-revoked", "sb-revoked-2"} & tls_broker.devices
    assert eventually(lambda: live.disconnects)
    # Wait for the reload with the other identity: a probe as sb-revoked that still got in
    # would take over the live connection (the client id is the CN).
    assert eventually(lambda: probe(tls_broker, pki.files("sb-revoked-2")) != "CONNACK 0")
    assert refusal(tls_broker, pki.files("sb-revoked")) == "refused: SSLV3_ALERT_CERTIFICATE_REVOKED"
    assert probe(tls_broker, pki.files("sb-0001")) == "CONNACK 0"
    time.sleep(1.5)  # paho retries within 1 s; every retry is refused
    assert not live.client.is_connected()
    live.client.publish("sb/sb-revoked/ack", b"after-revocation", qos=1)
    connect(tls_broker, "sb-0001").publish("sb/sb-0001/ack", b"marker")
    cloud.wait_for(b"marker")
    assert b"after-revocation" not in cloud.payloads()
    # A restart changes nothing: the plugin is written from the PKI at every start.
    tls_broker.restart()
    assert "sb-revoked" not in tls_broker.devices
    assert refusal(tls_broker, pki.files("sb-revoked")) == "refused: SSLV3_ALERT_CERTIFICATE_REVOKED"


# ---- client id and sessions -----------------------------------------------------------

def test_the_client_id_is_always_the_certificate_cn(tls_broker, connect):
    # sb-0002 holds a persistent session; sb-0001 connects claiming sb-0002's client id.
    victim = connect(tls_broker, "sb-0002", clean=False)
    victim.subscribe("sb/sb-0002/notify")
    cloud = connect(tls_broker, "cloud")
    cloud.subscribe("$share/cloud/sb/+/ack")
    impostor = connect(tls_broker, "sb-0001", client_id="sb-0002", clean=False)
    assert impostor.session_present is False  # a session of its own, not sb-0002's
    impostor.publish("sb/sb-0002/ack", b"forged-as-client-id")
    impostor.publish("sb/sb-0001/ack", b"impostor-own")
    cloud.wait_for(b"impostor-own")
    assert b"forged-as-client-id" not in cloud.payloads()
    # The victim was not kicked off and still gets its notifications.
    cloud.publish("sb/sb-0002/notify", b"for-victim")
    victim.wait_for(b"for-victim")
    assert victim.disconnects == [] and victim.client.is_connected()
    assert impostor.payloads() == []


def test_a_persistent_session_belongs_to_the_cn_whatever_client_id_is_sent(tls_broker, connect):
    device = connect(tls_broker, "sb-0003", clean=False)
    device.subscribe("sb/sb-0003/notify")
    device.close()
    cloud = connect(tls_broker, "cloud")
    cloud.publish("sb/sb-0003/notify", b"queued-while-away")
    back = connect(tls_broker, "sb-0003", client_id="some-other-id", clean=False)
    assert back.session_present is True
    back.wait_for(b"queued-while-away")


def test_rotation_keeps_the_session_and_the_old_certificate_until_it_is_retired(tls_broker, pki, connect,
                                                                                 tmp_path):
    d = pki.issue_device("sb-rotating")
    tls_broker.sync()  # issued after the broker started
    old = str(tmp_path / "old")
    shutil.copytree(d, old)
    old_files = {"ca": os.path.join(old, "ca.pem"), "cert": os.path.join(old, "device.pem"),
                 "key": os.path.join(old, "device.key")}
    device = connect(tls_broker, files=old_files, client_id="sb-rotating", clean=False)
    device.subscribe("sb/sb-rotating/notify")
    device.close()
    connect(tls_broker, "cloud").publish("sb/sb-rotating/notify", b"queued-before-rotation")

    pki.rotate("sb-rotating")
    assert open(os.path.join(d, "device.pem")).read() != open(old_files["cert"]).read()
    rotated = connect(tls_broker, "sb-rotating", clean=False)
    assert rotated.session_present is True
    rotated.wait_for(b"queued-before-rotation")
    rotated.close()
    # (A probe is a clean-session connect: it ends the session, so only now.)
    assert probe(tls_broker, old_files) == "CONNACK 0"  # the old certificate works until retired

    pki.revoke("sb-rotating", old_only=True)
    tls_broker.reload()
    assert eventually(lambda: probe(tls_broker, old_files) != "CONNACK 0")
    assert refusal(tls_broker, old_files) == "refused: SSLV3_ALERT_CERTIFICATE_REVOKED"
    assert probe(tls_broker, pki.files("sb-rotating")) == "CONNACK 0"


@pytest.mark.parametrize("kind", ["tls_broker", "broker"])
def test_queued_qos1_messages_survive_a_broker_restart_on_the_same_port(request, connect, kind):
    broker = request.getfixturevalue(kind)
    port = broker.port
    device = connect(broker, "sb-0004", client_id="sb-0004", clean=False)
    device.subscribe("sb/sb-0004/notify")
    device.close()
    connect(broker, "cloud", client_id="cloud").publish("sb/sb-0004/notify", b"survives-restart")
    broker.stop()
    broker.start()
    assert broker.port == port
    back = connect(broker, "sb-0004", client_id="sb-0004", clean=False)
    assert back.session_present is True
    back.wait_for(b"survives-restart")


# ---- the CLI ---------------------------------------------------------------------------

def test_broker_config_cli_writes_an_mtls_config(tmp_path, pki):
    r = subprocess.run(SOUNDBOX + ["broker", "config", "--dir", str(tmp_path / "b"), "--certs", pki.root],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    conf = r.stdout.strip()
    assert conf == str(tmp_path / "b" / "mosquitto.conf")
    text = open(conf).read()
    assert "listener 8883 127.0.0.1" in text and "crlfile " + pki.path("crl.pem") in text
    rights = json.load(open(tmp_path / "b" / "dynamic-security.json"))
    assert {"acltype": "subscribePattern", "topic": "sb/sb-0001/#", "allow": True} in [
        acl for role in rights["roles"] if role["rolename"] == "device:sb-0001" for acl in role["acls"]]
    assert oct(os.stat(tmp_path / "b" / "admin.secret").st_mode & 0o777) == "0o600"
    r = subprocess.run(SOUNDBOX + ["broker", "config", "--dir", str(tmp_path / "c"),
                                   "--certs", str(tmp_path / "none")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "pki init" in r.stderr


def test_broker_run_cli_serves_mtls_and_reloads_the_crl_on_sighup(tmp_path, pki):
    pki.issue_device("sb-cli-revoked")
    proc = subprocess.Popen(SOUNDBOX + ["broker", "run", "--dir", str(tmp_path / "b"), "--certs", pki.root],
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        m = re.search(r"mqtts://127\.0\.0\.1:(\d+)", proc.stdout.readline())
        assert m

        class Running:
            host, port = procs.LOOPBACK, int(m.group(1))

        assert probe(Running, pki.files("sb-cli-revoked")) == "CONNACK 0"
        pki.revoke("sb-cli-revoked")
        proc.send_signal(signal.SIGHUP)
        assert proc.stdout.readline().startswith("reloaded: 0 devices added, ")
        assert eventually(lambda: probe(Running, pki.files("sb-cli-revoked")) != "CONNACK 0")
        assert refusal(Running, pki.files("sb-cli-revoked")) == "refused: SSLV3_ALERT_CERTIFICATE_REVOKED"
        assert probe(Running, pki.files("sb-0001")) == "CONNACK 0"
    finally:
        procs.stop(proc)
    assert proc.returncode == 0
