"""MQTT 3.1.1 (and, opted into with protocol=5, MQTT 5) client session as a sans-I/O
state machine.

The session never touches a socket or a clock. The driver tells it what happened
(`connection_made`, `receive`, `connection_lost`, `tick`) with the current
monotonic time in milliseconds, sends whatever `data_to_send()` returns, and
sleeps until `next_deadline()`.

Delivery rules (MQTT-4.4.0-1): an unacknowledged QoS 1 publish is resent only
after a reconnect, with DUP set and the same packet id, never on a timer.
Inbound QoS 1 messages are acknowledged by the app calling `ack(pid)` once it
has safely taken the message, so a crash before that means redelivery.

Window policy: at most `max_inflight` unacknowledged QoS 1 publishes on the wire
and `max_queued` more waiting behind them. When both are full, `publish` raises
QueueFull and queues nothing: the newest is refused, nothing already accepted is
dropped (the oldest stays until its PUBACK). Resends after a reconnect are the
window itself and never need room. QoS 0 publishes made while offline are dropped,
as QoS 0 promises nothing.

After a reconnect with no session on the broker (session_present 0): a persistent
session (clean=False) sends its in-flight messages again as new ones (no DUP: the
broker has no record of them); a clean session has no state to carry over
(MQTT-3.1.2-6), so they are dropped and reported (Abandoned).

Every request is checked before anything is queued; bad input raises ValueError
with the reason (mqttcodec.check_topic_name, check_topic_filter, check_qos).

MQTT 5 (protocol=5): CONNECT carries Session Expiry Interval, Receive Maximum (how many
QoS 1 messages we take unacknowledged) and Maximum Packet Size (`max_packet`: the broker
then drops what we could not take instead of sending it). From CONNACK the server's
Receive Maximum narrows our in-flight window, its Maximum Packet Size bounds our
publishes and its Server Keep Alive replaces ours. Reason codes reach the app: CONNACK
(ConnectionRefused.code), PUBACK (Delivered.code, .refused), SUBACK (Subscribed.refused),
UNSUBACK (Unsubscribed.codes), a DISCONNECT from the server (ConnectionDead.code).
That code lives in soundbox.mqtt5, which a Session(protocol=5) imports when it is made
(mqttcodec.mqtt5()); a 3.1.1 session never loads it.
"""

from soundbox import mqttcodec as codec
from soundbox.mqttcodec import Packet

DISCONNECTED = "disconnected"
CONNECTING = "connecting"
CONNECTED = "connected"

# CONNACK return codes; 4 and 5 will not change by retrying with the same identity.
REFUSALS = {
    1: "unacceptable protocol version",
    2: "client identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorised",
}
PERMANENT_REFUSALS = (4, 5)


class QueueFull(Exception):
    """Both the in-flight window and the outbound queue are full."""


class NotConnected(Exception):
    """A request that only makes sense on a live connection (SUBSCRIBE, UNSUBSCRIBE)."""


class Connected:
    def __init__(self, session_present):
        self.session_present = session_present


class ConnectionRefused:
    """CONNACK refused: `code` is the 3.1.1 return code or the MQTT 5 reason code."""

    def __init__(self, code, reason=None, protocol=4):
        self.code = code
        self.reason = reason or REFUSALS.get(code, "refused with code %d" % code)
        self.permanent = code in (codec.mqtt5().PERMANENT_REFUSALS_5 if protocol == 5 else PERMANENT_REFUSALS)


class Message:
    """An application message from the broker. QoS 1 ones need `session.ack(pid)`."""

    def __init__(self, topic, payload, qos, pid, dup, retain, props=None):
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.pid = pid
        self.dup = dup
        self.retain = retain
        self.props = props or {}  # MQTT 5: e.g. mqttcodec.MESSAGE_EXPIRY (seconds left)


class Delivered:
    """The broker acknowledged our QoS 1 publish `pid`. MQTT 5: `code` is its reason code;
    `refused` (code >= 0x80, e.g. 0x87 not authorised) means the broker took it and
    will not pass it on: it is settled, not resent."""

    def __init__(self, pid, code=0, reason=""):
        self.pid = pid
        self.code = code
        self.refused = code >= 0x80
        self.reason = reason

    def __repr__(self):
        return "Delivered(pid %d, %s)" % (self.pid, self.reason or "ok")


