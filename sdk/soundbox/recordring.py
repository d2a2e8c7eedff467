"""A ring of fixed-size records on a NOR flash block device (the protocol in soundbox.blockdev):
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

# MicroPython's extended block protocol (esp32.Partition, vfs block devices): ioctl numbers.
IOCTL_COUNT = 4
IOCTL_SIZE = 5
IOCTL_ERASE = 6
BLOCK = 4096  # the ESP32's flash erase unit, and esp32.Partition's block size

RECORD = 128
VERSION = 1
HEAD = 6  # seq, version, length
PAYLOAD = RECORD - HEAD - 4
_FREE = b"\xff" * RECORD


class RecordRing:
    def __init__(self, dev):
        self.dev = dev
        self.count = dev.ioctl(IOCTL_COUNT, 0)
        self.per = dev.ioctl(IOCTL_SIZE, 0) // RECORD
        self.buf = bytearray(RECORD)
        self.block = 0  # where the next record goes
        self.slot = 0
        self.seq = 1
        self.erase_due = None  # the block ahead, not erased yet

    def load(self):
        """Yield every valid record's payload (a bytes), oldest first. Run it to its end once,
        before appending: then append() writes after the newest."""
        # A block is read whole (18 reads, not 576 of one slot: a box's boot leaves less
        # garbage to fragment its heap), into a buffer freed afterwards.
        blk = memoryview(bytearray(self.per * RECORD))
        firsts, lasts = [], []  # per block: the first record's seq (-1: none), the last slot in use
        for b in range(self.count):
            self.dev.readblocks(b, blk, 0)
            first, last = -1, -1
            for slot in range(self.per):
                seq = self._check(blk, slot)
                if seq != -1:
                    last = slot
                    if first < 0 and seq is not None:
                        first = seq
            firsts.append(first)
            lasts.append(last)
        head = 0
        for b in range(self.count):
            if firsts[b] > firsts[head]:
                head = b
        for i in range(1, self.count + 1):  # from the block ahead of the newest: oldest first
            b = (head + i) % self.count
            if firsts[b] < 0:
                continue
            self.dev.readblocks(b, blk, 0)
            for slot in range(self.per):
                seq = self._check(blk, slot)
                if seq is not None and seq >= 0:
                    self.seq = max(self.seq, seq + 1)
                    yield bytes(self.buf[HEAD:HEAD + self.buf[5]])
        self.block, self.slot = head, lasts[head] + 1
        ahead = (head + 1) % self.count
        if lasts[ahead] >= 0:  # not blank: its erase was cut short, or it never had one
            self.erase_due = ahead

    def append(self, payload):
        """Program one record holding payload (at most PAYLOAD bytes)."""
        if len(payload) > PAYLOAD:
            raise ValueError("a record holds %d bytes at most" % PAYLOAD)
        if self.slot == self.per:  # into the next block, erased ahead; the one after it is due
            block = (self.block + 1) % self.count
            if self.erase_due == block:  # tidy() has not run since the ring entered the last block
                self.tidy()
            self.block, self.slot = block, 0
            self.erase_due = (block + 1) % self.count
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

    def _check(self, blk, slot):
        """Copy a slot of the block read into blk to buf: its seq when it holds a valid record,
        -1 when it is free, else None (torn or foreign)."""
        buf = self.buf
        buf[:] = blk[slot * RECORD:slot * RECORD + RECORD]
        if buf == _FREE:
            return -1
        seq, version, length = struct.unpack_from("<IBB", buf, 0)
        if version != VERSION or length > PAYLOAD:
            return None
        if binascii.crc32(memoryview(buf)[:RECORD - 4]) & 0xFFFFFFFF != struct.unpack_from("<I", buf, RECORD - 4)[0]:
            return None
        return seq
