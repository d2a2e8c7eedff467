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
Loading (soundbox.ledgerboot.records, boot-time code in its own module) finds the newest
block by the records' sequence numbers and reads the blocks oldest first; a block ahead
that is not blank (its erase was cut short, or the device was never erased) is made due
again.
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
        # Where the next record goes is known once soundbox.ledgerboot.records() has run.

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
