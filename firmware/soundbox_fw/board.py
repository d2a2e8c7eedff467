"""The board description: the pins and options of this soundbox's hardware.

On the device, /board.json is a copy of firmware/boards/<name>.json written by
`soundbox device deploy`. It is checked once at boot, so a wrong or missing pin
is one clear message instead of an error deep inside a driver. The host tools
check the same files with this same code (it runs on MicroPython and CPython).

Fields (see firmware/boards/*.json and docs/esp32.md):
    name, description, chip ("esp32" | "esp32s3"), model (OTA model binding),
    mpy_arch (mpy-cross -march), firmware {board, variant, offset, romfs_board?}, flash_bytes,
    psram, fs_budget_bytes (flash the deployed files may use),
    romfs_bytes? (size of the romfs partition of the board's ROMFS firmware, a multiple of
        4 KiB: the code image `deploy --romfs` writes must fit it; absent: no ROMFS),
    firmware.romfs_board? (that firmware's board directory in firmware/boards/, e.g.
        SOUNDBOX_WROVER: built with MICROPY_VFS_ROM and a partition table with romfs),
    i2s {id, bclk, lrclk, din, amp_enable: pin or null},
    buttons {replay, volume_up, volume_down}, safe_mode_button (one of those),
    led {kind: "pin" | "neopixel", pin, active_low},
    battery {pin, divider, scale, offset_v, empty_v, full_v, charge_pin?, charge_active_low?}
        or null (mains powered); charge_pin: the charger's "charging" output (e.g. a
        TP4056's CHRG, open drain, active low), absent when not wired,
    modem {uart, tx, rx, baud} or absent (no 4G modem wired).
"""

import json

PATH = "/board.json"
BUTTONS = ("replay", "volume_up", "volume_down")
LED_KINDS = ("pin", "neopixel")
MAX_GPIO = 48  # the ESP32-S3 has GPIO0..48, the ESP32 GPIO0..39


class BoardError(ValueError):
    """The board description is missing or wrong; the message says which field and why."""


def load(path=PATH):
    """The checked board description at `path`."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        raise BoardError("no %s: copy one with `soundbox device deploy --board NAME`" % path)
    try:
        board = json.loads(text)
    except ValueError:
        raise BoardError("%s is not valid JSON" % path)
    return check(board, path)


def check(board, where="board"):
    """Return `board` if it is a usable description, else raise BoardError naming the field."""
    if type(board) is not dict:
        raise BoardError("%s: must be a JSON object" % where)
    for key in ("name", "chip", "model", "mpy_arch"):
        if not isinstance(board.get(key), str) or not board[key]:
            raise BoardError("%s: %s must be a non-empty string" % (where, key))
    _positive(board, "fs_budget_bytes", where)
    _positive(board, "flash_bytes", where)
    i2s = _section(board, "i2s", where)
    for key in ("bclk", "lrclk", "din"):
        _pin(i2s, key, where + ": i2s")
    if i2s.get("amp_enable") is not None:
        _pin(i2s, "amp_enable", where + ": i2s")
    buttons = _section(board, "buttons", where)
    for key in BUTTONS:
        _pin(buttons, key, where + ": buttons")
    if board.get("safe_mode_button") not in BUTTONS:
        raise BoardError("%s: safe_mode_button must be one of %s" % (where, ", ".join(BUTTONS)))
    led = _section(board, "led", where)
    if led.get("kind") not in LED_KINDS:
        raise BoardError("%s: led: kind must be one of %s" % (where, ", ".join(LED_KINDS)))
    _pin(led, "pin", where + ": led")
    battery = board.get("battery")
    if battery is not None:
        check_battery(battery, where + ": battery")
    if board.get("modem") is not None:
        modem = _section(board, "modem", where)
        for key in ("tx", "rx"):
            _pin(modem, key, where + ": modem")
        for key in ("uart", "baud"):
            if type(modem.get(key)) is not int:
                raise BoardError("%s: modem: %s must be an integer" % (where, key))
    return board


def check_battery(battery, where="battery"):
    """The battery section: ADC pin, divider ratio, calibration, empty and full voltage."""
    if type(battery) is not dict:
        raise BoardError("%s: must be an object or null" % where)
    _pin(battery, "pin", where)
    for key in ("divider", "scale", "empty_v", "full_v"):
        value = battery.get(key, 0)
        if type(value) not in (int, float) or value <= 0:
            raise BoardError("%s: %s must be a positive number" % (where, key))
    if type(battery.get("offset_v", 0)) not in (int, float):
        raise BoardError("%s: offset_v must be a number" % where)
    if battery["empty_v"] >= battery["full_v"]:
        raise BoardError("%s: empty_v must be below full_v" % where)
    if battery.get("charge_pin") is not None:
        _pin(battery, "charge_pin", where)
    return battery


def _section(board, key, where):
    value = board.get(key)
    if type(value) is not dict:
        raise BoardError("%s: %s must be an object" % (where, key))
    return value


def _pin(section, key, where):
    value = section.get(key)
    if type(value) is not int or not 0 <= value <= MAX_GPIO:
        raise BoardError("%s: %s must be a GPIO number 0-%d, got %s" % (where, key, MAX_GPIO, json.dumps(value)))
    return value


def _positive(board, key, where):
    value = board.get(key)
    if type(value) is not int or value <= 0:
        raise BoardError("%s: %s must be a positive integer" % (where, key))
    return value
