"""FAKE esp32 module for the MicroPython test VM: an OTA partition in RAM (no flash there)."""

FAKE = True


class Partition:
    BOOT = 0
    RUNNING = 1
    TYPE_APP = 0
    TYPE_DATA = 1
    _next_boot = None

    def __init__(self, which):
        self.which = which
        self.blocks = {}

    @staticmethod
    def find(type=0, subtype=255, label=None, block_size=4096):
        return [Partition(label or "ota_1")]

    def info(self):
        return (0, 0, 0x10000, 0x180000, str(self.which), False)

    def get_next_update(self):
        return Partition("ota_1")

    def readblocks(self, block, buf, offset=0):
        data = self.blocks.get(block, b"\xff" * 4096)
        buf[:] = data[offset:offset + len(buf)]

    def writeblocks(self, block, buf, offset=None):
        old = bytearray(b"\xff" * 4096 if offset is not None else self.blocks.get(block, b"\xff" * 4096))
        start = offset or 0
        old[start:start + len(buf)] = buf
        self.blocks[block] = bytes(old)

    def ioctl(self, cmd, arg):
        return 4096 if cmd == 5 else 0

    def set_boot(self):
        Partition._next_boot = self.which

    @staticmethod
    def mark_app_valid_cancel_rollback():
        pass
