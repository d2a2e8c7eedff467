"""What the ledger does once, at boot: read its ring into RAM (soundbox.ledger), and on the
first boot after an upgrade take in the files of earlier versions, the append-only
ledger.txt and the desk's unsaid.json. Its own module: the boot's code apart from what a
running box calls."""

import binascii
import struct

from soundbox.recordring import _FREE, HEAD, PAYLOAD, RECORD, VERSION

_TO_SAY = b" u\n"  # as soundbox.ledger's
_FIELDS = "<qqq"


def load(ledger, old):
    """Fill ledger (its RAM buffer, unsaid, its ring's position) from its ring, then from
    `old`, an old ledger.txt's bytes (or None)."""
    taken = []
    for payload in records(ledger.ring):
        line = payload[:payload.find(b"\n") + 1]
        if len(line) > 1 and line[:1] != b" ":
            ledger._remember(line)
            if line[-3:] == _TO_SAY:
                at = len(line)
                amount, ts, rx = struct.unpack_from(_FIELDS, payload, at)
                taken.append([line[:-3].decode(), amount, ts, rx, payload[at + 24:].decode() or None])
    # Those whose newest record is still "to say" (not said, stale or failed since).
    ledger.unsaid.entries = [e for e in taken if ledger._line(e[0].encode() + _TO_SAY) > 0]
    if old is not None:
        migrate(ledger, old)


CHUNK = 8  # records read at once at boot: 1 KiB (a 4 KiB buffer failed to allocate on a
# fragmented unix-port heap; one record a read was 576 file opens a simulated box's boot)


def records(ring):
    """Yield every valid record's payload (a bytes) of the ring, oldest first. Run it to
    its end once, before appending: then append() writes after the newest."""
    chunk = memoryview(bytearray(CHUNK * RECORD))  # for the boot only: freed afterwards
    firsts, lasts = _survey(ring, chunk)
    head = 0
    for b in range(ring.count):
        if firsts[b] > firsts[head]:
            head = b
    for i in range(1, ring.count + 1):  # from the block ahead of the newest: oldest first
        b = (head + i) % ring.count
        if firsts[b] < 0:
            continue
        for slot in range(ring.per):
            seq = _slot(ring, b, slot, chunk)
            if seq is not None and seq >= 0:
                ring.seq = max(ring.seq, seq + 1)
                yield bytes(ring.buf[HEAD:HEAD + ring.buf[5]])
    ring.block, ring.slot = head, lasts[head] + 1
    ahead = (head + 1) % ring.count
    if lasts[ahead] >= 0:  # not blank: its erase was cut short, or it never had one
        ring.erase_due = ahead


def _survey(ring, chunk):
    """Per block: its first record's seq (-1: none) and the last slot in use (-1: none).
    (Apart from records(): the test VM's collector loses frames of more than 11 words.)"""
    firsts, lasts = [], []
    used = ring.dev.used() if hasattr(ring.dev, "used") else ring.count
    for b in range(ring.count):
        first, last = -1, -1
        for slot in range(ring.per if b < used else 0):  # past used(): erased, nothing to read
            seq = _slot(ring, b, slot, chunk)
            if seq != -1:
                last = slot
                if first < 0 and seq is not None:
                    first = seq
        firsts.append(first)
        lasts.append(last)
    return firsts, lasts


def _slot(ring, block, slot, chunk):
    """_check of a block's slot; the slots are asked in order, and the chunk holding them
    is read when the first of its slots is."""
    i = slot % (len(chunk) // RECORD)
    if i == 0:
        ring.dev.readblocks(block, chunk, slot * RECORD)
    return _check(ring, chunk, i)


def _check(ring, blk, slot):
    """Copy a slot of the block read into blk to ring.buf: its seq when it holds a valid
    record, -1 when it is free, else None (torn or foreign)."""
    buf = ring.buf
    buf[:] = blk[slot * RECORD:slot * RECORD + RECORD]
    if buf == _FREE:
        return -1
    seq, version, length = struct.unpack_from("<IBB", buf, 0)
    if version != VERSION or length > PAYLOAD:
        return None
    if binascii.crc32(memoryview(buf)[:RECORD - 4]) & 0xFFFFFFFF != struct.unpack_from("<I", buf, RECORD - 4)[0]:
        return None
    return seq


def migrate(ledger, raw):
    """The lines of an old ledger.txt, oldest first, each a record, but none of a txn the
    ring had already (a migration a power cut interrupted did those)."""
    had = bytes(ledger._txns)
    end = raw.rfind(b"\n") + 1  # after it: a line a power cut left without its newline
    start = 0
    while start < end:
        stop = raw.find(b"\n", start)
        line = raw[start:stop + 1]
        cut = line.find(b" ")
        txn = line[:cut] if cut > 0 else line[:-1]
        if txn and b"\n" + txn + b"\n" not in had and b"\n" + txn + b" " not in had and ledger._remember(line):
            ledger.ring.append(line)
        start = stop + 1


def take_unsaid(ledger, entries):
    """The entries of an old unsaid.json (the desk's to-say journal) into the ledger, but
    none it has as to be said already."""
    for entry in entries:
        if entry[0] not in ledger.unsaid:
            ledger.take(*entry)
