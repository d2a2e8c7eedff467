"""The payment desk: what a box does with a payment notification, from its bytes to its
ack, as a sans-I/O core in the shape of soundbox.mqttsession.Session.

The driver (soundbox_fw.app) tells the desk what happened, with the time:
    clock(now_ms, wall_ms, trusted)  the monotonic and wall time and whether the wall clock
                                     is real (NTP); call it before notification() too
    notification(payload, rx_ms)     a notification's bytes, received at wall time rx_ms
    next_utterance()                 the player takes what to say next (or None)
    said(utterance, play, done)      ... and reports it said,
    failed(utterance, error, play)   ... or not (the speaker failed)
Each returns a list of actions: Ack (publish it), Say (something is on the queue: wake the
player), Prompt (a health prompt to say now). `next_deadline()` is the monotonic ms at
which the desk wants clock() called (the offline summary's debounce, a clock it waits to
trust). No I/O, no asyncio: state on flash goes through the injected storage.

A payment's life: parsed and its MAC checked; a duplicate (ledger, unsaid, held) is acked
so, with "was" (announced, stale or failed: the ledger's) when it had finished; until the
clock is trusted it is held (held.json, at most HOLD_LIMIT); judged by age: fresh ->
taken in the ledger as one record, still to be said (unsaid: the txn and what to say),
*before* it is queued (a reboot mid-words says it again, never twice after its ack), stale
-> ledger (marked stale), acked "stale" and rolled into one offline summary said
SUMMARY_DEBOUNCE_MS after the last stale one (or before the next fresh one); said -> counted
in today's tally on flash, a ledger record that it was said, then acked "announced" (or
"failed", marked so in the ledger). On a payment's way to its first audio the flash sees one
record's page program; the tally's rewrite and the ring's erase come after the words.

The speaker's queue: at most QUEUE_LIMIT waiting (notification() raises QueueFull and
changes nothing: the driver waits for room and calls again, so the PUBACK waits and the
broker keeps the payment); more than MERGE_ABOVE payments waiting are said as one
"N payments received, total ..."; a replay waits while payments do, and one at most waits.
"""

from soundbox import payment, voice, wire
from soundbox.deskstores import DAY_MS, Backlog, Payments, Tally
from soundbox.ledger import Ledger

QUEUE_LIMIT = 16  # utterances waiting to play
# Verified payments waiting for a trusted clock. Beyond this they are acked "failed"
# and not recorded, so the cloud can send them again later.
HOLD_LIMIT = 32
HELD_FILE = "held.json"
UNSAID_FILE = "unsaid.json"  # earlier versions' to-say journal: taken into the ledger once, then removed
FRESHNESS_S = 120  # an older payment is not announced on its own: the customer has left
TZ_OFFSET_MIN = 330  # India Standard Time: "today" and replayed times are the merchant's
CLOCK_POLL_MS = 1000  # how often an untrusted clock is looked at while payments wait for it
# The offline summary is said this long after the last stale payment arrived, so a
# backlog the broker hands over in a burst becomes one announcement.
SUMMARY_DEBOUNCE_MS = 2000
SUMMARY_NAME = "offline-summary"
MERGE_ABOVE = 3  # more waiting payments than this are said as one merged announcement
MERGED_NAME = "merged"  # the sink's name for it: "merged <txn> <txn> ..." (txns have no spaces)
REPLAY_NAME = "replay"


def said_txns(name):
    """(txns, merged count or 0) a sink's announcement name stands for: a merged one,
    "merged <txn> <txn> ...", said each of its payments (txns have no spaces)."""
    parts = name.split(" ") if isinstance(name, str) else [name]
    if len(parts) > 1 and parts[0] == MERGED_NAME:
        return parts[1:], len(parts) - 1
    return [name], 0


class QueueFull(Exception):
    """The speaker's queue has no room for this payment; nothing was changed or recorded."""