class Subscribed:
    """SUBACK for SUBSCRIBE `pid`: `codes` per filter (0, 1 granted QoS; 0x80 failure),
    `refused` the [(filter, code)] the broker did not grant."""

    def __init__(self, pid, codes, filters=()):
        self.pid = pid
        self.codes = codes
        self.filters = list(filters)
        self.refused = [(f, code) for f, code in zip(self.filters, codes) if code >= 0x80]

    def __repr__(self):
        return "Subscribed(pid %d, refused %r)" % (self.pid, self.refused)


class Unsubscribed:
    """UNSUBACK for UNSUBSCRIBE `pid` of `filters`; MQTT 5: `codes` per filter."""

    def __init__(self, pid, filters=(), codes=()):
        self.pid = pid
        self.filters = list(filters)
        self.codes = list(codes)


class Abandoned:
    """QoS 1 publishes dropped unacknowledged: a clean session starts with no state."""

    def __init__(self, pids, reason):
        self.pids = pids
        self.reason = reason

    def __repr__(self):
        return "Abandoned(%r: %s)" % (self.pids, self.reason)


class Oversized:
    """The broker sent a packet over our size limit; it was skipped, not buffered.

    A QoS 1 PUBLISH among them has been acknowledged already (`acked`), so the broker
    does not hand it over again on every reconnect. `topic` is the start of its topic
    (at most mqttcodec.Skipped.TOPIC_KEPT bytes), `truncated` when there was more."""

    def __init__(self, skipped, limit, acked):
        self.kind = skipped.kind
        self.size = skipped.size
        self.limit = limit
        self.qos = skipped.qos
        self.pid = skipped.pid
        self.acked = acked
        self.topic = _text(skipped.topic_prefix)
        self.truncated = skipped.topic_len is not None and skipped.topic_len > len(skipped.topic_prefix)
        self.reason = "packet type %d of %d bytes is over our limit of %d" % (self.kind, self.size, limit)

    def __repr__(self):
        return "Oversized(%r%s, %s)" % (self.topic, "..." if self.truncated else "", self.reason)


def _text(raw):
    """A topic prefix as text; a UTF-8 sequence cut at the end is dropped, not an error."""
    for cut in range(4):
        try:
            return bytes(raw[:len(raw) - cut]).decode()
        except UnicodeError:
            pass
    return repr(bytes(raw))


class ConnectionDead:
    """The driver must drop the connection and reconnect (timeout, protocol error, or an
    MQTT 5 DISCONNECT from the server: then `code` is its reason code)."""

    def __init__(self, reason, code=None):
        self.reason = reason
        self.code = code


def _check_connect_5(protocol, session_expiry_s, receive_maximum):
    if protocol not in (4, 5):
        raise ValueError("protocol must be 4 (MQTT 3.1.1) or 5, got %r" % (protocol,))
    if session_expiry_s is not None and not 0 <= session_expiry_s <= 0xFFFFFFFF:
        raise ValueError("session expiry must be 0..4294967295 s, got %r" % (session_expiry_s,))
    if not 1 <= receive_maximum <= 0xFFFF:
        raise ValueError("receive maximum must be 1..65535, got %r" % (receive_maximum,))


def _check_connect(client_id, keepalive_s, will, username, password):
    if not isinstance(client_id, str) or len(client_id.encode()) > 0xFFFF:
        raise ValueError("client id must be a str of at most 65535 UTF-8 bytes")
    if not isinstance(keepalive_s, int) or not 0 <= keepalive_s <= 0xFFFF:
        raise ValueError("keepalive must be 0..65535 s (a 16-bit field), got %r" % (keepalive_s,))
    if password is not None and username is None:
        raise ValueError("a password needs a username (MQTT-3.1.2-22)")
    if will is not None:
        codec.check_topic_name(will[0])
        codec.check_qos(will[2])


