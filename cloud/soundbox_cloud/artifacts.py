"""Signed OTA artifacts on disk: `<name>.bin` next to `<name>.manifest.json` (the signed envelope).

Nothing is registered that a device would refuse. The cloud runs the device's own checks
(soundbox.otamanifest: the trust rule against the release keys in <certs>/ota/trusted.json,
read again at each check so a new list needs no restart; then every manifest field, expiry
included), refuses a job message larger than the device's MQTT packet limit takes
(otamanifest.job_room, measured for the longest device id and campaign id), and checks that
the binary is the one the manifest describes, so it never serves bytes a device would throw
away. It reads chunks through one mmap per artifact.

The manifest names the chunk table (every chunk's SHA-256, 32 bytes each, in order) by its
SHA-256 ("chunk_table"); the table itself is computed here from the binary when the artifact
is registered, checked against that name, and sent to devices after each job's JSON head.
"""
import hashlib
import json
import logging
import mmap
import os
import re
import threading
import time

from soundbox import otakinds, otamanifest, wire
from soundbox_cloud.errors import CloudError

log = logging.getLogger("soundbox_cloud")

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
HEX64 = re.compile(r"[0-9a-f]{64}")
BIN_SUFFIX = ".bin"
ENVELOPE_SUFFIX = ".manifest.json"
MAX_ENVELOPE_BYTES = 2 * 1024 * 1024      # room for an app bundle's file list
MAX_ARTIFACT_BYTES = 64 * 1024 * 1024


class ArtifactError(CloudError):
    """An artifact that cannot be registered; the message says which file and why.
    http_status: what the HTTP API answers (422 = the files disagree or are malformed);
    field: the JSON error's "field" (the artifact, its signatures, its chunk size)."""

    def __init__(self, message, http_status=422, field="artifact"):
        super().__init__(message)
        self.http_status = http_status
        self.field = field


def read_trusted(path):
    """The 65-byte release keys devices trust, from a {"keys": [hex, ...]} file; ArtifactError
    (so nothing verifies) when there is none or it is malformed."""
    if path is None:
        raise ArtifactError("cannot verify signatures: the cloud has no trusted release key list",
                            field="signatures")
    try:
        with open(path, "rb") as f:
            keys = json.loads(f.read(64 * 1024))["keys"]
        return [bytes.fromhex(k) for k in keys]
    except FileNotFoundError:
        raise ArtifactError("cannot verify signatures: no trusted release key list at %s "
                            "(run `soundbox ota keygen`)" % path, field="signatures") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ArtifactError("cannot verify signatures: %s is not a trusted key list "
                            '({"keys": [hex, ...]}): %s' % (path, e), field="signatures") from None


def check_trust(envelope, trusted, now_s):
    """The device's checks of a signed envelope: its signatures against `trusted` (the trust
    rule, the key-set threshold), then the manifest's fields and expiry at now_s."""
    try:
        manifest, _ = otamanifest.open_envelope(envelope, trusted)
    except otamanifest.Refused as e:
        raise ArtifactError("signatures: %s" % e, field="signatures") from None
    try:
        otamanifest.check(manifest, manifest.get("model"), {}, int(now_s), lambda kind: MAX_ARTIFACT_BYTES)
    except otamanifest.Refused as e:
        raise ArtifactError("devices would refuse it: %s" % e) from None


def job_payload(campaign_id, envelope, table):
    """A job as it travels on sb/<id>/ota/job: one line of JSON, b"\n", the binary chunk table."""
    head = json.dumps({"campaign": campaign_id, "envelope": envelope}, separators=(",", ":")).encode()
    return head + b"\n" + table


def job_size(campaign_id, envelope, manifest):
    """Bytes of the job message for this envelope, without building its chunk table."""
    return len(job_payload(campaign_id, envelope, b"")) + table_size(manifest)


def table_size(manifest):
    return otamanifest.DIGEST_SIZE * chunk_count(manifest)


