"""Payment notifications and acks: the device's view of the wire format.

Notification (cloud -> sb/<id>/notify, QoS 1), JSON:
    {"txn": "T123", "amount": 25000, "currency": "INR", "ts": 1732240000123}
amount is integer paise (a float, even 250.0, is refused); ts is the cloud's
wall-clock ms at send time; currency is optional and must be INR.

Ack (device -> sb/<id>/ack, QoS 1), JSON:
    {"txn": "T123", "status": "announced", "reason": "", "rx": ms, "play": ms, "done": ms}
status is announced | duplicate | invalid | failed (the speaker could not play it);
reason says why when not announced.
"""

import json

from soundbox.voice import MAX_PAISE

MAX_TXN_LEN = 64

ANNOUNCED = "announced"
DUPLICATE = "duplicate"
INVALID = "invalid"
FAILED = "failed"


class InvalidNotification(Exception):
    def __init__(self, reason, txn=None):
        super().__init__(reason)
        self.reason = reason
        self.txn = txn


def valid_txn(txn):
    """1-64 printable ASCII characters, no spaces (so it is safe in logs, files and topics)."""
    if type(txn) is not str or not 0 < len(txn) <= MAX_TXN_LEN:
        return False
    for ch in txn:
        if not "!" <= ch <= "~":
            return False
    return True


def amount_problem(amount):
    """Why `amount` is not a valid number of paise, or None if it is."""
    if type(amount) is float:
        return "amount must be integer paise, not a float"
    if type(amount) is not int:  # also refuses bool
        return "amount must be integer paise"
    if amount <= 0:
        return "amount must be positive"
    if amount > MAX_PAISE:
        return "amount exceeds %d paise" % MAX_PAISE
    return None


def parse_notification(payload):
    """-> (txn, amount). Raises InvalidNotification with a reason (and the txn if readable)."""
    try:
        msg = json.loads(payload)
    except (ValueError, UnicodeError):
        raise InvalidNotification("notification is not valid JSON")
    if type(msg) is not dict:
        raise InvalidNotification("notification must be a JSON object")
    txn = msg.get("txn")
    if txn is None:
        raise InvalidNotification("missing field: txn")
    if not valid_txn(txn):
        raise InvalidNotification("txn must be 1-64 printable ASCII characters without spaces")
    if "amount" not in msg:
        raise InvalidNotification("missing field: amount", txn)
    problem = amount_problem(msg["amount"])
    if problem:
        raise InvalidNotification(problem, txn)
    currency = msg.get("currency", "INR")
    if currency != "INR":
        raise InvalidNotification("unknown currency: %s" % (currency,), txn)
    return txn, msg["amount"]


def ack_payload(txn, status, reason, rx, play=None, done=None):
    return json.dumps({"txn": txn, "status": status, "reason": reason,
                       "rx": rx, "play": play, "done": done}).encode()
