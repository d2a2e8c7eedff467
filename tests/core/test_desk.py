"""The payment desk (soundbox.desk) on its own: bytes and the time in, acks and utterances
out, state in a MemoryStorage; CPython and MicroPython. The real app around it (MQTT, the
speaker, flash) is tests/test_payment_integrity.py and tests/test_voice_ux.py."""

import json

from check import raises
from soundbox import desk as desk_rules
from soundbox import payment, voice
from soundbox.desk import Ack, PaymentDesk, Prompt, QueueFull, Say
from soundbox.storage import MemoryStorage

KEY = bytes(range(32))
DEVICE = "sb-0001"
WALL = 1767225600000  # 2026-01-01 00:00 UTC, 05:30 in India
MONO = 5000  # monotonic ms at the start of each test


def note(txn, amount, ts=WALL, key=KEY, device=DEVICE, provider=None):
    return json.dumps(payment.sign(key, device, txn, amount, ts, provider=provider)).encode()


def new_desk(storage=None, trusted=True, wall=WALL, **options):
    desk = PaymentDesk(storage if storage is not None else MemoryStorage(), DEVICE, KEY, wall, **options)
    desk.clock(MONO, wall, trusted)
    return desk


def acks(actions):
    return [(a.txn, a.status) for a in actions if isinstance(a, Ack)]


def said(actions):
    return [a.utterance.name for a in actions if isinstance(a, Say)]


def say_all(desk, play=WALL + 10, done=WALL + 900):
    """Play everything queued; [(name, [(txn, status), ...])] in the order said."""
    out = []
    while True:
        u = desk.next_utterance()
        if u is None:
            return out
        out.append((u.name, acks(desk.said(u, play, done))))


def test_a_fresh_payment_is_said_then_acked_announced_with_its_times():
    desk = new_desk()
    actions = desk.notification(note("T1", 25000), WALL + 3)
    assert acks(actions) == [] and said(actions) == ["T1"]  # no ack before the words
    u = desk.next_utterance()
    assert u.tokens == voice.announcement_tokens(25000, "en-IN") and u.txns == ("T1",)
    assert u.rx_ms == (WALL + 3,) and u.amount == 25000 and u.count == 1
    assert "T1" in desk.unsaid and "T1" in desk.ledger and not desk.idle()
    ack = desk.said(u, WALL + 10, WALL + 900)
    assert [(a.txn, a.status, a.reason, a.rx, a.play, a.done) for a in ack] == \
        [("T1", "announced", "", WALL + 3, WALL + 10, WALL + 900)]
    assert "T1" not in desk.unsaid and desk.idle() and desk.next_utterance() is None


def test_duplicates_are_acked_with_where_the_payment_is():
    desk = new_desk()
    desk.notification(note("D1", 100), WALL)
    assert acks(desk.notification(note("D1", 100), WALL)) == [("D1", "duplicate")]
    assert desk.notification(note("D1", 100), WALL)[0].reason == "already received, to be announced"
    say_all(desk)
    again = desk.notification(note("D1", 100), WALL)
    assert acks(again) == [("D1", "duplicate")] and again[0].reason == "already announced"
    assert desk.next_utterance() is None  # said once
    untrusted = new_desk(trusted=False)
    untrusted.notification(note("D2", 100), WALL)
    held_again = untrusted.notification(note("D2", 100), WALL)
    assert acks(held_again) == [("D2", "duplicate")]
    assert held_again[0].reason == "already received, waiting for the clock"


def was(actions):
    return [(a.txn, a.status, a.reason, a.was) for a in actions if isinstance(a, Ack)]


