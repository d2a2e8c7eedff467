"""MQTT codec cases; run on CPython (pytest) and under the MicroPython VM."""

from check import raises
from soundbox import mqttcodec as c
from soundbox.mqttcodec import CodecError, Packet


def roundtrip(p):
    data = c.encode(p)
    back, used = c.decode(data)
    assert back == p, (p, back)
    assert used == len(data)
    return data


def test_every_client_packet_roundtrips():
    roundtrip(Packet(c.CONNECT, client_id="sb-0001", keepalive=60, clean=False,
                     will=("sb/sb-0001/status", b'{"state":"offline"}', 1, True)))
    roundtrip(Packet(c.CONNECT, client_id="x", keepalive=0, username="u", password=b"p"))
    roundtrip(Packet(c.PUBLISH, topic="sb/a/ack", payload=b"{}", qos=1, pid=65535, dup=True))
    roundtrip(Packet(c.PUBLISH, topic="t", payload=b"", qos=0, retain=True))
    roundtrip(Packet(c.SUBSCRIBE, pid=1, topics=[("sb/a/notify", 1), ("sb/a/cmd", 0)]))
    roundtrip(Packet(c.UNSUBSCRIBE, pid=2, topics=["a/#"]))
    for kind in (c.PUBACK, c.PUBREC, c.PUBREL, c.PUBCOMP, c.UNSUBACK):
        roundtrip(Packet(kind, pid=77))
    for kind in (c.PINGREQ, c.PINGRESP, c.DISCONNECT):
        assert len(roundtrip(Packet(kind))) == 2
    roundtrip(Packet(c.CONNACK, session_present=True, code=0))
    roundtrip(Packet(c.SUBACK, pid=9, codes=[0, 1, 0x80]))


def test_known_wire_bytes():
    assert c.encode(Packet(c.PINGREQ)) == b"\xc0\x00"
    assert c.encode(Packet(c.PUBACK, pid=258)) == b"\x40\x02\x01\x02"
    assert c.encode(Packet(c.PUBLISH, topic="a", payload=b"x", qos=1, pid=1)) == b"\x32\x06\x00\x01a\x00\x01x"
    connect = c.encode(Packet(c.CONNECT, client_id="id", keepalive=60))
    assert connect == b"\x10\x0e\x00\x04MQTT\x04\x02\x00\x3c\x00\x02id"


def test_remaining_length_varint_boundaries():
    for size in (0, 127, 128, 16383, 16384, 70000):
        p = Packet(c.PUBLISH, topic="t", payload=b"z" * size)
        data = roundtrip(p)
        assert c.decode(data[:-1]) == (None, 0)


def test_decoder_reassembles_any_split():
    stream = (c.encode(Packet(c.CONNACK)) + c.encode(Packet(c.PUBLISH, topic="a/b", payload=b"hello", qos=1, pid=5))
              + c.encode(Packet(c.PINGRESP)))
    for cut in range(len(stream) + 1):
        d = c.Decoder()
        got = d.feed(stream[:cut]) + d.feed(stream[cut:])
        assert [p.kind for p in got] == [c.CONNACK, c.PUBLISH, c.PINGRESP]
        assert got[1].payload == b"hello"
    d = c.Decoder()
    got = []
    for i in range(len(stream)):
        got += d.feed(stream[i:i + 1])
    assert len(got) == 3


def test_malformed_input_raises_codec_error():
    bad = [
        b"\x30\xff\xff\xff\xff\x01",  # varint longer than four bytes
        b"\x36\x03\x00\x01a",  # PUBLISH qos 3
        b"\x40\x02\x00\x00",  # PUBACK packet id 0
        b"\x41\x02\x00\x01",  # PUBACK with reserved flag
        b"\x40\x03\x00\x01\x00",  # PUBACK with trailing byte
        b"\x20\x02\x02\x00",  # CONNACK reserved bits
        b"\x30\x04\x00\x02\xff\xfe",  # topic not UTF-8
        b"\x30\x03\x00\x01\x00",  # topic contains NUL
        b"\x00\x00",  # reserved type 0
        b"\xf0\x00",  # reserved type 15
        b"\x82\x02\x00\x01",  # SUBSCRIBE with no topics
        b"\x90\x03\x00\x01\x05",  # SUBACK bad return code
        b"\x32\x03\x00\x05a",  # body shorter than the topic length says
    ]
    for data in bad:
        assert raises(CodecError, c.decode, data), data


