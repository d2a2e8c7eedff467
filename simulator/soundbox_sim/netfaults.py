"""A loopback TCP proxy, run in an asyncio loop (a simulator worker's, or a test's thread:
tests/netproxy.py), that breaks links the way a network does: partition, added latency,
loss, a blackhole, a cut, a refusal.

With `preamble` (the simulator), each link opens with a one-line preamble naming the device
(see link.Link), which the proxy strips, so faults apply per device while thousands share
one port. Without it (tests), every link is one target, named None.

The faults behave as TCP would, not as a broken byte pipe:
- partition: nothing moves either way (reads stop, so buffers fill and senders block);
  new connections are accepted by the kernel but go nowhere. When it lifts, what was
  held flows on, and whichever side gave up meanwhile closes as usual.
- latency: every chunk is delivered `delay_ms` later, in order.
- loss: a lost segment is retransmitted after an RTO (200 ms, doubling while the
  retransmission is lost too), holding up everything behind it (head-of-line).
- blackhole: a dead 4G link: links stay open, every byte is dropped, not even a close gets
  through. A side that hangs up meanwhile is not told to the other; when the blackhole
  lifts, such a half-dead link is reset, as the peer's TCP stack would do on the next segment.
- cut: every current link closed at once (both sides); new ones still work.
- refuse: each new link accepted and closed at once (the device sees the broker hang up).
"""

import asyncio
import random
import time

LOOPBACK = "127.0.0.1"
READ_SIZE = 65536
QUEUE_CHUNKS = 64  # per direction: bounds what a delayed link buffers (backpressure beyond)
RTO_S = 0.2
MAX_RTO_S = 3.0
PREAMBLE_TIMEOUT_S = 10


class DeviceFaults:
    """What is wrong with one target's links now."""

    __slots__ = ("flowing", "delay_s", "loss", "blackhole")

    def __init__(self):
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.delay_s = 0.0
        self.loss = 0.0
        self.blackhole = False


class LinkRecord:
    """What happened to one accepted connection (times are time.monotonic())."""

    __slots__ = ("number", "opened", "refused", "closed", "closed_by", "client_gone", "upstream_gone",
                 "bytes_up", "bytes_down", "dropped")

    def __init__(self, number, opened):
        self.number = number
        self.opened = opened
        self.refused = False
        self.closed = None  # when the proxy closed both sides
        self.closed_by = None  # first cause: "client", "upstream", "cut", "refused", "proxy", "reset"
        self.client_gone = None  # when the client side hung up (EOF or error)
        self.upstream_gone = None
        self.bytes_up = 0  # client -> upstream, delivered
        self.bytes_down = 0  # upstream -> client, delivered
        self.dropped = 0  # bytes thrown away by a blackhole


class _Link:
    __slots__ = ("record", "faults", "client", "upstream", "tasks", "severed")

    def __init__(self, record, client):
        self.record = record
        self.faults = None
        self.client = client  # (reader, writer)
        self.upstream = None
        self.tasks = []
        self.severed = False  # one side hung up during a blackhole; the other was not told


