"""Signed OTA manifests, device side: open the envelope, check the signature, then
check every field against what this device is and has installed.

The envelope is JSON: {"manifest": "<manifest JSON as a string>", "signatures":
[{"key": "<key id>", "sig": "<DER hex>"}]}. The signature covers the exact bytes of
that string, so the device never has to re-serialise JSON to check it.

What a manifest binds (see `check`): hardware model, kind, name, version, a
monotonic security counter per kind and name, total size, chunk size, the SHA-256
of the chunk table (every chunk's 32-byte SHA-256, in order: the table itself travels
in binary after the job's JSON head, see `split_job`, and is kept on flash), the whole
artifact's SHA-256, the file list of a bundle (an `app`), an expiry time and,
optionally, the release keys to trust once this update is confirmed.

Trust rule. A manifest is accepted when a currently trusted key's signature verifies. A
manifest that changes the trusted key set ("keys") needs verified signatures by more than
half of the currently trusted keys (`threshold`: 1 of 1, 2 of 2, 2 of 3, 3 of 4), so one
stolen release key cannot hand the fleet to another key set. The new set is checked before
the manifest is accepted: 1..MAX_KEYS distinct 65-byte uncompressed P-256 points, in hex.
An envelope holds at most MAX_SIGNATURES signatures and each trusted key is tried once, so a
job padded with signatures costs at most one verification per trusted key.

Size rule. A job message (its JSON head, b"\n", the chunk table) must fit one MQTT packet the
device takes: `job_room(topic)` bytes. The cloud refuses artifacts and campaigns whose job
would not fit, and `soundbox ota sign` refuses chunk sizes that make it too big.

Each refusal is a `Refused` whose message is the reason the device reports on its
OTA status topic.
"""

import binascii
import hashlib
import json
import sys

import soundbox
from soundbox import otakinds

FORMAT = 1
DIGEST_SIZE = 32
MAX_CHUNK_SIZE = 16384  # one chunk must fit an MQTT message and the device's heap
MAX_SIGNATURES = 8  # a release is signed by one or two keys; more is padding
MAX_KEYS = 8  # release keys a manifest may hand trust to
PUBLIC_KEY_HEX = 130  # a 65-byte uncompressed SEC1 point
# The device's MQTT packet limit: the remaining length mqttcodec.Decoder accepts, set by
# mqttsession.Session(max_packet=...) (tests/core/test_otamanifest checks they agree).
MAX_PACKET = 65536
# A QoS 1 PUBLISH around the payload: fixed header (5), topic length (2), packet id (2), and
# 64 bytes for MQTT 5 properties a broker may add (message expiry, subscription id, alias).
PUBLISH_OVERHEAD = 73
MAX_DEVICE_ID = 32  # the cloud's device ids are 1..32 characters (soundbox_cloud.validation)
MAX_CAMPAIGN_ID = 32  # room the cloud's campaign ids ("c-" + 8 hex) are measured against
_STR_IS_BUFFER = sys.implementation.name == "micropython"  # hashlib takes a str as its UTF-8 bytes
# On MicroPython the P-256 verifier's code (about 1.5 KiB of heap imported from ROMFS) is
# dropped once a manifest is judged: it is needed again only for the next manifest.


class Refused(Exception):
    """The update is not acceptable; str(e) is the reason."""


def key_id(public_key):
    """Hex of the first 8 bytes of SHA-256 of the 65-byte SEC1 public key."""
    return binascii.hexlify(hashlib.sha256(public_key).digest()[:8]).decode()


def manifest_id(manifest_bytes):
    """Names one manifest in requests and status reports."""
    return _id(hashlib.sha256(manifest_bytes).digest())


def _id(digest):
    return binascii.hexlify(digest[:8]).decode()


def threshold(key_count):
    """Verified signatures by current keys that a key-set change needs: more than half."""
    return key_count // 2 + 1