def check_job_fits(size, topic, manifest):
    """ArtifactError unless a job of `size` bytes fits the MQTT packet a device takes on `topic`.
    Its field names the larger part: the chunk table (chunk_size) or the envelope."""
    room = otamanifest.job_room(topic)
    if size <= room:
        return
    table = table_size(manifest)
    raise ArtifactError(
        "the job message would be %d bytes, over the %d a device takes on %s (its MQTT packet limit is %d "
        "bytes): %d chunks of %d bytes make a %d-byte chunk table, the envelope and its signatures take %d; "
        "sign with a larger --chunk-size or fewer signatures"
        % (size, room, topic, otamanifest.MAX_PACKET, chunk_count(manifest), manifest["chunk_size"], table,
           size - table), field="chunk_size" if table >= size - table else "envelope")


def check_deliverable(envelope, manifest, trusted, now_s):
    """ArtifactError unless every device of the manifest's model would take this envelope: trusted,
    well formed, not expired, and its job message within the packet limit for any device id."""
    check_trust(envelope, trusted, now_s)
    check_job_fits(job_size("c" * otamanifest.MAX_CAMPAIGN_ID, envelope, manifest),
                   otamanifest.longest_job_topic(), manifest)


def manifest_id(manifest_text):
    """The wire protocol's manifest id: 16 hex chars of sha256 over the manifest string."""
    return hashlib.sha256(manifest_text.encode()).hexdigest()[:16]


def chunk_count(manifest):
    return -(-manifest["size"] // manifest["chunk_size"])


def chunk_table(data, chunk_size):
    """Every chunk's 32-byte SHA-256, concatenated in order."""
    return b"".join(hashlib.sha256(data[i:i + chunk_size]).digest() for i in range(0, len(data), chunk_size))


def is_name(value):
    return isinstance(value, str) and NAME.fullmatch(value) is not None and not value.endswith(".manifest")


def parse_envelope(raw):
    """(envelope dict, manifest dict) from the envelope's bytes; ArtifactError with the reason."""
    try:
        envelope = json.loads(raw)
    except (ValueError, RecursionError):
        raise ArtifactError("envelope is not JSON") from None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("manifest"), str):
        raise ArtifactError('envelope must be a JSON object with "manifest" as a JSON string')
    if not isinstance(envelope.get("signatures"), list) or not envelope["signatures"]:
        raise ArtifactError('envelope has no "signatures"')
    try:
        manifest = json.loads(envelope["manifest"])
    except (ValueError, RecursionError):
        raise ArtifactError("the manifest string is not JSON") from None
    if not isinstance(manifest, dict):
        raise ArtifactError("the manifest is not a JSON object")
    check_manifest(manifest)
    return envelope, manifest


def _positive_int(manifest, field):
    value = manifest.get(field)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ArtifactError("manifest %s must be a positive integer, got %r" % (field, value))
    return value


def check_manifest(manifest):
    if manifest.get("format") != 1:
        raise ArtifactError("manifest format must be 1, got %r" % (manifest.get("format"),))
    for field in ("model", "name", "version"):
        if not isinstance(manifest.get(field), str) or not manifest[field]:
            raise ArtifactError("manifest %s must be a non-empty string" % field)
    if otakinds.get(manifest.get("kind")) is None:
        raise ArtifactError("manifest kind must be one of %s, got %r" % (", ".join(otakinds.NAMES), manifest.get("kind")))
    counter = manifest.get("counter")
    if isinstance(counter, bool) or not isinstance(counter, int) or counter < 0:
        raise ArtifactError("manifest counter must be a non-negative integer, got %r" % (counter,))
    size, chunk_size = _positive_int(manifest, "size"), _positive_int(manifest, "chunk_size")
    if size > MAX_ARTIFACT_BYTES:
        raise ArtifactError("manifest size %d is over the %d-byte limit" % (size, MAX_ARTIFACT_BYTES))
    if not isinstance(manifest.get("sha256"), str) or not HEX64.fullmatch(manifest["sha256"]):
        raise ArtifactError("manifest sha256 must be 64 lower-case hex digits")
    if not isinstance(manifest.get("chunk_table"), str) or not HEX64.fullmatch(manifest["chunk_table"]):
        raise ArtifactError("manifest chunk_table must be 64 lower-case hex digits (the SHA-256 of the "
                            "chunks' SHA-256 digests)")