class Utterance:
    """One thing for the speaker to say.
    tokens: the voice-pack tokens; name: the sink's name for it (a payment's txn,
    "merged <txn> ...", SUMMARY_NAME, REPLAY_NAME, a prompt's name);
    txns: the payments it says, in arrival order (empty for a summary, replay or prompt);
    rx_ms: the wall ms each of txns was received (same order);
    amount: the paise it says (a payment's, a merged or summary total; 0 for the rest);
    count: how many payments it says (a summary's count; len(txns) for payments)."""
    __slots__ = ("tokens", "name", "txns", "rx_ms", "amount", "count")

    def __init__(self, tokens, name, txns=(), rx_ms=(), amount=0, count=0):
        self.tokens = tokens
        self.name = name
        self.txns = txns
        self.rx_ms = rx_ms
        self.amount = amount
        self.count = count


class Ack:
    """Publish this ack on sb/<id>/ack (QoS 1): payment.ack_payload(txn, status, reason, rx,
    play, done, was); was: how a duplicate finished the first time (wire.py), or None."""
    __slots__ = ("txn", "status", "reason", "rx", "play", "done", "was")

    def __init__(self, txn, status, reason, rx, play=None, done=None, was=None):
        self.txn = txn
        self.status = status
        self.reason = reason
        self.rx = rx
        self.play = play
        self.done = done
        self.was = was


class Say:
    """`utterance` is on the queue: the player should look (next_utterance)."""
    __slots__ = ("utterance",)

    def __init__(self, utterance):
        self.utterance = utterance


class Prompt:
    """Say the health prompt `name` now (and show the error LED): the driver's own rule
    keeps it from nagging."""
    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name


def _is_replay(utterance):
    return not utterance.txns and utterance.name == REPLAY_NAME


