"""`soundbox device build|flash|deploy|provision|monitor`, run as a user runs them.

There is no ESP32 here. deploy and provision talk, through mpremote's real
serial transport, to tests/fakes_mp/repl_standin.py: a STAND-IN board on a
pseudo-terminal that speaks MicroPython's raw REPL and runs what it is sent in
a real MicroPython VM whose "/" is a temporary directory. For `deploy --romfs`
the stand-in also plays a firmware built with ROMFS: a FAKE vfs.rom_ioctl over a
ROM partition kept in a host file, written by mpremote's own `romfs deploy` code;
that proves the command sequence and the bytes that land in the partition, not
ESP32 flash writes or the firmware's mount at boot. monitor reads a real
pseudo-terminal pair. flash is tested up to esptool (image and port checks);
writing a chip needs a chip.
"""

import json
import os
import shutil
import ssl
import subprocess
import sys
import time
import tty
from pathlib import Path

import pytest

from soundbox_tools import devicebuild
from soundbox_tools.pki import Pki
from soundbox_tools.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[1]
STANDIN = ROOT / "tests" / "fakes_mp" / "repl_standin.py"
TINY_PACK = ROOT / "tests" / "core" / "tiny.pack"
# The `soundbox` command in a process of its own (what the console script runs)
SOUNDBOX = [sys.executable, "-c", "import sys; from soundbox_tools.cli import main; sys.exit(main(sys.argv[1:]))"]


