"""Block devices that behave like NOR flash, with the extended block protocol of
MicroPython's esp32.Partition (and vfs block devices):

    readblocks(block, buf, offset=0)     read len(buf) bytes from block's start + offset
    writeblocks(block, buf, offset)      program them (no erase: NOR can only clear bits)
    ioctl(4, 0) block count, ioctl(5, 0) block size, ioctl(6, block) erase one block

On the board the raw data partition is the device itself (soundbox_fw.esp32hal). Here:
FileBlocks, a file (CPython, the simulator, the unix port; the board without a ledger
partition), and soundbox.memoryblocks.MemoryBlocks, in RAM (tests, the MicroPython VM). Both
program the way NOR does: the new bytes are ANDed into the old, so a write to space that was
not erased leaves wrong bytes, which a record's CRC then catches (as it would on the chip).
"""

import os

from soundbox.recordring import BLOCK, IOCTL_COUNT, IOCTL_ERASE, IOCTL_SIZE


def program(old, at, new):
    """Program `new` over old[at:] as NOR flash does: only 1 -> 0 bits change (in place)."""
    for i in range(len(new)):
        old[at + i] &= new[i]


_ERASED_RUN = b"\xff" * 128  # small: a board's heap has no 4 KiB block to spare at boot


def fill_erased(buf, at=0):
    """buf[at:] reads as erased: slice copies of a short run (a loop over the bytes was 3 ms
    of a fresh simulated box's boot, 18 blocks of 4 KiB)."""
    view, run, end = memoryview(buf), len(_ERASED_RUN), len(buf)
    while at < end:
        n = min(run, end - at)
        view[at:at + n] = _ERASED_RUN[:n] if n < run else _ERASED_RUN
        at += n


class FileBlocks:
    """A file as NOR flash, `count` blocks of BLOCK bytes. The file grows as blocks are used
    (what lies past its end reads as erased), so a simulated box's ring costs only the blocks
    it has written: the simulator keeps thousands of boxes' flash in tmpfs. Each call opens
    and closes the file (no descriptor is held between payments: thousands of boxes would
    hold thousands). Only the ring's calls: writeblocks always with an offset."""

    def __init__(self, path, count):
        self.path = path
        self.count = count

    def used(self):
        """Blocks that may hold data: those the file reaches into (the rest read as erased),
        so a box's boot need not read the blocks it never wrote."""
        try:
            return min(self.count, (os.stat(self.path)[6] + BLOCK - 1) // BLOCK)
        except OSError:
            return 0

    def readblocks(self, block, buf, offset=0):
        got = 0
        try:
            with open(self.path, "rb") as f:
                f.seek(block * BLOCK + offset)
                got = f.readinto(buf) or 0
        except OSError:
            pass  # never written: erased
        fill_erased(buf, got)  # past the end of the file: never written, erased

    def writeblocks(self, block, buf, offset, erase=False):
        at = block * BLOCK + offset
        try:
            f = open(self.path, "r+b")
        except OSError:  # not there yet: an erased device
            f = open(self.path, "w+b")
        with f:
            end = f.seek(0, 2)
            if erase and at >= end:
                return  # past the end it is erased already
            cells = buf
            if not erase:  # a program lands on what is there now, read through the open file
                cells = bytearray(len(buf))
                if at < end:
                    f.seek(at)
                    fill_erased(cells, f.readinto(cells) or 0)
                else:
                    fill_erased(cells)
                program(cells, 0, buf)
            if at > end:
                f.seek(end)
                f.write(b"\xff" * (at - end))  # the erased gap before it
            f.seek(at)
            f.write(cells)

    def ioctl(self, op, arg):
        if op == IOCTL_COUNT:
            return self.count
        if op == IOCTL_SIZE:
            return BLOCK
        if op == IOCTL_ERASE:
            self.writeblocks(arg, b"\xff" * BLOCK, 0, True)
        return 0
