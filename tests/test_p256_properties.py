"""soundbox.p256.verify against `cryptography` (OpenSSL) on generated keys, messages and
signatures, valid and broken; CPython only (hypothesis).

Where the two must agree: every genuine signature, its high-S twin (r, n - s), and any
mutation of a signature, message or key. Where we are strict by design: any
non-canonical DER encoding of a genuine (r, s) is refused by us; OpenSSL refuses each
of these too today (it re-encodes the parsed signature and compares), which is asserted
so that a laxer OpenSSL would show up here. Compressed public keys, which OpenSSL
accepts, are not covered: the OTA protocol uses 65-byte uncompressed keys only.
"""

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from soundbox import p256

N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

private_keys = st.integers(min_value=1, max_value=N - 1).map(
    lambda d: ec.derive_private_key(d, ec.SECP256R1()))
messages = st.binary(max_size=200)
fast = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def public_bytes(private_key):
    return private_key.public_key().public_bytes(serialization.Encoding.X962,
                                                 serialization.PublicFormat.UncompressedPoint)


def sign(private_key, message):
    # RFC 6979 nonces: the same example gives the same signature, as hypothesis needs.
    return private_key.sign(message, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))


def openssl_verifies(public_key, message, signature):
    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public_key)
        key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def agree(public_key, message, signature):
    """Both verdicts, after checking they are the same."""
    ours = p256.verify(public_key, message, signature)
    theirs = openssl_verifies(public_key, message, signature)
    assert ours is theirs, (public_key.hex(), message, signature.hex())
    return ours


def der_length(n, long_form=False):
    if long_form or n >= 0x80:
        return b"\x81" + bytes([n])
    return bytes([n])


def der_int(value, extra_zeros=0, long_form=False):
    body = value.to_bytes(33, "big").lstrip(b"\x00")
    if not body or body[0] & 0x80:
        body = b"\x00" + body
    body = b"\x00" * extra_zeros + body
    return b"\x02" + der_length(len(body), long_form) + body


def der_sig(r, s, **how):
    """DER-like (r, s): canonical by default; `how` breaks it in one named way."""
    body = (der_int(r, how.get("r_zeros", 0), how.get("r_long", False))
            + der_int(s, how.get("s_zeros", 0), how.get("s_long", False)))
    return b"\x30" + der_length(len(body), how.get("seq_long", False)) + body + how.get("trailer", b"")


@fast
@given(private_keys, messages)
def test_genuine_signatures_and_their_high_s_twins_verify(private_key, message):
    public_key = public_bytes(private_key)
    signature = sign(private_key, message)
    r, s = decode_dss_signature(signature)
    assert der_sig(r, s) == signature  # our canonical encoder matches OpenSSL's
    assert agree(public_key, message, signature) is True
    assert agree(public_key, message, der_sig(r, N - s)) is True


@fast
@given(private_keys, messages, st.data())
def test_mutated_signatures_agree_with_openssl(private_key, message, data):
    public_key = public_bytes(private_key)
    signature = bytearray(sign(private_key, message))
    how = data.draw(st.sampled_from(["flip", "truncate", "append", "replace_byte"]))
    if how == "flip":
        bit = data.draw(st.integers(0, len(signature) * 8 - 1))
        signature[bit // 8] ^= 1 << (bit % 8)
    elif how == "truncate":
        del signature[data.draw(st.integers(0, len(signature) - 1)):]
    elif how == "append":
        signature += data.draw(st.binary(min_size=1, max_size=8))
    else:
        i = data.draw(st.integers(0, len(signature) - 1))
        signature[i] = data.draw(st.integers(0, 255).filter(lambda b: b != signature[i]))
    assert agree(public_key, message, bytes(signature)) is False


@fast
@given(private_keys, messages, st.data())
def test_other_message_or_mutated_key_is_refused_by_both(private_key, message, data):
    public_key = public_bytes(private_key)
    signature = sign(private_key, message)
    other = data.draw(messages.filter(lambda m: m != message))
    assert agree(public_key, other, signature) is False
    mutated = bytearray(public_key)
    bit = data.draw(st.integers(0, len(mutated) * 8 - 1))
    mutated[bit // 8] ^= 1 << (bit % 8)
    assert agree(bytes(mutated), message, signature) is False


out_of_range = st.one_of(st.just(0), st.integers(N, 2 ** 256 - 1), st.integers(2 ** 256, 2 ** 263))


@fast
@given(private_keys, messages, out_of_range, st.booleans())
def test_r_or_s_out_of_range_is_refused_by_both(private_key, message, bad, bad_is_r):
    public_key = public_bytes(private_key)
    r, s = decode_dss_signature(sign(private_key, message))
    signature = der_sig(bad, s) if bad_is_r else der_sig(r, bad)
    assert agree(public_key, message, signature) is False


non_canonical = st.sampled_from([
    {"r_zeros": 1}, {"s_zeros": 1}, {"r_zeros": 2},
    {"r_long": True}, {"s_long": True}, {"seq_long": True},
    {"trailer": b"\x00"}, {"trailer": b"\x05\x00"},  # an extra NULL after the SEQUENCE
])


@fast
@given(private_keys, messages, non_canonical)
def test_non_canonical_der_of_a_genuine_signature_is_refused(private_key, message, how):
    public_key = public_bytes(private_key)
    r, s = decode_dss_signature(sign(private_key, message))
    signature = der_sig(r, s, **how)
    assert signature != encode_dss_signature(r, s)
    assert p256.verify(public_key, message, signature) is False
    assert openssl_verifies(public_key, message, signature) is False, "OpenSSL got laxer: %s" % how


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=80), st.binary(max_size=70))
def test_random_bytes_never_raise(signature, public_key):
    key = public_bytes(ec.derive_private_key(12345, ec.SECP256R1()))
    assert agree(key, b"m", signature) is False
    assert p256.verify(public_key, b"m", signature) is False


@fast
@given(private_keys, messages, st.integers(1, N - 1), st.integers(1, N - 1))
def test_random_in_range_signatures_agree(private_key, message, r, s):
    # Full verifications of (almost surely) wrong signatures: both must refuse.
    assert agree(public_bytes(private_key), message, der_sig(r, s)) is False