def job_room(topic):
    """The largest job payload (JSON head + b"\n" + chunk table) a device takes on `topic`."""
    return MAX_PACKET - PUBLISH_OVERHEAD - len(topic)


def longest_job_topic():
    """The job topic of a device with the longest id: what a release is measured against."""
    from soundbox import wire  # cloud and tools only

    return wire.topic("x" * MAX_DEVICE_ID, wire.OTA_JOB)


def counter_key(manifest):
    """Counters are kept per kind, and per language for voice packs (otakinds.version_key)."""
    return otakinds.version_key(manifest["kind"], manifest["name"])


# Opening an envelope runs the P-256 verifier, which collects garbage between its steps.
# The functions that are running while it does keep small frames (few locals, shallow
# expressions), because the MicroPython VM the core tests run on frees the frame of a
# running function when it is over about 11 words (see soundbox/p256.py). On a board
# this costs nothing. The manifest text is hashed where it lies, once, for the signature
# and the manifest id, and parsed only once a trusted key's signature verifies.

def open_envelope(envelope, trusted_keys):
    """(manifest dict, manifest id) if trusted keys signed it as the trust rule asks; else Refused.

    envelope: the parsed envelope object. trusted_keys: list of 65-byte public keys.
    """
    text = _manifest_text(envelope)
    signed = _Signed(envelope["signatures"], _by_key_id(trusted_keys), _text_digest(text))
    _need_signature(signed.verify(1), envelope)
    return _threshold_met(_parse_manifest(text), signed), _id(signed.digest)


class _Signed:
    """The signatures of one envelope, each trusted key's tried at most once."""

    def __init__(self, sigs, trusted, digest):
        self.sigs = sigs
        self.trusted = trusted
        self.digest = digest
        self.tried = []  # key ids whose signature was checked
        self.good = 0  # of them, how many verified

    def verify(self, wanted):
        """True once `wanted` trusted keys' signatures verified; else False when a trusted key
        signed, None when none did. A malformed entry met before: Refused."""
        i = 0
        while i < len(self.sigs) and self.good < wanted:
            self._try(self.sigs[i])
            i += 1
        if self.good >= wanted:
            return True
        return False if self.tried else None

    def _try(self, sig):
        kid = _trusted_id(sig, self.trusted)
        if kid is None or kid in self.tried:
            return
        self.tried.append(kid)
        if _verify(self.trusted[kid], sig["sig"], self.digest):
            self.good += 1


def _threshold_met(manifest, signed):
    """manifest, once a key-set change has the signatures the trust rule asks; else Refused."""
    if manifest.get("keys") is None:
        return manifest
    need = threshold(len(signed.trusted))
    if not signed.verify(need):
        raise Refused("key change needs signatures by %d of the %d trusted keys, %d verified"
                      % (need, len(signed.trusted), signed.good))
    return manifest


def _manifest_text(envelope):
    if type(envelope) is not dict or not isinstance(envelope.get("manifest"), str):
        raise Refused("malformed envelope: no manifest string")
    sigs = envelope.get("signatures")
    if type(sigs) is not list or not sigs:
        raise Refused("malformed envelope: no signatures")
    if len(sigs) > MAX_SIGNATURES:
        raise Refused("malformed envelope: %d signatures, at most %d" % (len(sigs), MAX_SIGNATURES))
    return envelope["manifest"]


def _text_digest(text):
    """SHA-256 of the text's UTF-8 bytes. MicroPython hashes a str's bytes as they are
    (a 1 MiB image's manifest is about 17 KiB: no copy); CPython needs them encoded."""
    if _STR_IS_BUFFER:
        return hashlib.sha256(text).digest()
    try:
        return hashlib.sha256(text.encode()).digest()
    except UnicodeError:
        raise Refused("malformed envelope: manifest is not text")


def _by_key_id(keys):
    trusted = {}
    for k in keys:
        trusted[key_id(k)] = k
    return trusted


