"""The dedup ledger: transaction ids already announced, bounded and persisted.

A txn is recorded before its announcement plays, so a reboot or a QoS 1
redelivery can never make the box say the same payment twice. On disk it is an
append-only text file, one txn per line, compacted when it reaches twice the
capacity; a line cut short by a power cut has no newline and is discarded.

In RAM the remembered txns are one buffer, as on disk, with a newline before the
first: b"\\nT1\\nT2\\n". A txn is in it when b"\\n" + txn + b"\\n" is (txns are printable
ASCII without spaces, so a newline never occurs inside one). A full ledger of 256
txns then takes about 13 bytes of heap a txn, where a list and a set of str objects
took about 40 (10 KiB of a board's heap).
"""

FILE = "ledger.txt"


class Ledger:
    def __init__(self, storage, capacity=256):
        self.storage = storage
        self.capacity = capacity
        self._txns = bytearray(b"\n")
        self._count = 0
        raw = storage.read(FILE) or b""
        end = raw.rfind(b"\n") + 1  # after it: a line a power cut left without its newline
        start = lines = 0
        while start < end:
            stop = raw.find(b"\n", start)
            if stop > start:
                self._remember(raw[start:stop + 1])
            lines += 1
            start = stop + 1
        self._lines_on_disk = lines
        if end < len(raw):  # a power cut mid-append: drop the partial line before appending again
            self._compact()

    def __contains__(self, txn):
        if "\n" in txn:
            return False  # never a txn (the parser refuses it), and it would match across lines
        return b"\n" + txn.encode() + b"\n" in self._txns

    def __len__(self):
        return self._count

    @property
    def order(self):
        """The remembered txns, oldest first."""
        return [t.decode() for t in bytes(self._txns).split(b"\n")[1:-1]]

    def add(self, txn):
        """Record txn durably. Txn ids never contain a newline (the parser refuses them)."""
        line = txn.encode() + b"\n"
        self._remember(line)
        self.storage.append(FILE, line)
        self._lines_on_disk += 1
        if self._lines_on_disk >= 2 * self.capacity:
            self._compact()

    def _remember(self, line):
        """line: a txn and its newline."""
        if b"\n" + line in self._txns:
            return
        self._txns.extend(line)
        self._count += 1
        if self._count > self.capacity:
            self._txns[1:self._txns.find(b"\n", 1) + 1] = b""  # the oldest goes, in place
            self._count -= 1

    def _compact(self):
        self.storage.write(FILE, self._txns[1:])  # a copy (a memoryview would pin the buffer on CPython)
        self._lines_on_disk = self._count