def run_cli(capsys, *argv):
    code = cli_main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _tree(directory):
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(Path(directory).rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """This module's own PKI: provisioning copies whatever the certs dir holds (OTA release
    keys too), so the session's, which OTA tests add release keys to, would make what lands
    on the board depend on the order the tests ran in."""
    return Pki(tmp_path_factory.mktemp("pki") / "certs").init()


@pytest.fixture
def voice_dir(tmp_path):
    d = tmp_path / "voice"
    d.mkdir()
    shutil.copyfile(TINY_PACK, d / "en-IN.pack")  # a real pack, a few clips
    return d


# ---- build --------------------------------------------------------------------------------------

def test_build_writes_bundle_manifest_and_size_report(tmp_path, voice_dir, capsys):
    out = tmp_path / "bundle"
    code, stdout, _ = run_cli(capsys, "device", "build", "--board", "esp32-s3", "--voice", str(voice_dir),
                              "--out", str(out))
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    files = {e["path"]: e for e in manifest["files"]}
    assert {"boot.py", "main.py", "board.json", "lib/soundbox/payment.mpy", "lib/soundbox_fw/app.mpy",
            "lib/soundbox_fw/esp32boot.mpy", "voice/en-IN.pack"} <= set(files)
    assert not any(p.endswith(".py") and p.startswith("lib/") for p in files)  # compiled, not sources
    on_disk = _tree(out)
    on_disk.pop("manifest.json")
    image = on_disk.pop("code.romfs")  # the ROMFS image, listed apart: it goes to a partition, not to littlefs
    assert set(on_disk) == set(files)
    import hashlib
    for path, data in on_disk.items():
        assert files[path]["sha256"] == hashlib.sha256(data).hexdigest() and files[path]["size"] == len(data)
    rom = manifest["romfs"]
    assert rom["path"] == "code.romfs" and rom["size"] == len(image)
    assert rom["sha256"] == hashlib.sha256(image).hexdigest()
    assert (rom["partition_bytes"], rom["firmware_board"]) == (256 * 1024, "SOUNDBOX_S3")
    assert image[:3] == b"\xd2\xcd\x31"  # the ROMFS header
    romfs_line = [line for line in stdout.splitlines() if line.startswith("romfs")]
    assert romfs_line == ["romfs  code.romfs %.1f KiB (lib/ as a ROMFS image, for `deploy --romfs`): fits the "
                          "SOUNDBOX_S3 firmware's romfs partition of 256.0 KiB (%d%%, %.1f KiB left)"
                          % (len(image) / 1024, len(image) * 100 // (256 * 1024), (256 * 1024 - len(image)) / 1024)]
    assert (out / "lib/soundbox/payment.mpy").read_bytes()[:1] == b"M"  # .mpy magic
    assert json.loads((out / "board.json").read_text())["name"] == "esp32-s3"
    assert manifest["parts"]["voice"]["bytes"] == TINY_PACK.stat().st_size
    assert manifest["parts"]["total"]["bytes"] == sum(e["size"] for e in manifest["files"])
    for part in ("sdk", "app", "voice", "total", "budget"):
        assert any(line.startswith(part) for line in stdout.splitlines()), stdout


def test_build_is_deterministic(tmp_path, voice_dir):
    a, b = tmp_path / "a", tmp_path / "b"
    devicebuild.build("esp32-wrover", str(a), voice_dir=str(voice_dir))
    devicebuild.build("esp32-wrover", str(b), voice_dir=str(voice_dir))
    assert _tree(a) == _tree(b)
    devicebuild.build("esp32-wrover", str(a), voice_dir=str(voice_dir))  # rebuilt in place: same again
    assert _tree(a) == _tree(b)


def test_build_over_budget_fails_and_writes_nothing(tmp_path, voice_dir, capsys):
    board = json.loads((devicebuild.BOARDS_DIR / "esp32-wrover.json").read_text())
    board["fs_budget_bytes"] = 64 * 1024
    small = tmp_path / "small.json"
    small.write_text(json.dumps(board))
    code, _, err = run_cli(capsys, "device", "build", "--board", str(small), "--voice", str(voice_dir),
                           "--out", str(tmp_path / "bundle"))
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and "over esp32-wrover's budget of 64.0 KiB" in err, err
    assert not (tmp_path / "bundle").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".bundle-")] == []


def test_build_names_what_is_missing(tmp_path, capsys):
    code, _, err = run_cli(capsys, "device", "build", "--board", "esp32-c9", "--out", str(tmp_path / "b"))
    assert code == 1 and "unknown board 'esp32-c9': known boards are esp32-s3, esp32-wrover" in err
    code, _, err = run_cli(capsys, "device", "build", "--voice", str(tmp_path), "--out", str(tmp_path / "b"))
    assert code == 1 and "no voice pack" in err and "soundbox voicepack build --lang en-IN" in err


def test_reference_boards_are_valid_and_differ_where_the_chips_do():
    wrover, s3 = devicebuild.load_board("esp32-wrover"), devicebuild.load_board("esp32-s3")
    assert (wrover["chip"], s3["chip"]) == ("esp32", "esp32s3")
    assert (wrover["firmware"]["offset"], s3["firmware"]["offset"]) == ("0x1000", "0x0")
    for board in (wrover, s3):
        pins = [board["i2s"][k] for k in ("bclk", "lrclk", "din")] + list(board["buttons"].values())
        assert len(set(pins)) == len(pins)  # no pin used twice
        assert board["buttons"][board["safe_mode_button"]] != 0  # GPIO0 held at reset means the ROM bootloader


# ---- a stand-in board on a pseudo-terminal -----------------------------------------------------

class StandIn:
    def __init__(self, root, not_micropython=False, romfs=None):
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.slave = slave
        self.port = os.ttyname(slave)
        args = [sys.executable, str(STANDIN), "--fd", str(self.master)]
        args += ["--not-micropython"] if not_micropython else ["--root", str(root)]
        args += ["--romfs", str(romfs)] if romfs else []
        self.proc = subprocess.Popen(args, pass_fds=[self.master])

    def close(self):
        self.proc.kill()
        self.proc.wait()
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def board(tmp_path):
    root = tmp_path / "board-fs"
    root.mkdir()
    s = StandIn(root)
    s.root = root
    yield s
    s.close()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("deploy") / "bundle"
    voice = tmp_path_factory.mktemp("voice")
    shutil.copyfile(TINY_PACK, voice / "en-IN.pack")
    devicebuild.build("esp32-wrover", str(out), voice_dir=str(voice))
    return out


def test_deploy_copies_the_bundle_then_skips_what_is_unchanged(board, bundle, pki, tmp_path, capsys):
    certs = tmp_path / "certs"
    (certs / "ota").mkdir(parents=True)
    shutil.copyfile(pki.path("ca.pem"), certs / "ca.pem")
    (certs / "ota" / "trusted.json").write_text('{"keys": ["04ab"]}')
    stale = board.root / "lib" / "soundbox" / "renamed_long_ago.mpy"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    args = ("device", "deploy", "--port", board.port, "--bundle", str(bundle), "--certs", str(certs), "--no-reset")

    code, out, _ = run_cli(capsys, *args)
    manifest = json.loads((bundle / "manifest.json").read_text())
    n = len(manifest["files"]) + 2
    assert code == 0 and "%d files written" % n in out and "1 stale removed" in out, out
    assert "no /config.json yet" in out
    on_board = _tree(board.root)
    for entry in manifest["files"]:
        assert on_board[entry["path"]] == (bundle / entry["path"]).read_bytes()
    # The CA goes in DER, the only form MicroPython's mbedTLS reads.
    assert on_board["certs/ca.der"] == ssl.PEM_cert_to_DER_cert((certs / "ca.pem").read_text())
    assert "certs/ca.pem" not in on_board
    assert on_board["certs/ota_keys.json"] == (certs / "ota" / "trusted.json").read_bytes()
    assert not stale.exists()

    code, out, _ = run_cli(capsys, *args)
    assert code == 0 and "0 files written" in out and "%d unchanged" % n in out, out
    assert "installed over the air" not in out

    # An app update installed over the air would run ahead of /lib: a deploy puts /lib back.
    (board.root / "ota").mkdir()
    (board.root / "ota" / "app.json").write_text('{"active": "app_b"}')
    code, out, _ = run_cli(capsys, *args)
    assert code == 0 and "an app bundle installed over the air was running" in out, out
    assert not (board.root / "ota" / "app.json").exists()

    (board.root / "lib" / "soundbox" / "voice.mpy").write_bytes(b"damaged on the board")
    code, out, _ = run_cli(capsys, *args)
    assert code == 0 and "1 files written" in out and "%d unchanged" % (n - 1) in out, out
    assert (board.root / "lib" / "soundbox" / "voice.mpy").read_bytes() == (bundle / "lib/soundbox/voice.mpy").read_bytes()


def test_deploy_refuses_a_bundle_that_does_not_match_its_manifest(board, bundle, tmp_path, capsys):
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    (copy / "main.py").write_text("print('edited after the build')\n")
    code, _, err = run_cli(capsys, "device", "deploy", "--port", board.port, "--bundle", str(copy), "--no-reset")
    assert code == 1 and "main.py does not match the bundle's manifest" in err
    assert list(board.root.iterdir()) == []


@pytest.mark.parametrize("mqtt", ["5", 3, True])
def test_deploy_refuses_a_config_with_an_mqtt_version_the_firmware_lacks(board, bundle, tmp_path, capsys, mqtt):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"device_id": "sb-0001", "broker_host": "h", "broker_port": 8883, "mqtt": mqtt}))
    code, _, err = run_cli(capsys, "device", "deploy", "--port", board.port, "--bundle", str(bundle),
                           "--config", str(config), "--no-reset")
    assert code == 1 and "mqtt must be 4 (MQTT 3.1.1) or 5, got %r" % mqtt in err, err
    assert list(board.root.iterdir()) == []