def _need_signature(verdict, envelope):
    if verdict is None:
        raise Refused("untrusted key: signed by %s, none of them trusted"
                      % ", ".join([str(s.get("key")) for s in envelope["signatures"] if type(s) is dict]))
    if not verdict:
        raise Refused("bad signature")


def _trusted_id(sig, trusted):
    """The key id of a trusted signer, None for another signer."""
    if type(sig) is not dict or not isinstance(sig.get("key"), str) or not isinstance(sig.get("sig"), str):
        raise Refused("malformed envelope: a signature needs \"key\" and \"sig\" strings")
    return sig["key"] if sig["key"] in trusted else None


def _verify(key, sig_hex, digest):
    # The signature is decoded (which may refuse it) before the verifier is loaded, so
    # nothing can raise between loading and unloading it.
    return _unloaded(_p256_verify(key, _der(sig_hex), digest))


def _p256_verify(key, der, digest):
    from soundbox import p256  # loaded for a manifest, not at boot

    return p256.verify_digest(key, digest, der)  # never raises


def _unloaded(verdict):
    """verdict, once (on MicroPython) the verifier's module is forgotten: the next
    manifest imports it again."""
    soundbox.forget("p256")
    return verdict


def _der(sig_hex):
    try:
        return binascii.unhexlify(sig_hex)
    except ValueError:
        raise Refused("malformed signature: not hex")


def _parse_manifest(text):
    try:
        manifest = json.loads(text)
    except ValueError:
        raise Refused("malformed manifest: not JSON")
    if type(manifest) is not dict:
        raise Refused("malformed manifest: not an object")
    return manifest


def _need(manifest, name, kind):
    value = manifest.get(name)
    if kind is int:
        ok = type(value) is int and value >= 0
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise Refused("malformed manifest: %s must be %s" % (name, "a non-negative integer" if kind is int
                                                              else "a string" if kind is str else "a list"))
    return value


def check(manifest, model, counters, now_s, capacity):
    """Refuse a signed manifest that is not for this device or not newer than what runs.

    counters: {counter key: installed security counter}. now_s: trusted unix time,
    or None when the clock is not set (then expiry cannot be checked: refused).
    capacity(kind): bytes the slot for that kind can take.
    """
    if manifest.get("format") != FORMAT:
        raise Refused("unknown manifest format %r" % (manifest.get("format"),))
    kind = _need(manifest, "kind", str)
    bundle = _kind(kind).lands == otakinds.BUNDLE
    name = _need(manifest, "name", str)
    if not name or "/" in name or ".." in name:
        raise Refused("malformed manifest: bad name %r" % name)
    _need(manifest, "version", str)
    if _need(manifest, "model", str) != model:
        raise Refused("wrong model: built for %s, this is %s" % (manifest["model"], model))
    expires = _need(manifest, "expires", int)
    if now_s is None:
        raise Refused("clock not set: cannot check the manifest's expiry")
    if now_s >= expires:
        raise Refused("expired manifest: expired %d s ago" % (now_s - expires))
    counter = _need(manifest, "counter", int)
    installed = counters.get(counter_key(manifest), 0)
    if counter <= installed:
        raise Refused("downgrade or replay: security counter %d is not above the installed %d"
                      % (counter, installed))
    size = _need(manifest, "size", int)
    chunk_size = _need(manifest, "chunk_size", int)
    if not 0 < chunk_size <= MAX_CHUNK_SIZE:
        raise Refused("malformed manifest: chunk_size %d not in 1..%d" % (chunk_size, MAX_CHUNK_SIZE))
    if size == 0:
        raise Refused("malformed manifest: empty artifact")
    if size > capacity(kind):
        raise Refused("too big: %d bytes, the %s slot holds %d" % (size, kind, capacity(kind)))
    if len(_need(manifest, "chunk_table", str)) != 2 * DIGEST_SIZE:
        raise Refused("malformed manifest: chunk_table must be 64 hex digits")
    if len(_need(manifest, "sha256", str)) != 2 * DIGEST_SIZE:
        raise Refused("malformed manifest: sha256 must be 64 hex digits")
    if bundle:
        _check_files(_need(manifest, "files", list), size)
    if manifest.get("keys") is not None:
        check_keys(manifest["keys"])


