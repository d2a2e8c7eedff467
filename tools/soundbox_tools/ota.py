"""Release keys and signed OTA artifacts (the library; `soundbox ota ...` is otacli.py).

Release keys are ECDSA P-256 (`cryptography`), kept off the device in
<certs>/ota/release-N.key; devices trust the public keys listed in
<certs>/ota/trusted.json (deployed as /certs/ota_keys.json). An artifact is one
byte string (a firmware image, a voice pack, or an `app` bundle: its files
concatenated in path order) written as <out>/<name>-<version>.bin with its signed
envelope <name>-<version>.manifest.json (format: soundbox.otamanifest). The manifest
names the chunk table (every chunk's SHA-256, 32 bytes each, in order) by its SHA-256;
the table itself is not in the manifest: the cloud computes it from the artifact and
sends it after the job's JSON head (`job_message`).

`verify` runs the device's own checks (soundbox.otamanifest, the pure-Python
P-256 verifier) on the host, so what passes here passes on a device. Both `sign` and
`verify` refuse a release whose job message would not fit the device's MQTT packet
(otamanifest.job_room, for the longest device id and campaign id): a small --chunk-size
on a large image makes a chunk table that does.
"""

import binascii
import hashlib
import json
import os
import time
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from soundbox import otakinds, otamanifest
from soundbox.otaslots import SIM_IMAGE_MAGIC

CHUNK_SIZE = 4096
EXPIRES_DAYS = 30
MODELS = ("soundbox-sim", "soundbox-esp32", "soundbox-esp32s3", "soundbox-unix")  # unix: MicroPython desktop box


class OtaError(Exception):
    """A problem the user can fix; one line."""


# ---- keys --------------------------------------------------------------------

def key_dir(certs):
    return Path(certs) / "ota"


def public_bytes(private_key):
    return private_key.public_key().public_bytes(serialization.Encoding.X962,
                                                 serialization.PublicFormat.UncompressedPoint)


def load_key(path):
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except FileNotFoundError:
        raise OtaError("no release key at %s: run `soundbox ota keygen`" % path)
    except ValueError as e:
        raise OtaError("%s is not a PEM private key: %s" % (path, e))
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise OtaError("%s is not an ECDSA P-256 key" % path)
    return key


def keygen(certs, count=2):
    """Create release keys until there are `count`; the trusted set lists them all.

    Two keys from the start: either signs updates; changing the trusted set (--trust, e.g. to
    retire a key) needs both, the device's threshold (otamanifest.threshold: more than half)."""
    directory = key_dir(certs)
    directory.mkdir(parents=True, exist_ok=True)
    paths = sorted(directory.glob("release-*.key"))
    n = len(paths)
    while n < count:
        n += 1
        key = ec.generate_private_key(ec.SECP256R1())
        path = directory / ("release-%d.key" % n)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    keys = [public_bytes(load_key(p)).hex() for p in sorted(directory.glob("release-*.key"))]
    write_trusted(directory / "trusted.json", keys)
    return keys


def write_trusted(path, hex_keys):
    Path(path).write_text(json.dumps({"keys": hex_keys}, indent=1) + "\n")


def read_trusted(path):
    """The 65-byte public keys a device trusts, from a {"keys": [hex, ...]} file."""
    try:
        keys = json.loads(Path(path).read_text())["keys"]
        return [binascii.unhexlify(k) for k in keys]
    except FileNotFoundError:
        raise OtaError("no trusted key list at %s: run `soundbox ota keygen`" % path)
    except (ValueError, KeyError, TypeError) as e:
        raise OtaError("%s is not a trusted key list ({\"keys\": [hex, ...]}): %s" % (path, e))


# ---- artifacts -----------------------------------------------------------------

def app_bundle(directory):
    """(artifact bytes, file list) of every file under `directory`, in path order."""
    root = Path(directory)
    if not root.is_dir():
        raise OtaError("an app artifact is a directory of files, %s is not one" % directory)
    data, files = bytearray(), []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        body = path.read_bytes()
        files.append({"path": path.relative_to(root).as_posix(), "offset": len(data), "size": len(body),
                      "sha256": hashlib.sha256(body).hexdigest()})
        data += body
    if not files:
        raise OtaError("%s holds no files" % directory)
    return bytes(data), files


