"""Guest side of bench/heap_budget.py: runs INSIDE the MicroPython VM, against the compiled bundle.

SECTIONS maps a path's name to its steps, in order: (step name, function).
Each function takes the shared state dict and returns what the path keeps alive
(stored back into the state, so a later step can use it). To add a path (the
OTA path: verify a chunk, update progress), write its steps here and add an
entry to SECTIONS; heap_budget.py measures every section the same way.
"""

import gc
import json

from soundbox import payment, voice
from soundbox.ledger import Ledger

DEVICE = "sb-0001"
KEY = bytes(range(32))
NOW = 1767225600000  # 2026-01-01, ms
LEDGER_CAPACITY = 256


class FlashStorage:
    """Storage whose bytes are not in RAM, as on the board (flash); the VM has no writable disk."""

    def read(self, name):
        return None

    def write(self, name, data):
        pass

    def append(self, name, data):
        pass


def make_notification(n, amount):
    return json.dumps(payment.sign(KEY, DEVICE, "T%08d" % n, amount, NOW - 1000)).encode()


# ---- the payment path: what the app does for each notification ----------------------------

class BenchHal:
    """Just enough HAL for Soundbox(hal, config) to be built (nothing runs: no event loop here)."""

    def __init__(self):
        from soundbox_fw.esp32hal import HardwareClock

        self.storage = FlashStorage()
        self.clock = HardwareClock(None)
        self.audio = self.led = self.buttons = self.battery = None
        self.open_connection = None

    def log(self, message):
        pass


def setup_payment(state):
    """Long-lived state at its largest: the app object, a full ledger, the languages' word tables."""
    from soundbox_fw.app import Soundbox

    state["app"] = Soundbox(BenchHal(), {"device_id": DEVICE, "broker_host": "broker", "broker_port": 8883,
                                         "identity": "/input", "lang": "hi"})
    assert state["app"].payment_key is not None
    ledger = Ledger(FlashStorage(), capacity=LEDGER_CAPACITY)
    for n in range(LEDGER_CAPACITY):
        ledger.add("OLD%08d" % n)
    state["ledger"] = ledger
    voice.announcement_tokens(100, "en-IN")
    voice.announcement_tokens(100, "hi")  # loads voice_hi's table (the app keeps one language loaded)
    state["payload"] = make_notification(1, 12345678)  # 1,23,456.78 rupees: a long announcement
    return None


def step_parse(state):
    state["note"] = payment.parse_notification(state["payload"])


def step_verify_mac(state):
    assert payment.authentic(state["note"], KEY, DEVICE)


def step_dedup(state):
    note = state["note"]
    assert note.txn not in state["ledger"]
    state["ledger"].add(note.txn)


def step_plan_words(state):
    state["tokens"] = voice.announcement_tokens(state["note"].amount, "hi")


def step_ack(state):
    state["ack"] = payment.ack_payload(state["note"].txn, payment.ANNOUNCED, "", NOW, NOW + 10, NOW + 5000)


def step_one_payment(state):
    """A whole payment, parse to ack, with no collection in between: the path's peak."""
    note = payment.parse_notification(make_notification(2, 9999999))
    assert payment.authentic(note, KEY, DEVICE)
    assert note.txn not in state["ledger"]
    state["ledger"].add(note.txn)
    tokens = voice.announcement_tokens(note.amount, "hi")
    state["ack2"] = (tokens, payment.ack_payload(note.txn, payment.ANNOUNCED, "", NOW, NOW + 10, NOW + 5000))


def step_burst_of_20(state):
    """20 payments back to back without a collection: the garbage a burst leaves for the GC."""
    for n in range(20):
        note = payment.parse_notification(make_notification(100 + n, 1000 + n * 37))
        assert payment.authentic(note, KEY, DEVICE)
        state["ledger"].add(note.txn)
        voice.announcement_tokens(note.amount, "hi")
        payment.ack_payload(note.txn, payment.ANNOUNCED, "", NOW, NOW, NOW)


SECTIONS = {
    "payment": (setup_payment, [("parse", step_parse), ("verify MAC", step_verify_mac), ("dedup", step_dedup),
                                ("plan words", step_plan_words), ("ack", step_ack),
                                ("one payment", step_one_payment), ("burst of 20", step_burst_of_20)]),
}
