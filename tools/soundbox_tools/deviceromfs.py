"""`soundbox device deploy --romfs`: the bundle's ROMFS image into the board's romfs partition.

The board is asked first (one small script, hashed on the board): does its MicroPython
have ROMFS (vfs.rom_ioctl, a firmware built with MICROPY_VFS_ROM), a romfs partition,
room for the image, and does the partition already hold these very bytes? Only then is
the image written, by mpremote's own `romfs deploy` over our connection, and read back.

On an ESP32 the partition is memory-mapped flash: vfs.rom_ioctl(2, 0) is a memoryview
of it, so hashing its first bytes reads flash, not RAM. A port that hands out a block
device instead is not hashed: the image is then always written.
"""

import contextlib
import hashlib
import io
import json

from soundbox_tools.devicebuild import DeviceError, kib

# Runs on the board: N (the image's size) is prepended. Prints one JSON line.
_QUERY = """
import json
try:
    import vfs
except ImportError:
    vfs = None
_q = {'rom': vfs is not None and hasattr(vfs, 'rom_ioctl')}
if _q['rom']:
    _q['partitions'] = vfs.rom_ioctl(1)
    if _q['partitions'] > 0:
        _dev = vfs.rom_ioctl(2, 0)
        if hasattr(_dev, 'ioctl'):
            _q['size'] = _dev.ioctl(4, 0) * _dev.ioctl(5, 0)
        else:
            import hashlib, binascii
            _mem = memoryview(_dev)
            _q['size'] = len(_mem)
            if N <= len(_mem):
                _q['sha256'] = binascii.hexlify(hashlib.sha256(_mem[:N]).digest()).decode()
        _dev = _mem = None
print(json.dumps(_q))
"""

FIRMWARE_HINT = ("flash a MicroPython built with ROMFS and a romfs partition (firmware/boards/SOUNDBOX_*, "
                 "docs/esp32.md \"A firmware with ROMFS\"), or deploy without --romfs (the code then goes to /lib)")


def query(board, size):
    """{"rom": bool, "partitions": n, "size": partition bytes, "sha256": of its first `size` bytes}."""
    out = board.exec("N = %d\n%s" % (size, _QUERY))
    try:
        return json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise DeviceError("the board answered the ROMFS query with %r" % out[-80:])


def check(state, image_size):
    """Raise DeviceError unless the board can take an image of `image_size` bytes."""
    if not state.get("rom"):
        raise DeviceError("the board's MicroPython has no ROMFS (it was built without MICROPY_VFS_ROM, as the "
                          "stock ESP32 downloads are): " + FIRMWARE_HINT)
    if state.get("partitions", 0) <= 0:
        raise DeviceError("the board's MicroPython has ROMFS support but its partition table has no romfs "
                          "partition: " + FIRMWARE_HINT)
    if image_size > state["size"]:
        raise DeviceError("the ROMFS image (%s) does not fit the board's romfs partition (%s): build a firmware "
                          "with a bigger one, or deploy without --romfs" % (kib(image_size), kib(state["size"])))


def deploy(board, image_path):
    """Write the image at `image_path` to romfs partition 0 unless it is there already.
    Returns True when it was written, False when the partition already held it."""
    with open(image_path, "rb") as f:
        image = f.read()
    digest = hashlib.sha256(image).hexdigest()
    state = query(board, len(image))
    check(state, len(image))
    if state.get("sha256") == digest:
        return False
    _mpremote_deploy(board, str(image_path))
    after = query(board, len(image))
    if after.get("sha256") != digest:
        raise DeviceError("the board's romfs partition does not hold the image after writing it (read back %s): "
                          "deploy again" % (after.get("sha256") or "nothing")[:16])
    return True


def _mpremote_deploy(board, image_path):
    """mpremote's `romfs deploy IMAGE` over the board's open raw-REPL connection."""
    from mpremote.commands import CommandError, do_romfs  # optional board extra
    from mpremote.main import State, argparse_romfs
    from mpremote.transport import TransportError
    import serial

    state = State()
    state.transport = board.transport
    state._auto_soft_reset = False  # already in the raw REPL: no second soft reset
    args = argparse_romfs().parse_args(["deploy", image_path])
    said = io.StringIO()  # its progress lines; the last one explains a failure
    try:
        with contextlib.redirect_stdout(said):
            do_romfs(state, args)
    except (CommandError, TransportError, OSError, serial.SerialException, SystemExit) as e:
        last = (said.getvalue().replace("\r", "\n").strip().splitlines() or [""])[-1]
        raise DeviceError("writing the ROMFS image failed: %s" % (last or e))