def test_a_repeat_of_a_finished_payment_says_how_it_finished_and_an_unfinished_one_does_not():
    # The cloud asks again when the broker lost the first ack: "was" settles the payment.
    storage = MemoryStorage()
    desk = new_desk(storage, freshness_s=120)
    desk.notification(note("A1", 100), WALL)
    desk.notification(note("S1", 100, ts=WALL - 3600000), WALL)  # stale
    desk.notification(note("F1", 100), WALL)
    desk.notification(note("U1", 100), WALL)
    assert acks(desk.said(desk.next_utterance(), WALL, WALL)) == [("A1", "announced")]
    assert desk.next_utterance().name == desk_rules.SUMMARY_NAME  # S1's summary, before the fresh ones
    assert acks(desk.failed(desk.next_utterance(), OSError("speaker gone"), WALL)) == [("F1", "failed")]
    assert was(desk.notification(note("A1", 100), WALL)) == [("A1", "duplicate", "already announced", "announced")]
    assert was(desk.notification(note("S1", 100, ts=WALL - 3600000), WALL)) == \
        [("S1", "duplicate", "already stale", "stale")]
    assert was(desk.notification(note("F1", 100), WALL)) == [("F1", "duplicate", "already failed", "failed")]
    assert was(desk.notification(note("U1", 100), WALL)) == \
        [("U1", "duplicate", "already received, to be announced", None)]  # still to be said
    again = new_desk(storage, wall=WALL + 1000)  # a restart: the ledger on flash still knows
    assert [was(again.notification(note(t, 100), WALL + 1000))[0][3] for t in ("A1", "S1", "F1")] == \
        ["announced", "stale", "failed"]
    held = new_desk(trusted=False)
    held.notification(note("H1", 100), WALL)
    assert was(held.notification(note("H1", 100), WALL)) == \
        [("H1", "duplicate", "already received, waiting for the clock", None)]


def test_a_payment_a_restart_left_unsaid_and_then_too_old_is_answered_stale():
    storage = MemoryStorage()
    new_desk(storage, freshness_s=2).notification(note("U1", 100), WALL)  # in the ledger, words not said
    later = WALL + 10000
    again = PaymentDesk(storage, DEVICE, KEY, later, freshness_s=2)
    assert acks(again.clock(MONO, later, True)) == [("U1", "stale")]
    assert was(again.notification(note("U1", 100), later))[0][3] == "stale"
    assert new_desk(storage, wall=later).ledger.outcome("U1") == "stale"


def test_forged_broken_and_early_notifications_are_acked_invalid():
    desk = new_desk()
    forged = json.loads(note("F1", 100))
    forged["amount"] = 100000
    actions = desk.notification(json.dumps(forged).encode(), WALL)
    assert acks(actions) == [("F1", "invalid")] and actions[0].reason == "bad MAC"
    other_box = desk.notification(note("F2", 100, device="sb-0002"), WALL)
    assert other_box[0].reason == "bad MAC"
    broken = desk.notification(b'{"txn": "F3", "amount": 1.5', WALL)
    assert acks(broken) == [("F3", "invalid")] and broken[0].reason == "notification is not valid JSON"
    ahead = desk.notification(note("F4", 100, ts=WALL + 3600000), WALL)
    assert acks(ahead) == [("F4", "invalid")] and "3600 s ahead" in ahead[0].reason
    assert desk.next_utterance() is None and len(desk.ledger) == 0


def test_no_key_refuses_all_and_a_rotated_key_is_taken_from_disk():
    new_key = bytes(range(1, 33))
    on_disk = [None]
    desk = PaymentDesk(MemoryStorage(), DEVICE, None, WALL, read_key=lambda: on_disk[0])
    desk.clock(MONO, WALL, True)
    actions = desk.notification(note("K1", 100), WALL)
    assert actions[0].status == "invalid" and actions[0].reason == "no payment key on the device"
    on_disk[0] = KEY
    assert said(desk.notification(note("K2", 100), WALL)) == ["K2"] and desk.key == KEY
    on_disk[0] = new_key  # the identity was rotated: the cloud signs with the new key
    assert said(desk.notification(note("K3", 100, key=new_key), WALL)) == ["K3"] and desk.key == new_key
    on_disk[0] = bytes(32)  # a key that does not verify it either: refused, the good one kept
    assert desk.notification(note("K4", 100), WALL)[0].reason == "bad MAC"


def test_stale_payments_are_acked_at_once_and_said_in_one_summary_after_the_debounce():
    desk = new_desk(freshness_s=120)
    old = WALL - 3600000
    first = desk.notification(note("S1", 100, ts=old), WALL)
    assert acks(first) == [("S1", "stale")] and first[0].play is None
    assert first[0].reason == "paid 3600 s ago, over the 120 s limit: in the offline summary"
    assert desk.next_deadline() == MONO + desk_rules.SUMMARY_DEBOUNCE_MS
    assert desk.clock(MONO + 1500, WALL + 1500, True) == []
    second = desk.notification(note("S2", 250, ts=old), WALL + 1500)
    assert acks(second) == [("S2", "stale")]
    assert desk.next_deadline() == MONO + 1500 + desk_rules.SUMMARY_DEBOUNCE_MS  # moved on by the last one
    assert desk.clock(MONO + 3000, WALL + 3000, True) == [] and desk.next_utterance() is None
    due = desk.clock(MONO + 3500, WALL + 3500, True)
    assert said(due) == [desk_rules.SUMMARY_NAME] and desk.next_deadline() is None
    u = desk.next_utterance()
    assert u.tokens == voice.offline_summary_tokens(2, 350, "en-IN") and u.count == 2 and u.amount == 350
    assert desk.said(u, WALL, WALL) == []  # acked "stale" already
    assert desk.backlog.count == 0 and desk.tally.now(WALL) == (2, 350)
    assert acks(desk.notification(note("S1", 100, ts=old), WALL))[0][1] == "duplicate"


