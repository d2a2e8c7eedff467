"""asyncio driver for the MQTT session: one task per connection, same code on
MicroPython (1.22+) and CPython.

The read loop waits for bytes or for the session's next deadline, whichever
comes first, so keepalive needs no task of its own. Every wait has a timeout.
Reconnects use exponential backoff with full jitter (soundbox.backoff).
"""

import asyncio
import random

from soundbox import mqttsession as ms
from soundbox.backoff import Backoff
from soundbox.clock import monotonic_ms
from soundbox.linkfailure import CLOSED, UNTRUSTED, Refusal, failure_kind

READ_SIZE = 2048
# With mutual TLS 1.3 a broker that rejects our certificate (revoked, expired,
# unknown CA) does so after our side of the handshake has finished: all we see
# is the connection closing before CONNACK. This many in a row counts as refused.
# Over plain TCP the same sign usually means a proxy with no broker behind it,
# which is transient, so there it is not counted.
SILENT_CLOSES_MEAN_REFUSED = 3
# The reconnect backoff starts again from the shortest delay only after a connection
# proved itself: up this long, or the broker acknowledged one of our publishes. A
# CONNACK alone proves nothing (a link the broker drops at once made 22 reconnects in 5 s).
STABLE_MS = 30000
# A publish from an app task waits this long for room in a full window, then raises
# QueueFull: with a live link PUBACKs free room well within it.
ROOM_WAIT_S = 30
# CPython 3.11+: a deadline on the current task. asyncio.wait_for (all MicroPython has)
# wraps the awaited coroutine in a task of its own, ~1.3 KiB while a device sits idle in
# its read, and one more task per flush; in a simulator running thousands of boxes that
# adds up.
_timeout = getattr(asyncio, "timeout", None)


async def within(seconds, coro):
    """await coro, raising asyncio.TimeoutError after `seconds`, without a task of its own
    where the runtime allows."""
    if _timeout is None:
        return await asyncio.wait_for(coro, seconds)
    async with _timeout(seconds):
        return await coro


def _may_hold(writer):
    """False when the writer's transport says the socket took every byte (CPython), so
    there is nothing to drain. MicroPython's writer sends in drain(): always True there."""
    transport = getattr(writer, "transport", None)
    return transport is None or transport.get_write_buffer_size() > 0


def log(msg):
    print(msg)


def _why(error):
    """An exception's message on one line (MicroPython's TLS ones are wrapped in newlines)."""
    return " ".join(str(error).split()) or repr(error)


