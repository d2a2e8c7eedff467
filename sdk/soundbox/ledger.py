"""The dedup ledger: transaction ids already taken, how each finished, bounded and persisted.

A txn is recorded before its announcement plays, so a reboot or a QoS 1
redelivery can never make the box say the same payment twice. On flash it is a ring
of fixed-size records (soundbox.recordring) on a raw block device (storage.blocks():
the "ledger" partition on the board, a file elsewhere): recording a txn programs one
128-byte record into erased space, one NOR page program (0.4 ms), where appending to a
file on littlefs cost a 4 KiB erase per payment. A record a power cut left half-written
fails its CRC and is ignored, as if the cut had come before it.

A record's payload is the txn's line: "T1 u\n" a payment taken whose words are still to be
said, followed by its amount, ts, rx and provider (the desk's to-say journal: unsaid); "T1\n"
one announced (every line of the old ledger.txt was taken to be announced: an old file reads
the same), "T1 s\n" one that went stale (acked so, said in the offline summary), "T1 f\n"
one whose playback failed. Taking a fresh payment is then one record, where it was a
rewrite of unsaid.json and an append to ledger.txt. A repeat of a finished payment is
answered with its outcome, so the cloud learns it even if the first ack was lost.

Why outcome changes are new records and not a status byte programmed in place (NOR allows
1 -> 0 without an erase): an outcome change is a new record, not bits cleared in the
old one: every record is then whole under its CRC (a status byte cleared in place would sit
outside it, and a cut mid-program would leave it half-set), every program lands in erased
space (which flash encryption also needs), and loading is "the newest record of a txn wins",
as the old file's lines were. The cost is room: a txn takes at most two records (to say,
then announced, stale or failed; or stale alone), so the ring holds 2 x capacity live
records (18 blocks of 4 KiB for 256 txns).

The erase the ring needs (the block ahead, when it enters a block) is left for tidy(),
which the desk calls after the speaker has finished, not on a payment's way to its first
audio.

A box upgraded from the append-only ledger.txt (the same lines) keeps its txns: the file is
read once into the ring (soundbox.ledgerboot), then removed (a power cut between the two
reads it again, and only txns the ring did not have yet are added). The desk does the same
with an old unsaid.json. What only a boot needs, reading the ring and those files, is
soundbox.ledgerboot. (It is not forgotten after use: on the unix port that left holes in
the heap that a later 2-3 KB allocation could not use.)

In RAM the remembered txns are one buffer of those lines, with a newline before the
first: b"\nT1\nT2 s\n". A txn is in it when b"\n" + txn + b"\n" or b"\n" + txn + b" "
is (txns are printable ASCII without spaces, so neither occurs inside one). A full ledger
of 256 txns then takes about 13 bytes of heap a txn (15 for a marked one), where a list
and a set of str objects took about 40 (10 KiB of a board's heap).
"""

import struct

from soundbox.recordring import BLOCK, RECORD, RecordRing
from soundbox.wire import ANNOUNCED, DUPLICATE, FAILED, STALE

RING = "ledger"  # storage.blocks(RING, ...): the board's partition label, a file's name elsewhere
FILE = "ledger.txt"  # the append-only ledger of earlier versions: read into the ring once, then removed
_MARKS = {STALE: b" s\n", FAILED: b" f\n"}  # how a txn's line ends; b"\n" alone: ANNOUNCED
_TO_SAY = b" u\n"  # taken, words not said yet: the record goes on with _FIELDS and the provider
_FIELDS = "<qqq"  # amount, ts, rx


def ring_blocks(capacity):
    """Blocks the ring needs to keep `capacity` txns, two records each at most: those, the
    block being filled and the one ahead."""
    per = BLOCK // RECORD
    return 2 + (2 * capacity + per - 1) // per


class Unsaid:
    """The payments taken whose words were not said yet, in the order they came: entries
    [txn, amount, ts, rx, provider] (provider None when there was none). The ledger's records
    marked "u" hold them; Ledger.take() and Ledger.add() change them."""

    def __init__(self):
        self.entries = []  # type: list

    def __contains__(self, txn):
        for entry in self.entries:
            if entry[0] == txn:
                return True
        return False

    def __len__(self):
        return len(self.entries)


class Ledger:
    def __init__(self, storage, capacity=256):
        self.storage = storage
        self.capacity = capacity
        self._txns = bytearray(b"\n")
        self._count = 0
        self.unsaid = Unsaid()
        self.ring = RecordRing(storage.blocks(RING, ring_blocks(capacity)))
        from soundbox import ledgerboot

        old = storage.read(FILE)
        ledgerboot.load(self, old)
        if old is not None:
            storage.remove(FILE)

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
        said: the desk asks unsaid first), DUPLICATE for a mark it does not know;
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
        if mark == _TO_SAY:
            return ANNOUNCED
        for outcome in _MARKS:
            if _MARKS[outcome] == mark:
                return outcome
        return DUPLICATE  # a mark this version does not know (a newer one's): taken, how it ended unknown

    def add(self, txn, outcome=ANNOUNCED):
        """Record txn durably, with how it finished (a mark replaces what the txn had, and it
        leaves unsaid): one record programmed, no erase. Txn ids never contain a space or a
        newline (the parser refuses them)."""
        line = txn.encode() + _MARKS.get(outcome, b"\n")
        if self._remember(line):  # else recorded so already: a redelivery
            self.ring.append(line)
        self.unsaid.entries = [e for e in self.unsaid.entries if e[0] != txn]

    def take(self, txn, amount, ts, rx, provider=None):
        """Record a fresh payment taken, its words to be said: one record, which is also its
        entry in unsaid (so a reboot says it, and a repeat is a duplicate)."""
        line = txn.encode() + _TO_SAY
        if self._remember(line):
            self.ring.append(line + struct.pack(_FIELDS, amount, ts, rx) + (provider or "").encode())
            self.unsaid.entries.append([txn, amount, ts, rx, provider])

    def said(self, txns):
        """Those of txns still to be said were announced: each leaves unsaid (a record)."""
        for txn in txns:
            if txn in self.unsaid:
                self.add(txn)

    def tidy(self):
        """Idle-time work: erase the ring's block ahead if it is due (45 ms on the chip)."""
        self.ring.tidy()

    def _line(self, head):
        """Where the line that starts with head (a txn and b"\\n" or b" ") is in the buffer, or -1."""
        at = self._txns.find(b"\n" + head)
        return at + 1 if at >= 0 else -1

    def _remember(self, line):
        """line: a txn, its mark if any, a newline. False when it was so already."""
        txns = self._txns
        if b"\n" + line in txns:
            return False
        end = line.find(b" ")
        txn = line[:end] if end > 0 else line[:-1]
        at = self._line(txn + b"\n")
        if at < 0:
            at = self._line(txn + b" ")
        if at > 0:  # recorded with another outcome: the new line replaces it
            txns[at:txns.find(b"\n", at) + 1] = b""
            self._count -= 1
        txns.extend(line)
        self._count += 1
        if self._count > self.capacity:
            txns[1:txns.find(b"\n", 1) + 1] = b""  # the oldest goes, in place
            self._count -= 1
        return True
