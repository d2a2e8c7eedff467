"""A simulated device's network link: the HAL's `open_connection`, timed and breakable.

It opens the TCP connection itself (so TCP connect and TLS handshake are timed apart),
optionally through the worker's fault proxy (announcing the device id in a one-line
preamble the proxy strips), and keeps the connection's socket so a fault can take it
away the way a power cut or a wedged device does: without a FIN or a TLS close_notify.
"""

import asyncio
import os
import socket
import time

from soundbox_sim.metrics import Counters, LogHistogram

PREAMBLE = b"SBSIM %s\n"  # read and stripped by soundbox_sim.netfaults.FaultProxy


class LinkStats:
    """One worker's connect figures, shared by all its devices."""

    def __init__(self):
        self.counters = Counters()
        self.tcp = LogHistogram()  # TCP connect
        self.tls = LogHistogram()  # TLS handshake
        self.connack = LogHistogram()  # CONNECT sent -> CONNACK received (app's on_connect)

    def histograms(self):
        return {"tcp_connect": self.tcp, "tls_handshake": self.tls, "connect_to_connack": self.connack}


def _ms(since):
    return (time.monotonic() - since) * 1000


class Link:
    def __init__(self, device_id, stats, proxy=None):
        self.device_id = device_id
        self.stats = stats
        self.proxy = proxy  # (host, port) of the fault proxy, or None for a direct link
        self.attempts = 0  # connection attempts since the device (re)started
        self._opened = None  # monotonic time the transport was ready (CONNECT goes out now)
        self._sock_fd = None  # fd of the current connection's socket
        self._transport = None
        self._held = []  # dup'd fds of connections "cut" without a FIN (power cut, wedged)

    def fresh_start(self):
        """The device restarted: its next attempt is a first attempt again."""
        self.attempts = 0

    async def open_connection(self, host, port, ssl=None, server_hostname=None):
        loop = asyncio.get_running_loop()
        counters = self.stats.counters
        counters.add("connect.attempted")
        if self.attempts:
            counters.add("connect.retried")
        self.attempts += 1
        started = time.monotonic()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, self.proxy or (host, port))
            if self.proxy:
                await loop.sock_sendall(sock, PREAMBLE % self.device_id.encode())
            self.stats.tcp.add(_ms(started))
            tls_started = time.monotonic()
            reader, writer = await asyncio.open_connection(
                sock=sock, ssl=ssl, server_hostname=server_hostname if ssl else None)
        except BaseException:
            sock.close()
            counters.add("connect.failed")
            raise
        if ssl:
            self.stats.tls.add(_ms(tls_started))
        self._sock_fd = sock.fileno()
        self._transport = writer.transport
        self._opened = time.monotonic()
        return reader, writer

    def on_connack(self):
        if self._opened is not None:
            self.stats.connack.add(_ms(self._opened))
        self._opened = None
        self.stats.counters.add("connect.succeeded")
        self.release_held()  # the broker has the new connection: the old one may go now

    def on_closed(self, had_connack):
        if not had_connack:
            self.stats.counters.add("connect.failed")
        self._opened = None

    def cut_silently(self):
        """Tear the current connection down on our side without sending anything (no TLS
        close_notify, no FIN): a dup'd fd keeps the kernel socket open, so the peer sees a
        half-open link until its keepalive gives up, as after a power cut."""
        transport, self._transport = self._transport, None
        if self._sock_fd is not None and transport is not None and not transport.is_closing():
            try:
                self._held.append(os.dup(self._sock_fd))
            except OSError:
                pass  # already closed: nothing to hold
            transport.abort()  # no flush, no close_notify; the held fd stops the FIN
        self._sock_fd = None

    def release_held(self):
        while self._held:
            try:
                os.close(self._held.pop())
            except OSError:
                pass


_contexts = {}  # identity dir -> (files' (mtime_ns, size), SSLContext)


def install_context_cache():
    """Make the SDK's TLS connector reuse each device's SSLContext while its identity files
    are unchanged (their mtime and size are checked at every connect, so a rotated
    certificate is still picked up at the next reconnect, as on the device).

    The SDK builds a new context per connect: right for a box with one identity, but
    in a worker running thousands it was about 40% of the CPU of a mutual-TLS ramp.
    """
    from soundbox import tls

    if getattr(tls.client_context, "cached", False):
        return
    build = tls.client_context

    def client_context(identity_dir):
        try:
            key = tuple((st.st_mtime_ns, st.st_size) for st in
                        (os.stat(identity_dir + "/" + name) for name in tls.IDENTITY_FILES))
        except OSError:
            return build(identity_dir)  # missing files: let the SDK say which
        hit = _contexts.get(identity_dir)
        if hit is not None and hit[0] == key:
            return hit[1]
        ctx = build(identity_dir)
        _contexts[identity_dir] = (key, ctx)
        return ctx

    client_context.cached = True
    tls.client_context = client_context
