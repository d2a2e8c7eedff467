"""MQTT 3.1.1 and 5 packet codec: bytes <-> Packet, no I/O (runs on MicroPython and CPython).

`encode(packet, version)` gives the wire bytes of any packet type; `decode(buf, version=...)`
takes one packet off the front of a buffer; `Decoder` does the same for a byte
stream that arrives in pieces. Malformed input raises CodecError and nothing else.
`version` is the protocol level: 4 (3.1.1, the default) or 5. In 5 a packet also has
`props` ({property id: value}; User Property and Subscription Identifier are lists)
and reason codes: `code` (CONNACK, PUBACK, DISCONNECT, AUTH), `codes` (SUBACK, UNSUBACK).
Property blocks are read and written by soundbox.mqtt5, imported only when a v5 packet
is met (mqtt5()): a 3.1.1 box never loads it.
"""

# Re-exported: the session and callers name these codec.X.
from soundbox.mqttfields import (ASSIGNED_CLIENT_ID, MAX_REMAINING, MAXIMUM_PACKET_SIZE, MAXIMUM_QOS,  # noqa: F401
                                 MESSAGE_EXPIRY, REASON_STRING, RECEIVE_MAXIMUM, SERVER_KEEPALIVE, SESSION_EXPIRY,
                                 SUBSCRIPTION_ID, USER_PROPERTY, CodecError, blob, u16, varint)

CONNECT = 1
CONNACK = 2
PUBLISH = 3
PUBACK = 4
PUBREC = 5
PUBREL = 6
PUBCOMP = 7
SUBSCRIBE = 8
SUBACK = 9
UNSUBSCRIBE = 10
UNSUBACK = 11
PINGREQ = 12
PINGRESP = 13
DISCONNECT = 14
AUTH = 15
_PID_ONLY = (PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK)
_EMPTY = (PINGREQ, PINGRESP, DISCONNECT)
_ACKS = (PUBACK, PUBREC, PUBREL, PUBCOMP)

# Fixed-header flag bits the spec requires for every type but PUBLISH.
_REQUIRED_FLAGS = {PUBREL: 2, SUBSCRIBE: 2, UNSUBSCRIBE: 2}


_mqtt5 = None


def mqtt5():
    """The soundbox.mqtt5 module (property blocks, reason codes), imported on first use."""
    global _mqtt5
    if _mqtt5 is None:
        from soundbox import mqtt5 as module
        _mqtt5 = module
    return _mqtt5


class Packet:
    """One MQTT packet. Only the fields its type uses are meaningful.

    PUBLISH: topic, payload, qos, retain, dup, pid (qos > 0)
    CONNECT: client_id, keepalive, clean, username, password, will (topic, payload, qos, retain) or None
    CONNACK: session_present, code
    SUBSCRIBE: pid, topics [(filter, qos)]     SUBACK: pid, codes [int]
    UNSUBSCRIBE: pid, topics [filter]          PUBACK/PUBREC/PUBREL/PUBCOMP/UNSUBACK: pid
    """

    def __init__(self, kind, pid=0, topic="", payload=b"", qos=0, retain=False, dup=False,
                 client_id="", keepalive=0, clean=True, username=None, password=None,
                 will=None, session_present=False, code=0, topics=None, codes=None, props=None):
        self.kind = kind
        self.pid = pid
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.dup = dup
        self.client_id = client_id
        self.keepalive = keepalive
        self.clean = clean
        self.username = username
        self.password = password
        self.will = will
        self.session_present = session_present
        self.code = code
        self.topics = topics or []
        self.codes = codes or []
        self.props = props or {}

    def __eq__(self, other):
        return isinstance(other, Packet) and self.__dict__ == other.__dict__

    def __repr__(self):
        return "Packet(%r)" % (self.__dict__,)


# ---- encoding ---------------------------------------------------------------

def _pid(pid):
    if not 0 < pid <= 0xFFFF:
        raise CodecError("packet id %r out of range 1..65535" % (pid,))
    return u16(pid)


def _connect_body(p, v5, props):
    flags = 0x02 if p.clean else 0
    tail = blob(p.client_id)
    if p.will:
        topic, message, qos, retain = p.will
        flags |= 0x04 | (qos << 3) | (0x20 if retain else 0)
        tail += (b"\x00" if v5 else b"") + blob(topic) + blob(message)
    if p.username is not None:
        flags |= 0x80
        tail += blob(p.username)
    if p.password is not None:
        flags |= 0x40
        tail += blob(p.password)
    head = blob("MQTT") + bytes((5 if v5 else 4, flags)) + u16(p.keepalive)
    return head + props + tail