# ---- deploy --romfs ------------------------------------------------------------------------------

ROMFS_PARTITION = 256 * 1024  # the reference boards' romfs partition (firmware/boards/SOUNDBOX_*)


@pytest.fixture
def romfs_board(tmp_path):
    """A stand-in playing a firmware built with ROMFS; its ROM partition is a host file, erased (0xff)."""
    root = tmp_path / "board-fs"
    root.mkdir()
    partition = tmp_path / "romfs-partition.bin"
    partition.write_bytes(b"\xff" * ROMFS_PARTITION)
    s = StandIn(root, romfs=partition)
    s.root, s.partition = root, partition
    yield s
    s.close()


def test_deploy_romfs_writes_the_image_and_keeps_no_code_in_lib(romfs_board, bundle, capsys):
    board = romfs_board
    manifest = json.loads((bundle / "manifest.json").read_text())
    image = (bundle / "code.romfs").read_bytes()
    stale = board.root / "lib" / "soundbox" / "payment.mpy"  # a plain deploy's copy, which would shadow the image
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    args = ("device", "deploy", "--port", board.port, "--bundle", str(bundle), "--romfs", "--no-reset")

    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    assert board.partition.read_bytes()[:len(image)] == image  # written by mpremote's romfs deploy
    assert "ROMFS image (/rom/lib, run in place from flash): written" in out, out
    non_code = [e for e in manifest["files"] if not e["path"].startswith("lib/")]
    assert "%d files written" % len(non_code) in out and "1 stale removed" in out, out
    on_board = _tree(board.root)
    assert not [p for p in on_board if p.startswith("lib/")], sorted(on_board)
    for entry in non_code:
        assert on_board[entry["path"]] == (bundle / entry["path"]).read_bytes()

    # Same image: the partition is hashed on the board and not written again.
    board.partition.write_bytes(board.partition.read_bytes()[:len(image)] + b"\x00" * (ROMFS_PARTITION - len(image)))
    before = board.partition.stat().st_mtime_ns
    code, out, _ = run_cli(capsys, *args)
    assert code == 0 and "ROMFS image (/rom/lib, run in place from flash): unchanged, not written" in out, out
    assert "0 files written" in out and board.partition.stat().st_mtime_ns == before

    # A plain deploy afterwards puts the code in /lib, which main.py then prefers; it says so.
    code, out, _ = run_cli(capsys, "device", "deploy", "--port", board.port, "--bundle", str(bundle), "--no-reset")
    assert code == 0 and "the board's ROMFS image also holds an app: the one just deployed to /lib runs" in out, out
    assert (board.root / "lib" / "soundbox_fw" / "esp32boot.mpy").read_bytes() == \
        (bundle / "lib" / "soundbox_fw" / "esp32boot.mpy").read_bytes()

    # And --romfs again takes the code out of /lib.
    code, out, _ = run_cli(capsys, *args)
    assert code == 0 and "unchanged, not written" in out and "stale removed" in out, out
    assert not [p for p in _tree(board.root) if p.startswith("lib/")]


