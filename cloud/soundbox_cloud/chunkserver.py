"""Answers a device's `sb/<id>/ota/req` with the asked chunks on `sb/<id>/ota/chunk`.

Runs on paho's network thread, so it does only cheap work: a JSON parse, range checks,
mmap slices and QoS 0 publishes (paho queues them; nothing here waits on the network).
"""
import json
import struct

MAX_CHUNKS_PER_REQUEST = 16
INDEX = struct.Struct(">I")


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


class ChunkServer:
    """publish(topic, payload) sends one QoS 0 message (the handler's paho client)."""

    def __init__(self, artifacts, publish):
        self.artifacts = artifacts
        self.publish = publish
        self.chunks_sent = 0
        self.bytes_sent = 0

    def handle(self, device, payload):
        """Publish the chunks a request asks for; returns how many. RequestRefused if it is bad."""
        artifact, indexes = parse_request(payload, self.artifacts)
        topic = "sb/%s/ota/chunk" % device
        for index in indexes:
            data = artifact.chunk(index)
            self.publish(topic, INDEX.pack(index) + data)
            self.chunks_sent += 1
            self.bytes_sent += len(data)
        return len(indexes)
