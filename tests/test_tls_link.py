"""The real firmware over mutual TLS: certificate rotation without losing the
session or the ledger, and a revoked identity that is refused and says so."""

import json
import os

from cryptography import x509

from soundbox_tools.broker import Mosquitto
from soundbox_tools.pki import Pki
from test_end_to_end import Stack, eventually, journal


def serial(pki, device_id):
    with open(os.path.join(pki.device_dir(device_id), "device.der"), "rb") as f:
        return x509.load_der_x509_certificate(f.read()).serial_number


def pay(stack, txn, amount=100):
    status, body = stack.post("/payments", {"device": "sb-0001", "amount": amount, "txn": txn})
    assert status == 202, body


def test_rotated_certificate_keeps_session_and_ledger(tmp_path, voice_pack):
    pki = Pki(tmp_path / "certs").init()
    pki.issue_device("sb-0001")
    with Mosquitto(tmp_path / "broker", pki=pki) as broker:
        stack = Stack(broker, tmp_path, voice_pack, devices=1, pki=pki)
        try:
            pay(stack, "ROT-1")
            assert stack.acks("ROT-1", 1)[0]["status"] == "announced"
            old = serial(pki, "sb-0001")
            pki.rotate("sb-0001")
            pki.revoke("sb-0001", old_only=True)
            assert serial(pki, "sb-0001") != old
            broker.stop()  # a restart applies the new CRL; persistence keeps the sessions
            broker.start()
            # Only the rotated certificate can get the device back: its retained "online"
            # status survived the restart, so wait for acks, not for the status. The
            # generous bound covers reconnect backoff on a loaded machine. /ready is 200 only
            # while the cloud is linked to the broker (/health is liveness, 200 throughout).
            assert eventually(lambda: stack.get("/ready")[0] == 200, 60)
            pay(stack, "ROT-1")  # the ledger survived: still a duplicate
            pay(stack, "ROT-2")
            assert [a["status"] for a in stack.acks("ROT-1", 2, timeout=90)] == ["announced", "duplicate"]
            assert stack.acks("ROT-2", 1, timeout=90)[0]["status"] == "announced"
            assert len([j for j in journal(stack.journal) if j["txn"] == "ROT-1"]) == 1
        finally:
            stack.close()


def test_revoked_device_is_refused_and_the_box_says_it_is_not_registered(tmp_path, voice_pack):
    pki = Pki(tmp_path / "certs").init()
    pki.issue_devices(["sb-0001", "sb-0002"])
    pki.revoke("sb-0002")
    with Mosquitto(tmp_path / "broker", pki=pki) as broker:
        stack = Stack.__new__(Stack)  # cloud + sim, but sb-0002 never comes online
        try:
            _start_without_waiting(stack, broker, tmp_path, voice_pack, pki)
            prompts = lambda: [j for j in journal(stack.journal)
                               if j["device"] == "sb-0002" and j["txn"] == "not_registered"]
            assert eventually(prompts, 30)
            assert prompts()[0]["words"] == "device not registered"
            devices = {d["id"]: d["state"] for d in stack.get("/devices")[1]}
            assert devices.get("sb-0001") == "online" and "sb-0002" not in devices
            log = (tmp_path / "devices" / "devices.log").read_text()
            assert "sb-0002" in log and "refused" in log
        finally:
            stack.close()


def _start_without_waiting(stack, broker, tmp_path, voice_pack, pki):
    stack.devices = 1  # Stack waits for this many online: sb-0001 only
    Stack.__init__(stack, broker, tmp_path, voice_pack, devices=1, pki=pki)
    stack.stop_sim()
    stack.devices = 2
    from soundbox_tools import procs
    from test_end_to_end import SOUNDBOX
    stack.sim = procs.spawn(SOUNDBOX + ["sim", "--devices", "2", "--broker", broker.url,
                                        "--state", str(tmp_path / "devices"), "--voice", voice_pack,
                                        "--journal", stack.journal, "--certs", str(pki.root)],
                            log_path=str(tmp_path / "sim.log"))


def test_expired_identities_are_reported_before_any_network_traffic(tmp_path, voice_pack):
    import datetime
    import subprocess

    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID
    from test_end_to_end import SOUNDBOX

    pki = Pki(tmp_path / "certs").init()
    long_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=400)
    pki.issue_device("sb-0001", days=10, not_before=long_ago)
    dead = "mqtts://127.0.0.1:9"  # nothing listens there: only local checks can speak
    sim = subprocess.run(SOUNDBOX + ["sim", "--devices", "1", "--broker", dead, "--certs", str(pki.root),
                                     "--voice", voice_pack, "--state", str(tmp_path / "dev")],
                         capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
                         preexec_fn=lambda: __import__("signal").alarm(4))  # stop the sim after 4 s
    assert "1 device identities are unusable" in sim.stdout and "expired" in sim.stdout, sim.stdout

    # An expired cloud certificate, signed by the same CA (through the PKI's own signer).
    key, cert = pki._sign_new("cloud", 10, ExtendedKeyUsageOID.CLIENT_AUTH, not_before=long_ago)
    with open(pki.files("cloud")["cert"], "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    cloud = subprocess.run(SOUNDBOX + ["cloud", "--broker", dead, "--certs", str(pki.root),
                                       "--db", str(tmp_path / "c.db"), "--http", "127.0.0.1:0"],
                           capture_output=True, text=True, timeout=30)
    assert cloud.returncode == 1 and "expired" in cloud.stderr and "Traceback" not in cloud.stderr, cloud.stderr


def test_the_simulators_shared_tls_context_checks_each_identity_and_rereads_a_rotated_one(tmp_path):
    """The fleet's one-context-per-CA TLS (soundbox_sim.link): a device's certificate and key
    are parsed once and handed to each of its connections; a mismatched pair is refused with
    the SDK's reason; a rotated pair is parsed again; the broker accepts the connection as
    that device."""
    import shutil
    import socket

    import pytest

    from soundbox import mqttcodec, tls
    from soundbox_sim.link import install_context_cache

    pki = Pki(tmp_path / "certs").init()
    pki.issue_device("sb-0001")
    pki.issue_device("sb-0002")
    install_context_cache()
    if not tls.client_context.shared_ca:
        pytest.skip("libssl cannot be reached from this CPython: each device gets its own context")
    mixed = tmp_path / "mixed"
    shutil.copytree(pki.device_dir("sb-0001"), mixed)
    shutil.copy(os.path.join(pki.device_dir("sb-0002"), "device.key.der"), mixed / "device.key.der")
    with pytest.raises(tls.TlsSetupError, match="bad or mismatched device.der / device.key.der"):
        tls.client_context(str(mixed))

    first = tls.client_context(pki.device_dir("sb-0001"))
    assert tls.client_context(pki.device_dir("sb-0001")) is first  # files unchanged: parsed once
    pki.rotate("sb-0001")
    rotated = tls.client_context(pki.device_dir("sb-0001"))
    assert rotated is not first

    def connack(ctx, port):  # the way the fleet's links use it: wrap, then the handshake
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost", do_handshake_on_connect=False) as sock:
                sock.do_handshake()
                sock.sendall(mqttcodec.encode(mqttcodec.Packet(mqttcodec.CONNECT, client_id="sb-0001", keepalive=30)))
                return sock.recv(4)

    with Mosquitto(tmp_path / "broker", pki=pki) as broker:
        assert connack(rotated, broker.port).hex() == "20020000"  # CONNACK, accepted