def encode(p, version=4):
    """Wire bytes of packet `p` in protocol `version` (4: MQTT 3.1.1, 5: MQTT 5)."""
    kind = p.kind
    v5 = version == 5
    props = mqtt5().props_block(p.props) if v5 else b""
    flags = _REQUIRED_FLAGS.get(kind, 0)
    if kind == PUBLISH:
        if p.qos not in (0, 1, 2):
            raise CodecError("qos must be 0, 1 or 2")
        flags = (8 if p.dup else 0) | (p.qos << 1) | (1 if p.retain else 0)
        payload = p.payload.encode() if isinstance(p.payload, str) else bytes(p.payload)
        body = blob(p.topic) + (_pid(p.pid) if p.qos else b"") + props + payload
    elif kind == CONNECT:
        body = _connect_body(p, v5, props)
    elif kind == CONNACK:
        body = bytes((1 if p.session_present else 0, p.code)) + props
    elif kind in _ACKS:
        body = _pid(p.pid) + (mqtt5().code_and_props(p) if v5 else b"")
    elif kind == SUBSCRIBE:
        body = _pid(p.pid) + props + b"".join(blob(t) + bytes((q,)) for t, q in p.topics)
    elif kind in (SUBACK, UNSUBACK):
        body = _pid(p.pid) + props + (bytes(p.codes) if kind == SUBACK or v5 else b"")
    elif kind == UNSUBSCRIBE:
        body = _pid(p.pid) + props + b"".join(blob(t) for t in p.topics)
    elif kind in (DISCONNECT, AUTH) and v5:
        body = mqtt5().code_and_props(p)
    elif kind in _EMPTY:
        body = b""
    else:
        raise CodecError("unknown packet type %r" % (kind,))
    if len(body) > MAX_REMAINING:
        raise CodecError("packet too large")
    return bytes((kind << 4 | flags,)) + varint(len(body)) + body


# ---- what the app may ask for (checked before anything is queued) ---------------

def _utf8(text, what):
    """The UTF-8 bytes of an MQTT string, or ValueError saying why it cannot be one."""
    if not isinstance(text, str):
        raise ValueError("%s must be a str, got %s" % (what, type(text).__name__))
    try:
        raw = text.encode()
        raw.decode()  # MicroPython encodes a lone surrogate without complaint: read it back
    except UnicodeError:
        raise ValueError("%s is not valid UTF-8 (a lone surrogate?)" % what)
    if _has_surrogate(raw):
        raise ValueError("%s is not valid UTF-8 (a lone surrogate?)" % what)
    if not raw:
        raise ValueError("%s is empty" % what)
    if len(raw) > 0xFFFF:
        raise ValueError("%s is %d bytes encoded; at most 65535" % (what, len(raw)))
    if "\x00" in text:
        raise ValueError("%s contains NUL (U+0000)" % what)
    return raw


def _has_surrogate(raw):
    # U+D800..U+DFFF encode as ED A0..BF xx: not UTF-8 (RFC 3629), and a broker closes the link on it.
    at = raw.find(b"\xed")
    while at >= 0:
        if at + 1 < len(raw) and raw[at + 1] >= 0xA0:
            return True
        at = raw.find(b"\xed", at + 1)
    return False


def check_topic_name(topic):
    """A topic to publish to: no wildcards (MQTT-3.3.2-2). Returns its UTF-8 bytes."""
    raw = _utf8(topic, "topic")
    if "+" in topic or "#" in topic:
        raise ValueError("topic %r has a wildcard; '+' and '#' are only for subscribing" % topic)
    return raw


def check_topic_filter(topic_filter):
    """A filter to (un)subscribe: '#' alone in the last level, '+' alone in its level (4.7.1)."""
    _utf8(topic_filter, "topic filter")
    levels = topic_filter.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise ValueError("topic filter %r: '#' must be alone in the last level" % topic_filter)
        if "+" in level and level != "+":
            raise ValueError("topic filter %r: '+' must be alone in its level" % topic_filter)


def check_qos(qos):
    """QoS 0 or 1: QoS 2 (PUBREC/PUBREL/PUBCOMP) is not implemented, 3 does not exist."""
    if qos not in (0, 1) or isinstance(qos, bool):
        raise ValueError("qos must be 0 or 1 (QoS 2 is not supported), got %r" % (qos,))


# ---- decoding ---------------------------------------------------------------

