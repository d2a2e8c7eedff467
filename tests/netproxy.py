"""The simulator's fault proxy (soundbox_sim.netfaults.FaultProxy) on a thread of its own,
for tests of flaky networks:

    proxy = Proxy("127.0.0.1", broker.port)   # listens on 127.0.0.1:proxy.port
    proxy.cut()              # close every current connection now; new ones still work
    proxy.refuse(True)       # accept and close at once (the device sees the broker hang up)
    proxy.delay(200)         # add 200 ms latency each way
    proxy.blackhole(True)    # half-open: connections stay up, every byte is silently dropped
    proxy.close()

The controls are called from the test's thread and take effect at once. It only ever
listens on and connects to 127.0.0.1, holds at most `max_connections` links, and stops for
good at close(). Every link is one target (no preamble), and every one is recorded
(netfaults.LinkRecord: attempts(), open_links()).
"""

import asyncio
import threading

from soundbox_sim.netfaults import FaultProxy

EVERY_LINK = [None]  # the one target of a proxy without preambles


class Proxy:
    def __init__(self, target_host, target_port, max_connections=256):
        self._proxy = FaultProxy(target_host, target_port, preamble=False, keep_records=True,
                                 max_connections=max_connections)
        self.port = None
        self._closed = False
        self._loop = asyncio.new_event_loop()
        self._error = None
        ready = threading.Event()
        self._thread = threading.Thread(target=self._main, args=(ready,), name="netproxy", daemon=True)
        self._thread.start()
        if not ready.wait(5) or self._error:
            self.close()
            raise RuntimeError("netproxy did not start: %r" % (self._error,))

    # ---- controls (any thread) ----------------------------------------------

    def cut(self):
        """Close every current connection now (both sides); keep accepting new ones."""
        self._call(self._proxy.cut)

    def refuse(self, on=True):
        """On: accept each new connection and close it at once. Off: forward normally."""
        self._proxy.refusing = bool(on)

    def delay(self, ms):
        """Latency added to every chunk, each way (0 for none)."""
        if ms < 0:
            raise ValueError("delay must be >= 0 ms, got %r" % (ms,))
        self._call(self._proxy.latency, EVERY_LINK, ms)

    def blackhole(self, on=True):
        """On: keep connections open but drop every byte both ways. Off: forward again."""
        self._call(self._proxy.blackhole, EVERY_LINK, on)

    def close(self):
        """Stop listening, close every connection and end the thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive() and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- observations -------------------------------------------------------

    @property
    def links(self):
        """LinkRecord for every accepted connection, in order."""
        return list(self._proxy.records)

    def attempts(self, since=None):
        """Connections accepted (refused ones included), optionally since a monotonic time."""
        return [r for r in self.links if since is None or r.opened >= since]

    def open_links(self):
        return [r for r in self.links if r.closed is None]

    # ---- the loop thread ----------------------------------------------------

    def _call(self, fn, *args, timeout=5):
        """fn(*args) on the proxy's loop, waited for."""
        if self._closed:
            return None

        async def run():
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    def _main(self, ready):
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._proxy.start())
            self.port = self._proxy.port
        except Exception as e:
            self._error = e
            ready.set()
            return
        ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self._proxy.close())
            pending = [t for t in asyncio.all_tasks(self._loop)]
            for task in pending:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.close()
