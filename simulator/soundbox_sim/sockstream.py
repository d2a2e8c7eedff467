"""A lean asyncio stream over one non-blocking socket, TLS or plain: what a simulated
device's MQTT client reads from and writes to.

asyncio.open_connection(ssl=...) runs TLS through memory BIOs in Python (SSLProtocol,
a transport, a StreamReader and StreamWriter per connection): every record in or out
crosses several layers of Python calls. This stream hands the socket to OpenSSL
(ssl.SSLSocket, non-blocking) and waits on the event loop's reader callback, the way
paho-mqtt drives its sockets: one C call per read or write. It offers the part of the
StreamReader/StreamWriter interface the SDK's client uses: read(n), write(data), drain(),
close(), wait_closed(), plus abort() (no close_notify, no flush) and is_closing() for the
simulator's faults.
"""

import asyncio
import ssl
import weakref

READ_CHUNK = 16 * 1024  # at most one TLS record's plaintext per call
PAUSE_ABOVE = 32 * 1024  # unread bytes past this: stop reading the socket until the app catches up

_WOULD_BLOCK = (ssl.SSLWantReadError, BlockingIOError, InterruptedError)
_read_buffers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # loop -> view of its one read buffer


def _shared_buffer(loop):
    """One read buffer per event loop: each read is copied out of it at once."""
    shared = _read_buffers.get(loop)
    if shared is None:
        buf = bytearray(READ_CHUNK)
        shared = _read_buffers[loop] = memoryview(buf)
    return shared


async def _ready(loop, fd, writable):
    """Wait until fd is readable (or writable)."""
    fut = loop.create_future()
    add, remove = (loop.add_writer, loop.remove_writer) if writable else (loop.add_reader, loop.remove_reader)
    add(fd, _resolve, fut)
    try:
        await fut
    finally:
        remove(fd)


def _resolve(fut):
    if not fut.done():
        fut.set_result(None)


async def handshake(sock):
    """Finish a non-blocking SSLSocket's handshake on the running loop."""
    loop = asyncio.get_running_loop()
    fd = sock.fileno()
    while True:
        try:
            sock.do_handshake()
            return
        except ssl.SSLWantReadError:
            await _ready(loop, fd, False)
        except ssl.SSLWantWriteError:
            await _ready(loop, fd, True)


class SockStream:
    """Reader and writer of one connected, non-blocking socket (ssl.SSLSocket or plain)."""

    __slots__ = ("_sock", "_loop", "_fd", "_chunks", "_buffered", "_waiter", "_pending", "_drainer",
                 "_eof", "_error", "_paused", "_closed")

    def __init__(self, sock):
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._fd = sock.fileno()
        self._chunks = []  # received, not yet read
        self._buffered = 0
        self._waiter = None  # future of a read() waiting for bytes
        self._pending = b""  # written, not yet taken by the socket
        self._drainer = None  # future of a drain() waiting for _pending to go
        self._eof = False
        self._error = None
        self._paused = False
        self._closed = False
        self._loop.add_reader(self._fd, self._on_readable)

    # ---- reading -------------------------------------------------------------

    async def read(self, n=-1):
        """Up to n bytes (all buffered ones if n < 0); b"" once the peer has closed."""
        # A readable socket may yield no bytes for the app (a TLS session ticket): wait on.
        while not self._chunks and not self._eof and self._error is None:
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self._chunks:
            data = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
            if 0 <= n < len(data):
                data, rest = data[:n], data[n:]
                self._chunks = [rest]
                self._buffered = len(rest)
            else:
                self._chunks = []
                self._buffered = 0
            if self._paused and self._buffered <= PAUSE_ABOVE:
                self._paused = False
                self._loop.add_reader(self._fd, self._on_readable)
            return data
        if self._error is not None:
            raise self._error
        return b""

    def _on_readable(self):
        view = _shared_buffer(self._loop)
        sock = self._sock
        while True:
            try:
                n = sock.recv_into(view)
            except _WOULD_BLOCK:
                break
            except ssl.SSLWantWriteError:
                break  # OpenSSL needs to send first (a key update): the next write does it
            except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
                n = 0
            except OSError as e:
                self._lost(e)
                return
            if n == 0:
                self._lost(None)
                return
            self._chunks.append(bytes(view[:n]))
            self._buffered += n
            if self._buffered > PAUSE_ABOVE:
                self._paused = True
                self._loop.remove_reader(self._fd)
                break
        if self._pending and not self._closed and self._send():
            self._loop.add_writer(self._fd, self._on_writable)
        if self._chunks:
            self._wake_reader()

    def _wake_reader(self):
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ---- writing -------------------------------------------------------------

    def write(self, data):
        if self._closed:
            return
        if self._pending:
            self._pending += data
            return
        self._pending = bytes(data)
        if self._send():
            self._loop.add_writer(self._fd, self._on_writable)

    def _send(self):
        """Hand _pending to the socket until it is gone or the socket is full. OpenSSL takes
        the same bytes again later: when the socket has room (add_writer), or, should it
        need to read first (a TLS key update), on the next readable event."""
        try:
            while self._pending:
                n = self._sock.send(self._pending)
                self._pending = self._pending[n:]
        except (ssl.SSLWantWriteError, BlockingIOError, InterruptedError):
            pass
        except ssl.SSLWantReadError:
            return False
        except OSError as e:
            self._lost(e)
        return bool(self._pending) and not self._closed

    def _on_writable(self):
        if not self._send():
            self._loop.remove_writer(self._fd)
        drainer = self._drainer
        if (not self._pending or self._closed) and drainer is not None and not drainer.done():
            drainer.set_result(None)

    def get_write_buffer_size(self):
        return len(self._pending)

    async def drain(self):
        if self._error is not None:
            raise self._error
        if self._pending and not self._closed:
            self._drainer = self._loop.create_future()
            try:
                await self._drainer
            finally:
                self._drainer = None
            if self._error is not None:
                raise self._error

    # ---- closing -------------------------------------------------------------

    def _lost(self, error):
        self._eof = True
        if error is not None and self._error is None:
            self._error = error
        self._shut(notify=False)

    def _shut(self, notify):
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self._fd)
        self._loop.remove_writer(self._fd)
        sock = self._sock
        if notify and isinstance(sock, ssl.SSLSocket):
            try:
                sock.unwrap()  # sends our close_notify; the peer's answer is not awaited
            except (OSError, ValueError):
                pass
        sock.close()
        self._eof = True
        self._wake_reader()
        drainer = self._drainer
        if drainer is not None and not drainer.done():
            drainer.set_result(None)

    def close(self):
        """Close as a device does: what was written goes first (if the socket takes it now),
        then TLS close_notify, then FIN."""
        if not self._closed and self._pending:
            self._send()
        self._shut(notify=True)

    def abort(self):
        """Drop the connection at once: no flush, no close_notify."""
        self._shut(notify=False)

    def is_closing(self):
        return self._closed

    async def wait_closed(self):
        return None

    @property
    def transport(self):
        return self  # what the simulator's faults call abort() / is_closing() on
