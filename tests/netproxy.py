"""A loopback TCP proxy that can break the link on command, for tests of flaky networks.

    proxy = Proxy("127.0.0.1", broker.port)   # listens on 127.0.0.1:proxy.port
    proxy.cut()              # close every current connection now; new ones still work
    proxy.refuse(True)       # accept and close at once (the device sees the broker hang up)
    proxy.delay(200)         # add 200 ms latency each way
    proxy.blackhole(True)    # half-open: connections stay up, every byte is silently dropped
    proxy.close()

It runs its own asyncio loop in a daemon thread; the controls are called from the
test's thread and take effect at once. It only ever listens on and connects to
127.0.0.1, holds at most `max_connections` links, and stops for good at close().

A blackhole is a dead 4G link: nothing gets through, not even a close. A side that
hangs up during a blackhole is not told to the other side; when the blackhole lifts,
such a half-dead link is reset, as the peer's TCP stack would do on the next segment.
"""

import asyncio
import threading
import time

LOOPBACK = "127.0.0.1"
READ_SIZE = 65536
QUEUE_CHUNKS = 64  # per direction: bounds what a delayed link buffers (backpressure beyond)


class LinkRecord:
    """What happened to one accepted connection (times are time.monotonic())."""

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
    def __init__(self, record, client_reader, client_writer):
        self.record = record
        self.client = (client_reader, client_writer)
        self.upstream = None
        self.tasks = []
        self.severed = False  # one side hung up during a blackhole; the other was not told


class Proxy:
    def __init__(self, target_host, target_port, max_connections=256):
        if target_host not in (LOOPBACK, "localhost"):
            raise ValueError("netproxy only forwards to 127.0.0.1, not %r" % (target_host,))
        self.target = (LOOPBACK, int(target_port))
        self.max_connections = max_connections
        self.port = None
        self.links = []  # LinkRecord for every accepted connection, in order
        self._lock = threading.Lock()
        self._refusing = False
        self._blackhole = False
        self._delay_s = 0.0
        self._active = set()
        self._server = None
        self._closed = False
        self._error = None
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._main, args=(ready,), name="netproxy", daemon=True)
        self._thread.start()
        if not ready.wait(5) or self._error:
            self.close()
            raise RuntimeError("netproxy did not start: %r" % (self._error,))

    # ---- controls (any thread) ----------------------------------------------

    def cut(self):
        """Close every current connection now (both sides); keep accepting new ones."""
        self._call(self._close_all("cut"))

    def refuse(self, on=True):
        """On: accept each new connection and close it at once. Off: forward normally."""
        self._refusing = bool(on)

    def delay(self, ms):
        """Latency added to every chunk, each way (0 for none)."""
        if ms < 0:
            raise ValueError("delay must be >= 0 ms, got %r" % (ms,))
        self._delay_s = ms / 1000.0

    def blackhole(self, on=True):
        """On: keep connections open but drop every byte both ways. Off: forward again."""
        self._blackhole = bool(on)
        if not on:
            self._call(self._reset_severed())

    def close(self):
        """Stop listening, close every connection and end the thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive() and self._loop.is_running():
            try:
                self._call(self._shutdown())
            except Exception:
                pass
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- observations -------------------------------------------------------

    def attempts(self, since=None):
        """Connections accepted (refused ones included), optionally since a monotonic time."""
        with self._lock:
            return [r for r in self.links if since is None or r.opened >= since]

    def open_links(self):
        with self._lock:
            return [r for r in self.links if r.closed is None]

    # ---- the loop thread ----------------------------------------------------

    def _call(self, coro, timeout=5):
        if self._closed and not self._loop.is_running():
            coro.close()
            return None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _main(self, ready):
        asyncio.set_event_loop(self._loop)
        try:
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._accept, LOOPBACK, 0))
            self.port = self._server.sockets[0].getsockname()[1]
        except Exception as e:
            self._error = e
            ready.set()
            return
        ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self._shutdown())
            self._loop.run_until_complete(asyncio.sleep(0))  # let cancelled tasks finish
            self._loop.close()

    async def _shutdown(self):
        if self._server is not None:
            self._server.close()
            self._server = None
        await self._close_all("proxy")
        for task in [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]:
            task.cancel()

    async def _accept(self, reader, writer):
        with self._lock:
            record = LinkRecord(len(self.links) + 1, time.monotonic())
            self.links.append(record)
        if self._refusing or len(self._active) >= self.max_connections:
            record.refused = True
            self._finish(record, "refused")
            writer.close()
            return
        link = _Link(record, reader, writer)
        self._active.add(link)
        try:
            link.upstream = await asyncio.wait_for(asyncio.open_connection(*self.target), 5)
        except (OSError, asyncio.TimeoutError):
            self._drop(link, "upstream")
            return
        if link not in self._active:  # cut or closed while we were connecting upstream
            link.upstream[1].transport.abort()
            return
        queues = (asyncio.Queue(QUEUE_CHUNKS), asyncio.Queue(QUEUE_CHUNKS))
        link.tasks = [
            asyncio.ensure_future(self._read(link, link.client[0], queues[0], "client")),
            asyncio.ensure_future(self._write(link, link.upstream[1], queues[0], "up")),
            asyncio.ensure_future(self._read(link, link.upstream[0], queues[1], "upstream")),
            asyncio.ensure_future(self._write(link, link.client[1], queues[1], "down")),
        ]

    async def _read(self, link, reader, queue, side):
        """Read one side; queue chunks with their due time. EOF ends the link (unless blackholed)."""
        try:
            while True:
                data = await reader.read(READ_SIZE)
                if not data:
                    break
                if self._blackhole:
                    link.record.dropped += len(data)
                    continue
                await queue.put((time.monotonic() + self._delay_s, data))
        except OSError:
            pass
        record = link.record
        setattr(record, side + "_gone", time.monotonic())
        record.closed_by = record.closed_by or side
        if not self._blackhole:
            await queue.put((time.monotonic() + self._delay_s, None))  # close after what is queued
        elif record.client_gone and record.upstream_gone:
            self._drop(link, side)
        else:
            link.severed = True  # a dead link carries no FIN either: the other side is not told

    async def _write(self, link, writer, queue, direction):
        try:
            while True:
                due, data = await queue.get()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if data is None:
                    break
                if self._blackhole:
                    link.record.dropped += len(data)
                    continue
                writer.write(data)
                await writer.drain()
                if direction == "up":
                    link.record.bytes_up += len(data)
                else:
                    link.record.bytes_down += len(data)
        except OSError:
            pass
        self._drop(link, "proxy")

    async def _reset_severed(self):
        for link in list(self._active):
            if link.severed:
                self._drop(link, "reset")

    async def _close_all(self, why):
        for link in list(self._active):
            self._drop(link, why)

    def _drop(self, link, why):
        """Close both sides of a link now and forget it."""
        if link not in self._active:
            return
        self._active.discard(link)
        self._finish(link.record, why)
        for pair in (link.client, link.upstream):
            if pair is not None:
                pair[1].transport.abort()
        for task in link.tasks:
            if task is not asyncio.current_task():
                task.cancel()

    def _finish(self, record, why):
        with self._lock:
            if record.closed is None:
                record.closed = time.monotonic()
                record.closed_by = record.closed_by or why