class PaymentDesk:
    """storage: read/write/append (soundbox.storage); key: this box's 32-byte payment key or
    None; wall_ms: the wall clock now (a payment a power cut left half-recorded is counted in
    today's tally by it); read_key(): a new payment key on disk or None, asked only after a
    MAC check failed (the identity was rotated); log(message)."""

    def __init__(self, storage, device_id, key, wall_ms, lang="en-IN", freshness_s=FRESHNESS_S,
                 tz_offset_min=TZ_OFFSET_MIN, read_key=None, log=print):
        self.device_id = device_id
        self.key = key
        self.lang = lang  # the driver sets it when the merchant changes it
        self.read_key = read_key
        self.log = log
        self.freshness_ms = int(freshness_s * 1000)
        self.tz_offset_ms = int(tz_offset_min) * 60000
        self.queue_limit = QUEUE_LIMIT
        self.hold_limit = HOLD_LIMIT
        self.ledger = Ledger(storage)
        self.tally = Tally(storage, self.tz_offset_ms, log)
        self.held = Payments(storage, HELD_FILE, log)  # verified, waiting for a trusted clock
        self.unsaid = self.ledger.unsaid  # accepted, words not said yet (the ledger's records)
        if storage.read(UNSAID_FILE) is not None:  # a box upgraded from the journal file
            from soundbox.ledgerboot import take_unsaid

            take_unsaid(self.ledger, Payments(storage, UNSAID_FILE, log).entries)
            storage.remove(UNSAID_FILE)  # after: a power cut between them takes them again, once
        self.backlog = Backlog(storage, log)  # stale, acked, their summary not said yet
        self.pending = []  # Utterances waiting to play, in arrival order
        self.playing = None  # the Utterance the player took and has not reported on yet
        self.last_said = None  # (count, total paise, wall ms received) of the last announcement
        # Judged before a restart cut their words short: judged again by age, first in line.
        self._recovered = list(self.unsaid.entries)
        for entry in self._recovered:
            self.tally.count(entry[0], entry[1], entry[2], wall_ms, False)  # on flash once settled
        # Stale payments not yet on the queue (the backlog also counts queued ones).
        self.offline_count = self.backlog.count
        self.offline_total = self.backlog.total
        self._summary_due = 0  # monotonic ms
        self._now = 0  # monotonic ms, as of the last clock()
        self._wall = wall_ms
        self._trusted = False

    # ---- inputs ------------------------------------------------------------------

    def clock(self, now_ms, wall_ms, trusted):
        """The time now. Judges what waited for a trusted clock (payments a restart
        interrupted, then held ones, in arrival order) and queues a summary that is due."""
        self._now, self._wall, self._trusted = now_ms, wall_ms, trusted
        out = []  # type: list
        self._release(out)
        if self.offline_count and now_ms >= self._summary_due:
            self._queue_summary(out)
        return out

    def notification(self, payload, rx_ms):
        """A notification's bytes, received at wall ms rx_ms (call clock() first). Raises
        QueueFull, having changed nothing, when a payment to say finds the queue full."""
        try:
            note = payment.parse_notification(payload)
        except payment.InvalidNotification as e:
            return [Ack(e.txn, wire.INVALID, e.reason, rx_ms)]
        txn = note.txn
        if self.key is None and not self._took_new_key():
            return [Ack(txn, wire.INVALID, "no payment key on the device", rx_ms)]
        # The MAC is right with the key in memory, or with a new key on disk that replaced
        # it (the identity was rotated: the cloud signs with the new key).
        if not (payment.authentic(note, self.key, self.device_id)
                or self._took_new_key() and payment.authentic(note, self.key, self.device_id)):
            # Say which txn, never the MACs: the expected one is an oracle for forgers.
            self.log("payment %s: bad MAC, not announced" % txn)
            return [Ack(txn, wire.INVALID, "bad MAC", rx_ms)]
        if txn in self.unsaid:
            return [Ack(txn, wire.DUPLICATE, "already received, to be announced", rx_ms)]
        was = self.ledger.outcome(txn)
        if was is not None:  # finished: say how, for the cloud that lost the first ack
            return [Ack(txn, wire.DUPLICATE, "already " + was, rx_ms, was=was)]
        if txn in self.held:
            return [Ack(txn, wire.DUPLICATE, "already received, waiting for the clock", rx_ms)]
        out = []  # type: list
        if len(self.held) or self._recovered or not self._trusted:
            self._hold(note, rx_ms, out)  # behind those already held: keep arrival order
            self._release(out)
        elif not self._judge(txn, note.amount, note.ts, rx_ms, note.provider, False, rx_ms, out):
            raise QueueFull()
        return out

    def next_utterance(self):
        """Take the next thing to say, or None; report it with said() or failed(). More than
        MERGE_ABOVE waiting payments are taken together, as one merged announcement."""
        if not self.pending:
            return None
        batch = self._next_batch()
        if len(batch) > 1:
            txns, rx_ms, total = [], [], 0
            for u in batch:
                txns.append(u.txns[0])
                rx_ms.append(u.rx_ms[0])
                total += u.amount
            utterance = Utterance(voice.merged_tokens(len(batch), total, self.lang),
                                  "%s %s" % (MERGED_NAME, " ".join(txns)), txns, rx_ms, total, len(txns))
        else:
            utterance = batch[0]
        self.playing = utterance
        return utterance

    def said(self, utterance, play_ms, done_ms):
        """The speaker said it, from wall ms play_ms to done_ms: its payments acked "announced"."""
        self._forget(utterance)  # before the acks: a power cut now must not say it again
        self.ledger.tidy()  # the speaker is done: the ledger's erase, if one is due, goes here
        txns = utterance.txns
        if not txns:
            return []  # a summary's payments were acked "stale" when they arrived
        self.last_said = (len(txns), utterance.amount, utterance.rx_ms[-1])
        reason = "merged with %d others" % (len(txns) - 1) if len(txns) > 1 else ""
        return [Ack(txn, wire.ANNOUNCED, reason, rx, play_ms, done_ms) for txn, rx in zip(txns, utterance.rx_ms)]

    def failed(self, utterance, error, play_ms):
        """The speaker could not say it: its payments acked "failed" (the cloud knows; nothing
        is left to say)."""
        self.tally.settle(utterance.txns)  # before they leave unsaid: counted once (Tally)
        for txn in utterance.txns:  # a repeat is then answered "failed"; they leave unsaid
            self.ledger.add(txn, wire.FAILED)
        self._forget(utterance)
        self.ledger.tidy()
        reason = "playback failed: %r" % (error,)
        return [Ack(txn, wire.FAILED, reason, rx, play_ms) for txn, rx in zip(utterance.txns, utterance.rx_ms)]

    def say(self, tokens, name):
        """Queue something that is not a payment behind what is already waiting; False when full."""
        if len(self.pending) >= self.queue_limit:
            self.log("speaker busy: %s not said" % name)
            return False
        self.pending.append(Utterance(tokens, name))
        return True

    def replay(self):
        """Queue the last announcement again, with the time it was received; None when queued,
        else why not. One replay at most waits or plays: a burst of them must not hold the speaker."""
        if self.last_said is None:
            return "nothing announced yet"
        if self.playing is not None and _is_replay(self.playing):
            return "replay already pending"
        for u in self.pending:
            if _is_replay(u):
                return "replay already pending"
        count, total, rx = self.last_said
        minutes = (rx + self.tz_offset_ms) % DAY_MS // 60000  # the merchant's local time
        tokens = voice.replay_tokens(count, total, minutes // 60, minutes % 60, self.lang)
        return None if self.say(tokens, REPLAY_NAME) else "speaker busy"

    # ---- outputs -----------------------------------------------------------------

    def next_deadline(self):
        """The monotonic ms at which clock() is wanted next, or None (nothing is timed)."""
        due = self._summary_due if self.offline_count else None
        if len(self.held) or self._recovered:
            if not self._trusted:
                wake = self._now + CLOCK_POLL_MS  # look at the clock again
            elif len(self.pending) < self.queue_limit:
                wake = self._now  # room on the queue again: judge the next one
            else:
                wake = None  # next_utterance() makes room
            if wake is not None and (due is None or wake < due):
                due = wake
        return due

    def idle(self):
        """Nothing being said or waiting to be."""
        return self.playing is None and not self.pending

    # ---- judging -----------------------------------------------------------------

    def _judge(self, txn, amount, ts, rx, provider, recovered, now, out):
        """Announce, summarise or refuse an authentic, unseen payment by its age at wall ms
        `now` (a trusted clock). recovered: accepted before a restart cut its words short (in
        the ledger and unsaid). False, having changed nothing, when it is to be said and the
        queue has no room."""
        verdict = payment.age_verdict(ts, now, self.freshness_ms)
        if verdict == payment.AHEAD and not recovered:
            out.append(Ack(txn, wire.INVALID, "ts is %d s ahead of the device clock" % ((ts - now) // 1000), rx))
            return True
        if verdict == payment.STALE:
            if self.offline_total + amount > voice.MAX_TOTAL_PAISE:
                self._queue_summary(out)  # the summary's total must stay sayable
            self.backlog.add(amount)  # before it leaves unsaid: a power cut may count it twice, never lose it
            if recovered:
                self.tally.settle((txn,))  # counted in RAM at boot: on flash before the ledger moves on
            else:
                self.tally.count(txn, amount, ts, now)  # before the ledger: once, whatever the power does
            self.ledger.add(txn, wire.STALE)  # a replay is then a duplicate, "was stale"; off unsaid
            self.offline_count += 1
            self.offline_total += amount
            self._summary_due = self._now + SUMMARY_DEBOUNCE_MS
            out.append(Ack(txn, wire.STALE, "paid %d s ago, over the %d s limit: in the offline summary"
                           % ((now - ts) // 1000, self.freshness_ms // 1000), rx))
            return True
        # The backlog's summary goes first, and may pass the queue's limit by itself.
        if len(self.pending) + (1 if self.offline_count else 0) >= self.queue_limit:
            return False
        self._queue_summary(out)  # the backlog first, then what is happening now
        # A provider this box's wording does not know (a newer cloud's) is left unsaid.
        said_provider = provider if provider in voice.PROVIDERS else None
        tokens = voice.announcement_tokens(amount, self.lang, said_provider)
        if not recovered:
            self.ledger.take(txn, amount, ts, rx, provider)  # first: a power cut from here on loses nothing
            self.tally.count(txn, amount, ts, now, False)  # in RAM: written when said (_forget)
        utterance = Utterance(tokens, txn, (txn,), (rx,), amount, 1)
        self.pending.append(utterance)
        out.append(Say(utterance))
        return True

    def _hold(self, note, rx, out):
        if len(self.held) >= self.hold_limit:
            out.append(Ack(note.txn, wire.FAILED, "clock not set and %d payments already held: send again later"
                           % self.hold_limit, rx))
            return
        self.held.add(note.txn, note.amount, note.ts, rx, note.provider)  # before the PUBACK: a reboot keeps it
        if not self._trusted:  # else it only waits behind held ones being judged
            self.log("payment %s: clock not trusted yet, held (%d waiting)" % (note.txn, len(self.held)))
            out.append(Prompt("clock_not_set"))

    def _release(self, out):
        """Judge, with a trusted clock, what waits: payments a restart interrupted, then held
        ones, in that order (the order they arrived in), until one finds the queue full."""
        if not self._trusted:
            return
        while self._recovered:
            txn, amount, ts, rx, provider = self._recovered[0]
            if not self._judge(txn, amount, ts, rx, provider, True, self._wall, out):
                return
            self._recovered.pop(0)
        while len(self.held):
            txn, amount, ts, rx, provider = self.held.entries[0]
            # It is in the ledger if the power failed between judging and saving.
            if txn not in self.ledger and not self._judge(txn, amount, ts, rx, provider, False, self._wall, out):
                return
            self.held.pop_first()

    def _took_new_key(self):
        """Take a new payment key from read_key(), if there is one; True when it did."""
        key = self.read_key() if self.read_key is not None else None
        if key is None or key == self.key:
            return False
        self.key = key
        return True

    # ---- the offline summary and the queue ----------------------------------------

    def _queue_summary(self, out):
        """Put 'while offline: N payments, total ...' on the queue, if any are waiting."""
        if not self.offline_count:
            return
        count, total = self.offline_count, self.offline_total
        self.offline_count = self.offline_total = 0
        try:
            tokens = voice.offline_summary_tokens(count, total, self.lang)
        except Exception as e:  # the payments are acked already; only the words are lost
            self.log("offline summary of %d payments failed: %r" % (count, e))
            self.backlog.said(count, total)
            return
        utterance = Utterance(tokens, SUMMARY_NAME, (), (), total, count)
        self.pending.append(utterance)
        out.append(Say(utterance))

    def _next_batch(self):
        """The next thing to say: [utterance], or every waiting payment when more than
        MERGE_ABOVE wait (they are then said as one). A replay waits while payments do."""
        payments = 0
        for u in self.pending:
            if u.txns:
                payments += 1
        first = 1 if payments and _is_replay(self.pending[0]) else 0  # at most one replay waits
        if not self.pending[first].txns or payments <= MERGE_ABOVE:
            return [self.pending.pop(first)]
        batch = [u for u in self.pending if u.txns]
        self.pending = [u for u in self.pending if not u.txns]
        return batch

    def _forget(self, utterance):
        """Take what was just said (or failed to be) off the flash's to-say lists."""
        self.playing = None
        if utterance.txns:
            self.tally.settle(utterance.txns)  # before they leave unsaid: counted once (Tally)
            self.ledger.said(utterance.txns)
        elif utterance.name == SUMMARY_NAME:
            self.backlog.said(utterance.count, utterance.amount)
