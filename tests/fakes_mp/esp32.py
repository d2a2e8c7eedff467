"""FAKE esp32 module (tests only; there is no ESP32 here): two OTA app partitions and an
emulation of ESP-IDF's otadata and bootloader, so the real OTA code can run over it on
CPython and on the MicroPython test VM. It proves our logic against this model of the
chip, not the chip.

What is emulated:
- ota_0 and ota_1, SIZE bytes each (MicroPython's 4 MiB OTA partition table), in RAM,
  or in files under a directory a test picks with use_flash(dir): a "reboot" (new
  objects, even a new process) then finds what was written. A fresh flash holds a
  placeholder MicroPython image in ota_0 and blank otadata, as after esptool.
- writeblocks(block, buf) erases then writes, as MicroPython's does; buf must be
  whole 4 KiB sectors (esp_partition_erase_range refuses anything else).
  writeblocks(block, buf, offset) only writes, and like NOR flash it can only clear
  bits (old AND new), so a missing erase shows.
- otadata and the bootloader as ESP-IDF has them with CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE
  (MicroPython's ESP32 builds enable it): set_boot() selects a partition and marks it
  "new"; bootloader() - call it for each simulated reset - starts a "new" image as
  "pending_verify"; an image still pending verify at the next reset was never marked
  valid, so the bootloader marks it "aborted" and starts the other partition.
  mark_app_valid_cancel_rollback() marks the running image "valid"; it raises OSError
  while otadata is blank, as ESP-IDF refuses there.
- set_boot() checks only that the image starts with the ESP image magic 0xE9 (ESP-IDF
  verifies the whole image) and raises OSError otherwise.
- on_write: None, or a function called with a name before each flash change
  ("erase", "write", "otadata"); a test raises from it to cut the power there
  (after an erase, before its write).
"""

import json
import os

FAKE = True
SECTOR = 4096
SIZE = 0x180000
LABELS = ("ota_0", "ota_1")
ADDRESSES = (0x10000, 0x190000)
FACTORY_IMAGE = b"\xe9" + b"FAKE MicroPython firmware, flashed with esptool\n"
ESP_ERR_OTA_VALIDATE_FAILED = 0x1503
ESP_FAIL = -1

on_write = None
_flash = {"dir": None, "ram": {}, "otadata": None, "running": None}


def use_flash(directory=None):
    """Start from the flash kept in `directory` (created fresh when new), or a fresh RAM flash.
    The board is then off: the next Partition(RUNNING) or bootloader() call boots it."""
    _flash["dir"] = directory
    _flash["ram"] = {}
    _flash["otadata"] = None
    _flash["running"] = None
    if directory is not None:
        try:
            os.mkdir(directory)
        except OSError:
            pass
        try:
            os.stat(_path("ota_0"))
            return
        except OSError:
            pass
        for label in LABELS:
            with open(_path(label), "wb"):
                pass
    _program("ota_0", 0, FACTORY_IMAGE)


def bootloader():
    """One reset: what ESP-IDF's second-stage bootloader decides. Returns the label that runs."""
    data = _otadata()
    if data is None:
        label = LABELS[0]  # blank otadata: the first OTA slot
    else:
        label = data["boot"]
        state = data["states"].get(label)
        if state == "pending_verify" or state == "aborted":
            data["states"][label] = "aborted"  # started once and never marked valid: roll back
            label = _other(label)
            data["boot"] = label
        elif state == "new":
            data["states"][label] = "pending_verify"
        _save_otadata(data)
    _flash["running"] = label
    return label


def otadata():
    """A copy of the emulated otadata: {"boot": label, "states": {label: state}}, None when blank."""
    data = _otadata()
    return None if data is None else json.loads(json.dumps(data))


def running_label():
    if _flash["running"] is None:
        bootloader()
    return _flash["running"]


# ---- storage ----------------------------------------------------------------------

def _path(label):
    return "%s/%s.bin" % (_flash["dir"], label)