class Client:
    """Keeps one MQTT session connected and feeds its messages to the app.

    on_message(msg): awaited for each inbound message; a QoS 1 message is
        acknowledged only after it returns, so the app persists before PUBACK.
    on_connect(client, session_present): awaited after every CONNACK (subscribe here).
    on_disconnect(): called when a connection ends.
    open_connection(host, port): the transport factory (asyncio.open_connection,
        perhaps with ssl); returns (reader, writer).
    tls: the transport is mutual TLS (see SILENT_CLOSES_MEAN_REFUSED).
    on_notice(event): called with what the app should log or report but that needs no
        action from it: mqttsession.Oversized (a message over our size limit, skipped),
        Subscribed with refused filters, Abandoned (clean session dropped in-flight ones);
        MQTT 5: Delivered with a refusal code (e.g. 0x87 not authorised), ConnectionDead
        with the code of the server's DISCONNECT.

    Full window (see mqttsession): publish() from an app task waits up to ROOM_WAIT_S
    for room, then raises QueueFull; from inside on_connect / on_message (this client's
    read loop, the only reader of the PUBACKs that make room) it raises QueueFull at
    once. A QoS 1 message whose on_message raised QueueFull is not acknowledged, so the
    broker delivers it again on the next connection. Nothing accepted is dropped.

    `refused` holds why the client backs off long: a permanent CONNACK refusal
    (mqttsession.ConnectionRefused) or a Refusal; None while retrying normally.
    """

    def __init__(self, session, host, port, on_message, on_connect=None, on_disconnect=None,
                 open_connection=None, connect_timeout_s=10, backoff=None, log=log, tls=False,
                 on_notice=None):
        self.session = session
        self.host = host
        self.port = port
        self.on_message = on_message
        self.on_connect = on_connect
        self.on_disconnect = on_disconnect
        self.open_connection = open_connection or asyncio.open_connection
        self.connect_timeout_s = connect_timeout_s
        self.backoff = backoff or Backoff()
        self.log = log
        self.tls = tls
        self.on_notice = on_notice
        self.refused = None  # the last ConnectionRefused or Refusal, for the app to report
        self.connect_ms = None  # last successful connect: TCP + TLS + CONNECT/CONNACK
        self._silent_closes = 0  # transports that closed before any CONNACK, in a row
        self._attempt_started = 0
        self._writer = None
        self._failure = None  # the first error of the current connection
        self._lock = asyncio.Lock()
        self._room = asyncio.Event()  # set when a PUBACK frees queue space
        self._stopping = asyncio.Event()  # wakes the backoff sleep when stop() is called
        self._running = True
        self._reader = None  # the task running the read loop (and so the callbacks)
        self._up_since = None  # monotonic ms of the current connection's CONNACK
        self._proven = False  # the broker acknowledged a publish on this connection

    @property
    def connected(self):
        return self.session.state == ms.CONNECTED

    async def run(self):
        """Connect, serve, reconnect; returns only after stop()."""
        while self._running:
            self._attempt_started = monotonic_ms()
            try:
                reader, writer = await asyncio.wait_for(
                    self.open_connection(self.host, self.port), self.connect_timeout_s)
            except Exception as e:  # refused, unreachable, DNS, TLS, timeout
                self.log("mqtt: cannot connect to %s:%d: %r" % (self.host, self.port, e))
                if getattr(e, "permanent", False):  # e.g. tls.TlsSetupError: an unusable identity
                    self._refuse(Refusal(_why(e)))
                elif failure_kind(e) == UNTRUSTED:
                    self._refuse(Refusal("broker certificate not trusted: %s" % _why(e), server=True))
                if self.refused is not None and self.on_disconnect:
                    self.on_disconnect()  # so the app can say why it has gone quiet
            else:
                await self._serve(reader, writer)
            if self._running:
                delay = self.backoff.next_delay_ms(random.getrandbits(16) / 65536)
                try:
                    await asyncio.wait_for(self._stopping.wait(), delay / 1000)
                except asyncio.TimeoutError:
                    pass  # the backoff is over: try again

    async def publish(self, topic, payload, qos=0, retain=False, expiry_s=None):
        """Queue a publish. Bad input raises ValueError before anything is queued; a full
        window raises QueueFull (see the class doc). expiry_s: MQTT 5 Message Expiry
        Interval. Returns the packet id."""
        self.session.check_publish(topic, payload, qos, expiry_s)
        if qos and not self.session.has_room():
            await self._wait_for_room()
        pid = self.session.publish(topic, payload, qos, retain, monotonic_ms(), expiry_s)
        await self._flush()
        return pid

    async def _wait_for_room(self):
        session = self.session
        if asyncio.current_task() is self._reader:
            raise ms.QueueFull("window full (%d in flight, %d queued) and the PUBACKs that free it are read "
                               "by this task" % (len(session.inflight), len(session.queued)))
        deadline = monotonic_ms() + ROOM_WAIT_S * 1000
        while not session.has_room():
            left = deadline - monotonic_ms()
            if left <= 0:
                raise ms.QueueFull("window full (%d in flight, %d queued) for %d s"
                                   % (len(session.inflight), len(session.queued), ROOM_WAIT_S))
            self._room.clear()
            try:
                await within(left / 1000, self._room.wait())
            except asyncio.TimeoutError:
                pass

    async def subscribe(self, topics):
        """SUBSCRIBE [(filter, qos)]; ValueError on a bad filter or QoS, before anything is sent.
        The SUBACK comes as a Subscribed notice when a filter is refused. Returns the pid."""
        pid = self.session.subscribe(topics, monotonic_ms())
        await self._flush()
        return pid

    async def unsubscribe(self, filters):
        """UNSUBSCRIBE [filter]; ValueError on a bad filter, before anything is sent."""
        pid = self.session.unsubscribe(filters, monotonic_ms())
        await self._flush()
        return pid

    async def stop(self, last_words=None):
        """Optionally publish (topic, payload, qos, retain) and DISCONNECT, then close."""
        self._running = False
        self._stopping.set()
        if self.connected:
            try:
                if last_words:
                    self.session.publish(last_words[0], last_words[1], 0, last_words[3], monotonic_ms())
                self.session.disconnect(monotonic_ms())
                await asyncio.wait_for(self._flush(), 2)
            except Exception:
                pass  # best effort: the broker's last will covers us
        await self._close()

    # ---- internals ---------------------------------------------------------

    async def _serve(self, reader, writer):
        self._writer = writer
        self._failure = None
        self._reader = asyncio.current_task()
        self._up_since = None
        self._proven = False
        session = self.session
        session.connection_made(monotonic_ms())
        try:
            await self._flush()
            while self._running:
                deadline = session.next_deadline()
                wait_s = 60 if deadline is None else max(0, deadline - monotonic_ms()) / 1000
                try:
                    data = await within(wait_s, reader.read(READ_SIZE))
                except asyncio.TimeoutError:
                    data = None
                now = monotonic_ms()
                if data == b"":
                    self.log("mqtt: connection closed by broker")
                    break
                events = session.receive(data, now) if data else session.tick(now)
                await self._flush()
                if not await self._dispatch(events):
                    break
        except (OSError, ValueError, asyncio.TimeoutError) as e:  # ValueError: see failure_kind
            self.log("mqtt: connection lost: %r" % (e,))
            if self._failure is None:
                self._failure = e
        finally:
            if session.state == ms.CONNECTING:
                self._ended_before_connack(self._failure)
            self._settle_backoff()
            session.connection_lost()
            await self._close()
            if self.on_disconnect:
                self.on_disconnect()

    async def _dispatch(self, events):
        """Act on session events; False when the connection must be dropped."""
        for ev in events:
            if isinstance(ev, ms.Message):
                if await self._deliver(ev) and ev.qos:
                    self.session.ack(ev.pid, monotonic_ms())
                    await self._flush()
            elif isinstance(ev, ms.Oversized):
                self.log("mqtt: skipped %r" % (ev,))
                await self._flush()  # its PUBACK
                self._notice(ev)
            elif isinstance(ev, ms.Delivered):
                self._proven = True
                self._room.set()
                if ev.refused:
                    self.log("mqtt: broker refused publish %d: %s" % (ev.pid, ev.reason))
                    self._notice(ev)
            elif isinstance(ev, ms.Subscribed):
                if ev.refused:
                    self.log("mqtt: subscription refused: %r" % (ev.refused,))
                    self._notice(ev)
            elif isinstance(ev, ms.Abandoned):
                self.log("mqtt: dropped %r" % (ev,))
                self._room.set()
                self._notice(ev)
            elif isinstance(ev, ms.Connected):
                self._up_since = monotonic_ms()
                self.refused = None
                self._silent_closes = 0
                self.connect_ms = self._up_since - self._attempt_started
                if self.on_connect:
                    try:
                        await self.on_connect(self, ev.session_present)
                    except Exception as e:  # an app bug (or a full window) must not kill the link
                        self.log("mqtt: connect handler failed: %r" % (e,))
            elif isinstance(ev, ms.ConnectionRefused):
                self.refused = ev
                self.log("mqtt: broker refused connection: %s" % ev.reason)
                if ev.permanent:
                    self.backoff.give_up_fast()
                return False
            elif isinstance(ev, ms.ConnectionDead):
                self.log("mqtt: %s" % ev.reason)
                if ev.code is not None:
                    self._notice(ev)
                return False
        return True

    async def _deliver(self, msg):
        """Hand a message to the app; False when it must not be acknowledged (no room to
        answer it: the broker delivers it again on the next connection)."""
        try:
            await self.on_message(msg)
        except ms.QueueFull as e:
            self.log("mqtt: message on %s left unacknowledged: %s" % (msg.topic, e))
            return False
        except Exception as e:  # an app bug must not kill the link
            self.log("mqtt: message handler failed: %r" % (e,))
        return True

    def _settle_backoff(self):
        """At the end of a connection: start the backoff again only if it proved itself."""
        if self._up_since is not None and (self._proven or monotonic_ms() - self._up_since >= STABLE_MS):
            self.backoff.reset()
        self._up_since = None

    def _notice(self, event):
        if self.on_notice is not None:
            try:
                self.on_notice(event)
            except Exception as e:  # an app bug must not kill the link
                self.log("mqtt: notice handler failed: %r" % (e,))

    def _ended_before_connack(self, error):
        kind = CLOSED if error is None or isinstance(error, asyncio.TimeoutError) else failure_kind(error)
        if kind == UNTRUSTED:
            self._refuse(Refusal("broker certificate not trusted: %s" % _why(error), server=True))
        elif kind == CLOSED and self.tls:
            self._closed_before_connack()

    def _refuse(self, refusal):
        self.refused = refusal
        self.log("mqtt: %s: waiting the longest backoff" % refusal.reason)
        self.backoff.give_up_fast()

    def _closed_before_connack(self):
        self._silent_closes += 1
        if self._silent_closes >= SILENT_CLOSES_MEAN_REFUSED and self.refused is None:
            self.refused = ms.ConnectionRefused(5, "broker closed %d connections before CONNACK: "
                                                   "our certificate is probably rejected (revoked, "
                                                   "expired or from another CA)" % self._silent_closes)
            # Same suffix as _refuse: every refusal that waits the longest backoff says so.
            self.log("mqtt: broker refused connection: %s: waiting the longest backoff" % self.refused.reason)
            self.backoff.give_up_fast()

    async def _flush(self):
        data = self.session.data_to_send()
        if not data or self._writer is None:
            return
        try:
            async with self._lock:
                self._writer.write(data)
                if _may_hold(self._writer):
                    await within(30, self._writer.drain())
        except (OSError, ValueError, asyncio.TimeoutError) as e:  # ValueError: see failure_kind
            # Unsent QoS 1 data stays in flight in the session and is resent on
            # reconnect; closing the transport makes the read loop notice now.
            self.log("mqtt: write failed: %r" % (e,))
            if self._failure is None:
                self._failure = e
            await self._close()

    async def _close(self):
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
                await asyncio.wait_for(writer.wait_closed(), 2)
            except Exception:
                pass
