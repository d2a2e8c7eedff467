"""A payment key's life with real parts: a private mosquitto, the cloud handler and the
simulator as their own processes (test_end_to_end's Stack), a PKI of this test's own.

Rotating a box's identity gives it a new payment key: the running cloud signs with it
at once (it re-reads the PKI's index), the box takes its new payment.key, and a
notification MAC'd with the old key is refused as a bad MAC. Revoking the box retires
its key even while it is still connected; `--reissue` brings it back with a new one.
The plain broker is used so a test stand-in (Desk) may publish the old-key forgery.
The same on the real MicroPython unix port over mutual TLS, where the old key's MACs come
from a cloud that still reads the index from before the rotation.
"""
import shutil

from soundbox_tools.broker import Mosquitto
from soundbox_tools.pki import Pki
from test_end_to_end import Stack, journal
from test_micropython_e2e import boxes, clouds  # noqa: F401 (fixtures)
from test_payment_integrity import Desk, signed


def pay(stack, txn, device="sb-0001", amount=100):
    status, body = stack.post("/payments", {"device": device, "amount": amount, "txn": txn})
    assert status == 202, body


def ack_of(stack, txn):
    return stack.acks(txn, 1)[0]


def test_a_rotated_box_announces_with_its_new_key_and_refuses_the_old_one(broker, tmp_path, voice_pack):
    pki = Pki(tmp_path / "certs").init()
    pki.issue_devices(["sb-0001", "sb-0002"])
    retired = [pki.payment_key("sb-0001")]
    desk = Desk(broker)
    stack = Stack(broker, tmp_path, voice_pack, pki=pki)
    try:
        pay(stack, "KV-1")
        assert ack_of(stack, "KV-1")["status"] == "announced"

        pki.rotate("sb-0001")  # the cloud and the sim keep running
        assert pki.key_version("sb-0001") == 1 and pki.payment_key("sb-0001") not in retired
        pay(stack, "KV-2")
        assert ack_of(stack, "KV-2")["status"] == "announced"
        desk.publish("sb-0001", signed(retired[0], "sb-0001", "KV-OLD", 100))
        old = desk.ack("KV-OLD")
        assert (old["status"], old["reason"]) == ("invalid", "bad MAC"), old
        retired.append(pki.payment_key("sb-0001"))

        # Revoked (no broker restart: the plain link stays up): the cloud now signs with a
        # key the box does not hold, so nothing more is announced on it.
        pki.revoke("sb-0001")
        pay(stack, "KV-3")
        assert (ack_of(stack, "KV-3")["status"], ack_of(stack, "KV-3")["reason"]) == ("invalid", "bad MAC")
        pay(stack, "KV-B", device="sb-0002")  # a bystander is not touched
        assert ack_of(stack, "KV-B")["status"] == "announced"

        pki.issue_device("sb-0001", reissue=True)
        assert pki.payment_key("sb-0001") not in retired
        pay(stack, "KV-4")
        assert ack_of(stack, "KV-4")["status"] == "announced"
        for key in retired:  # neither retired key is taken any more
            desk.publish("sb-0001", signed(key, "sb-0001", "KV-R%d" % retired.index(key), 100))
        for n in range(len(retired)):
            assert desk.ack("KV-R%d" % n)["reason"] == "bad MAC"
    finally:
        stack.close()
        desk.close()
    played = [j["txn"] for j in journal(stack.journal)]
    assert played == ["KV-1", "KV-2", "KV-B", "KV-4"]  # each ack was awaited before the next payment
    logs = "".join((tmp_path / name).read_text() for name in ("cloud.log", "sim.log", "devices/devices.log"))
    assert "a new key in" in logs and "replaced the one in use" in logs
    for key in retired + [pki.payment_key("sb-0001")]:
        assert key.hex() not in logs


def test_on_micropython_a_rotated_box_takes_its_new_key_and_a_cloud_on_the_old_index_is_refused(
        tmp_path, boxes, clouds):
    pki = Pki(tmp_path / "certs").init()
    pki.issue_device("sb-0001")
    stale = tmp_path / "stale-certs"  # the cloud's files as they were before the rotation
    stale.mkdir()
    for name in ("ca.pem", "cloud.pem", "cloud.key", "cloud-bulk.pem", "cloud-bulk.key", "payment-master.key",
                 "index.json"):
        shutil.copy(pki.path(name), str(stale / name))
    with Mosquitto(tmp_path / "broker", pki=pki) as broker:
        box = boxes(broker, "sb-0001", pki.device_dir("sb-0001"))
        cloud = clouds(broker, pki.root)
        cloud.wait_online("sb-0001")
        cloud.pay("sb-0001", 100, "MKV-1")
        assert cloud.acks("MKV-1")[0]["status"] == "announced"
        pki.rotate("sb-0001")
        cloud.pay("sb-0001", 200, "MKV-2")
        assert cloud.acks("MKV-2")[0]["status"] == "announced"
        cloud.close()  # the same TLS identity: one cloud at a time

        behind = clouds(broker, stale, "behind")
        behind.wait_online("sb-0001")
        behind.pay("sb-0001", 300, "MKV-OLD")
        (ack,) = behind.acks("MKV-OLD")
        assert (ack["status"], ack["reason"]) == ("invalid", "bad MAC"), ack
        assert box.said_txns() == ["MKV-1", "MKV-2"]
        assert "payment: a new key in" in box.log() and "replaced the one in use" in box.log()
        for key in (pki.payment_key("sb-0001", 0), pki.payment_key("sb-0001")):
            assert key.hex() not in box.log() + cloud.log() + behind.log()
        box.assert_alive_once()
