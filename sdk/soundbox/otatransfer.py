"""Chunk bookkeeping for one OTA download (sans-I/O): which chunks are missing,
what to ask for next, and whether an arriving chunk may be written.

The progress bitmap (one bit per chunk) is what the driver persists after each
chunk, so a reboot or power cut resumes the download instead of restarting it.
Requests name at most WINDOW missing chunks as inclusive ranges. A request that
brings nothing within its timeout is repeated with exponential backoff; after
MAX_RETRIES fruitless requests in a row the transfer is stalled and reports.
"""

import hashlib
import struct

WINDOW = 16  # chunks per request: 64 KiB in flight at the default chunk size
REQUEST_TIMEOUT_MS = 5000  # no chunk for this long after a request: ask again
MAX_BACKOFF_MS = 60000
MAX_RETRIES = 8  # fruitless requests in a row before the transfer counts as stalled
HEADER = 4  # a chunk message: 4-byte big-endian index, then the chunk's bytes


class ChunkRefused(Exception):
    """An arriving chunk must not be written; str(e) is the reason."""


class Transfer:
    def __init__(self, sizes, digests, bitmap=None):
        """sizes(i) -> bytes in chunk i; digests: the chunks' SHA-256 digests concatenated
        (32 bytes each); bitmap: the persisted progress, or None to start from zero."""
        self.count = len(digests) // 32
        self.sizes = sizes
        self.digests = digests
        nbytes = (self.count + 7) // 8
        self.bitmap = bytearray(bitmap) if bitmap is not None and len(bitmap) == nbytes else bytearray(nbytes)
        self.have = 0
        for i in range(self.count):
            if self.holds(i):
                self.have += 1
        self.retries = 0
        self._asked_at = None  # monotonic ms of the last request, None when none is out
        self._asked = []  # its ranges
        self._progress_since_ask = False

    def holds(self, index):
        return bool(self.bitmap[index >> 3] & (1 << (index & 7)))

    @property
    def done(self):
        return self.have == self.count

    @property
    def stalled(self):
        return self.retries > MAX_RETRIES

    def missing_ranges(self, limit=WINDOW):
        """Inclusive [first, last] ranges covering the first `limit` missing chunks."""
        ranges = []
        taken = 0
        i = 0
        while i < self.count and taken < limit:
            if self.holds(i):
                i += 1
                continue
            first = i
            while i < self.count and not self.holds(i) and taken < limit:
                i += 1
                taken += 1
            ranges.append([first, i - 1])
        return ranges

    def _wait_ms(self):
        wait = REQUEST_TIMEOUT_MS << min(self.retries, 4)
        return wait if wait < MAX_BACKOFF_MS else MAX_BACKOFF_MS

    def request(self, now_ms):
        """The ranges to ask for now, or None when the last request is still being answered."""
        if self.done or self.stalled:
            return None
        if self._asked_at is not None:
            if now_ms - self._asked_at < self._wait_ms():
                return None
            if not self._progress_since_ask:
                self.retries += 1  # timed out with nothing: back off
                if self.stalled:
                    return None
        self._asked_at = now_ms
        self._progress_since_ask = False
        self._asked = self.missing_ranges()
        return self._asked

    def ask_again(self):
        """Ask at the next request() without counting a retry (after a reconnect: the
        chunks in flight were lost with the old connection)."""
        self._asked_at = None

    def _window_served(self):
        for first, last in self._asked:
            for i in range(first, last + 1):
                if not self.holds(i):
                    return False
        return True

    def next_deadline(self, now_ms):
        """Monotonic ms by which request() should be called again."""
        if self._asked_at is None:
            return now_ms
        return self._asked_at + self._wait_ms()

    def accept(self, payload):
        """(index, chunk bytes) of a chunk message that may be written; ChunkRefused otherwise.

        Checks the index is inside the manifest (no endless data), the length is the
        manifest's (no truncated or padded chunk) and the hash is the manifest's for
        that index (no chunk of another artifact: mix-and-match)."""
        if len(payload) < HEADER:
            raise ChunkRefused("truncated chunk message: %d bytes" % len(payload))
        index = struct.unpack(">I", payload[:HEADER])[0]
        if index >= self.count:
            raise ChunkRefused("chunk %d is beyond the manifest's %d chunks" % (index, self.count))
        data = memoryview(payload)[HEADER:]
        expected = self.sizes(index)
        if len(data) != expected:
            raise ChunkRefused("chunk %d has %d bytes, the manifest says %d" % (index, len(data), expected))
        if hashlib.sha256(data).digest() != self.digests[32 * index:32 * index + 32]:
            raise ChunkRefused("chunk %d does not match the manifest's hash" % index)
        return index, data

    def mark(self, index):
        """Note a chunk as written; True when it was new."""
        if self.holds(index):
            return False
        self.bitmap[index >> 3] |= 1 << (index & 7)
        self.have += 1
        self.retries = 0
        self._progress_since_ask = True
        if self._window_served():
            self._asked_at = None  # all of the last request is here: ask for more at once
        return True
