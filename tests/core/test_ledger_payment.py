"""Dedup ledger, notification parsing and backoff; CPython and MicroPython.
MAC and freshness: test_payment_mac.py."""

import json

from check import raises
from wasmvm import in_wasm_vm
from soundbox import payment, wire
from soundbox.backoff import Backoff
from soundbox.ledger import FILE, RING, Ledger
from soundbox.storage import MemoryStorage


def records(store):
    """How many records the ledger's ring has programmed (its next sequence number - 1)."""
    return Ledger(store).ring.seq - 1


def test_ledger_survives_restart():
    store = MemoryStorage()
    led = Ledger(store)
    led.add("T1")
    led.add("T2")
    again = Ledger(store)
    assert "T1" in again and "T2" in again and "T3" not in again


def test_ledger_is_bounded_in_memory_and_on_flash():
    store = MemoryStorage()
    led = Ledger(store, capacity=10)
    for i in range(55):
        led.add("T%d" % i)
        led.tidy()
    assert len(led) == 10
    assert "T54" in led and "T44" not in led
    assert store.devices[RING].count == 3  # 2 x 10 records fit one block, and the ring wrapped
    assert Ledger(store, capacity=10).order == led.order


def test_an_old_ledger_file_is_moved_into_the_ring_once_and_removed():
    store = MemoryStorage()
    store.write(FILE, b"T1\nT2 s\nT1 f\nT3\nT3-half")  # the last line cut short by a power cut
    led = Ledger(store)
    assert store.read(FILE) is None
    assert led.order == ["T2", "T1", "T3"] and "T3-half" not in led
    assert [led.outcome(t) for t in ("T1", "T2", "T3")] == [wire.FAILED, wire.STALE, wire.ANNOUNCED]
    assert records(store) == 4  # each whole line a record, replayed in order: the newest wins
    again = Ledger(store)
    assert again.order == led.order and again.outcome("T1") == wire.FAILED


def test_a_migration_cut_short_is_finished_at_the_next_boot_without_repeats():
    store = MemoryStorage()
    store.write(FILE, b"A\nB s\nC\n")
    Ledger(store).add("D")  # moved, then D taken...
    store.write(FILE, b"A\nB s\nC\n")  # ...as if the power went before the file was removed
    led = Ledger(store)
    assert led.order == ["A", "B", "C", "D"] and led.outcome("B") == wire.STALE
    assert records(store) == 4 and store.read(FILE) is None


def test_ledger_matches_whole_txns_only():
    # In RAM the txns are one buffer ("\nT1\nT2\n"): a txn must not match part of another.
    store = MemoryStorage()
    led = Ledger(store, capacity=3)
    led.add("T12")
    led.add("XT2")
    assert "T12" in led and "XT2" in led
    assert "T1" not in led and "T2" not in led and "2" not in led and "T12\nXT2" not in led
    led.add("T12")  # a redelivery is remembered once, and costs no record
    assert len(led) == 2 and led.order == ["T12", "XT2"] and records(store) == 2
    led.add("A")
    led.add("B")  # over capacity: the oldest goes
    assert led.order == ["XT2", "A", "B"] and "T12" not in led and "XT2" in led


def test_an_old_file_with_repeats_and_empty_lines_reads_once_each():
    store = MemoryStorage()
    store.write(FILE, b"A\nB\nA\n\nC\n")  # duplicates and an empty line, as a hand edit might leave
    assert Ledger(store, capacity=4).order == ["A", "B", "C"]


def test_ledger_knows_how_each_txn_finished_across_restarts():
    store = MemoryStorage()
    led = Ledger(store)
    led.add("T1")
    led.add("T2", wire.STALE)
    led.add("T3", wire.FAILED)
    assert records(store) == 3  # one record each
    for ledger in (led, Ledger(store)):
        assert [ledger.outcome(t) for t in ("T1", "T2", "T3", "T4")] == [wire.ANNOUNCED, wire.STALE, wire.FAILED, None]
        assert "T1" in ledger and "T2" in ledger and "T3" in ledger and "T4" not in ledger
        assert ledger.order == ["T1", "T2", "T3"] and len(ledger) == 3


