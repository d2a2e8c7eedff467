"""Answers a device's `sb/<id>/ota/req` with the asked chunks on `sb/<id>/ota/chunk`.

Runs on paho's network thread, so it does only cheap work: a JSON parse, range checks,
mmap slices and QoS 0 publishes (paho queues them; nothing here waits on the network).

Each device may take chunk bytes only so fast: a token bucket per device (`rate` bytes a
second, holding at most `burst`), so one device flooding requests cannot take the
handler's one thread and paho's queue from the rest of the fleet. A request is served as
far as the device's bucket allows; the chunks beyond it are refused, and the device is
told why on its chunk topic (the only topic it listens to for OTA data) by a notice: a
chunk message whose index is REFUSED_INDEX, followed by JSON
{"manifest", "reason", "retry_ms"}. The device logs the reason and asks again after
retry_ms, without counting the request as a fruitless retry (soundbox.otatransfer).
Firmware older than notices drops one as an out-of-range chunk, which is harmless: it
asks again after its request timeout, with backoff, as for any unanswered request.
"""
import json
import struct
import threading
import time

from soundbox import otatransfer, wire

# The chunk framing is the device's (soundbox.otatransfer): a 4-byte big-endian index, a
# notice under an index no manifest reaches, and at most a window of chunks per request.
MAX_CHUNKS_PER_REQUEST = otatransfer.WINDOW
INDEX = struct.Struct(">I")
REFUSED_INDEX = otatransfer.NOTICE_INDEX

# Defaults, per device. The burst holds a whole 4 MiB image (the largest slot), so a
# download from a full bucket is never refused however fast it goes: a lone simulated
# device on loopback took 1 MiB in 0.13 s (~8 MB/s), and in a 200-device rollout each got
# ~20 KB/s (bench/ota_fleet.py); an ESP32 writes flash well under 1 MB/s. The rate bounds
# what a device that keeps asking takes after its burst: 1 MiB/s is a few percent of
# what the handler's thread serves (it spent ~15 ms of CPU per MB in that bench).
DEFAULT_RATE = 1 << 20       # bytes a second
DEFAULT_BURST = 4 << 20      # bytes
NOTICE_EVERY_S = 1.0         # at most one notice a second per device: a flood gets no echo


def human_bytes(n):
    """1048576 -> "1 MiB", 1536 -> "1.5 KiB", 100 -> "100 B" (for log lines)."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return "%s %s" % (("%.2f" % (n / size)).rstrip("0").rstrip("."), unit)
    return "%d B" % n


def limit_text(rate, burst):
    """The per-device limit as the handler's startup line shows it."""
    if rate is None:
        return "OTA chunks not rate-limited"
    return "OTA chunks %s/s per device, burst %s" % (human_bytes(rate), human_bytes(burst))


class RequestRefused(ValueError):
    """A chunk request that gets no answer; the message says why (for the log)."""


def parse_request(payload, artifacts):
    """(artifact, [chunk index, ...]) from a request payload, or RequestRefused with the reason."""
    try:
        msg = json.loads(payload)
    except (ValueError, RecursionError):
        raise RequestRefused("request is not JSON") from None
    if not isinstance(msg, dict):
        raise RequestRefused("request is not a JSON object")
    manifest = msg.get("manifest")
    artifact = artifacts.get(manifest) if isinstance(manifest, str) else None
    if artifact is None or artifact.id != manifest:
        raise RequestRefused("unknown manifest %r" % (manifest,))
    ranges = msg.get("chunks")
    if not isinstance(ranges, list) or not ranges:
        raise RequestRefused('"chunks" must be a non-empty list of [first, last] ranges')
    indexes = []
    for pair in ranges:
        if (not isinstance(pair, list) or len(pair) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair)):
            raise RequestRefused("chunk range %r is not [first, last]" % (pair,))
        first, last = pair
        if not 0 <= first <= last < artifact.chunk_count:
            raise RequestRefused("chunk range %r is outside 0..%d" % (pair, artifact.chunk_count - 1))
        # Counted before expanding, so [0, 10**9] costs nothing.
        if len(indexes) + last - first + 1 > MAX_CHUNKS_PER_REQUEST:
            raise RequestRefused("more than %d chunks in one request" % MAX_CHUNKS_PER_REQUEST)
        indexes.extend(range(first, last + 1))
    return artifact, indexes


def notice(manifest, reason, retry_ms):
    """The payload of a refusal notice on a device's chunk topic."""
    body = json.dumps({"manifest": manifest, "reason": reason, "retry_ms": retry_ms}, separators=(",", ":"))
    return INDEX.pack(REFUSED_INDEX) + body.encode()