def check_binary(manifest, data, label):
    """The chunk table of data; ArtifactError unless data is exactly the artifact the manifest describes."""
    if len(data) != manifest["size"]:
        raise ArtifactError("%s is %d bytes but its manifest says %d" % (label, len(data), manifest["size"]))
    digest = hashlib.sha256(data).hexdigest()
    if digest != manifest["sha256"]:
        raise ArtifactError("%s has sha256 %s but its manifest says %s" % (label, digest[:16], manifest["sha256"][:16]))
    table = chunk_table(data, manifest["chunk_size"])
    if hashlib.sha256(table).hexdigest() != manifest["chunk_table"]:
        raise ArtifactError("%s: its chunk table does not match the manifest's chunk_table" % label)
    return table


class Artifact:
    """One registered artifact: its envelope, parsed manifest and a read-only mmap of the binary."""

    def __init__(self, name, path, envelope, manifest):
        self.name = name
        self.path = path
        self.envelope = envelope
        self.manifest = manifest
        self.id = manifest_id(envelope["manifest"])
        self.chunk_count = chunk_count(manifest)
        with open(path, "rb") as f:
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            self.table = check_binary(manifest, self._map, os.path.basename(path))  # sent with each job
        except ArtifactError:
            self._map.close()
            raise

    def job(self, campaign_id):
        """The job message for one campaign (the device checks its table against the manifest)."""
        return job_payload(campaign_id, self.envelope, self.table)

    def chunk(self, index):
        step = self.manifest["chunk_size"]
        return self._map[index * step:(index + 1) * step]

    def close(self):
        self._map.close()

    def summary(self):
        m = self.manifest
        return {"name": self.name, "manifest": self.id, "model": m["model"], "kind": m["kind"],
                "artifact": m["name"], "version": m["version"], "counter": m["counter"],
                "size": m["size"], "chunk_size": m["chunk_size"], "chunks": self.chunk_count}


