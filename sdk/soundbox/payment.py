"""Payment notifications and acks: the device's view of the wire format.

Notification (cloud -> sb/<id>/notify, QoS 1), JSON:
    {"txn": "T123", "amount": 25000, "currency": "INR", "ts": 1732240000123,
     "provider": "phonepe", "mac": "<64 hex digits>"}
amount is integer paise (a float, even 250.0, is refused); ts is the cloud's
wall-clock ms when the payment was first sent; currency is optional and must be
INR; provider is optional, the app the customer paid with (an id of
soundbox.voice.PROVIDERS: "received on PhonePe ..."); mac is HMAC-SHA256, under the
device's payment key, of `canonical(...)`, which covers the provider when there is one.
A well-formed provider id the box does not know (a newer cloud's) is verified and the
payment announced without it: a payment is never refused for its wording.

The payment key is HMAC-SHA256(master secret, device id): the cloud derives it
from its master secret, the device holds its own in /certs/payment.key (hex),
delivered with its identity. Putting the device id into the signed bytes binds
a notification to one box: a valid notification for sb-0002 replayed onto
sb-0001's topic does not verify there.

Ack (device -> sb/<id>/ack, QoS 1), JSON:
    {"txn": "T123", "status": "announced", "reason": "", "rx": ms, "play": ms, "done": ms}
status is announced | duplicate | stale (authentic but older than the freshness
limit: counted in the offline summary instead of announced alone) | invalid |
failed (the speaker could not play it, or it could not be held);
reason says why when not announced. A duplicate of a payment the box has finished also
carries "was": announced | stale | failed, how it finished (soundbox.wire).
"""

import binascii
import json

from soundbox import crypto
from soundbox.voice import MAX_PAISE
# The ack statuses are the wire contract's (payment.ANNOUNCED etc. stay for callers).
from soundbox.wire import ANNOUNCED, DUPLICATE, FAILED, INVALID, STALE  # noqa: F401

MAX_TXN_LEN = 64
# A notification is about 190 bytes; 1 KiB leaves room for new fields and bounds what a
# malformed one can cost the parser (a 1,000-deep nesting bomb is 2 KiB).
MAX_NOTIFICATION_BYTES = 1024
MAC_VERSION = "sb-pay-v1"  # first line of the signed bytes: a new encoding gets a new tag
MAC_VERSION_PROVIDER = "sb-pay-v2"  # the same lines and then the provider's
MAX_PROVIDER_LEN = 16
KEY_SIZE = 32

# Verdicts of `age_verdict`; STALE (older than the limit) is the ack status's word too.
FRESH = "fresh"
AHEAD = "ahead"  # stamped later than the device's clock allows


class InvalidNotification(Exception):
    def __init__(self, reason, txn=None):
        super().__init__(reason)
        self.reason = reason
        self.txn = txn


class Notification:
    """The fields of a well-formed notification; `mac` is the 32 raw bytes, not yet checked."""

    def __init__(self, txn, amount, currency, ts, mac, provider=None):
        self.txn = txn
        self.provider = provider
        self.amount = amount
        self.currency = currency
        self.ts = ts
        self.mac = mac


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


# ---- the signed bytes ---------------------------------------------------------

def canonical(device_id, txn, amount, currency, ts, provider=None):
    """The exact bytes the MAC covers: one field per line, in a fixed order, after a
    version tag. No field may contain a newline (txn and device id rules already say
    so), which makes the encoding unambiguous. Without a provider the bytes are those of
    sb-pay-v1; with one, its own tag and a last line: adding or stripping a provider
    breaks the MAC."""
    for text in (device_id, txn, currency):
        if type(text) is not str or "\n" in text:
            raise ValueError("canonical fields must be strings without newlines")
    if type(amount) is not int or type(ts) is not int:
        raise ValueError("amount and ts must be integers")
    if provider is None:
        return ("%s\n%s\n%s\n%d\n%s\n%d" % (MAC_VERSION, device_id, txn, amount, currency, ts)).encode()
    if provider_problem(provider):
        raise ValueError(provider_problem(provider))
    return ("%s\n%s\n%s\n%d\n%s\n%d\n%s"
            % (MAC_VERSION_PROVIDER, device_id, txn, amount, currency, ts, provider)).encode()


def provider_problem(provider):
    """Why `provider` cannot be a provider id (1-16 of a-z and 0-9), or None."""
    if type(provider) is not str or not 0 < len(provider) <= MAX_PROVIDER_LEN:
        return "provider must be 1-%d lowercase letters or digits" % MAX_PROVIDER_LEN
    for c in provider:
        if not ("a" <= c <= "z" or "0" <= c <= "9"):
            return "provider must be 1-%d lowercase letters or digits" % MAX_PROVIDER_LEN
    return None


