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


# A key-set change (its manifest names the keys to trust after it), signed by two release
# keys: real ECDSA P-256 signatures of exactly these bytes (made with `cryptography`).
KEY_1 = binascii.unhexlify(
    "04159612ddb0085edce0abf66a2e0214b222de801b0464dddfeba9468d2e32bddc"
    "2f24874d0c6d6d282f3f1b3662c2521b6fbc33755f739ad38fc87280d0718302")
KEY_2 = binascii.unhexlify(
    "04f52cef6b4bae821ec4acfb542fe2f3ae99c17149add57bdd9e0f9f7fdb5ce6f3"
    "cb13ab1d91bf4bf07a8461dd0f2f8fcf5213d1b8b0afb969db40ea17efa7f32a")
NEW_KEY_HEX = ("04a9eb8c7e381c3d20b5526a87574ea4edd3cc169ca50f2619c9a3e8231ee30207"
               "1426ee3cf2859f484aac19a30f10a3224c0847b388886f1af573461459d20849")
KEY_CHANGE = '{"format":1,"kind":"app","version":"3.0.0","keys":["%s"]}' % NEW_KEY_HEX
SIG_1 = {"key": otamanifest.key_id(KEY_1), "sig":
         "3046022100bc882769c6cf7158f4e68174d4579c0f07e39a1205c05da081d9b5b50959766e"
         "022100eddee8609a7c699fc8c5f82914924759ae54f6f0c96f593d6b80960a097df5d4"}
SIG_2 = {"key": otamanifest.key_id(KEY_2), "sig":
         "3046022100ada924cb4d84e810c0b1b9d4feebd83d479353b5bd8f1fa20c325474662b9988"
         "022100c99ada72244f344ccfd5e4b35d7e5ddae340691cc74116f2f4434db16b6c0c56"}


def key_change(*sigs):
    return {"manifest": KEY_CHANGE, "signatures": list(sigs)}


def test_the_threshold_is_more_than_half_of_the_trusted_keys():
    assert [otamanifest.threshold(n) for n in (1, 2, 3, 4, 5)] == [1, 2, 2, 3, 3]


def signatures_of(envelope):
    """The envelope's signatures as open_envelope checks them, against KEY_1 and KEY_2."""
    return otamanifest._Signed(envelope["signatures"], otamanifest._by_key_id([KEY_1, KEY_2]),
                               otamanifest._text_digest(envelope["manifest"]))


def test_one_key_cannot_change_the_key_set_alone():
    # No try while a signature is checked (see test_the_verifier_leaves_the_heap_once_a_manifest_is_judged):
    # the signatures are checked first, then the refusal is raised from what they gave.
    signed = signatures_of(key_change(SIG_1))
    assert signed.verify(1) is True and signed.verify(2) is False and signed.good == 1
    assert error_message(otamanifest.Refused, otamanifest._threshold_met, json.loads(KEY_CHANGE), signed) == \
        "key change needs signatures by 2 of the 2 trusted keys, 1 verified"
    signed = signatures_of(key_change(SIG_2, SIG_2))  # one key counts once, and is checked once
    assert signed.verify(2) is False and signed.good == 1 and signed.tried == [SIG_2["key"]]


def test_the_threshold_of_trusted_keys_changes_the_key_set():
    opened = otamanifest.open_envelope(key_change(SIG_2, SIG_1), [KEY_1, KEY_2])
    assert opened[0]["keys"] == [NEW_KEY_HEX]
    # Once the update is confirmed the updater trusts the manifest's keys as they are, decoded by
    # Updater.trusted_keys (otamanifest.trusted_after, used by nothing else, is gone; the rotation
    # itself runs end to end in tests/test_ota_device.py): keys check_keys accepts.
    otamanifest.check_keys(opened[0]["keys"])
    assert [binascii.unhexlify(k) for k in opened[0]["keys"]] == [binascii.unhexlify(NEW_KEY_HEX)]
    assert otamanifest.open_envelope(key_change(SIG_1), [KEY_1])[0]["version"] == "3.0.0"  # 1 of 1


def test_a_manifest_that_keeps_the_key_set_needs_one_signature():
    assert otamanifest.open_envelope(SIGNED, [RELEASE_KEY, KEY_1])[0]["counter"] == 7


def test_an_envelope_padded_with_signatures_is_refused_before_any_is_checked():
    padded = {"manifest": SIGNED["manifest"], "signatures": SIGNED["signatures"] * 9}
    assert error_message(otamanifest.Refused, otamanifest.open_envelope, padded, TRUSTED) == \
        "malformed envelope: 9 signatures, at most %d" % otamanifest.MAX_SIGNATURES


def test_key_material_is_checked_before_a_manifest_is_accepted():
    def refused(keys):
        return error_message(otamanifest.Refused, check, manifest(keys=keys))

    assert refused(None) is None and refused([NEW_KEY_HEX]) is None
    assert refused(["zz" * 65]) == "malformed manifest: key zzzzzzzzzzzzzzzz... is not hex"
    assert refused(["04ab"]) == "malformed manifest: a key must be 130 hex digits (a 65-byte public key)"
    assert refused([7]) == "malformed manifest: a key must be 130 hex digits (a 65-byte public key)"
    assert refused(["04" + "00" * 64]) == "malformed manifest: key 0400000000000000... is not a P-256 public key"
    assert refused([NEW_KEY_HEX, NEW_KEY_HEX]) == "malformed manifest: keys lists a key twice"
    assert refused([]) == "malformed manifest: keys must be a list of 1 to 8 hex public keys"
    assert refused(NEW_KEY_HEX) == "malformed manifest: keys must be a list of 1 to 8 hex public keys"


def test_the_job_size_limit_is_the_devices_mqtt_packet_limit():
    from soundbox import mqttcodec
    from soundbox.mqttsession import Session

    assert Session("sb-0001").max_packet == otamanifest.MAX_PACKET == mqttcodec.Decoder().max_size
    topic = otamanifest.longest_job_topic()
    assert len(topic) == len("sb//ota/job") + otamanifest.MAX_DEVICE_ID
    assert otamanifest.job_room(topic) == otamanifest.MAX_PACKET - otamanifest.PUBLISH_OVERHEAD - len(topic)


def test_a_job_of_the_largest_allowed_size_is_one_packet_the_device_takes():
    # As the broker forwards it: a QoS 1 PUBLISH on the longest job topic, even with all 64
    # bytes of room for MQTT 5 properties used, is within the limit counted either way (3.1.1:
    # the remaining length; MQTT 5's Maximum Packet Size: the whole packet).
    from soundbox import mqttcodec

    topic = otamanifest.longest_job_topic()
    remaining = 2 + len(topic) + 2 + otamanifest.job_room(topic) + 64
    packet = publish(topic, remaining - 2 - len(topic) - 2)
    assert len(packet) <= otamanifest.MAX_PACKET
    assert len(mqttcodec.Decoder(otamanifest.MAX_PACKET).feed(packet)) == 1
    over = publish(topic, otamanifest.MAX_PACKET + 1 - 2 - len(topic) - 2)  # one byte past the limit
    (skipped,) = mqttcodec.Decoder(otamanifest.MAX_PACKET).feed(over)  # streamed past, not taken
    assert isinstance(skipped, mqttcodec.Skipped) and skipped.size == otamanifest.MAX_PACKET + 1


def publish(topic, size):
    from soundbox import mqttcodec

    return mqttcodec.encode(mqttcodec.Packet(mqttcodec.PUBLISH, pid=1, topic=topic, payload=b"j" * size, qos=1))
