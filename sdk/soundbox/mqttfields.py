"""What the MQTT 3.1.1 codec (soundbox.mqttcodec) and its MQTT 5 part (soundbox.mqtt5)
share: the one error, the size limit, the property ids used by name, and the three field
encodings. Its own module so that neither of the two imports the other at load time.
"""

MAX_REMAINING = 268435455  # largest value four varint bytes can carry

# MQTT 5 property ids (2.2.2.2) the client uses by name.
MESSAGE_EXPIRY = 0x02
SESSION_EXPIRY = 0x11
ASSIGNED_CLIENT_ID = 0x12
SERVER_KEEPALIVE = 0x13
REASON_STRING = 0x1F
RECEIVE_MAXIMUM = 0x21
MAXIMUM_QOS = 0x24
USER_PROPERTY = 0x26
MAXIMUM_PACKET_SIZE = 0x27
SUBSCRIPTION_ID = 0x0B


class CodecError(ValueError):
    """The bytes are not a valid MQTT packet (or exceed our size limit)."""


def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return out


def u16(n):
    return bytes(((n >> 8) & 0xFF, n & 0xFF))


def blob(data):
    if isinstance(data, str):
        data = data.encode()
    if len(data) > 0xFFFF:
        raise CodecError("string longer than 65535 bytes")
    return u16(len(data)) + data