class FaultProxy:
    """keep_records: every link's LinkRecord in `records` (tests); off, only `links` counts them.
    max_connections: links held at once, beyond which new ones are refused (None: no limit)."""

    def __init__(self, target_host, target_port, seed=0, preamble=True, keep_records=False, max_connections=None):
        if target_host not in (LOOPBACK, "localhost"):
            raise ValueError("the fault proxy only forwards to 127.0.0.1, not %r" % (target_host,))
        self.target = (LOOPBACK, int(target_port))
        self.preamble = preamble
        self.max_connections = max_connections
        self.port = None
        self.links = 0
        self.records = [] if keep_records else None
        self.refusing = False
        self._faults = {}
        self._active = set()
        self._server = None
        self._rng = random.Random(seed)

    async def start(self):
        self._server = await asyncio.start_server(self._accept, LOOPBACK, 0, backlog=4096)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self):
        if self._server:
            self._server.close()
            self._server = None
        self.cut("proxy")

    def faults(self, target):
        f = self._faults.get(target)
        if f is None:
            f = self._faults[target] = DeviceFaults()
        return f

    # ---- controls (from the proxy's loop) ----------------------------------------

    def partition(self, targets, on):
        for d in targets:
            f = self.faults(d)
            (f.flowing.clear if on else f.flowing.set)()

    def latency(self, targets, delay_ms):
        for d in targets:
            self.faults(d).delay_s = delay_ms / 1000.0

    def loss(self, targets, share):
        for d in targets:
            self.faults(d).loss = share

    def blackhole(self, targets, on):
        for d in targets:
            self.faults(d).blackhole = bool(on)
        if not on:
            for link in list(self._active):
                if link.severed and not link.faults.blackhole:
                    self._drop(link, "reset")

    def cut(self, why="cut"):
        """Close every current link now (both sides); new ones are still accepted."""
        for link in list(self._active):
            self._drop(link, why)

    # ---- forwarding -------------------------------------------------------------

    async def _accept(self, reader, writer):
        self.links += 1
        record = LinkRecord(self.links, time.monotonic())
        if self.records is not None:
            self.records.append(record)
        if self.refusing or (self.max_connections is not None and len(self._active) >= self.max_connections):
            record.refused = True
            self._finish(record, "refused")
            writer.close()
            return
        link = _Link(record, (reader, writer))
        self._active.add(link)
        target = None
        if self.preamble:
            try:
                line = await asyncio.wait_for(reader.readline(), PREAMBLE_TIMEOUT_S)
                target = line[6:].strip().decode() if line.startswith(b"SBSIM ") else None
            except (OSError, asyncio.TimeoutError, UnicodeError):
                pass
            if target is None:
                self._drop(link, "client")
                return
        f = link.faults = self.faults(target)
        try:
            await f.flowing.wait()  # a partitioned device's connect goes nowhere
            link.upstream = await asyncio.wait_for(asyncio.open_connection(*self.target), 10)
        except (OSError, asyncio.TimeoutError):
            self._drop(link, "upstream")
            return
        if link not in self._active:  # cut or closed while we were connecting upstream
            link.upstream[1].transport.abort()
            return
        up_q, down_q = asyncio.Queue(QUEUE_CHUNKS), asyncio.Queue(QUEUE_CHUNKS)
        link.tasks = [asyncio.ensure_future(self._read(link, reader, up_q, "client")),
                      asyncio.ensure_future(self._write(link, link.upstream[1], up_q, "bytes_up")),
                      asyncio.ensure_future(self._read(link, link.upstream[0], down_q, "upstream")),
                      asyncio.ensure_future(self._write(link, writer, down_q, "bytes_down"))]

    async def _read(self, link, reader, queue, side):
        """Read one side; queue chunks with their due time. Its end ends the link (unless blackholed)."""
        f, record, last_due = link.faults, link.record, 0.0
        try:
            while True:
                await f.flowing.wait()
                data = await reader.read(READ_SIZE)
                if not data:
                    break
                if f.blackhole:
                    record.dropped += len(data)
                    continue
                due = time.monotonic() + f.delay_s
                if f.loss and self._rng.random() < f.loss:
                    rto = RTO_S
                    due += rto
                    while self._rng.random() < f.loss and rto < MAX_RTO_S:
                        rto *= 2
                        due += rto
                last_due = max(due, last_due)  # in order: nothing overtakes a retransmission
                await queue.put((last_due, data))
        except OSError:
            pass
        setattr(record, side + "_gone", time.monotonic())
        record.closed_by = record.closed_by or side
        if not f.blackhole:
            await queue.put((max(time.monotonic() + f.delay_s, last_due), None))  # close after what is queued
        elif record.client_gone and record.upstream_gone:
            self._drop(link, side)
        else:
            link.severed = True  # a dead link carries no FIN either: the other side is not told

    async def _write(self, link, writer, queue, counter):
        f, record = link.faults, link.record
        try:
            while True:
                due, data = await queue.get()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                await f.flowing.wait()
                if data is None:
                    break
                if f.blackhole:
                    record.dropped += len(data)
                    continue
                writer.write(data)
                await writer.drain()
                setattr(record, counter, getattr(record, counter) + len(data))
        except OSError:
            pass
        self._drop(link, "proxy", graceful=True)

    def _drop(self, link, why, graceful=False):
        """Close both sides of a link (after what they were sent, if graceful) and forget it."""
        if link not in self._active:
            return
        self._active.discard(link)
        self._finish(link.record, why)
        for pair in (link.client, link.upstream):
            if pair is not None:
                (pair[1].close if graceful else pair[1].transport.abort)()
        for task in link.tasks:
            if task is not asyncio.current_task():
                task.cancel()

    def _finish(self, record, why):
        if record.closed is None:
            record.closed = time.monotonic()
            record.closed_by = record.closed_by or why
