"""The payment desk's pieces of state on flash (soundbox.desk), each one JSON file rewritten
whole through an injected storage (soundbox.storage: by rename on a device, so a power cut
leaves the old or the new file; MemoryStorage in tests).

- Payments: [[txn, amount, ts, rx, provider], ...] in order (provider may be null). The desk
  keeps two: payments held until the clock is trusted, and accepted payments whose words
  were not said yet.
- Tally: today's count and total (local day), for the long press; written after a payment is
  said, not before its first audio.
- Backlog: stale payments whose offline summary was not said yet.
"""

import json

from soundbox import payment

DAY_MS = 86400000


def load_json(storage, name, log, kind, lost):
    """The file's JSON value when it is a `kind`; None when absent or damaged (logged,
    saying what is `lost`)."""
    raw = storage.read(name)
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeError):
        value = None
    if type(value) is not kind:
        log("state: %s unreadable, %s" % (name, lost))
        return None
    return value


class Payments:
    def __init__(self, storage, name, log):
        self.storage = storage
        self.name = name
        saved = load_json(storage, name, log, list, "its payments lost")
        # Entries written before providers were signed have four fields: no provider.
        self.entries = [e if len(e) == 5 else e + [None] for e in saved if _valid(e)] if saved else []

    def __len__(self):
        return len(self.entries)

    def __contains__(self, txn):
        for entry in self.entries:
            if entry[0] == txn:
                return True
        return False

    def add(self, txn, amount, ts, rx, provider=None):
        self.entries.append([txn, amount, ts, rx, provider])
        self._save()

    def remove(self, txns):
        kept = [e for e in self.entries if e[0] not in txns]
        if len(kept) != len(self.entries):
            self.entries = kept
            self._save()

    def pop_first(self):
        entry = self.entries.pop(0)
        self._save()
        return entry

    def _save(self):
        self.storage.write(self.name, json.dumps(self.entries).encode())


def _valid(entry):
    return (type(entry) is list and len(entry) in (4, 5) and payment.valid_txn(entry[0])
            and payment.amount_problem(entry[1]) is None and type(entry[2]) is int and type(entry[3]) is int
            and (len(entry) == 4 or entry[4] is None or payment.provider_problem(entry[4]) is None))


class Tally:
    """Payments judged today (announced and stale alike), by the merchant's local day.

    On flash [day, count, total, txns]: txns are the payments its last write counted. A
    payment to be announced is counted in RAM when it is judged and written once it has
    been said (settle), off its way to the first audio; one that does not wait for words
    (a stale one) is written at once. A payment is counted on flash before it leaves the
    unsaid journal, so a power cut in between says it again: the txns of the last write
    make it count once. Until settled, a payment lives in the unsaid journal, which the desk
    counts again (count(..., write=False)) after a restart."""
    NAME = "today.json"

    def __init__(self, storage, tz_offset_ms, log):
        self.storage = storage
        self.tz_offset_ms = tz_offset_ms
        saved = load_json(storage, self.NAME, log, list, "today's tally starts again")
        ok = (saved and len(saved) in (3, 4) and all(type(v) is int for v in saved[:3])
              and (len(saved) == 3 or type(saved[3]) is list))
        self.day_count_total = saved[:3] if ok else [0, 0, 0]  # as on flash
        self.last = saved[3] if ok and len(saved) == 4 else []  # the txns its last write counted
        self.pending = []  # [txn, amount, day]: counted in RAM, not on flash yet

    def _day(self, wall_ms):
        return (wall_ms + self.tz_offset_ms) // DAY_MS

    def now(self, wall_ms):
        """(count, total paise) for the local day of wall_ms (a new day starts at zero)."""
        today = self._day(wall_ms)
        day, count, total = self.day_count_total
        if day != today:
            count = total = 0
        for _, amount, day in self.pending:
            if day == today:
                count += 1
                total += amount
        return count, total

    def count(self, txn, amount, ts, wall_ms, write=True):
        """Count a payment made at ts, if that was today (one from an earlier day is not
        today's) and the last write has not counted it already. write=False: in RAM only,
        until settle([txn])."""
        day = self._day(ts)
        if day != self._day(wall_ms) or txn in self.last:
            return
        self.pending.append([txn, amount, day])
        if write:
            self.settle((txn,))

    def settle(self, txns):
        """Write the counts of txns (said, failed or gone stale) to flash."""
        done = [p for p in self.pending if p[0] in txns]
        if not done:
            return
        self.pending = [p for p in self.pending if p[0] not in txns]
        day, count, total = self.day_count_total
        for _, amount, paid in done:
            if paid > day:  # the first of a new day
                day, count, total = paid, 0, 0
            if paid == day:
                count += 1
                total += amount
        self.day_count_total = [day, count, total]
        self.last = [p[0] for p in done]
        self.storage.write(self.NAME, json.dumps(self.day_count_total + [self.last]).encode())


class Backlog:
    """Stale payments (acked "stale") whose offline summary has not been said yet."""
    NAME = "offline.json"

    def __init__(self, storage, log):
        self.storage = storage
        saved = load_json(storage, self.NAME, log, list, "the offline summary is lost")
        ok = saved and len(saved) == 2 and all(type(v) is int and v >= 0 for v in saved)
        self.count = saved[0] if ok else 0
        self.total = saved[1] if ok else 0

    def add(self, amount):
        self.count += 1
        self.total += amount
        self._save()

    def said(self, count, total):
        self.count = max(0, self.count - count)
        self.total = max(0, self.total - total)
        self._save()

    def _save(self):
        self.storage.write(self.NAME, json.dumps([self.count, self.total]).encode())