def test_deploy_romfs_rewrites_a_partition_holding_another_image(romfs_board, bundle, capsys):
    board = romfs_board
    image = (bundle / "code.romfs").read_bytes()
    other = bytearray(image)
    other[-1] ^= 0xFF
    board.partition.write_bytes(bytes(other) + b"\xff" * (ROMFS_PARTITION - len(other)))
    code, out, err = run_cli(capsys, "device", "deploy", "--port", board.port, "--bundle", str(bundle), "--romfs",
                             "--no-reset")
    assert code == 0 and ": written" in out, out + err
    assert board.partition.read_bytes()[:len(image)] == image


@pytest.mark.parametrize("partition_bytes, message", [
    (None, "the board's MicroPython has no ROMFS (it was built without MICROPY_VFS_ROM, as the stock ESP32 "
           "downloads are): flash a MicroPython built with ROMFS and a romfs partition (firmware/boards/SOUNDBOX_*"),
    (0, "the board's MicroPython has ROMFS support but its partition table has no romfs partition: flash"),
    (64 * 1024, "does not fit the board's romfs partition (64.0 KiB): build a firmware with a bigger one, or "
                "deploy without --romfs"),
])
def test_deploy_romfs_on_a_board_that_cannot_take_it_is_one_line_and_writes_nothing(
        tmp_path, bundle, capsys, partition_bytes, message):
    root = tmp_path / "board-fs"
    root.mkdir()
    partition = None
    if partition_bytes is not None:
        partition = tmp_path / "romfs-partition.bin"
        partition.write_bytes(b"\xff" * partition_bytes)
    s = StandIn(root, romfs=partition)
    try:
        code, _, err = run_cli(capsys, "device", "deploy", "--port", s.port, "--bundle", str(bundle), "--romfs",
                               "--no-reset")
    finally:
        s.close()
    assert code == 1 and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert list(root.iterdir()) == []
    if partition is not None:
        assert partition.read_bytes() == b"\xff" * partition_bytes


def test_deploy_romfs_refuses_an_image_that_does_not_match_the_manifest(board, bundle, tmp_path, capsys):
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    with open(copy / "code.romfs", "ab") as f:
        f.write(b"\0")
    code, _, err = run_cli(capsys, "device", "deploy", "--port", board.port, "--bundle", str(copy), "--romfs",
                           "--no-reset")
    assert code == 1 and "code.romfs does not match the bundle's manifest" in err, err
    assert list(board.root.iterdir()) == []


