"""MQTT 3.1.1 client session as a sans-I/O state machine.

The session never touches a socket or a clock. The driver tells it what happened
(`connection_made`, `receive`, `connection_lost`, `tick`) with the current
monotonic time in milliseconds, sends whatever `data_to_send()` returns, and
sleeps until `next_deadline()`.

Delivery rules (MQTT-4.4.0-1): an unacknowledged QoS 1 publish is resent only
after a reconnect, with DUP set and the same packet id, never on a timer.
Inbound QoS 1 messages are acknowledged by the app calling `ack(pid)` once it
has safely taken the message, so a crash before that means redelivery.

Bounds: at most `max_inflight` unacknowledged QoS 1 publishes on the wire and
`max_queued` more waiting behind them. When both are full, `publish` raises
QueueFull: the caller decides (the asyncio driver waits for room). QoS 0
publishes made while offline are dropped, as QoS 0 promises nothing.
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


class Connected:
    def __init__(self, session_present):
        self.session_present = session_present


class ConnectionRefused:
    def __init__(self, code, reason=None):
        self.code = code
        self.reason = reason or REFUSALS.get(code, "refused with code %d" % code)
        self.permanent = code in PERMANENT_REFUSALS


class Message:
    """An application message from the broker. QoS 1 ones need `session.ack(pid)`."""

    def __init__(self, topic, payload, qos, pid, dup, retain):
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.pid = pid
        self.dup = dup
        self.retain = retain


class Delivered:
    """The broker acknowledged our QoS 1 publish `pid`."""

    def __init__(self, pid):
        self.pid = pid


class Subscribed:
    def __init__(self, pid, codes):
        self.pid = pid
        self.codes = codes


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
    """The driver must drop the connection and reconnect (timeout or protocol error)."""

    def __init__(self, reason):
        self.reason = reason


class Session:
    def __init__(self, client_id, keepalive_s=60, clean=False, will=None, username=None,
                 password=None, max_inflight=10, max_queued=50, max_packet=65536,
                 connect_timeout_ms=10000):
        self.client_id = client_id
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

    # ---- what the driver reports -------------------------------------------

    def connection_made(self, now):
        """A transport is open: queue CONNECT. Returns nothing; read data_to_send()."""
        self.state = CONNECTING
        self._decoder = codec.Decoder(self.max_packet)
        self._out = []
        self._ping_deadline = None
        self._connack_deadline = now + self.connect_timeout_ms
        self._send(Packet(codec.CONNECT, client_id=self.client_id, keepalive=self.keepalive_ms // 1000,
                          clean=self.clean, will=self.will, username=self.username,
                          password=self.password), now)

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
            if event is not None:
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
        if self.keepalive_ms and self._ping_deadline is None and now >= self._idle_since() + self.keepalive_ms:
            self._send(Packet(codec.PINGREQ), now)
            # Ping after keepalive idle + answer within keepalive/2: a half-open
            # link is found within 1.5 x keepalive.
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
        return self._idle_since() + self.keepalive_ms

    def _idle_since(self):
        # Ping when either direction has been quiet for a keepalive: a device that
        # keeps sending (and so never has to ping) must still notice a dead link.
        return min(self._last_sent, self._last_received)

    def data_to_send(self):
        out = b"".join(self._out)
        self._out = []
        return out

    # ---- what the application asks for -------------------------------------

    def publish(self, topic, payload, qos=0, retain=False, now=0):
        """Queue a publish. Returns its packet id (0 for QoS 0)."""
        if qos not in (0, 1):
            raise ValueError("only QoS 0 and 1 are supported")
        if qos == 0:
            if self.state == CONNECTED:
                self._send(Packet(codec.PUBLISH, topic=topic, payload=payload, retain=retain), now)
            return 0
        if not self.has_room():
            raise QueueFull("%d in flight and %d queued" % (len(self.inflight), len(self.queued)))
        packet = Packet(codec.PUBLISH, topic=topic, payload=payload, qos=1, retain=retain,
                        pid=self._new_pid())
        if self.state == CONNECTED and len(self.inflight) < self.max_inflight:
            self._fly(packet, now)
        else:
            self.queued.append(packet)
        return packet.pid

    def has_room(self):
        return len(self.inflight) + len(self.queued) < self.max_inflight + self.max_queued

    def subscribe(self, topics, now=0):
        """Subscribe to [(filter, qos)]; returns the packet id (Subscribed event follows)."""
        pid = self._new_pid()
        self._send(Packet(codec.SUBSCRIBE, pid=pid, topics=topics), now)
        return pid

    def ack(self, pid, now=0):
        """Acknowledge inbound QoS 1 message `pid` (after the app has taken it)."""
        if self.state == CONNECTED:
            self._send(Packet(codec.PUBACK, pid=pid), now)

    def disconnect(self, now=0):
        """Queue a clean DISCONNECT (the broker then discards our will)."""
        if self.state == CONNECTED:
            self._send(Packet(codec.DISCONNECT), now)

    # ---- internals ---------------------------------------------------------

    def _send(self, packet, now):
        self._out.append(codec.encode(packet))
        self._last_sent = now

    def _fly(self, packet, now):
        self.inflight.append((packet.pid, packet))
        self._send(packet, now)

    def _new_pid(self):
        used = [pid for pid, _ in self.inflight] + [p.pid for p in self.queued]
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
                return ConnectionRefused(p.code)
            self.state = CONNECTED
            self._connack_deadline = None
            self._resume(now)
            return Connected(p.session_present)
        if kind == codec.PUBLISH:
            if p.qos == 2:  # we subscribe at QoS 1 at most; QoS 2 would need PUBREC/PUBREL
                self.connection_lost()
                return ConnectionDead("broker sent a QoS 2 publish; we subscribed at QoS 1")
            return Message(p.topic, p.payload, p.qos, p.pid, p.dup, p.retain)
        if kind == codec.PUBACK:
            return self._delivered(p.pid, now)
        if kind == codec.SUBACK:
            return Subscribed(p.pid, p.codes)
        if kind in (codec.PINGRESP, codec.UNSUBACK):
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

    def _resume(self, now):
        """After CONNACK: resend what was in flight (DUP, same ids), then fill the window."""
        for _, packet in self.inflight:
            packet.dup = True
            self._send(packet, now)
        while self.queued and len(self.inflight) < self.max_inflight:
            self._fly(self.queued.pop(0), now)

    def _delivered(self, pid, now):
        for i in range(len(self.inflight)):
            if self.inflight[i][0] == pid:
                self.inflight.pop(i)
                if self.queued:
                    self._fly(self.queued.pop(0), now)
                return Delivered(pid)
        return None  # a late PUBACK for something already settled: harmless