def big_publish(topic, size, qos=1, pid=7):
    return c.encode(Packet(c.PUBLISH, topic=topic, payload=b"x" * size, qos=qos, pid=pid if qos else 0))


def test_an_oversized_packet_is_streamed_past_and_reported_in_any_split():
    small = c.encode(Packet(c.PUBLISH, topic="sb/a/notify", payload=b"next", qos=1, pid=8))
    stream = big_publish("sb/a/ota/job", 1000) + small
    for step in (1, 5, 64, 999, len(stream)):
        d = c.Decoder(max_size=100)
        got = []
        for i in range(0, len(stream), step):
            got += d.feed(stream[i:i + step])
            assert len(d.buf) <= 100 + 5, "the oversized body is never buffered"
        skipped, nxt = got
        assert isinstance(skipped, c.Skipped) and skipped.kind == c.PUBLISH, step
        assert (skipped.qos, skipped.pid, skipped.topic_prefix) == (1, 7, b"sb/a/ota/job"), step
        assert skipped.size == len(stream) - len(small) - 3  # the body: all but the 3-byte header
        assert nxt.payload == b"next" and nxt.pid == 8


def test_an_oversized_packet_keeps_only_the_start_of_a_long_topic_and_still_finds_its_pid():
    topic = "t/" + "y" * 3000
    (skipped,) = c.Decoder(max_size=100).feed(big_publish(topic, 10, pid=300))
    assert skipped.topic_prefix == topic[:c.Skipped.TOPIC_KEPT].encode()
    assert skipped.topic_len == len(topic) and skipped.pid == 300
    (skipped,) = c.Decoder(max_size=100).feed(big_publish("q0", 500, qos=0))
    assert skipped.qos == 0 and skipped.pid == 0 and skipped.topic_prefix == b"q0"


def test_an_oversized_packet_still_needs_a_valid_header():
    d = c.Decoder(max_size=100)
    assert raises(CodecError, d.feed, b"\x36\xe8\x07")  # PUBLISH qos 3, announcing 1000 bytes
    assert raises(CodecError, c.Decoder(max_size=100).feed, b"\x30\xff\xff\xff\xff\x01")


def test_encode_refuses_bad_values():
    assert raises(CodecError, c.encode, Packet(c.PUBACK, pid=0))
    assert raises(CodecError, c.encode, Packet(c.PUBLISH, topic="t", qos=3))
    assert raises(CodecError, c.encode, Packet(99))


