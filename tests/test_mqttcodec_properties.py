"""Property tests for the MQTT codec and session (CPython, hypothesis)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from soundbox import mqttcodec as c
from soundbox import mqttsession as ms
from soundbox.mqttcodec import CodecError, Packet

text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
blob = st.binary(max_size=300)
pid = st.integers(1, 65535)
qos = st.integers(0, 2)

publish = st.builds(lambda t, p, q, r, d, i: Packet(c.PUBLISH, topic=t, payload=p, qos=q, retain=r,
                                                    dup=d, pid=i if q else 0),
                    text, blob, qos, st.booleans(), st.booleans(), pid)
connect = st.builds(lambda cid, ka, clean, will, user, pw: Packet(
    c.CONNECT, client_id=cid, keepalive=ka, clean=clean, will=will, username=user,
    password=pw if user is not None else None),
    text, st.integers(0, 65535), st.booleans(),
    st.none() | st.tuples(text, blob, qos, st.booleans()), st.none() | text, st.none() | blob)
packets = st.one_of(
    publish, connect,
    st.builds(lambda k, i: Packet(k, pid=i), st.sampled_from([c.PUBACK, c.PUBREC, c.PUBREL, c.PUBCOMP, c.UNSUBACK]), pid),
    st.builds(lambda i, ts: Packet(c.SUBSCRIBE, pid=i, topics=ts), pid, st.lists(st.tuples(text, qos), min_size=1, max_size=5)),
    st.builds(lambda i, ts: Packet(c.UNSUBSCRIBE, pid=i, topics=ts), pid, st.lists(text, min_size=1, max_size=5)),
    st.builds(lambda i, cs: Packet(c.SUBACK, pid=i, codes=cs), pid, st.lists(st.sampled_from([0, 1, 2, 0x80]), min_size=1)),
    st.builds(lambda sp, rc: Packet(c.CONNACK, session_present=sp, code=rc), st.booleans(), st.integers(0, 255)),
    st.sampled_from([Packet(c.PINGREQ), Packet(c.PINGRESP), Packet(c.DISCONNECT)]),
)


@settings(max_examples=2000)
@given(packets)
def test_every_packet_we_emit_decodes_to_itself(p):
    data = c.encode(p)
    assert c.decode(data) == (p, len(data))


@settings(max_examples=300)
@given(st.lists(packets, min_size=1, max_size=8), st.data())
def test_stream_of_packets_survives_any_chunking(ps, data):
    stream = b"".join(c.encode(p) for p in ps)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    d = c.Decoder(max_size=c.MAX_REMAINING)
    got, last = [], 0
    for cut in cuts + [len(stream)]:
        got += d.feed(stream[last:cut])
        last = cut
    assert got == ps


@settings(max_examples=5000)
@given(st.binary(max_size=400))
def test_random_bytes_only_ever_raise_codec_error(data):
    try:
        c.decode(data)
    except CodecError:
        pass
    d = c.Decoder(max_size=1000)
    try:
        for i in range(0, len(data), 7):
            d.feed(data[i:i + 7])
    except CodecError:
        pass


@settings(max_examples=2000)
@given(st.lists(packets, max_size=3), st.binary(max_size=100))
def test_mutated_valid_packets_only_ever_raise_codec_error(ps, noise):
    stream = bytearray(b"".join(c.encode(p) for p in ps))
    for i, b in enumerate(noise[: len(stream)]):
        stream[(i * 31) % len(stream)] ^= b
    try:
        c.Decoder(max_size=c.MAX_REMAINING).feed(bytes(stream))
    except CodecError:
        pass


@settings(max_examples=1000)
@given(st.binary(max_size=300))
def test_session_survives_any_bytes_from_the_broker(data):
    s = ms.Session("sb-0001")
    s.connection_made(0)
    s.data_to_send()
    for ev in s.receive(data, 1):
        assert isinstance(ev, (ms.Connected, ms.ConnectionRefused, ms.ConnectionDead, ms.Message,
                               ms.Delivered, ms.Subscribed, ms.Unsubscribed, ms.Oversized))
    s.tick(10 ** 9)


# ---- MQTT 5 ------------------------------------------------------------------------
u32 = st.integers(0, 0xFFFFFFFF)
props = st.fixed_dictionaries({}, optional={
    c.MESSAGE_EXPIRY: u32, c.SESSION_EXPIRY: u32, c.RECEIVE_MAXIMUM: st.integers(1, 65535),
    c.MAXIMUM_PACKET_SIZE: st.integers(1, 0xFFFFFFFF), c.REASON_STRING: text, c.MAXIMUM_QOS: st.integers(0, 1),
    c.USER_PROPERTY: st.lists(st.tuples(text, text), min_size=1, max_size=3),
    c.SUBSCRIPTION_ID: st.lists(st.integers(1, 268435455), min_size=1, max_size=2), 0x09: blob})
code = st.integers(0, 255)
packets5 = st.one_of(
    st.builds(lambda p, pr: (setattr(p, "props", pr), p)[1], publish, props),
    st.builds(lambda p, pr: (setattr(p, "props", pr), p)[1], connect, props),
    st.builds(lambda sp, rc, pr: Packet(c.CONNACK, session_present=sp, code=rc, props=pr), st.booleans(), code, props),
    st.builds(lambda k, i, rc, pr: Packet(k, pid=i, code=rc, props=pr),
              st.sampled_from([c.PUBACK, c.PUBREC, c.PUBREL, c.PUBCOMP]), pid, code, props),
    st.builds(lambda k, i, cs, pr: Packet(k, pid=i, codes=cs, props=pr), st.sampled_from([c.SUBACK, c.UNSUBACK]),
              pid, st.lists(code, min_size=1, max_size=5), props),
    st.builds(lambda k, rc, pr: Packet(k, code=rc, props=pr), st.sampled_from([c.DISCONNECT, c.AUTH]), code, props),
)


@settings(max_examples=2000)
@given(packets5)
def test_every_mqtt5_packet_we_emit_decodes_to_itself(p):
    data = c.encode(p, 5)
    assert c.decode(data, version=5) == (p, len(data))


@settings(max_examples=3000)
@given(st.binary(max_size=400))
def test_random_bytes_only_ever_raise_codec_error_in_mqtt5(data):
    d = c.Decoder(max_size=1000, version=5)
    try:
        for i in range(0, len(data), 7):
            d.feed(data[i:i + 7])
    except CodecError:
        pass


@settings(max_examples=1000)
@given(st.binary(max_size=300))
def test_an_mqtt5_session_survives_any_bytes_from_the_broker(data):
    s = ms.Session("sb-0001", protocol=5)
    s.connection_made(0)
    s.data_to_send()
    for ev in s.receive(c.encode(Packet(c.CONNACK), 5) + data, 1):
        assert isinstance(ev, (ms.Connected, ms.ConnectionRefused, ms.ConnectionDead, ms.Message,
                               ms.Delivered, ms.Subscribed, ms.Unsubscribed, ms.Oversized))
    s.tick(10 ** 9)
