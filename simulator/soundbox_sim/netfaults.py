"""A loopback TCP proxy, run inside a simulator worker's event loop, that breaks the
links of chosen devices: partition, added latency, loss.

Each device's link opens with a one-line preamble naming the device (see link.Link),
which the proxy strips, so faults apply per device while thousands share one port.

The faults behave as TCP would, not as a broken byte pipe:
- partition: nothing moves either way (reads stop, so buffers fill and senders block);
  new connections are accepted by the kernel but go nowhere. When it lifts, what was
  held flows on, and whichever side gave up meanwhile closes as usual.
- latency: every chunk is delivered `delay_ms` later, in order.
- loss: a lost segment is retransmitted after an RTO (200 ms, doubling while the
  retransmission is lost too), holding up everything behind it (head-of-line).
"""

import asyncio
import random
import time

LOOPBACK = "127.0.0.1"
READ_SIZE = 65536
QUEUE_CHUNKS = 64
RTO_S = 0.2
MAX_RTO_S = 3.0


class DeviceFaults:
    def __init__(self):
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.delay_s = 0.0
        self.loss = 0.0


class FaultProxy:
    def __init__(self, target_host, target_port, seed=0):
        if target_host not in (LOOPBACK, "localhost"):
            raise ValueError("the fault proxy only forwards to 127.0.0.1, not %r" % (target_host,))
        self.target = (LOOPBACK, int(target_port))
        self.port = None
        self.links = 0
        self._faults = {}
        self._server = None
        self._tasks = set()
        self._rng = random.Random(seed)

    async def start(self):
        self._server = await asyncio.start_server(self._accept, LOOPBACK, 0, backlog=4096)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self):
        if self._server:
            self._server.close()
        for t in list(self._tasks):
            t.cancel()

    def faults(self, device_id):
        f = self._faults.get(device_id)
        if f is None:
            f = self._faults[device_id] = DeviceFaults()
        return f

    # ---- controls ---------------------------------------------------------------

    def partition(self, device_ids, on):
        for d in device_ids:
            f = self.faults(d)
            (f.flowing.clear if on else f.flowing.set)()

    def latency(self, device_ids, delay_ms):
        for d in device_ids:
            self.faults(d).delay_s = delay_ms / 1000.0

    def loss(self, device_ids, share):
        for d in device_ids:
            self.faults(d).loss = share

    # ---- forwarding -------------------------------------------------------------

    def _spawn(self, coro):
        t = asyncio.ensure_future(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)
        return t

    async def _accept(self, reader, writer):
        self.links += 1
        upstream = None
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            if not line.startswith(b"SBSIM "):
                writer.close()
                return
            f = self.faults(line[6:].strip().decode())
            await f.flowing.wait()  # a partitioned device's connect goes nowhere
            upstream = await asyncio.wait_for(asyncio.open_connection(*self.target), 10)
        except (OSError, asyncio.TimeoutError, UnicodeError):
            writer.transport.abort()
            return
        up_q, down_q = asyncio.Queue(QUEUE_CHUNKS), asyncio.Queue(QUEUE_CHUNKS)
        ends = [writer, upstream[1]]
        self._spawn(self._read(reader, up_q, f))
        self._spawn(self._write(upstream[1], up_q, f, ends))
        self._spawn(self._read(upstream[0], down_q, f))
        self._spawn(self._write(writer, down_q, f, ends))

    async def _read(self, reader, queue, f):
        last_due = 0.0
        try:
            while True:
                await f.flowing.wait()
                data = await reader.read(READ_SIZE)
                due = time.monotonic() + f.delay_s
                if data and f.loss and self._rng.random() < f.loss:
                    rto = RTO_S
                    due += rto
                    while self._rng.random() < f.loss and rto < MAX_RTO_S:
                        rto *= 2
                        due += rto
                last_due = max(due, last_due)  # in order: nothing overtakes a retransmission
                await queue.put((last_due, data))
                if not data:
                    return
        except (OSError, asyncio.CancelledError):
            await queue.put((0.0, b""))

    async def _write(self, writer, queue, f, ends):
        try:
            while True:
                due, data = await queue.get()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                await f.flowing.wait()
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            pass
        for w in ends:  # one side ended: end the other after what was queued for it
            w.close()
