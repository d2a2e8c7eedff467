"""Chunk bookkeeping for one OTA download (sans-I/O): which chunks are missing,
what to ask for next, and whether an arriving chunk may be written.

The progress bitmap (one bit per chunk) is what the driver persists after each
chunk, so a reboot or power cut resumes the download instead of restarting it.
Requests name at most WINDOW missing chunks as inclusive ranges. A request that
brings nothing within its timeout is repeated with exponential backoff; after
MAX_RETRIES fruitless requests in a row the transfer is stalled and reports.

The chunks' digests are not held in RAM: `digest(i)` fetches the 32 bytes of chunk i
(the driver reads them from the chunk table on flash), so the heap a chunk costs is
the same whatever the image's size.

The cloud may refuse a request (its per-device rate limit) with a notice on the chunk
topic: index NOTICE_INDEX, then JSON {"manifest", "reason", "retry_ms"} (`notice`).
`hold_off` then asks again after retry_ms; a refusal is an answer, not a fruitless retry.
A server that only refuses is given up on: MAX_REFUSALS notices in a row, or refusals for
MAX_REFUSED_MS, with no chunk in between, and the transfer is stalled (`stall_reason`).
"""

import hashlib
import json
import struct

WINDOW = 16  # chunks per request: 64 KiB in flight at the default chunk size
REQUEST_TIMEOUT_MS = 5000  # no chunk for this long after a request: ask again
MAX_BACKOFF_MS = 60000
MAX_RETRIES = 8  # fruitless requests in a row before the transfer counts as stalled
HEADER = 4  # a chunk message: 4-byte big-endian index, then the chunk's bytes
NOTICE_INDEX = 0xFFFFFFFF  # no manifest has this many chunks: the message is a refusal notice
# A rate limit lets some chunks through: 20 refusals in a row, or 10 minutes of them, with no
# chunk at all is a server that will not serve this device (the cloud's waits are about 1 s).
MAX_REFUSALS = 20
MAX_REFUSED_MS = 10 * 60 * 1000


class ChunkRefused(Exception):
    """An arriving chunk must not be written; str(e) is the reason."""


def notice(payload):
    """(manifest id, reason, retry_ms) of a refusal notice; None for any other message
    (a chunk); ChunkRefused for a notice that is not well formed."""
    if len(payload) < HEADER or struct.unpack(">I", payload[:HEADER])[0] != NOTICE_INDEX:
        return None
    try:
        body = json.loads(bytes(payload[HEADER:]))
    except (ValueError, UnicodeError):
        body = None
    if type(body) is not dict or not isinstance(body.get("manifest"), str) \
            or type(body.get("retry_ms")) is not int or not isinstance(body.get("reason", ""), str):
        raise ChunkRefused("malformed refusal notice")
    return body["manifest"], body.get("reason", ""), body["retry_ms"]


class Transfer:
    def __init__(self, sizes, count, digest, bitmap=None):
        """sizes(i) -> bytes in chunk i; count: chunks in the artifact; digest(i) -> the
        32-byte SHA-256 of chunk i; bitmap: the persisted progress, or None to start from zero."""
        self.count = count
        self.sizes = sizes
        self.digest = digest
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
        self._hold_until = None  # monotonic ms before which the cloud asked not to be asked
        self.refusals = 0  # refusal notices since the last chunk
        self._refused_since = None  # monotonic ms of the first of them
        self._refused_for = 0  # ms from the first to the latest
        self._refusal = ""  # the latest one's reason

    def holds(self, index):
        return bool(self.bitmap[index >> 3] & (1 << (index & 7)))

    @property
    def done(self):
        return self.have == self.count

    @property
    def stalled(self):
        return self.retries > MAX_RETRIES or self._refused_out()

    def _refused_out(self):
        return self.refusals >= MAX_REFUSALS or self._refused_for >= MAX_REFUSED_MS

    def stall_reason(self):
        """Why a stalled transfer gave up: the status the device reports."""
        if self._refused_out():
            return ("gave up: the chunk server refused %d requests in a row over %d s, no chunk came (last: %s)"
                    % (self.refusals, self._refused_for // 1000, self._refusal))
        return "stalled: %d requests brought no chunk" % self.retries

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
        if self._hold_until is not None:
            if now_ms - self._hold_until < 0:
                return None
            self._hold_until = None  # the wait the cloud asked for is over: ask, no retry counted
        elif self._asked_at is not None:
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

    def hold_off(self, now_ms, retry_ms, reason=""):
        """The cloud refused the request for now: ask again in retry_ms (at most
        MAX_BACKOFF_MS), not after the request timeout, and not as a fruitless retry;
        stalled once the refusals reach MAX_REFUSALS or MAX_REFUSED_MS with no chunk."""
        self._asked_at = None
        if self._refused_since is None:
            self._refused_since = now_ms
        self.refusals += 1
        self._refused_for = now_ms - self._refused_since
        self._refusal = reason[:100]  # the cloud's words, kept short for the status
        self._hold_until = now_ms + min(max(retry_ms, 0), MAX_BACKOFF_MS)

    def _window_served(self):
        for first, last in self._asked:
            for i in range(first, last + 1):
                if not self.holds(i):
                    return False
        return True

    def next_deadline(self, now_ms):
        """Monotonic ms by which request() should be called again."""
        if self._hold_until is not None:
            return self._hold_until
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
        if hashlib.sha256(data).digest() != self.digest(index):
            raise ChunkRefused("chunk %d does not match the manifest's hash" % index)
        return index, data

    def mark(self, index):
        """Note a chunk as written; True when it was new."""
        if self.holds(index):
            return False
        self.bitmap[index >> 3] |= 1 << (index & 7)
        self.have += 1
        self.retries = 0
        self.refusals = 0
        self._refused_since = None
        self._refused_for = 0
        self._progress_since_ask = True
        if self._window_served():
            self._asked_at = None  # all of the last request is here: ask for more at once
        return True
