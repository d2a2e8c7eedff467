"""Block devices that behave like NOR flash, with the extended block protocol of
MicroPython's esp32.Partition (and vfs block devices):

    readblocks(block, buf, offset=0)     read len(buf) bytes from block's start + offset
    writeblocks(block, buf, offset)      program them (no erase: NOR can only clear bits)
    writeblocks(block, buf)              erase the blocks buf covers, then program (Partition's form)
    ioctl(4, 0) block count, ioctl(5, 0) block size, ioctl(6, block) erase one block

On the board the raw data partition is the device itself (soundbox_fw.esp32hal). Here:
FileBlocks, a file (CPython, the simulator, the unix port; the board without a ledger
partition), and MemoryBlocks, a bytearray (tests, the MicroPython VM). Both program the way
NOR does: the new bytes are ANDed into the old, so a write to space that was not erased
leaves wrong bytes, which a record's CRC then catches (as it would on the chip).
"""

ERASED = 0xFF
BLOCK = 4096  # the ESP32's flash erase unit, and esp32.Partition's block size

IOCTL_COUNT = 4
IOCTL_SIZE = 5
IOCTL_ERASE = 6


def program(old, at, new):
    """Program `new` over old[at:] as NOR flash does: only 1 -> 0 bits change (in place)."""
    for i in range(len(new)):
        old[at + i] &= new[i]


class MemoryBlocks:
    """In RAM, a bytearray for each block once it is programmed (an erased one is None): a
    test's box costs only the blocks it writes, which the MicroPython VM's heap needs."""

    def __init__(self, count, size=BLOCK):
        self.count = count
        self.size = size
        self.blocks = [None] * count  # type: list

    def raw(self, block):
        """The block's bytes, to look at or damage as a test wants (allocated if erased)."""
        if self.blocks[block] is None:
            self.blocks[block] = bytearray(b"\xff" * self.size)
        return self.blocks[block]

    def readblocks(self, block, buf, offset=0):
        data = self.blocks[block]
        if data is None:
            for i in range(len(buf)):
                buf[i] = ERASED
        else:
            buf[:] = data[offset:offset + len(buf)]

    def writeblocks(self, block, buf, offset=None):
        if offset is None:
            for b in range(block, block + (len(buf) + self.size - 1) // self.size):
                self.ioctl(IOCTL_ERASE, b)
            offset = 0
        program(self.raw(block), offset, buf)

    def ioctl(self, op, arg):
        if op == IOCTL_COUNT:
            return self.count
        if op == IOCTL_SIZE:
            return self.size
        if op == IOCTL_ERASE:
            self.blocks[arg] = None
        return 0


class FileBlocks:
    """A file as NOR flash. The file grows as blocks are used (what lies past its end reads
    as erased), so a simulated box's ring costs only the blocks it has written: the simulator
    keeps thousands of boxes' flash in tmpfs. Each call opens and closes the file (no file
    descriptor is held between payments: thousands of boxes would hold thousands)."""

    def __init__(self, path, count, size=BLOCK):
        self.path = path
        self.count = count
        self.size = size

    def _open(self):
        try:
            return open(self.path, "r+b")
        except OSError:  # not there yet: an erased device
            return open(self.path, "w+b")

    def readblocks(self, block, buf, offset=0):
        try:
            f = open(self.path, "rb")
        except OSError:  # never written: erased
            for i in range(len(buf)):
                buf[i] = ERASED
            return
        with f:
            self._read(f, block * self.size + offset, buf)

    def _read(self, f, at, buf):
        f.seek(at)
        got = f.readinto(buf) or 0
        for i in range(got, len(buf)):
            buf[i] = ERASED  # past the end of the file: never written, erased

    def writeblocks(self, block, buf, offset=None):
        with self._open() as f:
            if offset is None:
                for b in range(block, block + (len(buf) + self.size - 1) // self.size):
                    self._erase(f, b)
                offset = 0
            at = block * self.size + offset
            cells = bytearray(len(buf))
            self._read(f, at, cells)
            program(cells, 0, buf)
            self._put(f, at, cells)

    def _put(self, f, at, data):
        end = f.seek(0, 2)
        if at > end:
            f.write(b"\xff" * (at - end))  # the erased gap before it
        f.seek(at)
        f.write(data)

    def _erase(self, f, block):
        at = block * self.size
        if at < f.seek(0, 2):  # past the end it is erased already
            self._put(f, at, b"\xff" * self.size)

    def ioctl(self, op, arg):
        if op == IOCTL_COUNT:
            return self.count
        if op == IOCTL_SIZE:
            return self.size
        if op == IOCTL_ERASE:
            with self._open() as f:
                self._erase(f, arg)
        return 0
