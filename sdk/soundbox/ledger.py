"""The dedup ledger: transaction ids already taken, how each finished, bounded and persisted.

A txn is recorded before its announcement plays, so a reboot or a QoS 1
redelivery can never make the box say the same payment twice. On disk it is an
append-only text file, one txn per line, compacted when it reaches twice the
capacity; a line cut short by a power cut has no newline and is discarded.

A plain line, "T1", is a payment taken to be announced (every line before the marks
were: an old file reads the same); "T1 s" one that went stale (acked so, said in the
offline summary), "T1 f" one whose playback failed. A repeat of a finished payment is
answered with its outcome, so the cloud learns it even if the first ack was lost. A
mark is appended as a new line; on loading and in RAM the newest line of a txn wins.

In RAM the remembered txns are one buffer, as on disk, with a newline before the
first: b"\\nT1\\nT2 s\\n". A txn is in it when b"\\n" + txn + b"\\n" or b"\\n" + txn + b" "
is (txns are printable ASCII without spaces, so neither occurs inside one). A full ledger
of 256 txns then takes about 13 bytes of heap a txn (15 for a marked one), where a list
and a set of str objects took about 40 (10 KiB of a board's heap).
"""

from soundbox.wire import ANNOUNCED, DUPLICATE, FAILED, STALE

FILE = "ledger.txt"
_MARKS = {STALE: b" s\n", FAILED: b" f\n"}  # how a txn's line ends; b"\n" alone: ANNOUNCED


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
        return self.outcome(txn) is not None

    def __len__(self):
        return self._count

    @property
    def order(self):
        """The remembered txns, oldest first."""
        return [t.split(b" ")[0].decode() for t in bytes(self._txns).split(b"\n")[1:-1]]

    def outcome(self, txn):
        """How txn finished: STALE, FAILED or ANNOUNCED (also while its words wait to be
        said: the desk asks its unsaid list first), DUPLICATE for a mark it does not know;
        None when it is not here."""
        if "\n" in txn or " " in txn:
            return None  # never a txn (the parser refuses it), and it could match across lines
        txn = txn.encode()
        if self._line(txn + b"\n") > 0:
            return ANNOUNCED
        at = self._line(txn + b" ")
        if at < 0:
            return None
        mark = self._txns[at + len(txn):at + len(txn) + 3]
        for outcome in _MARKS:
            if _MARKS[outcome] == mark:
                return outcome
        return DUPLICATE  # a mark this version does not know (a newer one's): taken, how it ended unknown

    def add(self, txn, outcome=ANNOUNCED):
        """Record txn durably, with how it finished (a mark replaces what the txn had). Txn
        ids never contain a space or a newline (the parser refuses them)."""
        line = txn.encode() + _MARKS.get(outcome, b"\n")
        if not self._remember(line):
            return  # recorded so already: a redelivery
        self.storage.append(FILE, line)
        self._lines_on_disk += 1
        if self._lines_on_disk >= 2 * self.capacity:
            self._compact()

    def _line(self, head):
        """Where the line that starts with head (a txn and b"\\n" or b" ") is in the buffer, or -1."""
        at = self._txns.find(b"\n" + head)
        return at + 1 if at >= 0 else -1

    def _remember(self, line):
        """line: a txn, its mark if any, a newline. False when it was so already."""
        if b"\n" + line in self._txns:
            return False
        end = line.find(b" ")
        txn = line[:end] if end > 0 else line[:-1]
        at = self._line(txn + b"\n")
        if at < 0:
            at = self._line(txn + b" ")
        if at > 0:  # recorded with another outcome: the new line replaces it
            self._txns[at:self._txns.find(b"\n", at) + 1] = b""
            self._count -= 1
        self._txns.extend(line)
        self._count += 1
        if self._count > self.capacity:
            self._txns[1:self._txns.find(b"\n", 1) + 1] = b""  # the oldest goes, in place
            self._count -= 1
        return True

    def _compact(self):
        self.storage.write(FILE, self._txns[1:])  # a copy (a memoryview would pin the buffer on CPython)
        self._lines_on_disk = self._count
