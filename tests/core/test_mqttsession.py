"""MQTT session state machine cases (no I/O, explicit clock); CPython and MicroPython."""

import gc

from check import error_message, raises
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
    for now in (1000, 30000, 44000):  # no resend on a timer on the same connection
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


def test_keepalive_ping_before_the_interval_and_half_open_detection_within_one_and_a_quarter():
    s = connected_session(keepalive_s=10)
    assert s.next_deadline() == 7500  # 3/4 of it: the broker must hear us before 10 s
    assert s.tick(7499) == [] and packets(s) == []
    s.tick(7500)
    assert [p.kind for p in packets(s)] == [c.PINGREQ]
    assert s.next_deadline() == 12500
    (ev,) = s.tick(12500)
    assert isinstance(ev, ms.ConnectionDead) and s.state == ms.DISCONNECTED


def test_pingresp_keeps_the_link_alive():
    s = connected_session(keepalive_s=10)
    s.tick(7500)
    packets(s)
    s.receive(c.encode(Packet(c.PINGRESP)), 7550)
    assert s.tick(12500) == []
    assert s.state == ms.CONNECTED


def test_garbage_from_broker_kills_connection_not_the_app():
    s = connected_session()
    (ev,) = s.receive(b"\xf0\x00", 1)
    assert isinstance(ev, ms.ConnectionDead)
    assert s.state == ms.DISCONNECTED


def test_subscribe_and_suback():
    s = connected_session()
    pid = s.subscribe([("sb/a/notify", 1), ("$share/cloud/sb/+/ack", 1)], 0)
    (p,) = packets(s)
    assert p.kind == c.SUBSCRIBE and p.topics == [("sb/a/notify", 1), ("$share/cloud/sb/+/ack", 1)]
    (ev,) = s.receive(c.encode(Packet(c.SUBACK, pid=pid, codes=[1, 0x80])), 1)
    assert isinstance(ev, ms.Subscribed) and ev.codes == [1, 0x80]
    assert ev.refused == [("$share/cloud/sb/+/ack", 0x80)]  # which filter the broker refused


def test_unsubscribe_and_unsuback():
    s = connected_session()
    pid = s.unsubscribe(["sb/a/notify"], 0)
    (p,) = packets(s)
    assert p.kind == c.UNSUBSCRIBE and p.topics == ["sb/a/notify"] and p.pid == pid
    (ev,) = s.receive(c.encode(Packet(c.UNSUBACK, pid=pid)), 1)
    assert isinstance(ev, ms.Unsubscribed) and ev.filters == ["sb/a/notify"]


def test_a_device_that_keeps_sending_still_pings_and_finds_a_dead_link():
    s = connected_session(keepalive_s=10)
    for now in range(1000, 7500, 1000):  # publishes every second, hears nothing back
        s.publish("sb/x/telemetry", b"{}", 0, False, now)
        s.data_to_send()
    s.tick(7500)
    assert [p.kind for p in packets(s)] == [c.PINGREQ]
    (ev,) = s.tick(12500)
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


def refusal(fn, *args):
    """The ValueError message of fn(*args); asserts it raised one."""
    why = error_message(ValueError, fn, *args)
    assert why is not None, "accepted %r" % (args,)
    return why


def nothing_queued(s):
    return s.inflight == [] and s.queued == [] and packets(s) == []


BAD_TOPICS = (
    ("", "empty"), ("a/+", "wildcard"), ("a/#", "wildcard"), ("a\x00b", "NUL"),
    ("a\ud800b", "UTF-8"), ("x" * 65536, "65535"), (b"sb/a", "str"),
)


def test_a_bad_topic_name_is_refused_with_its_reason_and_nothing_is_queued():
    for topic, why in BAD_TOPICS:
        for qos in (0, 1):
            for s in (connected_session(), ms.Session("a")):  # online or offline alike
                assert why in refusal(s.publish, topic, b"x", qos, False, 0), (topic, qos)
                assert nothing_queued(s)
    s = connected_session()
    assert s.publish("sb/a/ack", b"x", 1) == 1 and s.publish("é/ü", b"x", 1) == 2  # still fine


def test_only_qos_0_and_1_are_taken():
    s = connected_session()
    for qos in (2, 3, -1, True, "1"):
        assert "qos must be 0 or 1" in refusal(s.publish, "t", b"x", qos, False, 0)
        assert "qos must be 0 or 1" in refusal(s.subscribe, [("t", qos)])
    assert nothing_queued(s)


def test_a_publish_that_cannot_be_encoded_is_never_in_flight():
    s = connected_session()
    assert "payload" in refusal(s.publish, "t", 12, 1, False, 0)
    assert "payload" in refusal(s.publish, "t", None, 1, False, 0)
    assert nothing_queued(s)
    s.connection_lost()  # and nothing for a reconnect to resend
    s.connection_made(10)
    packets(s)
    s.receive(c.encode(Packet(c.CONNACK, session_present=True)), 11)
    assert packets(s) == []