def _read(label, offset, n):
    if _flash["dir"] is None:
        blocks = _flash["ram"].get(label, {})
        out = bytearray(n)
        i = 0
        while i < n:
            at = offset + i
            block = blocks.get(at // SECTOR)
            within = at % SECTOR
            take = min(SECTOR - within, n - i)
            out[i:i + take] = block[within:within + take] if block is not None else b"\xff" * take
            i += take
        return out
    with open(_path(label), "rb") as f:
        f.seek(offset)
        got = f.read(n)
    return bytearray(got) + b"\xff" * (n - len(got))  # never written: erased


def _store(label, offset, data):
    if _flash["dir"] is None:
        blocks = _flash["ram"].setdefault(label, {})
        i = 0
        while i < len(data):
            at = offset + i
            within = at % SECTOR
            take = min(SECTOR - within, len(data) - i)
            block = blocks.get(at // SECTOR)
            if block is None:
                block = blocks[at // SECTOR] = bytearray(b"\xff" * SECTOR)
            block[within:within + take] = data[i:i + take]
            i += take
        return
    path = _path(label)
    length = os.stat(path)[6]
    with open(path, "r+b") as f:
        if offset > length:
            f.seek(length)
            f.write(b"\xff" * (offset - length))  # a gap reads as erased flash, not zeros
        f.seek(offset)
        f.write(bytes(data))


def _erase(label, offset, n):
    _store(label, offset, b"\xff" * n)


def _program(label, offset, data):
    old = _read(label, offset, len(data))
    _store(label, offset, bytes(a & b for a, b in zip(old, bytes(data))))


def _otadata():
    if _flash["dir"] is None:
        return _flash["otadata"]
    try:
        with open(_flash["dir"] + "/otadata.json") as f:
            return json.load(f)
    except OSError:
        return None


def _save_otadata(data):
    if _flash["dir"] is None:
        _flash["otadata"] = data
        return
    with open(_flash["dir"] + "/otadata.json", "w") as f:
        f.write(json.dumps(data))


def _before(what):
    if on_write is not None:
        on_write(what)


def _other(label):
    return LABELS[1] if label == LABELS[0] else LABELS[0]


# ---- the module's API ----------------------------------------------------------------

class Partition:
    BOOT = 0
    RUNNING = 1
    TYPE_APP = 0
    TYPE_DATA = 1

    def __init__(self, id, block_size=4096):
        if id == Partition.RUNNING:
            id = running_label()
        elif id == Partition.BOOT:
            data = _otadata()
            id = data["boot"] if data else LABELS[0]
        if id not in LABELS:
            raise OSError(2)  # ENOENT: no partition with that label
        self.label = id
        self.block_size = block_size

    @staticmethod
    def find(type=0, subtype=255, label=None, block_size=4096):
        if type != Partition.TYPE_APP:
            return []
        return [Partition(x, block_size) for x in LABELS
                if (label is None or x == label) and subtype in (255, 0x10 + LABELS.index(x))]

    def info(self):
        i = LABELS.index(self.label)
        return (Partition.TYPE_APP, 0x10 + i, ADDRESSES[i], SIZE, self.label, False)

    def _check(self, offset, n):
        if offset < 0 or offset + n > SIZE:
            raise OSError(0x104)  # ESP_ERR_INVALID_SIZE: beyond the partition

    def readblocks(self, block, buf, offset=0):
        at = block * self.block_size + offset
        self._check(at, len(buf))
        buf[:] = _read(self.label, at, len(buf))

    def writeblocks(self, block, buf, offset=None):
        at = block * self.block_size
        if offset is None:
            if at % SECTOR or len(buf) % SECTOR:
                raise OSError(0x102)  # ESP_ERR_INVALID_ARG: erase ranges are whole sectors
            self._check(at, len(buf))
            _before("erase")
            _erase(self.label, at, len(buf))
        else:
            at += offset
            self._check(at, len(buf))
        _before("write")
        _program(self.label, at, buf)

    def ioctl(self, cmd, arg):
        if cmd == 4:
            return SIZE // self.block_size
        if cmd == 5:
            return self.block_size
        if cmd == 6:
            _before("erase")
            _erase(self.label, arg * self.block_size, self.block_size)
        return 0

    def set_boot(self):
        if _read(self.label, 0, 1)[0] != 0xE9:
            raise OSError(ESP_ERR_OTA_VALIDATE_FAILED)  # not an ESP app image
        _before("otadata")
        data = _otadata() or {"boot": None, "states": {}}
        data["boot"] = self.label
        data["states"][self.label] = "new"
        _save_otadata(data)

    def get_next_update(self):
        return Partition(_other(self.label), self.block_size)

    @staticmethod
    def mark_app_valid_cancel_rollback():
        data = _otadata()
        if data is None:
            raise OSError(ESP_FAIL)  # blank otadata: ESP-IDF says the running firmware is "factory"
        label = running_label()
        if data["states"].get(label) != "valid":
            _before("otadata")
            data["states"][label] = "valid"
            _save_otadata(data)


use_flash(None)