def sim_image(version, size, boot="ok", audio="ok"):
    """A firmware image for the simulator: a header saying how it behaves, then filler.

    The simulated bootloader reads the header: "boot": "crash" makes the new image
    crash before it can confirm; "audio": "broken" gives it a dead speaker, so its
    self-test fails. Both exist to test rollback honestly."""
    header = SIM_IMAGE_MAGIC + json.dumps({"version": version, "boot": boot, "audio": audio}).encode() + b"\n"
    if size < len(header):
        raise OtaError("a simulator image needs at least %d bytes" % len(header))
    filler = hashlib.sha256(version.encode()).digest() * (size // 32 + 1)
    return header + filler[:size - len(header)]


def chunk_table(data, chunk_size=CHUNK_SIZE):
    """Every chunk's 32-byte SHA-256, concatenated in order."""
    return b"".join(hashlib.sha256(data[i:i + chunk_size]).digest() for i in range(0, len(data), chunk_size))


def job_message(campaign, envelope, table):
    """A job as the cloud sends it on sb/<id>/ota/job: one line of JSON, b"\n", the binary table."""
    head = json.dumps({"campaign": campaign, "envelope": envelope}, separators=(",", ":")).encode()
    return head + b"\n" + table


def job_size(envelope, manifest):
    """Bytes of the job message a campaign of the longest id sends for this envelope."""
    head = job_message("c" * otamanifest.MAX_CAMPAIGN_ID, envelope, b"")
    return len(head) + otamanifest.DIGEST_SIZE * otamanifest.chunk_count(manifest)


def check_job_size(envelope):
    """OtaError unless a device can take this envelope's job message in one MQTT packet."""
    manifest = json.loads(envelope["manifest"])
    size, room = job_size(envelope, manifest), otamanifest.job_room(otamanifest.longest_job_topic())
    if size <= room:
        return
    count = otamanifest.chunk_count(manifest)
    raise OtaError("the job message would be %d bytes, over the %d a device takes in one MQTT packet "
                   "(%d bytes): %d chunks of %d bytes make a %d-byte chunk table; %s"
                   % (size, room, otamanifest.MAX_PACKET, count, manifest["chunk_size"],
                      otamanifest.DIGEST_SIZE * count, _size_advice(manifest, size - otamanifest.DIGEST_SIZE * count,
                                                                    room)))


def _size_advice(manifest, rest, room):
    """What to change: the smallest power-of-two chunk size whose table fits beside the rest."""
    chunk_size = 1024
    while chunk_size <= otamanifest.MAX_CHUNK_SIZE:
        count = -(-manifest["size"] // chunk_size)
        if chunk_size > manifest["chunk_size"] and rest + otamanifest.DIGEST_SIZE * count + 16 <= room:
            return "use --chunk-size %d or more" % chunk_size
        chunk_size *= 2
    return "the manifest and its signatures alone take %d bytes: sign fewer files or with fewer keys" % rest


def manifest_for(data, *, kind, name, version, counter, model, chunk_size=CHUNK_SIZE, expires=None,
                 files=None, trust=None):
    if otakinds.get(kind) is None:
        raise OtaError("kind must be one of %s" % ", ".join(otakinds.NAMES))
    if model not in MODELS:
        raise OtaError("model must be one of %s" % ", ".join(MODELS))
    if counter < 1:
        raise OtaError("--counter must be 1 or more (devices start at 0)")
    if not 0 < chunk_size <= otamanifest.MAX_CHUNK_SIZE:
        raise OtaError("--chunk-size must be 1..%d" % otamanifest.MAX_CHUNK_SIZE)
    table = hashlib.sha256(chunk_table(data, chunk_size)).hexdigest()
    manifest = {"format": otamanifest.FORMAT, "model": model, "kind": kind, "name": name, "version": version,
                "counter": counter, "size": len(data), "chunk_size": chunk_size,
                "sha256": hashlib.sha256(data).hexdigest(), "chunk_table": table,
                "expires": int(expires if expires is not None else time.time() + EXPIRES_DAYS * 86400)}
    if files is not None:
        manifest["files"] = files
    if trust is not None:
        manifest["keys"] = [k.hex() for k in trust]
    return manifest


def sign(manifest, keys):
    """The signed envelope of `manifest`, signed by each private key in `keys`."""
    body = json.dumps(manifest, separators=(",", ":"), sort_keys=True)
    sigs = [{"key": otamanifest.key_id(public_bytes(k)),
             "sig": k.sign(body.encode(), ec.ECDSA(hashes.SHA256())).hex()} for k in keys]
    return {"manifest": body, "signatures": sigs}


def write_release(out_dir, data, envelope):
    """<out>/<name>-<version>.bin and .manifest.json; returns the .bin path."""
    manifest = json.loads(envelope["manifest"])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = "%s-%s" % (manifest["name"], manifest["version"])
    (out / (stem + ".bin")).write_bytes(data)
    (out / (stem + ".manifest.json")).write_text(json.dumps(envelope) + "\n")
    return out / (stem + ".bin")


def verify(envelope_path, trusted_path, data_path=None, model=None, now=None):
    """The manifest if a device with `trusted_path`'s keys would take it (fresh, counters at 0)."""
    try:
        envelope = json.loads(Path(envelope_path).read_text())
    except FileNotFoundError:
        raise OtaError("no such manifest: %s" % envelope_path)
    except ValueError as e:
        raise OtaError("%s is not JSON: %s" % (envelope_path, e))
    try:
        manifest, _ = otamanifest.open_envelope(envelope, read_trusted(trusted_path))
        otamanifest.check(manifest, model or manifest.get("model"), {},
                          int(now if now is not None else time.time()), lambda kind: 1 << 40)
    except otamanifest.Refused as e:
        raise OtaError("refused: %s" % e)
    try:
        check_job_size(envelope)
    except OtaError as e:
        raise OtaError("refused: %s" % e)
    if data_path is None:
        data_path = str(envelope_path).replace(".manifest.json", ".bin")
    try:
        data = Path(data_path).read_bytes()
    except FileNotFoundError:
        raise OtaError("no artifact at %s" % data_path)
    if len(data) != manifest["size"] or hashlib.sha256(data).hexdigest() != manifest["sha256"]:
        raise OtaError("refused: %s does not match the manifest's size and sha256" % data_path)
    table = chunk_table(data, manifest["chunk_size"])
    try:
        otamanifest.check_table(manifest, len(table), hashlib.sha256(table).digest())
    except otamanifest.Refused as e:
        raise OtaError("refused: %s: %s" % (data_path, e))
    return manifest
