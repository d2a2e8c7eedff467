"""Facts the core tests lean on, checked on both runtimes (CPython under pytest, MicroPython in the VM)."""

import binascii
import hashlib
import sys


def test_runtime_is_cpython_or_micropython_1_22_plus():
    impl = sys.implementation
    if impl.name == "micropython":
        assert impl.version[:2] >= (1, 22), impl.version
    else:
        assert impl.name == "cpython", impl.name


def test_sha256_of_abc():
    digest = hashlib.sha256(b"abc").digest()
    assert binascii.hexlify(digest) == b"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_int_from_bytes_with_positional_byteorder():
    assert int.from_bytes(b"\x01\x00", "big") == 256