class _Cursor:
    """Reads fields off a packet body and raises CodecError when it runs short."""

    def __init__(self, data):
        self.data = data
        self.at = 0

    def left(self):
        return len(self.data) - self.at

    def take(self, n):
        if n > self.left():
            raise CodecError("packet body ends early")
        chunk = self.data[self.at:self.at + n]
        self.at += n
        return bytes(chunk)

    def byte(self):
        return self.take(1)[0]

    def u16(self):
        b = self.take(2)
        return b[0] << 8 | b[1]

    def blob(self):
        return self.take(self.u16())

    def text(self):
        raw = self.blob()
        try:
            s = raw.decode()
        except UnicodeError:
            raise CodecError("string is not valid UTF-8")
        if "\x00" in s:
            raise CodecError("string contains U+0000")
        return s

    def pid(self):
        pid = self.u16()
        if pid == 0:
            raise CodecError("packet id 0 is not allowed")
        return pid

    def end(self):
        if self.left():
            raise CodecError("%d unexpected bytes at end of packet" % self.left())


def _decode_connect(c):
    if c.text() != "MQTT":
        raise CodecError("not an MQTT CONNECT")
    level = c.byte()
    if level not in (4, 5):
        raise CodecError("protocol level %d: only 4 (3.1.1) and 5" % level)
    flags = c.byte()
    if flags & 0x01:
        raise CodecError("CONNECT reserved flag set")
    will_qos = (flags >> 3) & 3
    if will_qos == 3 or (not flags & 0x04 and flags & 0x38):
        raise CodecError("bad will flags")
    if flags & 0x40 and not flags & 0x80:
        raise CodecError("password without username")
    p = Packet(CONNECT, keepalive=c.u16(), clean=bool(flags & 0x02))
    if level == 5:
        p.props = mqtt5().read_props(c)
    p.client_id = c.text()
    if flags & 0x04:
        if level == 5:
            mqtt5().read_props(c)  # will properties: we send none
        p.will = (c.text(), c.blob(), will_qos, bool(flags & 0x20))
    if flags & 0x80:
        p.username = c.text()
    if flags & 0x40:
        p.password = c.blob()
    return p


def _topic_list(c, kind, v5):
    """The list after the packet id: (filter, qos) pairs, filters, or SUBACK/UNSUBACK codes."""
    items = []
    while c.left():
        if kind == SUBSCRIBE:
            topic, qos = c.text(), c.byte()
            if qos & 3 > 2 or (qos > 2 and not v5) or qos & 0xC0:
                raise CodecError("subscription options %d" % qos)
            items.append((topic, qos))
        elif kind == UNSUBSCRIBE:
            items.append(c.text())
        else:
            code = c.byte()
            if not v5 and code not in (0, 1, 2, 0x80):
                raise CodecError("SUBACK return code %d" % code)
            items.append(code)
    if not items:
        raise CodecError("empty topic list")
    return items


def _decode_body(kind, flags, body, version=4):
    c = _Cursor(body)
    v5 = version == 5
    if kind == PUBLISH:
        qos = (flags >> 1) & 3
        if qos == 3:
            raise CodecError("PUBLISH qos 3")
        p = Packet(PUBLISH, qos=qos, retain=bool(flags & 1), dup=bool(flags & 8))
        p.topic = c.text()
        if qos:
            p.pid = c.pid()
        if v5:
            p.props = mqtt5().read_props(c)
        p.payload = c.take(c.left())
        return p
    if flags != _REQUIRED_FLAGS.get(kind, 0):
        raise CodecError("bad fixed-header flags for packet type %d" % kind)
    if kind == CONNECT:
        p = _decode_connect(c)
    elif kind == CONNACK:
        sp = c.byte()
        if sp > 1:
            raise CodecError("CONNACK reserved bits set")
        p = Packet(CONNACK, session_present=bool(sp), code=c.byte())
        if v5:
            p.props = mqtt5().read_props(c)
    elif kind in _ACKS and v5:
        p = Packet(kind, pid=c.pid())
        mqtt5().read_code_and_props(c, p)
    elif kind in _PID_ONLY and not (kind == UNSUBACK and v5):
        p = Packet(kind, pid=c.pid())
    elif kind in (SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK):
        p = Packet(kind, pid=c.pid())
        if v5:
            p.props = mqtt5().read_props(c)
        items = _topic_list(c, kind, v5)
        if kind in (SUBACK, UNSUBACK):
            p.codes = items
        else:
            p.topics = items
    elif kind in (DISCONNECT, AUTH) and v5:
        p = Packet(kind)
        mqtt5().read_code_and_props(c, p)
    elif kind in _EMPTY:
        p = Packet(kind)
    else:
        raise CodecError("reserved packet type %d" % kind)
    c.end()
    return p