def test_a_fresh_payment_says_the_waiting_summary_first():
    desk = new_desk()
    desk.notification(note("S1", 500, ts=WALL - 3600000), WALL)
    actions = desk.notification(note("N1", 100), WALL + 100)
    assert said(actions) == [desk_rules.SUMMARY_NAME, "N1"]
    assert [name for name, _ in say_all(desk)] == [desk_rules.SUMMARY_NAME, "N1"]


def test_an_untrusted_clock_holds_payments_until_it_is_trusted():
    desk = new_desk(trusted=False, freshness_s=60)
    first = desk.notification(note("H1", 25000), WALL)
    assert acks(first) == [] and [a.name for a in first if isinstance(a, Prompt)] == ["clock_not_set"]
    desk.notification(note("H2", 700, ts=WALL - 3600000), WALL)
    assert [e[0] for e in desk.held.entries] == ["H1", "H2"] and desk.next_utterance() is None
    assert desk.next_deadline() == MONO + desk_rules.CLOCK_POLL_MS  # it looks at the clock again
    assert desk.clock(MONO + 1000, WALL + 1000, False) == []
    released = desk.clock(MONO + 2000, WALL + 2000, True)  # NTP synced
    assert said(released) == ["H1"] and acks(released) == [("H2", "stale")]  # judged in arrival order
    assert desk.held.entries == [] and desk.next_deadline() == MONO + 2000 + desk_rules.SUMMARY_DEBOUNCE_MS
    assert say_all(desk) == [("H1", [("H1", "announced")])]


def test_a_held_payment_comes_back_after_a_restart_and_a_full_hold_acks_failed():
    storage = MemoryStorage()
    desk = new_desk(storage, trusted=False)
    desk.hold_limit = 2
    desk.notification(note("H1", 100), WALL)
    desk.notification(note("H2", 200, provider="phonepe"), WALL)
    full = desk.notification(note("H3", 300), WALL)
    assert acks(full) == [("H3", "failed")] and "send again later" in full[0].reason
    assert "H3" not in desk.ledger and "H3" not in desk.held  # not recorded: the cloud sends it again
    again = new_desk(storage, trusted=False)  # power cycle: the held ones come back from flash
    assert [e[0] for e in again.held.entries] == ["H1", "H2"] and again.held.entries[1][4] == "phonepe"
    released = again.clock(MONO, WALL, True)
    assert said(released) == ["H1", "H2"]
    assert again.pending[1].tokens == voice.announcement_tokens(200, "en-IN", "phonepe")
    assert json.loads(storage.read(desk_rules.HELD_FILE)) == []


def test_the_hold_limit_is_the_modules_when_the_desk_is_made():
    saved = desk_rules.HOLD_LIMIT
    desk_rules.HOLD_LIMIT = 1
    try:
        desk = new_desk(trusted=False)
    finally:
        desk_rules.HOLD_LIMIT = saved
    desk.notification(note("L1", 100), WALL)
    assert acks(desk.notification(note("L2", 100), WALL)) == [("L2", "failed")]


def test_more_than_merge_above_waiting_payments_are_said_as_one():
    desk = new_desk()
    desk.notification(note("M0", 100), WALL)
    playing = desk.next_utterance()  # M0 is being said while four more arrive
    for i in range(1, 5):
        desk.notification(note("M%d" % i, 100 * i), WALL + i)
    assert len(desk.pending) == 4 > desk_rules.MERGE_ABOVE
    assert acks(desk.said(playing, WALL, WALL)) == [("M0", "announced")]
    merged = desk.next_utterance()
    assert merged.name == "merged M1 M2 M3 M4" and merged.txns == ["M1", "M2", "M3", "M4"]
    assert merged.tokens == voice.merged_tokens(4, 1000, "en-IN") and merged.rx_ms == [WALL + 1, WALL + 2,
                                                                                          WALL + 3, WALL + 4]
    assert desk_rules.said_txns(merged.name) == (["M1", "M2", "M3", "M4"], 4)
    out = desk.said(merged, WALL + 5, WALL + 6)
    assert acks(out) == [("M1", "announced"), ("M2", "announced"), ("M3", "announced"), ("M4", "announced")]
    assert [a.rx for a in out] == [WALL + 1, WALL + 2, WALL + 3, WALL + 4] and out[0].reason == "merged with 3 others"
    assert desk.last_said == (4, 1000, WALL + 4) and desk.unsaid.entries == []
    three = new_desk()
    for i in range(3):
        three.notification(note("P%d" % i, 100), WALL)
    assert [name for name, _ in say_all(three)] == ["P0", "P1", "P2"]  # MERGE_ABOVE or fewer: one by one