class TokenBuckets:
    """A token bucket per key: `rate` tokens a second, at most `burst`, full at first sight.
    clock() is monotonic seconds (injected: tests step it instead of sleeping)."""

    def __init__(self, rate, burst, clock=time.monotonic):
        if not rate > 0 or not burst > 0:
            raise ValueError("rate and burst must be positive, got %r and %r" % (rate, burst))
        self.rate, self.burst, self.clock = rate, burst, clock
        self._buckets = {}   # key -> [tokens, when counted, when last noticed, size last refused]
        self._pruned_at = clock()

    def _bucket(self, key):
        now = self.clock()
        b = self._buckets.get(key)
        if b is None:
            self._prune(now)
            b = self._buckets[key] = [self.burst, now, None, 0]
        else:
            b[0] = min(self.burst, b[0] + (now - b[1]) * self.rate)
            b[1] = now
        return b

    def tokens(self, key):
        return self._bucket(key)[0]

    def spend(self, key, amount):
        self._bucket(key)[0] -= amount

    def wait_s(self, key, amount):
        """Seconds until `amount` tokens are there (0 if they are now)."""
        return max(0.0, (min(amount, self.burst) - self._bucket(key)[0]) / self.rate)

    def note_refused(self, key, amount):
        """Note that `amount` tokens were asked for and not there (0: all asked were there)."""
        self._bucket(key)[3] = amount

    def limited(self):
        """How many keys could not pay now for what they were last refused."""
        now = self.clock()
        return sum(1 for tokens, at, _, wanted in self._buckets.values()
                   if wanted and min(self.burst, tokens + (now - at) * self.rate) < wanted)

    def may_notice(self, key, every_s):
        """True at most once per every_s for a key (so refusals are not echoed one for one)."""
        b = self._bucket(key)
        if b[2] is not None and b[1] - b[2] < every_s:
            return False
        b[2] = b[1]
        return True

    def tracked(self):
        """How many keys have a bucket (the others are full)."""
        return len(self._buckets)

    def _prune(self, now):
        # A bucket that has filled up again is the same as none: forget it, so the table
        # holds only devices active lately. Looked at once per refill time at most.
        if now - self._pruned_at < self.burst / self.rate:
            return
        self._pruned_at = now
        full = [k for k, (tokens, at, _, _) in self._buckets.items() if tokens + (now - at) * self.rate >= self.burst]
        for k in full:
            del self._buckets[k]


class ChunkServer:
    """publish(topic, payload) sends one QoS 0 message (the handler's paho client).
    rate, burst: the per-device limit in bytes (rate None: no limit); clock as TokenBuckets.
    handle() runs on paho's thread, stats() on an HTTP one: a lock keeps the buckets whole."""

    def __init__(self, artifacts, publish, rate=DEFAULT_RATE, burst=DEFAULT_BURST, clock=time.monotonic):
        self.artifacts = artifacts
        self.publish = publish
        self.limit = TokenBuckets(rate, burst, clock) if rate is not None else None
        self.limit_text = limit_text(rate, burst)
        self._lock = threading.Lock()
        self.chunks_sent = 0
        self.bytes_sent = 0
        self.throttled_requests = 0   # requests cut short by a device's rate limit
        self.throttled_chunks = 0     # chunks those requests did not get
        self.notices_sent = 0

    def handle(self, device, payload):
        """Publish the chunks a request asks for, as far as the device's rate limit allows;
        returns how many went out. RequestRefused if the request is bad."""
        artifact, indexes = parse_request(payload, self.artifacts)
        with self._lock:
            return self._serve(device, artifact, indexes)

    def _serve(self, device, artifact, indexes):
        topic = wire.topic(device, wire.OTA_CHUNK)
        limit = self.limit
        tokens = limit.tokens(device) if limit is not None else None
        sent = 0
        for index in indexes:
            data = artifact.chunk(index)
            if limit is not None:
                if len(data) > tokens:
                    self._throttled(device, topic, artifact, len(indexes) - sent, len(data))
                    break
                tokens -= len(data)
                limit.spend(device, len(data))
            self.publish(topic, INDEX.pack(index) + data)
            sent += 1
            self.chunks_sent += 1
            self.bytes_sent += len(data)
        else:
            if limit is not None:
                limit.note_refused(device, 0)   # served in full: not held back any more
        return sent

    def _throttled(self, device, topic, artifact, refused, next_size):
        self.throttled_requests += 1
        self.throttled_chunks += refused
        self.limit.note_refused(device, next_size)
        if not self.limit.may_notice(device, NOTICE_EVERY_S):
            return
        retry_ms = int(self.limit.wait_s(device, next_size) * 1000) + 1
        reason = ("rate limit: %d chunks refused; this device may take %d bytes/s (burst %d), retry in %d ms"
                  % (refused, self.limit.rate, self.limit.burst, retry_ms))
        self.publish(topic, notice(artifact.id, reason, retry_ms))
        self.notices_sent += 1

    def stats(self):
        """Counters since start, for GET /stats: what was served, what the limit held back
        (requests cut short, chunks not sent, notices), and how many devices are held back
        now (their bucket cannot yet pay for the chunk they were last refused)."""
        limit = self.limit
        with self._lock:
            return {"rate": limit.rate if limit else None, "burst": limit.burst if limit else None,
                    "chunks_sent": self.chunks_sent, "bytes_sent": self.bytes_sent,
                    "throttled_requests": self.throttled_requests, "throttled_chunks": self.throttled_chunks,
                    "notices_sent": self.notices_sent, "devices_limited": limit.limited() if limit else 0}