def _kind(kind):
    try:
        return otakinds.of(kind)
    except otakinds.UnknownKind as e:
        raise Refused(str(e))


def check_keys(keys):
    """Refused unless `keys` is a key set a device can trust: 1..MAX_KEYS distinct hex P-256
    points. Checked before the manifest is accepted: a bad key confirmed with an update
    would leave the device unable to check the next manifest."""
    if type(keys) is not list or not 0 < len(keys) <= MAX_KEYS:
        raise Refused("malformed manifest: keys must be a list of 1 to %d hex public keys" % MAX_KEYS)
    for k in keys:
        _check_key(k)
    if len(set(keys)) != len(keys):
        raise Refused("malformed manifest: keys lists a key twice")


def _check_key(k):
    if not isinstance(k, str) or len(k) != PUBLIC_KEY_HEX:
        raise Refused("malformed manifest: a key must be %d hex digits (a 65-byte public key)" % PUBLIC_KEY_HEX)
    try:
        raw = binascii.unhexlify(k)
    except ValueError:
        raise Refused("malformed manifest: key %s... is not hex" % k[:16])
    if not _on_curve(raw):
        raise Refused("malformed manifest: key %s... is not a P-256 public key" % k[:16])


def _on_curve(raw):
    from soundbox import p256  # only for a manifest that changes keys

    ok = p256._parse_public_key(raw) is not None  # the verifier's own point check
    soundbox.forget("p256")
    return ok


def _check_files(files, size):
    """An app bundle's files tile the artifact in order, with safe relative paths."""
    end = 0
    for f in files:
        if type(f) is not dict:
            raise Refused("malformed manifest: a file entry is not an object")
        path, offset, length, digest = f.get("path"), f.get("offset"), f.get("size"), f.get("sha256")
        if (not isinstance(path, str) or not path or path[0] == "/" or ".." in path.split("/")
                or "\\" in path):
            raise Refused("malformed manifest: unsafe file path %r" % (path,))
        if type(offset) is not int or type(length) is not int or offset != end or length < 0:
            raise Refused("malformed manifest: file %s is not where the previous one ended" % path)
        if not isinstance(digest, str) or len(digest) != 2 * DIGEST_SIZE:
            raise Refused("malformed manifest: file %s needs a sha256" % path)
        end = offset + length
    if end != size:
        raise Refused("malformed manifest: files cover %d of %d bytes" % (end, size))


def split_job(payload):
    """(JSON head bytes, chunk table as a memoryview or None) of a job message: the head is
    one line of JSON, then b"\n" and the binary chunk table (absent from a cancel)."""
    end = payload.find(b"\n")
    if end < 0:
        return payload, None
    return payload[:end], memoryview(payload)[end + 1:]


def check_table(manifest, size, digest):
    """Refused unless a chunk table of `size` bytes whose SHA-256 is `digest` is the one the
    signed manifest names: a table swapped for another artifact's is a mix-and-match attack."""
    count = chunk_count(manifest)
    if size != DIGEST_SIZE * count:
        raise Refused("chunk table does not match the manifest: %d bytes for %d chunks" % (size, count))
    if binascii.hexlify(digest).decode() != manifest["chunk_table"]:
        raise Refused("chunk table does not match the manifest: its sha256 differs")


def chunk_count(manifest):
    return (manifest["size"] + manifest["chunk_size"] - 1) // manifest["chunk_size"]


def chunk_length(manifest, index):
    """Bytes in chunk `index`: chunk_size, except the last one may be shorter."""
    if index < chunk_count(manifest) - 1:
        return manifest["chunk_size"]
    return manifest["size"] - index * manifest["chunk_size"]

