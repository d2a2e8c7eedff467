"""A ring of fixed-size records on a NOR flash block device (soundbox.blockdev's protocol):
each record is programmed once into erased space, so appending one costs one page
program (0.4 ms on the chip) and never an erase on its caller's path.

A record is RECORD (128) bytes, page aligned (a 256-byte page holds two, so one program
never crosses a page):
    seq      4 bytes, little endian: one more than the record before (never 0xFFFFFFFF)
    version  1 byte (VERSION)
    length   1 byte: the payload's
    payload  up to PAYLOAD bytes, then 0xFF to the CRC
    crc      4 bytes: CRC-32 of everything before it
A slot of all 0xFF is free. A record a power cut left half-programmed fails its CRC and
is skipped, and nothing is written over it: the next record goes after the last slot
that is not free.

The ring fills its blocks in order and wraps. When it enters a block it makes the next
one due for erasing (the oldest records go); tidy() does that erase, and the owner calls
it in idle time. Only if tidy() has not run by the time the ring enters that block does
append() erase first. So the live records are always those of every block but the one
ahead: with `count` blocks at least (count - 2) * per-block + 1 of the newest records.
Loading finds the newest block by the records' sequence numbers and reads the blocks
oldest first; a block ahead that is not blank (its erase was cut short, or the device
was never erased) is made due again.
"""

import binascii
import struct

from soundbox.blockdev import IOCTL_COUNT, IOCTL_ERASE, IOCTL_SIZE

RECORD = 128
VERSION = 1
HEAD = 6  # seq, version, length
PAYLOAD = RECORD - HEAD - 4
_FREE = b"\xff" * RECORD


def blocks_for(records, block_size):
    """How many blocks hold at least `records` live records, with the block ahead and the one
    being filled."""
    per = block_size // RECORD
    return 2 + (records + per - 1) // per


class RecordRing:
    def __init__(self, dev):
        self.dev = dev
        self.count = dev.ioctl(IOCTL_COUNT, 0)
        self.per = dev.ioctl(IOCTL_SIZE, 0) // RECORD
        if self.count < 3:
            raise ValueError("a record ring needs 3 blocks at least")
        self.buf = bytearray(RECORD)
        self.block = 0  # where the next record goes
        self.slot = 0
        self.seq = 1
        self.erase_due = None  # the block ahead, not erased yet

    def load(self):
        """Yield every valid record's payload (a bytes), oldest first. Run it to its end once,
        before appending: then append() writes after the newest."""
        firsts = [self._first_seq(b) for b in range(self.count)]
        newest = None
        for b in range(self.count):
            if firsts[b] is not None and (newest is None or firsts[b] > firsts[newest]):
                newest = b
        head = 0 if newest is None else newest
        start = (head + 1) % self.count  # the block ahead holds the oldest, if any
        for i in range(self.count):
            b = (start + i) % self.count
            if firsts[b] is None:
                continue
            for slot in range(self.per):
                seq = self._read(b, slot)
                if seq is not None and seq >= 0:
                    if seq >= self.seq:
                        self.seq = seq + 1
                    yield bytes(self.buf[HEAD:HEAD + self.buf[5]])
        last = -1
        for slot in range(self.per):
            if self._read(head, slot, False) != -1:
                last = slot
        self.block, self.slot = head, last + 1
        ahead = (head + 1) % self.count
        if not self._blank(ahead):
            self.erase_due = ahead

    def append(self, payload):
        """Program one record holding payload (at most PAYLOAD bytes)."""
        if len(payload) > PAYLOAD:
            raise ValueError("a record holds %d bytes at most" % PAYLOAD)
        if self.slot == self.per:
            self._enter((self.block + 1) % self.count)
        buf = self.buf
        buf[:] = _FREE
        struct.pack_into("<IBB", buf, 0, self.seq, VERSION, len(payload))
        buf[HEAD:HEAD + len(payload)] = payload
        struct.pack_into("<I", buf, RECORD - 4, binascii.crc32(memoryview(buf)[:RECORD - 4]) & 0xFFFFFFFF)
        self.dev.writeblocks(self.block, buf, self.slot * RECORD)
        self.slot += 1
        self.seq += 1

    def tidy(self):
        """Erase the block ahead if it is due: idle-time work, off any payment's path."""
        if self.erase_due is not None:
            self.dev.ioctl(IOCTL_ERASE, self.erase_due)
            self.erase_due = None

    def _enter(self, block):
        if self.erase_due == block:  # tidy() has not run since the ring entered the last block
            self.tidy()
        self.block, self.slot = block, 0
        self.erase_due = (block + 1) % self.count

    def _read(self, block, slot, check=True):
        """Read a slot into buf: its seq when it holds a valid record, -1 when it is free,
        else None (torn or foreign). check=False: only tell free (-1) from not (None)."""
        buf = self.buf
        self.dev.readblocks(block, buf, slot * RECORD)
        if buf == _FREE:
            return -1
        if not check:
            return None
        seq, version, length = struct.unpack_from("<IBB", buf, 0)
        if version != VERSION or length > PAYLOAD or seq == 0xFFFFFFFF:
            return None
        crc = struct.unpack_from("<I", buf, RECORD - 4)[0]
        if binascii.crc32(memoryview(buf)[:RECORD - 4]) & 0xFFFFFFFF != crc:
            return None
        return seq

    def _first_seq(self, block):
        for slot in range(self.per):
            seq = self._read(block, slot)
            if seq is not None and seq >= 0:
                return seq
        return None

    def _blank(self, block):
        for slot in range(self.per):
            if self._read(block, slot, False) != -1:
                return False
        return True