def test_topic_filters_are_checked_level_by_level():
    s = connected_session()
    good = ["#", "+", "sb/+/ack", "sb/a/#", "+/+/#", "$share/g/sb/+/ack", "a//b", "/"]
    for f in good:
        s.subscribe([(f, 1)], 0)
    bad = (("", "empty"), ("a#", "'#'"), ("a/#/b", "'#'"), ("a/b#", "'#'"), ("a+/b", "'+'"),
           ("a/+b", "'+'"), ("a\x00", "NUL"), ("\ud800", "UTF-8"), ("x" * 65536, "65535"))
    packets(s)
    for f, why in bad:
        assert why in refusal(s.subscribe, [(f, 1)]), f
        assert why in refusal(s.subscribe, [("ok", 1), (f, 0)]), f  # one bad one refuses all
        assert why in refusal(s.unsubscribe, [f]), f
    assert packets(s) == []


def test_subscribe_and_unsubscribe_need_a_non_empty_list_of_the_right_shape():
    s = connected_session()
    assert "non-empty" in refusal(s.subscribe, [])
    assert "non-empty" in refusal(s.subscribe, "sb/a/notify")
    assert "pairs" in refusal(s.subscribe, ["sb/a/notify"])
    assert "non-empty" in refusal(s.unsubscribe, [])
    assert packets(s) == []
    assert raises(ms.NotConnected, ms.Session("a").subscribe, [("t", 1)])


def test_connect_parameters_are_checked_before_any_connection():
    assert "keepalive" in refusal(ms.Session, "a", 65536)
    assert "keepalive" in refusal(ms.Session, "a", -1)
    assert "password needs a username" in refusal(lambda: ms.Session("a", password=b"pw"))
    assert "wildcard" in refusal(lambda: ms.Session("a", will=("sb/+/status", b"off", 1, True)))
    assert "qos" in refusal(lambda: ms.Session("a", will=("sb/a/status", b"off", 2, True)))
    s = ms.Session("a", keepalive_s=65535, username="u", password=b"pw")
    s.connection_made(0)
    (p,) = packets(s)
    assert p.keepalive == 65535 and p.username == "u" and p.password == b"pw"


def reconnect(s, now, session_present):
    s.connection_lost()
    s.connection_made(now)
    packets(s)
    return s.receive(c.encode(Packet(c.CONNACK, session_present=session_present)), now)


def test_in_flight_messages_are_resent_as_new_when_the_broker_lost_the_session():
    s = connected_session(clean=False)
    pid = s.publish("t", b"1", 1, False, 0)
    packets(s)
    (ev,) = reconnect(s, 100, False)
    assert isinstance(ev, ms.Connected)
    (again,) = packets(s)
    assert again.pid == pid and not again.dup  # the broker never saw it in this session


def test_a_clean_session_drops_in_flight_messages_and_says_so_but_sends_queued_ones():
    s = connected_session(clean=True, max_inflight=1)
    first = s.publish("t", b"1", 1, False, 0)
    second = s.publish("t", b"2", 1, False, 0)  # queued behind the window
    packets(s)
    connected, dropped = reconnect(s, 100, False)
    assert isinstance(connected, ms.Connected) and isinstance(dropped, ms.Abandoned)
    assert dropped.pids == [first] and "clean session" in dropped.reason
    (p,) = packets(s)
    assert p.pid == second and not p.dup and p.payload == b"2"


def refused_then_resent(s, now):
    gc.collect()  # here, so none lands in error_message's frame (the WASI VM frees it: see test_voice)
    why = error_message(ms.QueueFull, s.publish, "t", b"new", 1, False, 0)
    reconnect(s, now, True)
    return why, [p.pid for p in packets(s)]


def test_a_full_window_refuses_the_newest_and_keeps_every_accepted_one_across_reconnects():
    s = connected_session(max_inflight=2, max_queued=2)
    pids = [s.publish("t", bytes([i]), 1, False, 0) for i in range(4)]
    packets(s)
    for now in range(1, 121):  # a link that drops before every PUBACK, 120 times
        why, resent = refused_then_resent(s, now)
        assert "2 in flight and 2 queued" in why
        assert resent == pids[:2]  # resending needs no room: it is the window
    s.receive(c.encode(Packet(c.PUBACK, pid=pids[0])), 300)
    (p,) = packets(s)
    assert p.pid == pids[2] and s.has_room()


# ---- MQTT 5 (protocol=5) ---------------------------------------------------------

def packets5(session):
    got, used = [], 0
    data = session.data_to_send()
    while used < len(data):
        p, n = c.decode(data[used:], version=5)
        got.append(p)
        used += n
    return got


def connected5(props=None, **kw):
    s = ms.Session("sb-0001", protocol=5, **kw)
    s.connection_made(0)
    (connect,) = packets5(s)
    (ev,) = s.receive(c.encode(Packet(c.CONNACK, props=props or {}), 5), 1)
    assert isinstance(ev, ms.Connected)
    return s, connect


