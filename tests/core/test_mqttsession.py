"""MQTT session state machine cases (no I/O, explicit clock); CPython and MicroPython."""

from check import raises
from soundbox import mqttcodec as c
from soundbox import mqttsession as ms
from soundbox.mqttcodec import Packet


def packets(session):
    got, used = [], 0
    data = session.data_to_send()
    while used < len(data):
        p, n = c.decode(data[used:])
        got.append(p)
        used += n
    return got


def connected_session(now=0, **kw):
    s = ms.Session("sb-0001", keepalive_s=kw.pop("keepalive_s", 60), **kw)
    s.connection_made(now)
    assert [p.kind for p in packets(s)] == [c.CONNECT]
    events = s.receive(c.encode(Packet(c.CONNACK)), now)
    assert isinstance(events[0], ms.Connected)
    return s


def test_connect_carries_identity_will_and_clean_flag():
    s = ms.Session("sb-7", keepalive_s=30, clean=False, will=("sb/sb-7/status", b"off", 1, True))
    s.connection_made(0)
    (p,) = packets(s)
    assert p.client_id == "sb-7" and p.keepalive == 30 and not p.clean
    assert p.will == ("sb/sb-7/status", b"off", 1, True)
    assert s.state == ms.CONNECTING and s.next_deadline() == 10000


def test_connack_refusal_is_reported_and_permanent_for_bad_credentials():
    for code, permanent in ((3, False), (4, True), (5, True)):
        s = ms.Session("a")
        s.connection_made(0)
        s.data_to_send()
        (ev,) = s.receive(c.encode(Packet(c.CONNACK, code=code)), 1)
        assert isinstance(ev, ms.ConnectionRefused) and ev.permanent == permanent
        assert s.state == ms.DISCONNECTED


def test_no_connack_in_time_kills_the_connection():
    s = ms.Session("a", connect_timeout_ms=5000)
    s.connection_made(0)
    assert s.tick(4999) == []
    (ev,) = s.tick(5000)
    assert isinstance(ev, ms.ConnectionDead)


def test_qos1_publish_and_puback():
    s = connected_session()
    pid = s.publish("sb/x/ack", b"hi", 1, False, 10)
    (p,) = packets(s)
    assert p.kind == c.PUBLISH and p.qos == 1 and p.pid == pid and not p.dup
    (ev,) = s.receive(c.encode(Packet(c.PUBACK, pid=pid)), 20)
    assert isinstance(ev, ms.Delivered) and ev.pid == pid
    assert s.inflight == []


def test_unacked_publish_is_resent_only_after_reconnect_with_dup_and_same_id():
    s = connected_session()
    pid = s.publish("t", b"1", 1, False, 0)
    packets(s)
    for now in (1000, 30000, 59000):  # no resend on a timer on the same connection
        s.tick(now)
        assert packets(s) == []
    s.connection_lost()
    s.connection_made(70000)
    packets(s)
    s.receive(c.encode(Packet(c.CONNACK, session_present=True)), 70001)
    (again,) = packets(s)
    assert again.pid == pid and again.dup and again.payload == b"1"


def test_publishes_made_offline_go_out_after_connack_in_order():
    s = ms.Session("a")
    pids = [s.publish("t", bytes([i]), 1) for i in range(3)]
    assert s.publish("t", b"qos0", 0) == 0  # QoS 0 offline is dropped
    s.connection_made(0)
    packets(s)
    s.receive(c.encode(Packet(c.CONNACK)), 0)
    assert [p.pid for p in packets(s)] == pids


def test_inflight_window_and_queue_are_bounded():
    s = connected_session(max_inflight=2, max_queued=3)
    pids = [s.publish("t", b"x", 1, False, 0) for _ in range(5)]
    assert len(packets(s)) == 2
    assert not s.has_room()
    assert raises(ms.QueueFull, s.publish, "t", b"x", 1, False, 0)
    s.receive(c.encode(Packet(c.PUBACK, pid=pids[0])), 1)
    (p,) = packets(s)
    assert p.pid == pids[2]
    assert s.has_room()


def test_packet_ids_skip_ones_still_in_use_and_wrap():
    s = connected_session()
    s._next_pid = 65534
    a = s.publish("t", b"", 1)
    b = s.publish("t", b"", 1)
    cc = s.publish("t", b"", 1)
    assert (a, b, cc) == (65535, 1, 2)