def mac(key, device_id, txn, amount, currency, ts, provider=None):
    """HMAC-SHA256 of the canonical bytes: 32 raw bytes."""
    return crypto.hmac_sha256(key, canonical(device_id, txn, amount, currency, ts, provider))


def sign(key, device_id, txn, amount, ts, currency="INR", provider=None):
    """The notification as a dict, "mac" included (the cloud's side; tests use it too)."""
    digest = mac(key, device_id, txn, amount, currency, ts, provider)
    note = {"txn": txn, "amount": amount, "currency": currency, "ts": ts,
            "mac": binascii.hexlify(digest).decode()}
    if provider is not None:
        note["provider"] = provider
    return note


def authentic(note, key, device_id):
    """True when note.mac is the MAC of its fields for this device, compared in constant time."""
    expected = mac(key, device_id, note.txn, note.amount, note.currency, note.ts, note.provider)
    return crypto.equal(expected, note.mac)


def parse_key(data):
    """bytes of payment.key (64 hex digits, whitespace around allowed) -> the 32-byte key.
    The error never quotes the file: it is key material."""
    try:
        key = binascii.unhexlify(data.strip())
    except (ValueError, TypeError):
        raise ValueError("payment key is not hex")
    if len(key) != KEY_SIZE:
        raise ValueError("payment key must be %d bytes (%d hex digits)" % (KEY_SIZE, 2 * KEY_SIZE))
    return key


# ---- freshness ------------------------------------------------------------------

def age_verdict(ts, now_ms, limit_ms):
    """FRESH, STALE (older than limit_ms) or AHEAD (more than limit_ms in the future).
    Only meaningful when now_ms comes from a trusted clock."""
    age = now_ms - ts
    if age > limit_ms:
        return STALE
    if age < -limit_ms:
        return AHEAD
    return FRESH


# ---- parsing ----------------------------------------------------------------------

def parse_notification(payload):
    """-> Notification with well-formed fields; the MAC is checked by `authentic`.
    Raises InvalidNotification with a reason (and the txn if readable), whatever the bytes:
    so every malformed notification can be acked `invalid`, never dropped unanswered."""
    if len(payload) > MAX_NOTIFICATION_BYTES:
        raise InvalidNotification("notification is %d bytes, over the %d-byte limit"
                                  % (len(payload), MAX_NOTIFICATION_BYTES), txn_hint(payload))
    try:
        msg = json.loads(payload)
    except (ValueError, UnicodeError):
        raise InvalidNotification("notification is not valid JSON", txn_hint(payload))
    except (RuntimeError, MemoryError):  # RecursionError on CPython, deep nesting either way
        raise InvalidNotification("notification is nested too deep", txn_hint(payload))
    if type(msg) is not dict:
        raise InvalidNotification("notification must be a JSON object", txn_hint(payload))
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
        raise InvalidNotification("unknown currency: %s" % (str(currency)[:16],), txn)
    ts = msg.get("ts")
    if ts is None:
        raise InvalidNotification("missing field: ts", txn)
    if type(ts) is not int or ts <= 0:
        raise InvalidNotification("ts must be a positive integer (ms since 1970)", txn)
    provider = msg.get("provider")
    if provider is not None and provider_problem(provider):
        raise InvalidNotification(provider_problem(provider), txn)
    digest = msg.get("mac")
    if digest is None:
        raise InvalidNotification("missing field: mac", txn)
    return Notification(txn, msg["amount"], currency, ts, _mac_bytes(digest, txn), provider)


def txn_hint(payload):
    """The txn of a notification too broken to parse, when its bytes still show one as
    `"txn": "..."` (else None), so the cloud can match the `invalid` ack to its payment."""
    at = payload.find(b'"txn"')
    if at < 0:
        return None
    rest = payload[at + 5:].lstrip()
    if rest[:1] != b":":
        return None
    rest = rest[1:].lstrip()
    end = rest.find(b'"', 1)
    if rest[:1] != b'"' or end < 0:
        return None
    try:
        txn = rest[1:end].decode()
    except UnicodeError:
        return None
    return txn if valid_txn(txn) else None


def _mac_bytes(digest, txn):
    if type(digest) is not str or len(digest) != 2 * crypto.DIGEST_SIZE:
        raise InvalidNotification("mac must be %d hex digits" % (2 * crypto.DIGEST_SIZE), txn)
    try:
        return binascii.unhexlify(digest.encode())
    except ValueError:
        raise InvalidNotification("mac must be %d hex digits" % (2 * crypto.DIGEST_SIZE), txn)


def ack_payload(txn, status, reason, rx, play=None, done=None, was=None):
    ack = {"txn": txn, "status": status, "reason": reason, "rx": rx, "play": play, "done": done}
    if was:
        ack["was"] = was
    return json.dumps(ack).encode()
