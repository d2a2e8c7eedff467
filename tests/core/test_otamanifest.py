"""OTA job messages and chunk tables, device side (no signature here: the P-256 path is in
test_p256 and tests/test_ota_device.py); CPython and MicroPython."""

import binascii
import hashlib
import json
import struct
import sys

from check import error_message
from soundbox import otamanifest, otatransfer

CHUNK = 1024
DATA = b"".join([hashlib.sha256(bytes([i])).digest() for i in range(80)])  # 2560 bytes: 1024, 1024, 512


def table_of(data):
    out = b""
    i = 0
    while i < len(data):
        out += hashlib.sha256(data[i:i + CHUNK]).digest()
        i += CHUNK
    return out


def manifest(**changes):
    m = {"format": 1, "model": "soundbox-sim", "kind": "firmware", "name": "firmware", "version": "2.0.0",
         "counter": 2, "size": len(DATA), "chunk_size": CHUNK, "expires": 2000000000,
         "sha256": binascii.hexlify(hashlib.sha256(DATA).digest()).decode(),
         "chunk_table": binascii.hexlify(hashlib.sha256(table_of(DATA)).digest()).decode()}
    m.update(changes)
    return m


def check(m):
    otamanifest.check(m, "soundbox-sim", {}, 1900000000, lambda kind: 1 << 20)


def test_a_job_message_is_a_json_line_then_the_binary_table():
    table = table_of(DATA)
    head = json.dumps({"campaign": "c-1", "envelope": {"manifest": "{}", "signatures": []}}).encode()
    got_head, got_table = otamanifest.split_job(head + b"\n" + table)
    assert got_head == head and bytes(got_table) == table
    assert json.loads(got_head)["campaign"] == "c-1"
    # A table may hold the byte 0x0a itself: only the first newline splits.
    assert bytes(otamanifest.split_job(b"{}\n\n\n")[1]) == b"\n\n"
    cancel = b'{"campaign": "c-1", "cancel": true}'
    assert otamanifest.split_job(cancel) == (cancel, None)


def test_the_table_must_be_the_one_the_manifest_names():
    m = manifest()
    check(m)
    table = otamanifest.split_job(b"{}\n" + table_of(DATA))[1]
    otamanifest.check_table(m, len(table), hashlib.sha256(table).digest())  # a memoryview hashes as its bytes
    other = table_of(DATA[1:] + DATA[:1])
    assert error_message(otamanifest.Refused, otamanifest.check_table, m, len(other),
                         hashlib.sha256(other).digest()) == "chunk table does not match the manifest: its sha256 differs"
    short = table_of(DATA)[:64]
    assert error_message(otamanifest.Refused, otamanifest.check_table, m, len(short),
                         hashlib.sha256(short).digest()) == \
        "chunk table does not match the manifest: 64 bytes for 3 chunks"


def test_a_manifest_without_a_chunk_table_name_is_malformed():
    assert error_message(otamanifest.Refused, check, manifest(chunk_table="ab")) == \
        "malformed manifest: chunk_table must be 64 hex digits"
    m = manifest()
    del m["chunk_table"]
    assert error_message(otamanifest.Refused, check, m) == "malformed manifest: chunk_table must be a string"


def test_transfer_checks_each_chunk_against_the_digest_it_reads():
    table = table_of(DATA)
    reads = []

    def digest(i):
        reads.append(i)
        return table[32 * i:32 * i + 32]

    t = otatransfer.Transfer(lambda i: otamanifest.chunk_length(manifest(), i), 3, digest)
    index, data = t.accept(struct.pack(">I", 2) + DATA[2048:])
    assert index == 2 and bytes(data) == DATA[2048:] and reads == [2]
    assert error_message(otatransfer.ChunkRefused, t.accept, struct.pack(">I", 1) + DATA[:1024]) == \
        "chunk 1 does not match the manifest's hash"


def test_a_refusal_notice_is_read_and_held_off():
    mark = struct.pack(">I", otatransfer.NOTICE_INDEX)
    assert otatransfer.notice(mark + b'{"manifest": "ab", "reason": "rate limit", "retry_ms": 250}') == \
        ("ab", "rate limit", 250)
    assert otatransfer.notice(struct.pack(">I", 0) + DATA[:1024]) is None
    assert error_message(otatransfer.ChunkRefused, otatransfer.notice, mark + b"{") == "malformed refusal notice"
    t = otatransfer.Transfer(lambda i: CHUNK, 3, lambda i: bytes(32))
    assert t.request(0) == [[0, 2]]
    t.hold_off(100, 250)
    assert t.request(349) is None and t.next_deadline(349) == 350
    assert t.request(350) == [[0, 2]] and t.retries == 0


# The "manifest" vector of test_p256: a release key's ECDSA signature of these very bytes.
RELEASE_KEY = binascii.unhexlify(
    "04fba90595949ffb6a3462fae2ee713344fd45f43bd932f86c2b97a6fd013af1d9"
    "ab2bbb8c119bb19b95037982056cd1995824731363519c07b617a0726b4c83e9")
SIGNED = {"manifest": '{"format": 1, "model": "soundbox-esp32", "kind": "app", "version": "1.2.0", "counter": 7}',
          "signatures": [{"key": otamanifest.key_id(RELEASE_KEY), "sig":
                          "3045022100c63f12aa9fb256322bd7604c2675ab4e8a0fa04cb34e1b7a58a26613c89976a7"
                          "022068ee287366493809874085d7156b3853705227482cad272a1129d7d98738f7d0"}]}
TRUSTED = [RELEASE_KEY]


def test_the_verifier_leaves_the_heap_once_a_manifest_is_judged():
    # Small frame, no try: verify collects garbage (see test_p256). On MicroPython the P-256
    # code is forgotten after each manifest and loaded again for the next one.
    opened = otamanifest.open_envelope(SIGNED, TRUSTED)
    assert opened[0]["counter"] == 7 and opened[1] == otamanifest.manifest_id(SIGNED["manifest"].encode())
    assert ("soundbox.p256" in sys.modules) is (sys.implementation.name != "micropython")
    opened = otamanifest.open_envelope(SIGNED, TRUSTED)
    assert opened[0]["version"] == "1.2.0"