def test_inbound_qos1_is_delivered_even_when_dup_and_acked_on_request():
    s = connected_session()
    raw = c.encode(Packet(c.PUBLISH, topic="sb/a/notify", payload=b"{}", qos=1, pid=42, dup=True))
    (ev,) = s.receive(raw, 5)
    assert isinstance(ev, ms.Message) and ev.pid == 42 and ev.dup
    assert packets(s) == []  # not acked until the app says so
    s.ack(42, 6)
    (p,) = packets(s)
    assert p.kind == c.PUBACK and p.pid == 42


def test_keepalive_ping_and_half_open_detection_within_one_and_a_half_keepalives():
    s = connected_session(keepalive_s=10)
    assert s.next_deadline() == 10000
    assert s.tick(9999) == [] and packets(s) == []
    s.tick(10000)
    assert [p.kind for p in packets(s)] == [c.PINGREQ]
    assert s.next_deadline() == 15000
    (ev,) = s.tick(15000)
    assert isinstance(ev, ms.ConnectionDead) and s.state == ms.DISCONNECTED


def test_pingresp_keeps_the_link_alive():
    s = connected_session(keepalive_s=10)
    s.tick(10000)
    packets(s)
    s.receive(c.encode(Packet(c.PINGRESP)), 10050)
    assert s.tick(15000) == []
    assert s.state == ms.CONNECTED


def test_garbage_from_broker_kills_connection_not_the_app():
    s = connected_session()
    (ev,) = s.receive(b"\xf0\x00", 1)
    assert isinstance(ev, ms.ConnectionDead)
    assert s.state == ms.DISCONNECTED


def test_subscribe_and_suback():
    s = connected_session()
    pid = s.subscribe([("sb/a/notify", 1)], 0)
    (p,) = packets(s)
    assert p.kind == c.SUBSCRIBE and p.topics == [("sb/a/notify", 1)]
    (ev,) = s.receive(c.encode(Packet(c.SUBACK, pid=pid, codes=[1])), 1)
    assert isinstance(ev, ms.Subscribed) and ev.codes == [1]


def test_a_device_that_keeps_sending_still_pings_and_finds_a_dead_link():
    s = connected_session(keepalive_s=10)
    for now in range(1000, 10000, 1000):  # publishes every second, hears nothing back
        s.publish("sb/x/telemetry", b"{}", 0, False, now)
        s.data_to_send()
    s.tick(10000)
    assert [p.kind for p in packets(s)] == [c.PINGREQ]
    (ev,) = s.tick(15000)
    assert isinstance(ev, ms.ConnectionDead)


def test_packets_after_a_fatal_one_in_the_same_read_are_ignored():
    s = connected_session()
    data = c.encode(Packet(c.CONNACK)) + c.encode(Packet(c.PUBLISH, topic="t", payload=b"x", qos=1, pid=3))
    (ev,) = s.receive(data, 1)  # a second CONNACK is a protocol error
    assert isinstance(ev, ms.ConnectionDead) and s.state == ms.DISCONNECTED


def test_qos2_from_the_broker_is_a_protocol_error():
    s = connected_session()
    (ev,) = s.receive(c.encode(Packet(c.PUBLISH, topic="t", payload=b"x", qos=2, pid=3)), 1)
    assert isinstance(ev, ms.ConnectionDead) and "QoS 2" in ev.reason


def test_an_oversized_qos1_message_is_acked_reported_and_the_link_stays_up():
    s = connected_session(max_packet=1000)
    big = c.encode(Packet(c.PUBLISH, topic="sb/sb-0001/ota/job", payload=b"j" * 5000, qos=1, pid=41))
    nxt = c.encode(Packet(c.PUBLISH, topic="sb/sb-0001/notify", payload=b"pay", qos=1, pid=42))
    events = []
    for i in range(0, len(big) + len(nxt), 700):
        events += s.receive((big + nxt)[i:i + 700], 10)
    over, msg = events
    assert isinstance(over, ms.Oversized) and over.acked and over.pid == 41
    assert over.topic == "sb/sb-0001/ota/job" and over.size == len(big) - 3 and over.limit == 1000
    assert "over our limit of 1000" in over.reason
    assert isinstance(msg, ms.Message) and msg.payload == b"pay" and s.state == ms.CONNECTED
    (ack,) = packets(s)
    assert ack.kind == c.PUBACK and ack.pid == 41  # the big one only: 42 waits for the app


def test_an_oversized_packet_before_connack_kills_the_connection():
    s = ms.Session("a", max_packet=100)
    s.connection_made(0)
    s.data_to_send()
    (ev,) = s.receive(c.encode(Packet(c.PUBLISH, topic="t", payload=b"x" * 200)), 1)
    assert isinstance(ev, ms.ConnectionDead) and s.state == ms.DISCONNECTED