def test_a_ledger_file_from_before_the_marks_reads_as_announced():
    store = MemoryStorage()
    store.write(FILE, b"OLD1\nOLD2\n")
    led = Ledger(store)
    assert led.outcome("OLD1") == led.outcome("OLD2") == wire.ANNOUNCED and led.outcome("OLD") is None
    store = MemoryStorage()
    store.write(FILE, b"NEW1 x\nNEW2 s\n")  # "x": a newer firmware's mark, after a downgrade
    led = Ledger(store)
    assert "NEW1" in led and led.outcome("NEW1") == wire.DUPLICATE and led.outcome("NEW2") == wire.STALE
    assert Ledger(store).outcome("NEW1") == wire.DUPLICATE  # kept as it was, in the ring


def test_a_mark_replaces_what_the_txn_had_and_the_newest_record_wins():
    store = MemoryStorage()
    led = Ledger(store, capacity=3)
    led.add("T1")
    led.add("T2")
    led.add("T1", wire.FAILED)  # its playback failed: a second record
    led.add("T1", wire.FAILED)  # again: nothing more on flash
    assert records(store) == 3
    assert led.order == ["T2", "T1"] and len(led) == 2 and led.outcome("T1") == wire.FAILED
    again = Ledger(store, capacity=3)
    assert again.order == ["T2", "T1"] and len(again) == 2 and again.outcome("T1") == wire.FAILED
    again.add("T1", wire.STALE)  # a restart cut its words short, and then it was too old
    assert again.outcome("T1") == wire.STALE and Ledger(store, capacity=3).outcome("T1") == wire.STALE
    again.add("T3")
    again.add("T4")  # over capacity: the oldest (T2) goes, marks or not
    assert again.order == ["T1", "T3", "T4"] and again.outcome("T1") == wire.STALE


def test_marked_txns_match_whole_txns_only_and_survive_the_ring_wrapping():
    store = MemoryStorage()
    led = Ledger(store, capacity=4)
    led.add("T12", wire.STALE)
    led.add("T1")
    assert led.outcome("T1") == wire.ANNOUNCED and led.outcome("T12") == wire.STALE
    for bad in ("T", "12", "T12 s", "T1 s", "s", "", " ", "T12\nT1"):
        assert bad not in led and led.outcome(bad) is None, bad
    for i in range(200):  # the ring (3 blocks of 32 records) wraps twice
        led.add("S%d" % i, wire.STALE if i % 2 else wire.ANNOUNCED)
    assert [Ledger(store, capacity=4).outcome("S%d" % i) for i in range(194, 200)] == \
        [None, None, wire.ANNOUNCED, wire.STALE, wire.ANNOUNCED, wire.STALE]


def test_every_remembered_txn_survives_a_restart_even_with_two_records_each():
    if in_wasm_vm():
        return  # 1,200 records: more than the VM may allocate in one module (the unix port runs it)
    store = MemoryStorage()
    led = Ledger(store)  # 256 txns
    for i in range(600):
        led.add("P%d" % i)
        led.add("P%d" % i, wire.FAILED if i % 3 else wire.STALE)
    again = Ledger(store)
    assert len(again) == 256 and again.order == led.order
    assert again.outcome("P597") == wire.STALE and again.outcome("P344") == wire.FAILED
    assert "P343" not in again


def note(**fields):
    return json.dumps(fields).encode()


def signed(txn, paise, **changes):
    fields = payment.sign(b"k" * 32, "sb-0001", txn, paise, 1732240000123)
    fields.update(changes)
    return json.dumps(fields).encode()


def reason(payload):
    try:
        payment.parse_notification(payload)
    except payment.InvalidNotification as e:
        return e.reason, e.txn
    return None


def test_valid_notification():
    n = payment.parse_notification(signed("T1", 25000))
    assert (n.txn, n.amount, n.currency, n.ts) == ("T1", 25000, "INR", 1732240000123)
    top = payment.MAX_PAISE
    assert payment.parse_notification(signed("T3", top)).amount == top


