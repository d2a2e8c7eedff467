"""The dedup ledger: transaction ids already announced, bounded and persisted.

A txn is recorded before its announcement plays, so a reboot or a QoS 1
redelivery can never make the box say the same payment twice. On disk it is an
append-only text file, one txn per line, compacted when it reaches twice the
capacity; a line cut short by a power cut has no newline and is discarded.
"""

FILE = "ledger.txt"


class Ledger:
    def __init__(self, storage, capacity=256):
        self.storage = storage
        self.capacity = capacity
        self.order = []
        self.seen = set()
        raw = storage.read(FILE) or b""
        complete, _, torn = raw.rpartition(b"\n")
        lines = complete.split(b"\n") if complete else []
        for line in lines:
            self._remember(line.decode())
        self._lines_on_disk = len(lines)
        if torn:  # a power cut mid-append: drop the partial line before appending again
            self._compact()

    def __contains__(self, txn):
        return txn in self.seen

    def __len__(self):
        return len(self.order)

    def add(self, txn):
        """Record txn durably. Txn ids never contain a newline (the parser refuses them)."""
        self._remember(txn)
        self.storage.append(FILE, txn.encode() + b"\n")
        self._lines_on_disk += 1
        if self._lines_on_disk >= 2 * self.capacity:
            self._compact()

    def _remember(self, txn):
        if txn in self.seen:
            return
        self.order.append(txn)
        self.seen.add(txn)
        if len(self.order) > self.capacity:
            self.seen.discard(self.order.pop(0))

    def _compact(self):
        self.storage.write(FILE, "".join(t + "\n" for t in self.order).encode())
        self._lines_on_disk = len(self.order)