V5_PACKETS = (
    Packet(c.CONNECT, client_id="sb-0001", keepalive=60, clean=False, will=("sb/sb-0001/status", b"off", 1, True),
           username="u", password=b"p", props={c.SESSION_EXPIRY: 86400, c.RECEIVE_MAXIMUM: 10,
                                               c.MAXIMUM_PACKET_SIZE: 65536}),
    Packet(c.CONNACK, session_present=True, code=0, props={c.RECEIVE_MAXIMUM: 20, c.MAXIMUM_QOS: 1,
                                                           c.ASSIGNED_CLIENT_ID: "auto-1"}),
    Packet(c.CONNACK, code=0x87, props={c.REASON_STRING: "not authorised"}),
    Packet(c.PUBLISH, topic="sb/a/notify", payload=b"{}", qos=1, pid=9,
           props={c.MESSAGE_EXPIRY: 30, c.USER_PROPERTY: [("k", "v"), ("k", "w")], c.SUBSCRIPTION_ID: [3]}),
    Packet(c.PUBLISH, topic="t", payload=b"q0"),
    Packet(c.PUBACK, pid=9), Packet(c.PUBACK, pid=9, code=0x10),
    Packet(c.PUBACK, pid=9, code=0x87, props={c.REASON_STRING: "no"}),
    Packet(c.SUBSCRIBE, pid=2, topics=[("sb/a/#", 1)], props={c.SUBSCRIPTION_ID: [7]}),
    Packet(c.SUBACK, pid=2, codes=[1, 0x87]), Packet(c.UNSUBSCRIBE, pid=3, topics=["sb/a/#"]),
    Packet(c.UNSUBACK, pid=3, codes=[0, 0x11]),
    Packet(c.DISCONNECT), Packet(c.DISCONNECT, code=0x8E, props={c.REASON_STRING: "session taken over"}),
    Packet(c.PINGREQ), Packet(c.PINGRESP),
)


def test_mqtt5_packets_round_trip_with_properties_and_reason_codes():
    for p in V5_PACKETS:
        data = c.encode(p, 5)
        assert c.decode(data, version=5) == (p, len(data)), p


def test_mqtt5_connect_says_protocol_level_5_and_311_stays_the_default():
    p = Packet(c.CONNECT, client_id="a", props={c.MAXIMUM_PACKET_SIZE: 65536})
    assert c.encode(p, 5)[8] == 5 and c.encode(p)[8] == 4  # after 0x10, length, "\0\4MQTT"
    assert c.decode(c.encode(p))[0].props == {}  # 3.1.1 has no properties on the wire


def test_mqtt5_wire_bytes_match_the_spec():
    # PUBACK pid 1 reason 0x87, no properties: 40 03 00 01 87 (3.4.2.2: properties may be left out)
    assert c.encode(Packet(c.PUBACK, pid=1, code=0x87), 5) == b"\x40\x03\x00\x01\x87"
    assert c.encode(Packet(c.PUBACK, pid=1), 5) == b"\x40\x02\x00\x01"
    assert c.encode(Packet(c.DISCONNECT), 5) == b"\xe0\x00"
    # PUBLISH qos 0 "t" with Message Expiry 30: 30 0a 00 01 74 05 02 00 00 00 1e 78
    assert c.encode(Packet(c.PUBLISH, topic="t", payload=b"x", props={c.MESSAGE_EXPIRY: 30}), 5) == \
        b"\x30\x0a\x00\x01t\x05\x02\x00\x00\x00\x1ex"


def test_bad_mqtt5_properties_are_codec_errors():
    bad = (
        b"\x40\x05\x00\x01\x00\x01\x99",  # PUBACK with an unknown property id
        b"\x40\x06\x00\x01\x00\x05\x21\x00",  # property block longer than the packet
        b"\x20\x09\x00\x00\x06\x21\x00\x01\x21\x00\x02",  # CONNACK with Receive Maximum twice
        b"\xe0\x03\x00\x01\x21",  # DISCONNECT: u16 property cut short
    )
    for data in bad:
        assert raises(c.CodecError, c.decode, data, c.MAX_REMAINING, 5), data


def test_the_mqtt5_decoder_streams_and_skips_like_the_311_one():
    big = c.encode(Packet(c.PUBLISH, topic="sb/a/ota/job", payload=b"j" * 500, qos=1, pid=4,
                          props={c.MESSAGE_EXPIRY: 9}), 5)
    small = c.encode(V5_PACKETS[3], 5)
    d = c.Decoder(max_size=100, version=5)
    got = []
    for i in range(0, len(big + small), 33):
        got += d.feed((big + small)[i:i + 33])
    skipped, nxt = got
    assert skipped.pid == 4 and skipped.topic_prefix == b"sb/a/ota/job" and nxt == V5_PACKETS[3]
