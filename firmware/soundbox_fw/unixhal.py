"""The HAL of a desktop soundbox: the real firmware on MicroPython's unix port.

No board, so no machine or network module: flash is a directory, the speaker reads
the same voice pack the ESP32 streams to I2S and takes the audio's real time (and
can write each announcement as a WAV file), the clock is the host's (kept by NTP,
so trusted), keys are lines written to a FIFO ("replay", "today", "volume_up",
"volume_down"), the LED is a log line. Built by soundbox_fw.unixboot from its config.
"""

import asyncio
import gc
import json
import struct
import sys

from soundbox import clock
from soundbox.desk import said_txns
from soundbox.storage import FileStorage, makedirs
from soundbox.voicepack import Pack

BLOCK = 2048  # bytes read from the pack at a time, as on the ESP32
KEYS = ("replay", "today", "volume_up", "volume_down")
REBOOT_EXIT = 3  # the process exits with this when the app asks for a restart


class HostClock:
    monotonic_ms = staticmethod(clock.monotonic_ms)
    wall_ms = staticmethod(clock.wall_ms)

    def trusted(self):
        return True  # the host's clock is kept by NTP


def wav_header(rate, data_bytes):
    """A 44-byte RIFF header for mono 16-bit PCM."""
    return (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVEfmt "
            + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
            + b"data" + struct.pack("<I", data_bytes))


class PackSpeaker:
    """Plays from <voice_dir>/<lang>.pack: reads every block the I2S sink would, writes
    them to <wav_dir>/NNN-<name>.wav when wav_dir is set, and returns when the audio
    would have ended (speedup: that many times sooner). on_played(tokens, name, start,
    end) is told of each announcement that played."""

    def __init__(self, voice_dir, lang, wav_dir=None, speedup=1.0, on_played=None):
        self.voice_dir = voice_dir
        self.wav_dir = wav_dir
        self.speedup = speedup
        self.on_played = on_played
        self.volume = None
        self.lang = lang
        self.pack = None
        self.count = 0
        self.buf = bytearray(BLOCK)
        if wav_dir:
            makedirs(wav_dir)

    def set_volume(self, level):
        self.volume = level  # recorded only: there is no amplifier to shift

    def set_language(self, lang):
        if lang != self.lang:
            self.lang, self.pack = lang, None  # opened at the next announcement

    def _open(self):
        if self.pack is None:
            self.pack = Pack("%s/%s.pack" % (self.voice_dir, self.lang))
        return self.pack

    async def play(self, tokens, name=None):
        pack = self._open()
        ms = pack.duration_ms(tokens)  # checks every token first
        start = clock.wall_ms()
        self.count += 1
        out = None
        if self.wav_dir:
            out = open("%s/%03d-%s.wav" % (self.wav_dir, self.count, _safe(name)), "wb")
            out.write(wav_header(pack.rate, 0))
        size = 0
        try:
            for block in pack.stream(tokens, self.buf):
                size += len(block)
                if out is not None:
                    out.write(block)
                await asyncio.sleep(0)  # a long announcement must not starve the link
        finally:
            if out is not None:
                out.seek(0)
                out.write(wav_header(pack.rate, size))
                out.close()
        left = ms / self.speedup - (clock.wall_ms() - start)
        if left > 0:
            await asyncio.sleep_ms(int(left))
        if self.on_played is not None:
            self.on_played(tokens, name, start, clock.wall_ms())


def _safe(name):
    """A file-name-safe, bounded form of an announcement name (a txn id may hold anything)."""
    out = ""
    for ch in str(name or "announcement")[:48]:
        out += ch if ch.isalpha() or ch.isdigit() or ch in "-_." else "_"
    return out.strip("._") or "announcement"


class FifoKeys:
    """Key presses as lines on a FIFO (or any file) the desktop user or a test writes to.
    Opened read-write so opening never blocks waiting for a writer."""

    def __init__(self, path, log):
        self.path = path
        self.log = log
        self._stream = None

    async def next_press(self):
        if self.path is None:
            await asyncio.Event().wait()  # no keys: never pressed
        if self._stream is None:
            self._stream = asyncio.StreamReader(open(self.path, "r+b"))
        while True:
            line = (await self._stream.readline()).strip().decode()
            if line in KEYS:
                return line
            if line:
                self.log("keys: unknown key %r; known: %s" % (line, ", ".join(KEYS)))


class LogLed:
    def __init__(self, log):
        self.log = log
        self.state = None

    def show(self, state):
        if state != self.state:
            self.state = state
            self.log("led: %s" % state)


class FixedBattery:
    def __init__(self, level=100, plugged=True):
        self.level = level
        self.plugged = plugged

    def percent(self):
        return self.level

    def charging(self):
        return self.plugged


class UnixHal:
    """config: {"flash": dir, "voice_dir": dir, "lang"?, "wav_dir"?, "keys"?: FIFO path,
    "journal"?: JSON Lines file of what was said, "speedup"?, "battery"?: percent,
    "heap_log_s"?: log the GC heap every that many seconds and after each announcement
    (bench/mp_heap.py reads it; off by default: each line costs a gc.collect())}."""

    def __init__(self, config):
        self.device_id = config["device_id"]
        self.storage = FileStorage(config["flash"])
        self.clock = HostClock()
        self.journal = config.get("journal")
        self.audio = PackSpeaker(config["voice_dir"], config.get("lang", "en-IN"), config.get("wav_dir"),
                                 config.get("speedup", 1.0), self._played)
        self.buttons = FifoKeys(config.get("keys"), self.log)
        self.led = LogLed(self.log)
        self.battery = FixedBattery(config.get("battery", 100))
        self.ota = None
        self.ota_rollbacks = {}
        self.heap_log_s = config.get("heap_log_s")
        if self.heap_log_s:
            self._heap_task = asyncio.create_task(self._heap_logger())  # built in unixboot.boot: the loop runs

    def log_heap(self, why):
        """One "heap:" line: bytes allocated now (garbage included), then live after a
        collection, and free after it."""
        before = gc.mem_alloc()
        gc.collect()
        self.log("heap: %s alloc=%d live=%d free=%d" % (why, before, gc.mem_alloc(), gc.mem_free()))

    async def _heap_logger(self):
        while True:
            await asyncio.sleep_ms(int(self.heap_log_s * 1000))
            self.log_heap("tick")

    async def open_connection(self, host, port, **kwargs):
        return await asyncio.open_connection(host, port, **kwargs)

    def enable_ota(self, slots, rollbacks):
        self.ota = slots
        self.ota_rollbacks = rollbacks

    def reboot(self):
        self.log("reboot: restarting the process")
        raise SystemExit(REBOOT_EXIT)  # the launcher starts it again on the same flash

    def log(self, message):
        print("%d %s" % (clock.wall_ms(), message))

    def _played(self, tokens, name, start, end):
        """One journal line per payment said, the simulator's format (soundbox_sim.fleet)."""
        if self.heap_log_s:
            self.log_heap("said")
        if not self.journal:
            return
        txns, merged = said_txns(name)
        with open(self.journal, "a") as f:
            for txn in txns:
                record = {"device": self.device_id, "txn": txn, "start": start, "end": end,
                          "words": " ".join(tokens), "runtime": sys.implementation.name}
                if merged:
                    record["merged"] = merged
                f.write(json.dumps(record) + "\n")
