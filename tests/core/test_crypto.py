"""HMAC-SHA256 against RFC 4231 and the constant-time compare; CPython and MicroPython."""

import binascii

from soundbox import crypto


def unhex(text):
    return binascii.unhexlify(text.replace(" ", ""))


# RFC 4231 section 4: (key, data, HMAC-SHA-256). Case 5 (truncation) is below.
RFC4231 = [
    (b"\x0b" * 20, b"Hi There",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 20, b"\xdd" * 50,
     "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (unhex("0102030405060708090a0b0c0d0e0f10111213141516171819"), b"\xcd" * 50,
     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    (b"\xaa" * 131, b"This is a test using a larger than block-size key and a larger than "
                    b"block-size data. The key needs to be hashed before being used by the "
                    b"HMAC algorithm.",
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
]


def test_hmac_sha256_matches_rfc4231():
    for key, data, expected in RFC4231:
        assert crypto.hmac_sha256(key, data) == unhex(expected), expected


def test_hmac_sha256_truncated_matches_rfc4231_case_5():
    digest = crypto.hmac_sha256(b"\x0c" * 20, b"Test With Truncation")
    assert digest[:16] == unhex("a3b6167473100ee06e0c796c2955552b")


def test_hmac_keys_at_the_block_size_edges():
    # 64 bytes is used as is, 65 is hashed first: the two must differ from each other
    # and from the key padded with a zero byte.
    msg = b"payment"
    at_block = crypto.hmac_sha256(b"k" * 64, msg)
    over_block = crypto.hmac_sha256(b"k" * 65, msg)
    assert len(at_block) == len(over_block) == crypto.DIGEST_SIZE
    assert at_block != over_block
    assert crypto.hmac_sha256(b"k" * 63, msg) == crypto.hmac_sha256(b"k" * 63 + b"\x00", msg)
    assert crypto.hmac_sha256(b"", msg) == crypto.hmac_sha256(b"\x00" * 64, msg)


def test_hmac_takes_bytearray_and_empty_message():
    key = bytearray(b"Jefe")
    assert crypto.hmac_sha256(key, b"") == crypto.hmac_sha256(b"Jefe", b"")
    assert crypto.hmac_sha256(b"Jefe", b"") != crypto.hmac_sha256(b"Jefe", b"\x00")


def test_equal_compares_whole_values():
    a = crypto.hmac_sha256(b"k", b"m")
    assert crypto.equal(a, bytes(a))
    for i in (0, 15, 31):
        flipped = bytearray(a)
        flipped[i] ^= 1
        assert not crypto.equal(a, bytes(flipped))
    assert not crypto.equal(a, a[:31])
    assert not crypto.equal(a[:31], a)
    assert crypto.equal(b"", b"")
