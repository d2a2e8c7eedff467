"""The wire contract (soundbox.wire): topic names both ends build and take apart, and the
ack statuses. Plain asserts: also run under a real MicroPython VM (tests/test_device_gates.py)."""

from soundbox import wire


def test_topics_are_sb_device_kind():
    assert wire.topic("sb-0001", wire.NOTIFY) == "sb/sb-0001/notify"
    assert wire.topic("sb-0001", wire.OTA_JOB) == "sb/sb-0001/ota/job"
    assert wire.any_device(wire.ACK) == "sb/+/ack"
    assert wire.any_device(wire.OTA_STATUS) == "sb/+/ota/status"


def test_every_kind_round_trips():
    kinds = (wire.NOTIFY, wire.ACK, wire.STATUS, wire.TELEMETRY, wire.CMD, wire.CMDACK,
             wire.OTA_JOB, wire.OTA_REQ, wire.OTA_CHUNK, wire.OTA_STATUS)
    assert len(set(kinds)) == 10
    for kind in kinds:
        assert wire.parts(wire.topic("box-7", kind)) == ("box-7", kind)
        assert wire.device_of(wire.topic("box-7", kind)) == "box-7"


def test_topics_outside_the_contract_have_no_device():
    for name in ("", "sb", "sb/", "sb//ack", "sb/box-7", "sb/box-7/", "xb/box-7/ack",
                 "$share/cloud/sb/+/ack", "SB/box-7/ack"):
        assert wire.parts(name) is None, name
        assert wire.device_of(name) is None, name


def test_a_box_is_online_or_offline():
    assert wire.DEVICE_STATES == (wire.ONLINE, wire.OFFLINE) == ("online", "offline")


def test_final_statuses_are_the_ack_statuses_but_duplicate():
    assert wire.FINAL_ACK_STATUSES == (wire.ANNOUNCED, wire.STALE, wire.INVALID, wire.FAILED)
    assert set(wire.ACK_STATUSES) == set(wire.FINAL_ACK_STATUSES) | {wire.DUPLICATE}
    assert len(wire.ACK_STATUSES) == 5
    assert (wire.ANNOUNCED, wire.DUPLICATE, wire.STALE, wire.INVALID, wire.FAILED) == (
        "announced", "duplicate", "stale", "invalid", "failed")
