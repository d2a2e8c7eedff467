"""The MQTT 5 parts of the codec and the session, in a module of their own so a 3.1.1 box
(the default) never loads them: mqttcodec.mqtt5() imports this on first use, which a
Session(protocol=5) does when it is made, and the codec when it meets a v5 packet.

Here: property blocks (2.2.2) to and from {property id: value}, the optional reason code
and properties that end an ack or DISCONNECT, the session's CONNECT properties and what it
takes from CONNACK's, and reason codes (2.4) as text.
"""

from soundbox.mqttfields import (MAX_REMAINING, MAXIMUM_PACKET_SIZE, RECEIVE_MAXIMUM, REASON_STRING, SERVER_KEEPALIVE,
                                 SESSION_EXPIRY, SUBSCRIPTION_ID, USER_PROPERTY, CodecError, blob, u16,
                                 varint)

# Every property id by its value type: one byte, u16, u32, varint, UTF-8, binary.
# (User Property, 0x26, is a string pair.) Strings, not tables: small on the device.
_BYTE = b"\x01\x17\x19\x24\x25\x28\x29\x2a"
_U16 = b"\x13\x21\x22\x23"
_U32 = b"\x02\x11\x18\x27"
_STR = b"\x03\x08\x12\x15\x1a\x1c\x1f"
_BIN = b"\x09\x16"
_LISTS = (USER_PROPERTY, SUBSCRIPTION_ID)  # the properties that may appear more than once

# Reason codes (2.4) the box may see, and those a retry with the same identity will not
# change: unsupported protocol, client id, credentials, not authorised, banned, auth method.
REASONS_5 = {
    0x80: "unspecified error", 0x81: "malformed packet", 0x82: "protocol error",
    0x83: "implementation specific error", 0x84: "unsupported protocol version",
    0x85: "client identifier not valid", 0x86: "bad user name or password", 0x87: "not authorised",
    0x88: "server unavailable", 0x89: "server busy", 0x8A: "banned", 0x8B: "server shutting down",
    0x8C: "bad authentication method", 0x8D: "keep alive timeout", 0x8E: "session taken over",
    0x8F: "topic filter invalid", 0x90: "topic name invalid", 0x91: "packet identifier in use",
    0x93: "receive maximum exceeded", 0x95: "packet too large", 0x96: "message rate too high",
    0x97: "quota exceeded", 0x98: "administrative action", 0x99: "payload format invalid",
    0x9A: "retain not supported", 0x9B: "QoS not supported", 0x9C: "use another server",
    0x9D: "server moved", 0x9E: "shared subscriptions not supported",
    0x9F: "connection rate exceeded", 0xA2: "wildcard subscriptions not supported",
}
PERMANENT_REFUSALS_5 = (0x84, 0x85, 0x86, 0x87, 0x8A, 0x8C)


def reason_text(code, props=None):
    """'not authorised (0x87)', with the server's Reason String when it sent one."""
    text = "%s (0x%02x)" % (REASONS_5.get(code, "reason"), code)
    why = (props or {}).get(REASON_STRING)
    return text + ": " + why if why else text


# ---- encoding ---------------------------------------------------------------

def _u32(n):
    return bytes(((n >> 24) & 0xFF, (n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF))


def _prop(pid, value):
    if pid in _BYTE:
        return bytes((pid, value))
    if pid in _U16:
        return bytes((pid,)) + u16(value)
    if pid in _U32:
        return bytes((pid,)) + _u32(value)
    if pid == SUBSCRIPTION_ID:
        return bytes((pid,)) + varint(value)
    if pid in _STR or pid in _BIN:
        return bytes((pid,)) + blob(value)
    if pid == USER_PROPERTY:
        return bytes((pid,)) + blob(value[0]) + blob(value[1])
    raise CodecError("unknown property id %r" % (pid,))


def props_block(props):
    """A property block: varint length, then each property (lists: one entry per item)."""
    out = b""
    for pid in props:
        values = props[pid] if pid in _LISTS else (props[pid],)
        for v in values:
            out += _prop(pid, v)
    return bytes(varint(len(out))) + out


def code_and_props(p):
    """The optional tail of an ack or DISCONNECT: left out when it says nothing."""
    if p.props:
        return bytes((p.code,)) + props_block(p.props)
    return bytes((p.code,)) if p.code else b""


# ---- decoding (c: a mqttcodec._Cursor on the packet body) ----------------------

def _u32_at(c):
    b = c.take(4)
    return b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]


def _varint_at(c):
    n = 0
    for i in range(4):
        byte = c.byte()
        n |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return n
    raise CodecError("variable byte integer longer than four bytes")


def read_props(c):
    """A property block -> {id: value}."""
    end = _varint_at(c)
    if end > c.left():
        raise CodecError("property block runs past the packet")
    end += c.at
    props: dict = {}
    while c.at < end:
        pid = c.byte()
        value = _prop_value(c, pid)
        if pid in _LISTS:
            props.setdefault(pid, []).append(value)
        elif pid in props:
            raise CodecError("property 0x%02x given twice" % pid)
        else:
            props[pid] = value
    if c.at != end:
        raise CodecError("property runs past its block")
    return props


def _prop_value(c, pid):
    if pid in _BYTE:
        return c.byte()
    if pid in _U16:
        return c.u16()
    if pid in _U32:
        return _u32_at(c)
    if pid == SUBSCRIPTION_ID:
        return _varint_at(c)
    if pid in _STR:
        return c.text()
    if pid in _BIN:
        return c.blob()
    if pid == USER_PROPERTY:
        return (c.text(), c.text())
    raise CodecError("unknown property id 0x%02x" % pid)


def read_code_and_props(c, p):
    """The optional reason code and properties that end an ack, DISCONNECT or AUTH."""
    if c.left():
        p.code = c.byte()
    if c.left():
        p.props = read_props(c)


# ---- the session's side (s: a mqttsession.Session made with protocol=5) --------

def connect_props(s):
    """CONNECT's properties: how many QoS 1 messages we take unacknowledged, the largest
    packet we take, and how long the broker keeps our session."""
    props = {RECEIVE_MAXIMUM: s.receive_maximum,
             # The whole packet, header included: within our decoder's limit either way.
             MAXIMUM_PACKET_SIZE: s.max_packet}
    expiry = s.session_expiry_s
    if expiry is None and not s.clean:
        expiry = 0xFFFFFFFF
    if expiry:
        props[SESSION_EXPIRY] = expiry
    return props


def accept_server_props(s, props):
    """CONNACK's properties: what the server allows on this connection."""
    s.server = props
    s._window = min(s.max_inflight, props.get(RECEIVE_MAXIMUM, 0xFFFF))
    s._server_max_packet = props.get(MAXIMUM_PACKET_SIZE, MAX_REMAINING)
    if SERVER_KEEPALIVE in props:  # MQTT-3.2.2-21: the client must use it
        s.keepalive_ms = props[SERVER_KEEPALIVE] * 1000
