"""Checks a payment request against the wire contract before anything is recorded or published."""
import re

from soundbox.payment import MAX_PAISE, valid_txn
from soundbox.voice import PROVIDERS
from soundbox_cloud.errors import Rejected

DEVICE_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
REQUIRED_FIELDS = ("device", "amount", "txn")


def is_device_id(value):
    return isinstance(value, str) and DEVICE_ID.fullmatch(value) is not None


# The device applies the same rule (1-64 printable ASCII, no spaces).
is_txn = valid_txn


def check_amount(amount):
    # bool is a subclass of int in Python, so it must be ruled out first.
    if isinstance(amount, bool):
        raise Rejected(400, "amount", "amount must be an integer number of paise, not a boolean")
    if isinstance(amount, float):
        raise Rejected(400, "amount", "amount must be an integer number of paise, not a float (%r)" % amount)
    if not isinstance(amount, int):
        raise Rejected(400, "amount", "amount must be an integer number of paise")
    if amount <= 0:
        raise Rejected(422, "amount", "amount must be at least 1 paisa, got %d" % amount)
    if amount > MAX_PAISE:
        raise Rejected(422, "amount", "amount must be at most %d paise" % MAX_PAISE)
    return amount


def check_provider(provider):
    """None, or one of the provider ids the device's wording knows (soundbox.voice.PROVIDERS)."""
    if provider is not None and (not isinstance(provider, str) or provider not in PROVIDERS):
        raise Rejected(422, "provider", "unknown provider %s; known: %s"
                       % (_short_repr(provider), ", ".join(PROVIDERS)))
    return provider


def _short_repr(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_payment_request(body):
    """Return (device, amount, txn, provider) from a decoded request body, or raise Rejected."""
    if not isinstance(body, dict):
        raise Rejected(400, "body", "request body must be a JSON object")
    for field in REQUIRED_FIELDS:
        if field not in body:
            raise Rejected(400, field, "missing field '%s'" % field)
    device, amount, txn = body["device"], body["amount"], body["txn"]
    if not is_device_id(device):
        raise Rejected(400, "device", "device must match [a-z0-9][a-z0-9-]{0,31}")
    check_amount(amount)
    if not is_txn(txn):
        raise Rejected(400, "txn", "txn must be 1-64 printable ASCII characters without spaces")
    return device, amount, txn, check_provider(body.get("provider"))
