"""The dedup ledger: transaction ids already taken, how each finished, bounded and persisted.

A txn is recorded before its announcement plays, so a reboot or a QoS 1
redelivery can never make the box say the same payment twice. On flash it is a ring
of fixed-size records (soundbox.recordring) on a raw block device (storage.blocks():
the "ledger" partition on the board, a file elsewhere): recording a txn programs one
128-byte record into erased space, one NOR page program (0.4 ms), where appending to a
file on littlefs cost a 4 KiB erase per payment. A record a power cut left half-written
fails its CRC and is ignored, as if the cut had come before it.

A record's payload is the txn's line: "T1\n" a payment taken to be announced, "T1 s\n"
one that went stale (acked so, said in the offline summary), "T1 f\n" one whose playback
failed. A repeat of a finished payment is answered with its outcome, so the cloud learns it
even if the first ack was lost. An outcome change is a new record, not bits cleared in the
old one: every record is then whole under its CRC (a status byte cleared in place would sit
outside it, and a cut mid-program would leave it half-set), every program lands in erased
space (which flash encryption also needs), and loading is "the newest record of a txn wins",
as the old file's lines were. The cost is room: a txn takes at most two records (announced,
then stale or failed), so the ring holds 2 x capacity live records (18 blocks of 4 KiB for
256 txns).

The erase the ring needs (the block ahead, when it enters a block) is left for tidy(),
which the desk calls after the speaker has finished, not on a payment's way to its first
audio.

A box upgraded from the append-only ledger.txt (the same lines) keeps its txns: the file is
read once into the ring, then removed (a power cut between the two reads it again, and
only txns the ring does not have yet are added).

In RAM the remembered txns are one buffer of those lines, with a newline before the
first: b"\nT1\nT2 s\n". A txn is in it when b"\n" + txn + b"\n" or b"\n" + txn + b" "
is (txns are printable ASCII without spaces, so neither occurs inside one). A full ledger
of 256 txns then takes about 13 bytes of heap a txn (15 for a marked one), where a list
and a set of str objects took about 40 (10 KiB of a board's heap).
"""

from soundbox.blockdev import BLOCK
from soundbox.recordring import RecordRing, blocks_for
from soundbox.wire import ANNOUNCED, DUPLICATE, FAILED, STALE

RING = "ledger"  # storage.blocks(RING, ...): the board's partition label, a file's name elsewhere
FILE = "ledger.txt"  # the append-only ledger of earlier versions: read into the ring once, then removed
_MARKS = {STALE: b" s\n", FAILED: b" f\n"}  # how a txn's line ends; b"\n" alone: ANNOUNCED


def ring_blocks(capacity):
    """Blocks the ring needs to keep `capacity` txns: two records each at most."""
    return blocks_for(2 * capacity, BLOCK)


class Lines:
    """The remembered txns in RAM, newest last: one buffer of their lines (see above)."""

    def __init__(self, capacity):
        self.capacity = capacity
        self.buf = bytearray(b"\n")
        self.count = 0

    def find(self, head):
        """Where the line that starts with head (a txn and b"\\n" or b" ") is in the buffer, or -1."""
        at = self.buf.find(b"\n" + head)
        return at + 1 if at >= 0 else -1

    def has(self, txn):
        return self.find(txn + b"\n") > 0 or self.find(txn + b" ") > 0

    def remember(self, line):
        """line: a txn, its mark if any, a newline. False when it was so already."""
        buf = self.buf
        if b"\n" + line in buf:
            return False
        end = line.find(b" ")
        txn = line[:end] if end > 0 else line[:-1]
        at = self.find(txn + b"\n")
        if at < 0:
            at = self.find(txn + b" ")
        if at > 0:  # recorded with another outcome: the new line replaces it
            buf[at:buf.find(b"\n", at) + 1] = b""
            self.count -= 1
        buf.extend(line)
        self.count += 1
        if self.count > self.capacity:
            buf[1:buf.find(b"\n", 1) + 1] = b""  # the oldest goes, in place
            self.count -= 1
        return True

    def lines(self):
        """Each line, oldest first (a list of bytes, newline included)."""
        return [t + b"\n" for t in bytes(self.buf).split(b"\n")[1:-1]]


def _is_line(line):
    return len(line) > 1 and line[-1:] == b"\n" and line.find(b"\n") == len(line) - 1 and line[:1] != b" "


class Ledger:
    def __init__(self, storage, capacity=256):
        self.storage = storage
        self.capacity = capacity
        self._lines = Lines(capacity)
        self.ring = RecordRing(storage.blocks(RING, ring_blocks(capacity)))
        for line in self.ring.load():
            if _is_line(line):
                self._lines.remember(line)
        old = storage.read(FILE)
        if old is not None:
            self._migrate(old)
            storage.remove(FILE)

    def __contains__(self, txn):
        return self.outcome(txn) is not None

    def __len__(self):
        return self._lines.count

    @property
    def order(self):
        """The remembered txns, oldest first."""
        return [t.split(b" ")[0].decode() for t in bytes(self._lines.buf).split(b"\n")[1:-1]]

    def outcome(self, txn):
        """How txn finished: STALE, FAILED or ANNOUNCED (also while its words wait to be
        said: the desk asks its unsaid list first), DUPLICATE for a mark it does not know;
        None when it is not here."""
        if "\n" in txn or " " in txn:
            return None  # never a txn (the parser refuses it), and it could match across lines
        txn = txn.encode()
        lines = self._lines
        if lines.find(txn + b"\n") > 0:
            return ANNOUNCED
        at = lines.find(txn + b" ")
        if at < 0:
            return None
        mark = lines.buf[at + len(txn):at + len(txn) + 3]
        for outcome in _MARKS:
            if _MARKS[outcome] == mark:
                return outcome
        return DUPLICATE  # a mark this version does not know (a newer one's): taken, how it ended unknown

    def add(self, txn, outcome=ANNOUNCED):
        """Record txn durably, with how it finished (a mark replaces what the txn had): one
        record programmed, no erase. Txn ids never contain a space or a newline (the parser
        refuses them)."""
        self._add(txn.encode() + _MARKS.get(outcome, b"\n"))

    def tidy(self):
        """Idle-time work: erase the ring's block ahead if it is due (45 ms on the chip)."""
        self.ring.tidy()

    def _add(self, line):
        if self._lines.remember(line):  # else recorded so already: a redelivery
            self.ring.append(line)

    def _migrate(self, raw):
        """Take the txns of an old ledger.txt the ring does not have, oldest first."""
        old = Lines(self.capacity)
        end = raw.rfind(b"\n") + 1  # after it: a line a power cut left without its newline
        start = 0
        while start < end:
            stop = raw.find(b"\n", start)
            line = raw[start:stop + 1]
            if _is_line(line):
                old.remember(line)
            start = stop + 1
        for line in old.lines():
            end = line.find(b" ")
            if not self._lines.has(line[:end] if end > 0 else line[:-1]):
                self._add(line)
