"""HMAC-SHA256 built on hashlib.sha256 (MicroPython has no hmac module) and a
constant-time comparison, for checking the MAC on payment notifications.

Pure and MicroPython-safe. On the ESP32 hashlib.sha256 is hardware-backed: one
MAC over a ~80-byte notification is four SHA-256 blocks, and the key's pads are made
once. On CPython (the simulator) the same functions are hmac's C ones.
"""

import hashlib

# CPython's, in C: the simulator runs thousands of boxes in one process.
try:
    from hmac import compare_digest as _c_equal, digest as _c_hmac  # type: ignore[import-not-found]
except ImportError:  # MicroPython has no hmac module: the code below is the device's
    _c_equal = _c_hmac = None

BLOCK_SIZE = 64  # SHA-256 block size in bytes (RFC 2104's B)
DIGEST_SIZE = 32

_IPAD = 0x36
_OPAD = 0x5C
_pads = None  # (key, key ^ ipad, key ^ opad) for the last key: a box MACs with one key


def _xor_pad(key, pad):
    out = bytearray(BLOCK_SIZE)
    for i in range(BLOCK_SIZE):
        out[i] = key[i] ^ pad
    return bytes(out)


def hmac_sha256(key: bytes, msg: bytes) -> bytes:
    """RFC 2104 HMAC with SHA-256: H((K ^ opad) || H((K ^ ipad) || msg))."""
    if _c_hmac is not None:
        return _c_hmac(key, msg, "sha256")
    global _pads
    if _pads is None or _pads[0] != key:  # the pads once per key, not two 64-byte loops per payment
        padded = hashlib.sha256(key).digest() if len(key) > BLOCK_SIZE else bytes(key)
        padded += bytes(BLOCK_SIZE - len(padded))
        _pads = (bytes(key), _xor_pad(padded, _IPAD), _xor_pad(padded, _OPAD))
    inner = hashlib.sha256(_pads[1])
    inner.update(msg)
    outer = hashlib.sha256(_pads[2])
    outer.update(inner.digest())
    return outer.digest()


def equal(a: bytes, b: bytes) -> bool:
    """a == b in time that depends only on the length, so a forger learns nothing
    from how long a wrong MAC took to refuse. Lengths are not secret."""
    if len(a) != len(b):
        return False
    if _c_equal is not None:
        return _c_equal(a, b)
    diff = 0
    for i in range(len(a)):
        diff |= a[i] ^ b[i]
    return diff == 0


def verify_p256(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True if `signature` (strict DER) is an ECDSA P-256 / SHA-256 signature of `message`
    by `public_key` (65-byte uncompressed SEC1); False for anything else, never an error.

    soundbox.p256 is imported here, on first use, so that importing this module for the
    per-payment HMAC does not load the curve code onto the device's heap.
    """
    from soundbox import p256

    return p256.verify(public_key, message, signature)
