"""The firmware on either MQTT version (config "mqtt": 4 or 5), the real app on a real
mosquitto. On 5 the broker knows the box's 64 KiB packet limit and never sends it what it
could not take; on 3.1.1 the box skips such a message itself. Either way the payment
after it is said. (The MicroPython runtime's twin is in test_micropython_e2e.py.)"""
import pytest

from apprig import AppOnThread
from test_end_to_end import eventually
from test_payment_integrity import RecordingSink, desk, signed  # noqa: F401 (desk: a fixture)

TOO_LARGE = 100 * 1024   # over the box's 64 KiB packet limit


@pytest.mark.parametrize("mqtt", [4, 5])
def test_a_message_too_large_for_the_box_never_stalls_its_payments(broker, tmp_path, pki, desk, mqtt):
    box = AppOnThread(broker, tmp_path / "state", pki.device_dir("sb-0001"), RecordingSink(), mqtt=mqtt)
    try:
        session = box.app.mqtt.session
        # Only an MQTT 5 CONNACK carries properties: the handshake really was version 5.
        assert session.protocol == mqtt and bool(session.server) == (mqtt == 5), session.server
        desk.client.publish("sb/sb-0001/notify", b"x" * TOO_LARGE, qos=1).wait_for_publish(5)
        desk.publish("sb-0001", signed(pki.payment_key("sb-0001"), "sb-0001", "MQ-%d" % mqtt, 25000))
        assert eventually(lambda: [a for a in desk.acks if a["txn"] == "MQ-%d" % mqtt]), box.logs
        assert [a["status"] for a in desk.acks] == ["announced"], desk.acks
        assert [words for name, words in box.sink.played if name == "MQ-%d" % mqtt]
        skipped = [line for line in box.logs if "mqtt: skipped" in line]
        # 3.1.1: the box read past it and said so; 5: the broker never sent it.
        assert len(skipped) == (1 if mqtt == 4 else 0), box.logs
    finally:
        box.stop()


def test_a_config_with_an_unknown_mqtt_version_says_so_and_speaks_3_1_1(broker, tmp_path, pki):
    box = AppOnThread(broker, tmp_path / "state", pki.device_dir("sb-0001"), RecordingSink(), mqtt="5")
    try:
        assert box.app.mqtt.session.protocol == 4
        assert any("config: mqtt '5' is not 4 (MQTT 3.1.1) or 5; using 4" in line for line in box.logs), box.logs
    finally:
        box.stop()