def test_mqtt5_connect_carries_max_packet_size_receive_maximum_and_session_expiry():
    s, connect = connected5(max_packet=65536, receive_maximum=5, clean=False)
    assert connect.props == {c.MAXIMUM_PACKET_SIZE: 65536, c.RECEIVE_MAXIMUM: 5, c.SESSION_EXPIRY: 0xFFFFFFFF}
    s, connect = connected5(clean=False, session_expiry_s=600)
    assert connect.props[c.SESSION_EXPIRY] == 600
    s, connect = connected5(clean=True)
    assert c.SESSION_EXPIRY not in connect.props  # a clean session ends with the connection
    assert "protocol" in refusal(lambda: ms.Session("a", protocol=3))
    assert "receive maximum" in refusal(lambda: ms.Session("a", protocol=5, receive_maximum=0))


def test_mqtt5_connack_reason_codes_are_known_not_guessed():
    for code, permanent, text in ((0x87, True, "not authorised (0x87)"), (0x86, True, "bad user name"),
                                  (0x89, False, "server busy"), (0x9F, False, "connection rate")):
        s = ms.Session("a", protocol=5)
        s.connection_made(0)
        s.data_to_send()
        (ev,) = s.receive(c.encode(Packet(c.CONNACK, code=code, props={c.REASON_STRING: "acl"}), 5), 1)
        assert isinstance(ev, ms.ConnectionRefused) and ev.code == code and ev.permanent == permanent
        assert text in ev.reason and ev.reason.endswith(": acl"), ev.reason


def test_mqtt5_the_servers_receive_maximum_narrows_our_window_and_its_limits_bound_publishes():
    s, _ = connected5({c.RECEIVE_MAXIMUM: 2, c.MAXIMUM_PACKET_SIZE: 200, c.SERVER_KEEPALIVE: 20})
    pids = [s.publish("t", b"x", 1, False, 1) for _ in range(4)]
    assert [p.pid for p in packets5(s)] == pids[:2] and len(s.queued) == 2
    s.receive(c.encode(Packet(c.PUBACK, pid=pids[0]), 5), 2)
    assert [p.pid for p in packets5(s)] == [pids[2]]
    assert "Maximum Packet Size" in refusal(s.publish, "t", b"x" * 200, 1, False, 3)
    assert s.next_deadline() == 15000 + 2  # 3/4 of the server's 20 s keepalive, from the last send


def test_mqtt5_puback_refusal_settles_the_message_and_says_why():
    s, _ = connected5()
    pid = s.publish("sb/other/ack", b"x", 1, False, 1)
    packets5(s)
    (ev,) = s.receive(c.encode(Packet(c.PUBACK, pid=pid, code=0x87), 5), 2)
    assert isinstance(ev, ms.Delivered) and ev.refused and ev.code == 0x87
    assert "not authorised" in ev.reason and s.inflight == []  # not resent: retrying will not help
    pid = s.publish("sb/a/ack", b"x", 1, False, 3)
    (ev,) = s.receive(c.encode(Packet(c.PUBACK, pid=pid, code=0x10), 5), 4)
    assert not ev.refused  # 0x10: no matching subscribers, still a success


def test_mqtt5_message_expiry_goes_on_the_publish_and_comes_back_on_messages():
    s, _ = connected5()
    s.publish("sb/a/notify", b"pay", 1, False, 1, expiry_s=30)
    (p,) = packets5(s)
    assert p.props == {c.MESSAGE_EXPIRY: 30}
    raw = c.encode(Packet(c.PUBLISH, topic="sb/a/notify", payload=b"p", qos=1, pid=5, props={c.MESSAGE_EXPIRY: 12}), 5)
    (msg,) = s.receive(raw, 2)
    assert msg.props[c.MESSAGE_EXPIRY] == 12
    assert "protocol=5" in refusal(connected_session().publish, "t", b"x", 1, False, 0, 30)


def test_mqtt5_suback_unsuback_codes_and_a_server_disconnect_reach_the_app():
    s, _ = connected5()
    pid = s.subscribe([("sb/a/#", 1), ("$share/cloud/sb/+/ack", 1)], 1)
    (ev,) = s.receive(c.encode(Packet(c.SUBACK, pid=pid, codes=[1, 0x87]), 5), 2)
    assert ev.refused == [("$share/cloud/sb/+/ack", 0x87)]
    pid = s.unsubscribe(["sb/a/#"], 3)
    (ev,) = s.receive(c.encode(Packet(c.UNSUBACK, pid=pid, codes=[0x11]), 5), 4)
    assert ev.codes == [0x11]
    (ev,) = s.receive(c.encode(Packet(c.DISCONNECT, code=0x8E), 5), 5)
    assert isinstance(ev, ms.ConnectionDead) and ev.code == 0x8E and "session taken over" in ev.reason
    assert s.state == ms.DISCONNECTED
