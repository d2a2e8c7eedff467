"""`soundbox device flash`: erase the board and write a MicroPython firmware image with esptool.

Before esptool runs, the image is checked to be an ESP firmware image for the
board's chip (header magic 0xE9; chip id in the extended header), so a wrong
download is refused before the board is erased. esptool does the flashing.
"""

import subprocess
import sys
from pathlib import Path

from soundbox_tools.devicebuild import DeviceError
from soundbox_tools.deviceport import check_port

IMAGE_MAGIC = 0xE9
# The image's extended header names its chip (esptool's CHIP_ID for each ROM).
CHIP_IDS = {"esp32": 0, "esp32s2": 2, "esp32c3": 5, "esp32s3": 9}
MIN_IMAGE = 64 * 1024  # a MicroPython image is over 1 MB; a few KB is a download error page


def check_image(path, chip):
    """Raise DeviceError unless `path` looks like an ESP firmware image for `chip`."""
    p = Path(path)
    if not p.is_file():
        raise DeviceError("no firmware file %s: download MicroPython for your board from "
                          "https://micropython.org/download/ (see docs/esp32.md)" % path)
    head = p.read_bytes()[:24]
    if len(head) < 24 or head[0] != IMAGE_MAGIC:
        raise DeviceError("%s is not an ESP firmware image (first byte %s, expected 0xe9): download the .bin, "
                          "not the web page or the .uf2/.hex" % (path, "0x%02x" % head[0] if head else "none"))
    chip_id = head[12] | head[13] << 8
    if CHIP_IDS.get(chip) != chip_id:
        names = {v: k for k, v in CHIP_IDS.items()}
        raise DeviceError("%s is firmware for %s, but this board is %s: download the %s image"
                          % (path, names.get(chip_id, "chip id %d" % chip_id), chip, chip))
    if p.stat().st_size < MIN_IMAGE:
        raise DeviceError("%s is only %d bytes: too small for MicroPython, download it again" % (path, p.stat().st_size))


def esptool_commands(port, firmware, board, baud=460800):
    """The esptool runs that erase the flash, then write the image at the chip's offset."""
    base = [sys.executable, "-m", "esptool", "--chip", board["chip"], "--port", port, "--baud", str(baud)]
    offset = board.get("firmware", {}).get("offset", "0x1000" if board["chip"] == "esp32" else "0x0")
    return [base + ["erase_flash"], base + ["write_flash", "-z", offset, str(firmware)]]


def flash(port, firmware, board, baud=460800):
    check_image(firmware, board["chip"])
    check_port(port)
    for cmd, step in zip(esptool_commands(port, firmware, board, baud), ("erase", "write")):
        print("$ esptool %s" % " ".join(cmd[3:]), flush=True)
        done = subprocess.run(cmd)
        if done.returncode != 0:
            raise DeviceError("esptool could not %s the flash (exit %d): hold the board's BOOT key while pressing "
                              "RESET to enter its bootloader, then try again" % (step, done.returncode))