class Session:
    def __init__(self, client_id, keepalive_s=60, clean=False, will=None, username=None,
                 password=None, max_inflight=10, max_queued=50, max_packet=65536,
                 connect_timeout_ms=10000, protocol=4, session_expiry_s=None, receive_maximum=10):
        _check_connect(client_id, keepalive_s, will, username, password)
        _check_connect_5(protocol, session_expiry_s, receive_maximum)
        if protocol == 5:
            codec.mqtt5()  # load it now, at boot, not at the first connect
        self.client_id = client_id
        self.protocol = protocol
        # MQTT 5: absent means the session ends with the connection; a persistent one
        # (clean=False) then lasts as long as the broker allows, as in 3.1.1.
        self.session_expiry_s = session_expiry_s
        self.receive_maximum = receive_maximum
        self.keepalive_s = keepalive_s
        self.keepalive_ms = keepalive_s * 1000
        self.clean = clean
        self.will = will  # (topic, payload, qos, retain) or None
        self.username = username
        self.password = password
        self.max_inflight = max_inflight
        self.max_queued = max_queued
        self.max_packet = max_packet
        self.connect_timeout_ms = connect_timeout_ms
        self.state = DISCONNECTED
        self.inflight = []  # [(pid, Packet)] in send order; MicroPython dicts are unordered
        self.queued = []  # [Packet] waiting for an in-flight slot
        self._out = []
        self._next_pid = 0
        self._decoder = None
        self._last_sent = 0
        self._last_received = 0
        self._connack_deadline = None
        self._ping_deadline = None
        self._requests = {}  # pid -> filters of a SUBSCRIBE/UNSUBSCRIBE awaiting its ack
        self.server = {}  # MQTT 5: the CONNACK's properties (what the broker allows)
        # In flight at most: ours, or (MQTT 5) the server's Receive Maximum, which is at most 65535.
        self._window = min(max_inflight, 0xFFFF)
        self._server_max_packet = codec.MAX_REMAINING

    # ---- what the driver reports -------------------------------------------

    def connection_made(self, now):
        """A transport is open: queue CONNECT. Returns nothing; read data_to_send()."""
        self.state = CONNECTING
        self._decoder = codec.Decoder(self.max_packet, self.protocol)
        self.keepalive_ms = self.keepalive_s * 1000  # until a Server Keep Alive says otherwise
        self._out = []
        self._ping_deadline = None
        self._requests = {}  # acks for the last connection's requests will not come
        self._connack_deadline = now + self.connect_timeout_ms
        self._send(Packet(codec.CONNECT, client_id=self.client_id, keepalive=self.keepalive_s,
                          clean=self.clean, will=self.will, username=self.username,
                          password=self.password, props=self._connect_props()), now)

    def _connect_props(self):
        return codec.mqtt5().connect_props(self) if self.protocol == 5 else None

    def connection_lost(self):
        """The transport closed. In-flight publishes stay, to be resent after reconnect."""
        self.state = DISCONNECTED
        self._decoder = None
        self._out = []
        self._connack_deadline = self._ping_deadline = None

    def receive(self, data, now):
        """Bytes from the broker -> list of events."""
        if self._decoder is None:
            return []
        try:
            packets = self._decoder.feed(data)
        except codec.CodecError as e:
            self.connection_lost()
            return [ConnectionDead("malformed data from broker: %s" % e)]
        self._ping_deadline = None  # anything from the broker proves the link is alive
        self._last_received = now
        events = []
        for p in packets:
            if isinstance(p, codec.Skipped):
                event = self._skipped(p, now)
            else:
                event = self._handle(p, now)
            if isinstance(event, list):
                events.extend(event)
            elif event is not None:
                events.append(event)
            if self.state == DISCONNECTED:
                break  # the connection is over: later packets in this read mean nothing
        return events

    def tick(self, now):
        """Time passed: send a keepalive ping, or report a dead connection."""
        if self.state == CONNECTING and now >= self._connack_deadline:
            self.connection_lost()
            return [ConnectionDead("no CONNACK within %d ms" % self.connect_timeout_ms)]
        if self.state != CONNECTED:
            return []
        if self._ping_deadline is not None and now >= self._ping_deadline:
            self.connection_lost()
            return [ConnectionDead("no PINGRESP within %d ms" % (self.keepalive_ms // 2))]
        if self.keepalive_ms and self._ping_deadline is None and now >= self._ping_due():
            self._send(Packet(codec.PINGREQ), now)
            # Ping after 3/4 keepalive idle + answer within keepalive/2: a half-open
            # link is found within 1.25 x keepalive.
            self._ping_deadline = now + self.keepalive_ms // 2
        return []

    def next_deadline(self):
        """Monotonic ms at which tick() must be called next, or None."""
        if self.state == CONNECTING:
            return self._connack_deadline
        if self.state != CONNECTED or not self.keepalive_ms:
            return None
        if self._ping_deadline is not None:
            return self._ping_deadline
        return self._ping_due()

    def _ping_due(self):
        # At 3/4 of the interval: the broker may drop us once a whole one passes in
        # silence (MQTT-3.1.2-24 gives it 1.5), and a loaded loop wakes late.
        return self._idle_since() + self.keepalive_ms * 3 // 4

    def _idle_since(self):
        # Ping when either direction has been quiet for a keepalive: a device that
        # keeps sending (and so never has to ping) must still notice a dead link.
        return min(self._last_sent, self._last_received)

    def data_to_send(self):
        out = b"".join(self._out)
        self._out = []
        return out

    # ---- what the application asks for -------------------------------------

    def check_publish(self, topic, payload, qos, expiry_s=None):
        """ValueError with the reason if this publish could not go on the wire."""
        codec.check_qos(qos)
        raw = codec.check_topic_name(topic)
        if not isinstance(payload, (bytes, bytearray, memoryview, str)):
            raise ValueError("payload must be bytes or str, got %s" % type(payload).__name__)
        if expiry_s is not None and (self.protocol != 5 or not 0 <= expiry_s <= 0xFFFFFFFF):
            raise ValueError("message expiry needs protocol=5 and 0..4294967295 s, got %r" % (expiry_s,))
        # Body, plus the fixed header (5 bytes at most) and Message Expiry (6) for MQTT 5.
        size = 2 + len(raw) + 2 * qos + len(payload.encode() if isinstance(payload, str) else payload)
        if self.protocol == 5:
            size += 5 + 1 + (5 if expiry_s is not None else 0)
        limit = min(codec.MAX_REMAINING, self._server_max_packet)
        if size > limit:
            raise ValueError("publish of %d bytes is over the limit of %d (the broker's Maximum "
                             "Packet Size or MQTT's)" % (size, limit))

    def publish(self, topic, payload, qos=0, retain=False, now=0, expiry_s=None):
        """Queue a publish. Returns its packet id (0 for QoS 0).
        expiry_s (MQTT 5): the broker drops the message if not delivered within it.
        Raises ValueError (bad input) or QueueFull (no room) with nothing queued."""
        self.check_publish(topic, payload, qos, expiry_s)
        props = None if expiry_s is None else {codec.MESSAGE_EXPIRY: expiry_s}
        if qos == 0:
            if self.state == CONNECTED:
                self._send(Packet(codec.PUBLISH, topic=topic, payload=payload, retain=retain, props=props), now)
            return 0
        if not self.has_room():
            raise QueueFull("%d in flight and %d queued" % (len(self.inflight), len(self.queued)))
        packet = Packet(codec.PUBLISH, topic=topic, payload=payload, qos=1, retain=retain,
                        pid=self._new_pid(), props=props)
        if self.state == CONNECTED and len(self.inflight) < self._window:
            self._fly(packet, now)
        else:
            self.queued.append(packet)
        return packet.pid

    def has_room(self):
        return len(self.inflight) + len(self.queued) < self.max_inflight + self.max_queued

    def subscribe(self, topics, now=0):
        """Subscribe to [(filter, qos)]; returns the packet id (Subscribed event follows)."""
        if not isinstance(topics, (list, tuple)) or not topics:
            raise ValueError("subscribe needs a non-empty list of (filter, qos)")
        for item in topics:
            if not isinstance(item, (list, tuple)) or len(item) != 2:
                raise ValueError("subscribe takes (filter, qos) pairs, got %r" % (item,))
            codec.check_topic_filter(item[0])
            codec.check_qos(item[1])
        return self._request(Packet(codec.SUBSCRIBE, topics=list(topics)), [t for t, _ in topics], now)

    def unsubscribe(self, filters, now=0):
        """Unsubscribe from [filter]; returns the packet id (Unsubscribed event follows)."""
        if not isinstance(filters, (list, tuple)) or not filters:
            raise ValueError("unsubscribe needs a non-empty list of filters")
        for f in filters:
            codec.check_topic_filter(f)
        return self._request(Packet(codec.UNSUBSCRIBE, topics=list(filters)), list(filters), now)

    def _request(self, packet, filters, now):
        if self.state != CONNECTED:  # the broker forgets nothing we never sent; say so now
            raise NotConnected("not connected: (un)subscribe from on_connect")
        packet.pid = self._new_pid()
        self._send(packet, now)
        self._requests[packet.pid] = filters
        return packet.pid

    def ack(self, pid, now=0):
        """Acknowledge inbound QoS 1 message `pid` (after the app has taken it)."""
        if self.state == CONNECTED:
            self._send(Packet(codec.PUBACK, pid=pid), now)

    def disconnect(self, now=0):
        """Queue a clean DISCONNECT (reason 0 in MQTT 5: the broker then discards our will)."""
        if self.state == CONNECTED:
            self._send(Packet(codec.DISCONNECT), now)

    # ---- internals ---------------------------------------------------------

    def _send(self, packet, now):
        self._out.append(codec.encode(packet, self.protocol))
        self._last_sent = now

    def _fly(self, packet, now):
        data = codec.encode(packet, self.protocol)  # first: one that cannot be encoded never flies
        self.inflight.append((packet.pid, packet))
        self._out.append(data)
        self._last_sent = now

    def _new_pid(self):
        used = [pid for pid, _ in self.inflight] + [p.pid for p in self.queued] + list(self._requests)
        while True:
            self._next_pid = self._next_pid % 0xFFFF + 1
            if self._next_pid not in used:
                return self._next_pid

    def _handle(self, p, now):
        kind = p.kind
        if self.state == CONNECTING:
            if kind != codec.CONNACK:
                self.connection_lost()
                return ConnectionDead("expected CONNACK, got packet type %d" % kind)
            if p.code:
                self.connection_lost()
                if self.protocol == 5:
                    return ConnectionRefused(p.code, codec.mqtt5().reason_text(p.code, p.props), 5)
                return ConnectionRefused(p.code)
            self.state = CONNECTED
            self._connack_deadline = None
            if self.protocol == 5:  # 3.1.1: no properties, the window and limits stay ours
                codec.mqtt5().accept_server_props(self, p.props)
            abandoned = self._resume(p.session_present, now)
            connected = Connected(p.session_present)
            return [connected, abandoned] if abandoned else connected
        if kind == codec.PUBLISH:
            if p.qos == 2:  # we subscribe at QoS 1 at most; QoS 2 would need PUBREC/PUBREL
                self.connection_lost()
                return ConnectionDead("broker sent a QoS 2 publish; we subscribed at QoS 1")
            return Message(p.topic, p.payload, p.qos, p.pid, p.dup, p.retain, p.props)
        if kind == codec.PUBACK:
            return self._delivered(p, now)
        if kind == codec.SUBACK:
            return Subscribed(p.pid, p.codes, self._requests.pop(p.pid, ()))
        if kind == codec.UNSUBACK:
            return Unsubscribed(p.pid, self._requests.pop(p.pid, ()), p.codes)
        if kind == codec.DISCONNECT and self.protocol == 5:
            self.connection_lost()
            return ConnectionDead("broker disconnected: " + codec.mqtt5().reason_text(p.code, p.props), p.code)
        if kind == codec.PINGRESP:
            return None
        self.connection_lost()
        return ConnectionDead("unexpected packet type %d from broker" % kind)

    def _skipped(self, skipped, now):
        if self.state == CONNECTING:
            self.connection_lost()
            return ConnectionDead("expected CONNACK, got %d bytes of packet type %d" % (skipped.size, skipped.kind))
        acked = skipped.kind == codec.PUBLISH and skipped.qos == 1 and skipped.pid != 0
        if acked:  # the app could never take it: acknowledge so it is not redelivered forever
            self._send(Packet(codec.PUBACK, pid=skipped.pid), now)
        return Oversized(skipped, self.max_packet, acked)

    def _resume(self, session_present, now):
        """After CONNACK: resend what was in flight (same ids; DUP only into the session
        that saw them), then fill the window. Returns an Abandoned event or None."""
        abandoned = None
        if self.clean and self.inflight:
            abandoned = Abandoned([pid for pid, _ in self.inflight], "a clean session keeps no "
                                  "unacknowledged messages across connections")
            self.inflight = []
        for _, packet in self.inflight:
            packet.dup = session_present
            self._send(packet, now)
        while self.queued and len(self.inflight) < self._window:
            self._fly(self.queued.pop(0), now)
        return abandoned

    def _delivered(self, p, now):
        pid = p.pid
        for i in range(len(self.inflight)):
            if self.inflight[i][0] == pid:
                self.inflight.pop(i)
                if self.queued and len(self.inflight) < self._window:
                    self._fly(self.queued.pop(0), now)
                reason = codec.mqtt5().reason_text(p.code, p.props) if p.code >= 0x80 else ""
                return Delivered(pid, p.code, reason)
        return None  # a late PUBACK for something already settled: harmless