def _header(buf, max_size):
    """(kind, flags, body_length, header_length), or None if the header is incomplete."""
    if not buf:
        return None
    length = 0
    for i in range(1, 5):
        if i >= len(buf):
            return None
        byte = buf[i]
        length |= (byte & 0x7F) << (7 * (i - 1))
        if not byte & 0x80:
            if length > max_size:
                raise CodecError("packet of %d bytes exceeds limit %d" % (length, max_size))
            return buf[0] >> 4, buf[0] & 0x0F, length, i + 1
    raise CodecError("remaining length longer than four bytes")


def decode(buf, max_size=MAX_REMAINING, version=4):
    """Decode one packet from the front of `buf`: (packet, bytes_used), or (None, 0) if incomplete."""
    head = _header(buf, max_size)
    if head is None:
        return None, 0
    kind, flags, length, hlen = head
    if len(buf) < hlen + length:
        return None, 0
    return _decode_body(kind, flags, memoryview(buf)[hlen:hlen + length], version), hlen + length


class Skipped:
    """A packet over the Decoder's limit that was streamed past, not buffered.

    For a PUBLISH, `qos`, `pid` (to acknowledge it) and the first TOPIC_KEPT bytes of
    its topic (to say what it was) are kept; the rest of the body is discarded."""

    TOPIC_KEPT = 64

    def __init__(self, kind, flags, size):
        self.kind = kind
        self.qos = (flags >> 1) & 3 if kind == PUBLISH else 0
        self.size = size
        self.topic_prefix = b""
        self.topic_len = None  # None until the 2-byte topic length has arrived
        self.pid = 0
        self.at = 0  # body bytes seen so far
        self._head = bytearray()  # topic length, then pid: at most 2 bytes each

    def eat(self, data, start):
        """Consume body bytes from data[start:]; returns the index after what was used."""
        n = min(len(data) - start, self.size - self.at)
        if self.kind == PUBLISH:
            self._look(data, start, n)
        self.at += n
        return start + n

    def done(self):
        return self.at >= self.size

    def _look(self, data, i, n):
        # Body layout: u16 topic length, topic, u16 pid (QoS > 0), payload.
        at, end = self.at, i + n
        while i < end:
            if self.topic_len is None:
                self._head.append(data[i])
                if len(self._head) == 2:
                    self.topic_len = self._head[0] << 8 | self._head[1]
                    self._head = bytearray()
                step = 1
            elif at < 2 + self.topic_len:
                if at < 2 + self.TOPIC_KEPT:
                    self.topic_prefix += bytes((data[i],))
                    step = 1
                else:  # the rest of a long topic is not kept: jump to the pid
                    step = min(end - i, 2 + self.topic_len - at)
            elif self.qos and at < 4 + self.topic_len:
                self._head.append(data[i])
                if len(self._head) == 2:
                    self.pid = self._head[0] << 8 | self._head[1]
                step = 1
            else:
                return  # the payload: nothing more to keep
            i += step
            at += step


class Decoder:
    """Turns a byte stream arriving in arbitrary pieces into packets, with a size bound.

    A packet whose body is over `max_size` is not an error: its body is streamed past
    (never buffered) and a Skipped takes its place in the output, so one oversized
    message does not cost the link (and its redelivery on every reconnect)."""

    def __init__(self, max_size=65536, version=4):
        self.max_size = max_size
        self.version = version
        self.buf = b""
        self.skipping = None  # the Skipped being streamed past, if any

    def feed(self, data):
        """Add bytes; return the list of packets (and Skipped) now complete.
        Raises CodecError on bad input."""
        out: list = []
        start = 0
        if self.skipping is not None:
            start = self._skip(data, 0, out)
            if start >= len(data):
                return out
        data = memoryview(data)[start:] if start else data
        self.buf = self.buf + bytes(data) if self.buf else bytes(data)
        while True:
            head = _header(self.buf, MAX_REMAINING)
            if head is None:
                return out
            kind, flags, length, hlen = head
            if length > self.max_size:
                if kind == PUBLISH and (flags >> 1) & 3 == 3:
                    raise CodecError("PUBLISH qos 3")
                self.skipping = Skipped(kind, flags, length)
                rest, self.buf = self.buf, b""
                used = self._skip(rest, hlen, out)
                if used >= len(rest):
                    return out
                self.buf = rest[used:]
                continue
            packet, used = decode(self.buf, self.max_size, self.version)
            if packet is None:
                return out
            out.append(packet)
            self.buf = self.buf[used:]

    def _skip(self, data, start, out):
        skipping = self.skipping
        if skipping is None:  # never: callers check first (narrows the type for the checker)
            return start
        at = skipping.eat(data, start)
        if skipping.done():
            out.append(skipping)
            self.skipping = None
        return at
