"""The files of earlier versions, read into the ledger's ring once at the first boot after an
upgrade: the append-only ledger.txt (one line a txn, as soundbox.ledger's records) and the
desk's unsaid.json. Its own module: only that boot loads it."""


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
