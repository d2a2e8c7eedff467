"""The unmodified firmware on the real MicroPython unix port (1.29, mbedTLS), end to end:
its own process (soundbox_tools.mpdevice), the project's mosquitto with mutual TLS, ACL and
CRL, the cloud handler, real DER identities from the project's PKI. Each test checks what
the merchant hears (the device's journal of what it said) and what the cloud records.

The CPython twins of these tests are in test_end_to_end.py, test_payment_integrity.py and
test_security.py; here the same behaviour must hold on the runtime a board runs."""

import json
import os
import shutil
import time

import pytest

from soundbox import payment
from soundbox_tools import procs
from soundbox_tools.mpdevice import MicroPythonDevice, device_config
from test_end_to_end import SOUNDBOX, eventually, http, journal
from test_payment_integrity import Desk, signed, wall_ms

LONG_BACKOFF = "waiting the longest backoff"


class Cloud:
    def __init__(self, broker, pki, tmp):
        port = procs.free_port()
        self.api = "http://127.0.0.1:%d" % port
        self.log = tmp / "cloud.log"
        self.proc = procs.spawn(SOUNDBOX + ["cloud", "--broker", broker.url, "--http", "127.0.0.1:%d" % port,
                                            "--db", str(tmp / "cloud.db"), "--certs", str(pki.root)],
                                log_path=str(self.log))
        assert procs.wait_port("127.0.0.1", port, 15, self.proc), self.log.read_text()

    def pay(self, device, amount, txn):
        """POST the payment; a 503 (the cloud itself still reconnecting to the broker) says to
        send the same txn again, as a PSP would."""
        answers = []
        post = lambda: answers.append(http("POST", self.api + "/payments",
                                           {"device": device, "amount": amount, "txn": txn})) or answers[-1][0] != 503
        assert eventually(post, 20) and answers[-1][0] == 202, answers[-1]

    def record(self, txn):
        return http("GET", self.api + "/payments/" + txn)[1]

    def acks(self, txn, n=1, timeout=30):
        found = eventually(lambda: len(self.record(txn)["acks"]) >= n and self.record(txn)["acks"], timeout)
        assert found, "no %d acks for %s within %d s: %s" % (n, txn, timeout, self.record(txn))
        return found

    def online(self, device):
        return any(d["id"] == device and d["state"] == "online" for d in http("GET", self.api + "/devices")[1])


def start_device(tmp, broker, identity, voice_pack, device_id="sb-0001", tls=True, **extra):
    config = device_config(device_id, broker.host, broker.port, str(identity), None, voice_pack, tls=tls,
                           journal=str(tmp / "said.jsonl"), keepalive=5, **extra)
    return MicroPythonDevice(tmp / device_id, config).start()


def said(tmp, txn=None):
    return [j for j in journal(str(tmp / "said.jsonl")) if txn is None or j["txn"] == txn]


@pytest.fixture
def mp_stack(tls_broker, pki, tmp_path, voice_pack, micropython):
    cloud = Cloud(tls_broker, pki, tmp_path)
    device = start_device(tmp_path, tls_broker, pki.device_dir("sb-0001"), voice_pack)
    try:
        assert eventually(lambda: cloud.online("sb-0001"), 30), device.log_text()
        yield cloud, device
    finally:
        device.stop()
        procs.stop(cloud.proc)


def test_over_mutual_tls_a_payment_is_said_once_and_acked_and_a_repeat_is_a_duplicate(mp_stack, tmp_path):
    cloud, device = mp_stack
    cloud.pay("sb-0001", 25050, "MP-1")
    (ack,) = cloud.acks("MP-1")
    assert ack["status"] == "announced" and cloud.record("MP-1")["status"] == "announced"
    (spoken,) = said(tmp_path, "MP-1")
    assert spoken["words"] == "received two hundred fifty rupees and fifty paise"
    assert spoken["runtime"] == "micropython"
    cloud.pay("sb-0001", 25050, "MP-1")  # the cloud sends it again: the box has it in its ledger
    acks = cloud.acks("MP-1", 2)
    assert acks[1]["status"] == "duplicate"
    device.restart()  # the ledger is on flash: still a duplicate after a restart
    assert eventually(lambda: cloud.online("sb-0001"), 30)
    cloud.pay("sb-0001", 25050, "MP-1")
    assert cloud.acks("MP-1", 3)[2]["status"] == "duplicate"
    assert len(said(tmp_path, "MP-1")) == 1


def test_broker_restarts_bring_the_box_back_in_seconds_with_nothing_lost(mp_stack, tls_broker, tmp_path):
    cloud, device = mp_stack
    took = []
    for i in range(3):
        tls_broker.stop()
        time.sleep(1)  # refused connects meanwhile (on MicroPython: OSError 111 from the first write)
        since = len(device.log_text())
        tls_broker.start()
        started = time.monotonic()
        assert device.wait_log("led: online", 30, since), device.log_text()[since:]
        took.append(time.monotonic() - started)
        # Acked before the next restart: acks caught in a restart are issue #14's, not this one's.
        cloud.pay("sb-0001", 1000 + i, "MP-R%d" % i)
        assert cloud.acks("MP-R%d" % i)[0]["status"] == "announced"
        assert len(said(tmp_path, "MP-R%d" % i)) == 1
    log = device.log_text()
    assert LONG_BACKOFF not in log and not said(tmp_path, "not_registered"), log
    print("MicroPython reconnect after a broker restart, s: %s (max %.2f)" % (
        " ".join("%.2f" % t for t in took), max(took)))
    assert max(took) < 15