def test_a_full_queue_refuses_a_payment_without_recording_it_until_there_is_room():
    desk = new_desk()
    desk.queue_limit = 2
    desk.notification(note("Q1", 100), WALL)
    desk.notification(note("Q2", 100), WALL)
    assert raises(QueueFull, desk.notification, note("Q3", 100), WALL)
    assert "Q3" not in desk.ledger and "Q3" not in desk.unsaid and len(desk.pending) == 2
    assert not desk.say(["x"], "volume_max")  # nor anything else
    desk.next_utterance()
    assert said(desk.notification(note("Q3", 100), WALL)) == ["Q3"]  # the driver calls again


def test_a_restart_says_unsaid_payments_again_and_nothing_twice():
    storage = MemoryStorage()
    desk = new_desk(storage)
    for txn in ("R1", "R2", "R3"):
        desk.notification(note(txn, 100), WALL)
    first = desk.next_utterance()
    assert acks(desk.said(first, WALL, WALL)) == [("R1", "announced")]
    desk.next_utterance()  # R2 is being said when the power goes
    again = new_desk(storage, wall=WALL + 1000)  # back 1 s later: still fresh
    assert [name for name, _ in say_all(again)] == ["R2", "R3"]
    assert acks(again.notification(note("R1", 100), WALL + 1000)) == [("R1", "duplicate")]
    assert acks(again.notification(note("R2", 100), WALL + 1000)) == [("R2", "duplicate")]
    assert new_desk(storage, wall=WALL + 2000).next_utterance() is None  # said once, not again
    assert again.tally.now(WALL + 2000) == (3, 300)


def test_a_restart_long_after_summarises_what_was_not_said():
    storage = MemoryStorage()
    desk = new_desk(storage, freshness_s=2)
    desk.notification(note("U1", 100), WALL)
    desk.notification(note("U2", 250), WALL)
    later = WALL + 10000
    again = PaymentDesk(storage, DEVICE, KEY, later, freshness_s=2)
    assert again.clock(MONO, later, False) == [] and again.next_utterance() is None  # waits for the clock
    judged = again.clock(MONO + 10, later, True)
    assert acks(judged) == [("U1", "stale"), ("U2", "stale")]
    assert said(again.clock(MONO + 10 + desk_rules.SUMMARY_DEBOUNCE_MS, later, True)) == [desk_rules.SUMMARY_NAME]
    assert [name for name, _ in say_all(again)] == [desk_rules.SUMMARY_NAME]
    assert again.unsaid.entries == [] and again.tally.now(later) == (2, 350)


def test_a_summary_not_said_before_a_restart_is_said_after_it():
    storage = MemoryStorage()
    desk = new_desk(storage)
    desk.notification(note("B1", 100, ts=WALL - 3600000), WALL)
    again = PaymentDesk(storage, DEVICE, KEY, WALL)
    assert again.next_deadline() == 0  # due at once
    assert said(again.clock(MONO, WALL, False)) == [desk_rules.SUMMARY_NAME]


def test_a_playback_failure_acks_failed_and_leaves_nothing_to_say():
    storage = MemoryStorage()
    desk = new_desk(storage)
    desk.notification(note("X0", 100), WALL)
    first = desk.next_utterance()
    for i in range(1, 5):
        desk.notification(note("X%d" % i, 100), WALL + i)
    out = desk.failed(first, OSError("speaker gone"), WALL + 7)
    assert acks(out) == [("X0", "failed")] and out[0].play == WALL + 7 and out[0].done is None
    assert out[0].reason == "playback failed: %r" % (OSError("speaker gone"),)
    merged = desk.next_utterance()
    assert acks(desk.failed(merged, ValueError("x"), WALL)) == [("X%d" % i, "failed") for i in range(1, 5)]
    assert desk.unsaid.entries == [] and new_desk(storage).next_utterance() is None
    assert desk.last_said is None