def test_invalid_notifications_say_why():
    assert reason(b"{not json") == ("notification is not valid JSON", None)
    assert reason(b"\xff\xfe") == ("notification is not valid JSON", None)
    assert reason(b"[1, 2]") == ("notification must be a JSON object", None)
    assert reason(note(amount=100)) == ("missing field: txn", None)
    assert reason(note(txn="T1")) == ("missing field: amount", "T1")
    assert reason(note(txn="T1", amount=250.0))[0] == "amount must be integer paise, not a float"
    assert reason(signed("T1", 250, amount=250.0))[0] == "amount must be integer paise, not a float"
    assert reason(note(txn="T1", amount="250"))[0] == "amount must be integer paise"
    assert reason(note(txn="T1", amount=True))[0] == "amount must be integer paise"
    assert reason(note(txn="T1", amount=0))[0] == "amount must be positive"
    assert reason(note(txn="T1", amount=-5))[0] == "amount must be positive"
    assert "exceeds" in reason(note(txn="T1", amount=payment.MAX_PAISE + 1))[0]
    assert reason(note(txn="T1", amount=5, currency="USD")) == ("unknown currency: USD", "T1")
    assert reason(signed("T1", 5, currency="USD")) == ("unknown currency: USD", "T1")
    assert reason(note(txn="T1", amount=5, ts=1)) == ("missing field: mac", "T1")
    for txn in ("", "has space", "x" * 65, "new\nline", 12):
        assert reason(note(txn=txn, amount=5))[0].startswith("txn must be")


def test_bombs_are_refused_with_a_reason_and_the_txn_when_it_shows():
    # As deep as fits the size limit: parsed or not, an answer with the txn (CPython parses it).
    deep = b'{"txn": "T9", "x": ' + b"[" * 500 + b"]" * 500 + b"}"  # 1,019 bytes
    assert reason(deep)[1] == "T9"
    assert reason(b"[" * 1000 + b"]" * 1000)[0] == "notification is 2000 bytes, over the 1024-byte limit"
    big = b'{"txn":"T8","pad":"' + b"x" * 2000 + b'"}'
    assert reason(big) == ("notification is 2021 bytes, over the 1024-byte limit", "T8")
    assert reason(b'{"txn": "T7", "amount": 5, "\xff": 1}') == ("notification is not valid JSON", "T7")
    assert reason(b'[{"txn": "T6"}]') == ("notification must be a JSON object", "T6")
    for no_txn in (b'{"txn": 5', b'{"txn": "has space"', b'{"txn"', b'"txn": "T5', b'{"txn": "\xff"'):
        assert reason(no_txn)[1] is None, no_txn


def test_ack_payload_is_json_with_every_field():
    ack = json.loads(payment.ack_payload("T1", payment.ANNOUNCED, "", 10, 11, 12))
    assert ack == {"txn": "T1", "status": "announced", "reason": "", "rx": 10, "play": 11, "done": 12}


def test_a_duplicate_ack_says_how_the_payment_finished_only_when_told():
    ack = json.loads(payment.ack_payload("T1", payment.DUPLICATE, "already stale", 10, was=wire.STALE))
    assert ack == {"txn": "T1", "status": "duplicate", "reason": "already stale", "rx": 10, "play": None,
                   "done": None, "was": "stale"}
    assert "was" not in json.loads(payment.ack_payload("T1", payment.DUPLICATE, "already received", 10))


def test_backoff_grows_exponentially_to_the_cap_with_full_jitter():
    b = Backoff(base_ms=100, cap_ms=1000)
    assert [b.next_delay_ms(0.999999) for _ in range(6)] == [99, 199, 399, 799, 999, 999]
    assert b.next_delay_ms(0.0) == 0
    b.reset()
    assert b.next_delay_ms(0.5) == 50
    b.give_up_fast()
    assert b.next_delay_ms(0.5) == 500