class ArtifactStore:
    """The artifacts in one directory, by manifest id and by name. Thread-safe."""

    def __init__(self, directory, trusted=None, clock=time.time):
        """trusted: the release keys' list ({"keys": [hex, ...]}, `soundbox ota keygen`) that
        every manifest's signatures are checked against; None: no list, nothing verifies.
        clock() -> Unix seconds, for the manifests' expiry."""
        self.directory = str(directory)
        self.trusted = trusted
        self.clock = clock
        self._lock = threading.Lock()
        self._by_id = {}
        self._by_name = {}
        try:
            os.makedirs(self.directory, exist_ok=True)
        except OSError as e:
            raise CloudError("cannot create OTA directory %s: %s" % (self.directory, e.strerror or e)) from None

    def load_all(self):
        """Register every complete pair in the directory; a bad one is logged and skipped."""
        loaded = []
        for entry in sorted(os.listdir(self.directory)):
            if entry.endswith(ENVELOPE_SUFFIX) and is_name(entry[:-len(ENVELOPE_SUFFIX)]):
                try:
                    loaded.append(self.register(entry[:-len(ENVELOPE_SUFFIX)]))
                except ArtifactError as e:
                    log.warning("OTA artifact not loaded: %s", e)
        return loaded

    def register(self, name):
        """Load `<name>.bin` + `<name>.manifest.json` from the directory; ArtifactError if they disagree."""
        if not is_name(name):
            raise ArtifactError("artifact name must match %s, got %r" % (NAME.pattern, name))
        base = os.path.join(self.directory, name)
        try:
            with open(base + ENVELOPE_SUFFIX, "rb") as f:
                raw = f.read(MAX_ENVELOPE_BYTES + 1)
        except OSError as e:
            raise ArtifactError("cannot read %s%s: %s" % (name, ENVELOPE_SUFFIX, e.strerror or e),
                                404 if isinstance(e, FileNotFoundError) else 422) from None
        if len(raw) > MAX_ENVELOPE_BYTES:
            raise ArtifactError("%s%s is over %d bytes" % (name, ENVELOPE_SUFFIX, MAX_ENVELOPE_BYTES))
        envelope, manifest = self._deliverable(name, raw)
        if not os.path.isfile(base + BIN_SUFFIX):
            raise ArtifactError("%s%s is missing" % (name, BIN_SUFFIX), 404)
        try:
            artifact = Artifact(name, base + BIN_SUFFIX, envelope, manifest)
        except (OSError, ValueError) as e:   # mmap of an empty file is a ValueError
            raise ArtifactError("cannot read %s%s: %s" % (name, BIN_SUFFIX, getattr(e, "strerror", None) or e)) from None
        with self._lock:
            old = self._by_name.get(name)
            if old is not None and old.id != artifact.id:
                artifact.close()
                raise ArtifactError("artifact name %s already holds manifest %s; pick another name"
                                    % (name, old.id), 409)
            if old is not None:
                artifact.close()
                return old
            self._by_name[name] = artifact
            self._by_id.setdefault(artifact.id, artifact)
        log.info("OTA artifact %s registered: %s %s %s (%d bytes, manifest %s)", name, manifest["kind"],
                 manifest["name"], manifest["version"], manifest["size"], artifact.id)
        return artifact

    def _deliverable(self, name, raw):
        """(envelope, manifest) of an envelope's bytes if devices would take it; else ArtifactError
        naming the file and the reason."""
        try:
            envelope, manifest = parse_envelope(raw)
            check_deliverable(envelope, manifest, read_trusted(self.trusted), self.clock())
        except ArtifactError as e:
            raise ArtifactError("%s%s: %s" % (name, ENVELOPE_SUFFIX, e), e.http_status, e.field) from None
        return envelope, manifest

    def check_campaign(self, artifact, campaign_id, devices, now_s):
        """ArtifactError unless `devices` can take `artifact`'s job for this campaign now: the
        signatures against today's trusted keys, the expiry at now_s, the message's size on
        the longest of their job topics."""
        check_trust(artifact.envelope, read_trusted(self.trusted), now_s)
        topic = max((wire.topic(d, wire.OTA_JOB) for d in devices), key=len)
        check_job_fits(len(artifact.job(campaign_id)), topic, artifact.manifest)

    def save_envelope(self, name, raw):
        """Store an uploaded envelope as <name>.manifest.json if devices would take it (trusted,
        well formed, its job within their packet limit); the binary is checked when it comes."""
        if not is_name(name):
            raise ArtifactError("artifact name must match %s, got %r" % (NAME.pattern, name))
        self._deliverable(name, raw)
        with self._lock:
            if name in self._by_name:
                raise ArtifactError("artifact %s is already registered" % name, 409)
        self._write(name + ENVELOPE_SUFFIX, raw)

    def save_binary(self, name, data):
        """Store an uploaded binary if it matches the envelope already stored, then register both."""
        if not is_name(name):
            raise ArtifactError("artifact name must match %s, got %r" % (NAME.pattern, name))
        with self._lock:
            if name in self._by_name:
                raise ArtifactError("artifact %s is already registered" % name, 409)
        try:
            with open(os.path.join(self.directory, name + ENVELOPE_SUFFIX), "rb") as f:
                _, manifest = parse_envelope(f.read(MAX_ENVELOPE_BYTES + 1))
        except FileNotFoundError:
            raise ArtifactError("upload %s%s before %s%s" % (name, ENVELOPE_SUFFIX, name, BIN_SUFFIX), 409) from None
        check_binary(manifest, data, name + BIN_SUFFIX)   # a mismatched binary never reaches the directory
        self._write(name + BIN_SUFFIX, data)
        return self.register(name)

    def _write(self, filename, data):
        path = os.path.join(self.directory, filename)
        tmp = path + ".tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except OSError as e:
            raise CloudError("cannot write %s: %s" % (path, e.strerror or e)) from None

    def get(self, key):
        """The artifact by manifest id or by name, or None."""
        with self._lock:
            return self._by_id.get(key) or self._by_name.get(key)

    def all(self):
        with self._lock:
            return sorted(self._by_name.values(), key=lambda a: a.name)

    def close(self):
        with self._lock:
            for artifact in self._by_name.values():
                artifact.close()
            self._by_name.clear()
            self._by_id.clear()