def test_the_tally_counts_todays_announced_and_stale_payments_by_the_local_day():
    desk = new_desk(freshness_s=60)
    desk.notification(note("T1", 10000), WALL)
    desk.notification(note("T2", 2500, ts=WALL - 3600000), WALL)  # stale, but paid today (local)
    desk.notification(note("T3", 700, ts=WALL - 6 * 3600000), WALL)  # 23:30 yesterday in India
    assert desk.tally.now(WALL) == (2, 12500)
    next_local_day = WALL + 19 * 3600000
    assert desk.tally.now(next_local_day) == (0, 0)
    assert new_desk(desk.ledger.storage).tally.now(WALL) == (2, 12500)  # kept on flash


def test_one_replay_at_most_and_it_waits_behind_payments():
    desk = new_desk()
    assert desk.replay() == "nothing announced yet"
    desk.notification(note("P1", 100), WALL)
    say_all(desk)
    assert desk.replay() is None and desk.replay() == "replay already pending"
    desk.notification(note("P2", 200), WALL)
    assert [name for name, _ in say_all(desk)] == ["P2", desk_rules.REPLAY_NAME]
    assert desk.replay() is None
    playing = desk.next_utterance()
    assert playing.name == desk_rules.REPLAY_NAME and desk.replay() == "replay already pending"
    assert desk.said(playing, WALL, WALL) == [] and desk.last_said == (1, 200, WALL)
    minutes = 5 * 60 + 30  # WALL is 05:30 in India
    assert desk.pending == [] and desk.replay() is None
    assert desk.pending[0].tokens == voice.replay_tokens(1, 200, minutes // 60, minutes % 60, "en-IN")


def test_a_payment_whose_txn_looks_like_a_summary_name_is_a_payment():
    # A txn may be anything printable: "offline-summary" or "replay" are payments all the same.
    desk = new_desk()
    desk.notification(note(desk_rules.SUMMARY_NAME, 300), WALL)
    desk.notification(note("B1", 100, ts=WALL - 3600000), WALL)  # stale: its summary not said yet
    u = desk.next_utterance()
    assert acks(desk.said(u, WALL, WALL)) == [(desk_rules.SUMMARY_NAME, "announced")]
    assert (desk.backlog.count, desk.backlog.total) == (1, 100)  # still owed, on flash
    desk.notification(note(desk_rules.REPLAY_NAME, 100), WALL)
    assert desk.replay() is None  # the waiting payment named "replay" is not a replay


def test_a_box_upgraded_from_the_journal_files_says_what_it_had_not_said_once():
    storage = MemoryStorage()
    storage.write("ledger.txt", b"A1\nB1\n")  # what an earlier version left on flash
    storage.write(desk_rules.UNSAID_FILE, json.dumps([["B1", 700, WALL, WALL + 1, "gpay"]]).encode())
    desk = new_desk(storage, wall=WALL + 1000)
    assert storage.read(desk_rules.UNSAID_FILE) is None and storage.read("ledger.txt") is None
    assert desk.unsaid.entries == [["B1", 700, WALL, WALL + 1, "gpay"]]
    u = desk.next_utterance()
    assert u.txns == ("B1",) and u.tokens == voice.announcement_tokens(700, "en-IN", "gpay")
    assert acks(desk.said(u, WALL, WALL)) == [("B1", "announced")]
    again = new_desk(storage, wall=WALL + 2000)
    assert again.next_utterance() is None and again.ledger.order == ["A1", "B1"]
    assert acks(again.notification(note("A1", 100), WALL + 2000)) == [("A1", "duplicate")]


def test_a_payment_to_be_said_keeps_its_fields_across_a_restart_in_one_ledger_record():
    storage = MemoryStorage()
    desk = new_desk(storage)
    desk.notification(note("K1", 12345, provider="phonepe"), WALL + 7)
    desk.notification(note("K2", 5), WALL + 8)
    assert storage.files == {} and desk.ledger.ring.seq == 3  # no file at all: two records
    again = new_desk(storage, wall=WALL + 1000)
    assert again.unsaid.entries == [["K1", 12345, WALL, WALL + 7, "phonepe"], ["K2", 5, WALL, WALL + 8, None]]
    assert acks(again.notification(note("K1", 12345, provider="phonepe"), WALL + 1000)) == [("K1", "duplicate")]
    assert [name for name, _ in say_all(again)] == ["K1", "K2"]
    assert new_desk(storage, wall=WALL + 2000).unsaid.entries == []