def test_provision_issues_identity_and_writes_config_without_printing_secrets(board, pki, capsys, monkeypatch):
    monkeypatch.setenv("SOUNDBOX_WIFI_PASSWORD", "correct horse battery staple")
    device = "sb-0901"
    assert not os.path.exists(os.path.join(pki.root, "devices", device))
    code, out, err = run_cli(capsys, "device", "provision", "--port", board.port, device, "--certs", pki.root,
                             "--broker", "mqtts://broker.shop.example:8883", "--wifi-ssid", "ShopNet", "--no-reset")
    assert code == 0, err
    assert "provisioned sb-0901" in out and "issued now" in out and "password not shown" in out
    bundle_dir = Path(pki.root) / "devices" / device
    secrets = ["correct horse battery staple", (bundle_dir / "payment.key").read_text().strip(),
               (bundle_dir / "device.key").read_text().splitlines()[1]]
    for secret in secrets:
        assert secret not in out + err
    assert "device.der, device.key.der, payment.key, ca.der" in out
    assert (bundle_dir / "device.key.der").read_bytes().hex() not in out + err
    # The DER files, the only ones MicroPython's mbedTLS reads; no PEM goes to the board.
    assert sorted(os.listdir(board.root / "certs")) == ["ca.der", "device.der", "device.key.der", "payment.key"]
    for name in ("ca.der", "device.der", "device.key.der", "payment.key"):
        assert (board.root / "certs" / name).read_bytes() == (bundle_dir / name).read_bytes()
    config = json.loads((board.root / "config.json").read_text())
    assert config == {"device_id": device, "broker_host": "broker.shop.example", "broker_port": 8883,
                      "tls": {"identity": "/certs"}, "network": "wifi", "wifi_ssid": "ShopNet",
                      "wifi_password": "correct horse battery staple", "lang": "en-IN"}

    # Again, only changing the language and the MQTT version: the rest of the board's
    # config and identity are kept.
    monkeypatch.delenv("SOUNDBOX_WIFI_PASSWORD")
    code, out, err = run_cli(capsys, "device", "provision", "--port", board.port, device, "--certs", pki.root,
                             "--lang", "hi", "--mqtt", "5", "--no-reset")
    assert code == 0, err
    assert "identity from" in out and "1 files written" in out, out
    again = json.loads((board.root / "config.json").read_text())
    assert again == dict(config, lang="hi", mqtt=5)


def test_provision_re_issues_an_old_pem_only_identity_and_writes_der(board, pki, capsys):
    device = "sb-0903"
    bundle_dir = Path(pki.issue_device(device))
    for name in ("ca.der", "device.der", "device.key.der"):
        (bundle_dir / name).unlink()  # a bundle issued before the DER files
    old_cert = (bundle_dir / "device.pem").read_bytes()
    code, out, err = run_cli(capsys, "device", "provision", "--port", board.port, device, "--certs", pki.root,
                             "--broker", "mqtts://h:8883", "--network", "ppp", "--no-reset")
    assert code == 0, err
    assert "issued now" in out, out
    assert (bundle_dir / "device.pem").read_bytes() != old_cert
    for name in ("ca.der", "device.der", "device.key.der"):
        assert (board.root / "certs" / name).read_bytes() == (bundle_dir / name).read_bytes()


def test_provision_without_wifi_password_is_refused(board, pki, capsys, monkeypatch):
    monkeypatch.delenv("SOUNDBOX_WIFI_PASSWORD", raising=False)
    monkeypatch.setattr(sys, "stdin", open(os.devnull))
    code, _, err = run_cli(capsys, "device", "provision", "--port", board.port, "sb-0902", "--certs", pki.root,
                           "--broker", "mqtts://h:8883", "--wifi-ssid", "ShopNet", "--no-reset")
    assert code == 1 and "set SOUNDBOX_WIFI_PASSWORD" in err
    assert list(board.root.iterdir()) == []


# ---- port errors -------------------------------------------------------------------------------

def test_no_such_port(bundle, capsys):
    for action in (("monitor",), ("deploy", "--bundle", str(bundle))):
        code, _, err = run_cli(capsys, "device", *action, "--port", "/dev/ttyUSB97")
        assert code == 1 and err.startswith("soundbox device: no such port /dev/ttyUSB97 (is the board plugged in?")
        assert len(err.strip().splitlines()) == 1


def test_a_board_that_is_not_micropython(tmp_path, bundle, capsys):
    s = StandIn(tmp_path, not_micropython=True)
    try:
        started = time.monotonic()
        code, _, err = run_cli(capsys, "device", "deploy", "--port", s.port, "--bundle", str(bundle),
                               "--probe-timeout", "1", "--no-reset")
    finally:
        s.close()
    assert code == 1 and "no MicroPython REPL on %s" % s.port in err and "router login" in err, err
    assert len(err.strip().splitlines()) == 1
    assert time.monotonic() - started < 8


def test_permission_denied_on_the_port(tmp_path):
    """A real permission error: as root the CLI runs as nobody (a pty slave is root's, mode 620);
    otherwise the pty is made unreadable to its owner."""
    master, slave = os.openpty()
    port = os.ttyname(slave)
    cmd = SOUNDBOX + ["device", "monitor", "--port", port]
    if os.geteuid() == 0:
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + cmd
    else:
        os.chmod(port, 0)
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=tmp_path,
                              env=dict(os.environ, HOME=str(tmp_path)))
    finally:
        os.close(master)
        os.close(slave)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("soundbox device: permission denied on %s: add yourself to its group" % port)
    assert len(done.stderr.strip().splitlines()) == 1


