"""Small-file storage for device state: one directory, whole-file atomic writes.

Works on MicroPython's littlefs/FAT and on CPython. A write goes to a temporary
file first and is renamed over the old one, so a power cut leaves either the
old or the new contents, never half of each.

blocks(name, count) gives a raw block device of `count` 4 KiB blocks that behaves like
NOR flash (soundbox.blockdev), for state written in place (the ledger's record ring):
here a file, <name>.ring; the board's storage gives a flash partition instead
(soundbox_fw.esp32hal).
"""

import os


class FileStorage:
    def __init__(self, root):
        self.root = root
        makedirs(root)

    def _path(self, name):
        return self.root + "/" + name

    def read(self, name):
        """The file's bytes, or None if it does not exist."""
        try:
            with open(self._path(name), "rb") as f:
                return f.read()
        except OSError:
            return None

    def write(self, name, data):
        tmp = self._path(name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, self._path(name))

    def remove(self, name):
        try:
            os.remove(self._path(name))
        except OSError:
            pass  # not there: removed already

    def blocks(self, name, count):
        from soundbox.blockdev import FileBlocks  # only where the ring is a file: not on a board with the partition

        return FileBlocks(self._path(name + ".ring"), count)


class MemoryStorage:
    """Same interface, in RAM: for tests and for the MicroPython VM (no writable disk)."""

    def __init__(self):
        self.files = {}
        self.devices = {}  # name -> MemoryBlocks: kept, like the files, for the next Ledger on it

    def read(self, name):
        return self.files.get(name)

    def write(self, name, data):
        self.files[name] = bytes(data)

    def remove(self, name):
        self.files.pop(name, None)

    def blocks(self, name, count):
        if name not in self.devices:
            from soundbox.memoryblocks import MemoryBlocks

            self.devices[name] = MemoryBlocks(count)
        return self.devices[name]


def makedirs(path):
    """mkdir -p (MicroPython's os has no makedirs)."""
    parts = path.split("/")
    for i in range(1, len(parts) + 1):
        sub = "/".join(parts[:i])
        if sub:
            try:
                os.mkdir(sub)
            except OSError:
                pass  # exists already