@pytest.mark.parametrize("fault", ["untrusted CA", "wrong host name"])
def test_a_broker_certificate_that_fails_the_check_is_said_and_backed_off_not_a_crash(
        fault, tls_broker, pki, tmp_path, voice_pack, micropython):
    from soundbox_tools.pki import Pki

    identity = tmp_path / "identity"
    shutil.copytree(pki.device_dir("sb-0002"), identity)
    extra = {}
    if fault == "untrusted CA":
        other = Pki(tmp_path / "other").init()
        other.issue_device("sb-0002")
        shutil.copy(os.path.join(other.device_dir("sb-0002"), "ca.der"), identity / "ca.der")
    device = start_device(tmp_path, tls_broker, identity, voice_pack, "sb-0002")
    if fault == "wrong host name":
        device.stop()
        device.config["tls"]["server_hostname"] = "wrong.example"
        device.start()
    try:
        assert device.wait_log(LONG_BACKOFF, 30), device.log_text()
        assert eventually(lambda: said(tmp_path, "server_unreachable"), 15), device.log_text()
        time.sleep(2)
        log = device.log_text()
        assert device.running() and "Traceback" not in log, log
        assert "broker certificate not trusted" in log and "led: online" not in log
        assert not said(tmp_path, "not_registered")
    finally:
        device.stop()


def test_a_revoked_device_is_told_it_is_not_registered_and_waits(tls_broker, pki, tmp_path, voice_pack, micropython):
    pki.issue_device("sb-0101")
    pki.revoke("sb-0101")
    tls_broker.restart()  # a SIGHUP reload is asynchronous: the box could connect before the CRL is read
    device = start_device(tmp_path, tls_broker, pki.device_dir("sb-0101"), voice_pack, "sb-0101")
    try:
        assert device.wait_log("broker refused connection", 60), device.log_text()  # 3 closes before CONNACK
        assert eventually(lambda: said(tmp_path, "not_registered"), 15), device.log_text()
        log = device.log_text()
        assert "led: online" not in log and "Traceback" not in log and device.running()
    finally:
        device.stop()


def test_an_identity_in_the_old_pem_layout_says_how_to_reprovision_without_a_retry_loop(
        tls_broker, pki, tmp_path, voice_pack, micropython):
    identity = tmp_path / "old"
    identity.mkdir()
    for name in ("ca.pem", "device.pem", "device.key", "payment.key"):
        shutil.copy(os.path.join(pki.device_dir("sb-0003"), name), identity / name)
    device = start_device(tmp_path, tls_broker, identity, voice_pack, "sb-0003")
    try:
        assert device.wait_log("re-provision", 20), device.log_text()
        assert eventually(lambda: said(tmp_path, "not_registered"), 15), device.log_text()
        time.sleep(3)
        log = device.log_text()
        assert log.count("cannot connect") <= 2 and "Traceback" not in log, log  # long backoff, no loop
    finally:
        device.stop()


def test_forged_and_stale_notifications_are_refused_on_micropython(broker, pki, tmp_path, voice_pack, micropython):
    """Plain MQTT so a stand-in cloud can publish raw notifications; the checks are the device's."""
    desk = Desk(broker)
    device = start_device(tmp_path, broker, pki.device_dir("sb-0004"), voice_pack, "sb-0004", tls=False,
                          freshness_s=60)
    key = pki.payment_key("sb-0004")
    try:
        assert device.wait_log("led: online", 30), device.log_text()
        forged = signed(key, "sb-0004", "MP-F1", 50000)
        forged["mac"] = "00" * 32
        desk.publish("sb-0004", forged)
        assert desk.ack("MP-F1")["status"] == payment.INVALID and desk.ack("MP-F1")["reason"] == "bad MAC"
        desk.publish("sb-0004", "{\"txn\": \"MP-F2\", \"amount\": 2.5}")
        assert desk.ack("MP-F2")["status"] == payment.INVALID
        desk.publish("sb-0004", signed(key, "sb-0004", "MP-S1", 3000, ts=wall_ms() - 600000))
        assert desk.ack("MP-S1")["status"] == payment.STALE
        desk.publish("sb-0004", signed(key, "sb-0004", "MP-G1", 100))
        assert desk.ack("MP-G1", 30)["status"] == payment.ANNOUNCED
        names = [j["txn"] for j in said(tmp_path)]
        assert "MP-F1" not in names and "MP-F2" not in names and "MP-S1" not in names
        assert "offline-summary" in names and names.count("MP-G1") == 1, names
    finally:
        device.stop()
        desk.close()