# ---- flash (up to esptool) ---------------------------------------------------------------------

def _image(path, chip_id, size=300 * 1024):
    head = bytes([0xE9, 3, 2, 0x20]) + b"\0" * 8 + bytes([chip_id, 0]) + b"\0" * 10
    path.write_bytes(head + b"\xff" * (size - len(head)))
    return path


def test_flash_checks_the_image_before_touching_the_board(tmp_path, capsys):
    base = ("device", "flash", "--port", "/dev/ttyUSB97", "--board", "esp32-wrover", "--firmware")
    code, _, err = run_cli(capsys, *base, str(tmp_path / "missing.bin"))
    assert code == 1 and "no firmware file" in err
    page = tmp_path / "download.bin"
    page.write_text("<!DOCTYPE html><html>...")
    code, _, err = run_cli(capsys, *base, str(page))
    assert code == 1 and "is not an ESP firmware image (first byte 0x3c, expected 0xe9)" in err
    code, _, err = run_cli(capsys, *base, str(_image(tmp_path / "s3.bin", 9)))
    assert code == 1 and "is firmware for esp32s3, but this board is esp32" in err
    code, _, err = run_cli(capsys, *base, str(_image(tmp_path / "esp32.bin", 0)))
    assert code == 1 and "no such port /dev/ttyUSB97" in err


def test_flash_runs_esptool_erase_then_write_at_the_chips_offset(tmp_path):
    from soundbox_tools.deviceflash import esptool_commands
    for name, offset in (("esp32-wrover", "0x1000"), ("esp32-s3", "0x0")):
        board = devicebuild.load_board(name)
        erase, write = esptool_commands("/dev/ttyUSB0", "fw.bin", board)
        assert erase[1:3] == ["-m", "esptool"] and erase[-1] == "erase_flash"
        assert write[-4:] == ["write_flash", "-z", offset, "fw.bin"]
        assert write[write.index("--chip") + 1] == board["chip"]
        done = subprocess.run(erase[:3] + ["version"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr  # esptool is installed and runs


# ---- monitor -----------------------------------------------------------------------------------

def _read_until(proc, text, timeout=8):
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError("%r not seen in %r" % (text, seen))


def test_monitor_follows_the_port_through_unplug_and_replug(tmp_path):
    link = tmp_path / "ttyUSB0"  # a stable name, like a udev symlink, pointing at the current pty

    def plug():
        master, slave = os.openpty()
        tty.setraw(slave)
        if link.is_symlink():
            link.unlink()
        link.symlink_to(os.ttyname(slave))
        os.close(slave)  # only the monitor keeps the port open
        return master

    master = plug()
    proc = subprocess.Popen(SOUNDBOX + ["device", "monitor", "--port", str(link), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _read_until(proc, "monitor: %s at 115200 baud" % link)
        os.write(master, b"boot: soundbox 0.1.0 on esp32-wrover\r\n")
        os.write(master, b'{"level": "warn", "msg": "wifi down", "rssi": -90}\r\n')
        seen = _read_until(proc, "wifi down")
        assert "boot: soundbox 0.1.0 on esp32-wrover\n" in seen
        assert seen[-1] == 'WARN  wifi down rssi=-90\n'

        os.close(master)  # unplugged
        link.unlink()
        _read_until(proc, "monitor: lost %s (unplugged?)" % link)
        time.sleep(0.5)
        master = plug()  # plugged in again
        _read_until(proc, "monitor: %s is back" % link)
        os.write(master, b"after the replug\r\n")
        _read_until(proc, "after the replug")
    finally:
        proc.kill()
        proc.wait()
        try:
            os.close(master)
        except OSError:
            pass


def test_bad_board_file_and_missing_bundle_are_one_line_errors(tmp_path, capsys):
    board = json.loads((devicebuild.BOARDS_DIR / "esp32-s3.json").read_text())
    board["buttons"]["volume_up"] = "15"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(board))
    code, _, err = run_cli(capsys, "device", "build", "--board", str(bad), "--no-voice", "--out", str(tmp_path / "b"))
    assert code == 1 and err == 'soundbox device: %s: buttons: volume_up must be a GPIO number 0-48, got "15"\n' % bad
    code, _, err = run_cli(capsys, "device", "deploy", "--port", "/dev/null", "--bundle", str(tmp_path / "none"))
    assert code == 1 and "no bundle in %s: run `soundbox device build` first" % (tmp_path / "none") in err
