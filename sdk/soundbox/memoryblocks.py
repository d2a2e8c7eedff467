"""A NOR-like block device in RAM (soundbox.blockdev's protocol and behaviour), for tests
and the MicroPython VM, which has no writable disk. Its own module: a board never loads it."""

from soundbox.blockdev import fill_erased, program
from soundbox.recordring import BLOCK, IOCTL_COUNT, IOCTL_ERASE, IOCTL_SIZE


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
            fill_erased(buf)
        else:
            buf[:] = data[offset:offset + len(buf)]

    def writeblocks(self, block, buf, offset):
        program(self.raw(block), offset, buf)

    def ioctl(self, op, arg):
        if op == IOCTL_COUNT:
            return self.count
        if op == IOCTL_SIZE:
            return self.size
        if op == IOCTL_ERASE:
            self.blocks[arg] = None
        return 0
