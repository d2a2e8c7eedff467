"""Canonical encoding, MAC, verification and freshness of notifications; CPython and MicroPython."""

import binascii
import json

from check import raises
from soundbox import crypto, payment

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
DEVICE = "sb-0001"
TS = 1732240000123


def parsed(fields):
    return payment.parse_notification(json.dumps(fields).encode())


def reason(fields):
    try:
        parsed(fields)
    except payment.InvalidNotification as e:
        return e.reason, e.txn
    return None


def test_canonical_encoding_is_exact_and_versioned():
    assert payment.canonical(DEVICE, "T1", 25000, "INR", TS) == (
        b"sb-pay-v1\nsb-0001\nT1\n25000\nINR\n1732240000123")
    assert payment.canonical("sb-0002", "T1", 25000, "INR", TS) != payment.canonical(DEVICE, "T1", 25000, "INR", TS)


def test_canonical_refuses_what_would_make_it_ambiguous():
    for args in ((DEVICE, "T1\n2", 1, "INR", TS), ("sb\n1", "T1", 1, "INR", TS),
                 (DEVICE, "T1", 1.0, "INR", TS), (DEVICE, "T1", 1, "INR", "1"), (DEVICE, 7, 1, "INR", TS)):
        assert raises(ValueError, payment.canonical, *args), args


def test_mac_is_hmac_sha256_of_the_canonical_bytes():
    expected = crypto.hmac_sha256(KEY, b"sb-pay-v1\nsb-0001\nT1\n25000\nINR\n1732240000123")
    assert payment.mac(KEY, DEVICE, "T1", 25000, "INR", TS) == expected
    note = payment.sign(KEY, DEVICE, "T1", 25000, TS)
    assert note == {"txn": "T1", "amount": 25000, "currency": "INR", "ts": TS,
                    "mac": binascii.hexlify(expected).decode()}


def test_signed_notification_verifies_for_its_device_only():
    note = parsed(payment.sign(KEY, DEVICE, "T1", 25000, TS))
    assert (note.txn, note.amount, note.currency, note.ts) == ("T1", 25000, "INR", TS)
    assert payment.authentic(note, KEY, DEVICE)
    assert not payment.authentic(note, OTHER_KEY, DEVICE)  # another device's key
    assert not payment.authentic(note, KEY, "sb-0002")  # replayed onto another box


def test_any_changed_field_breaks_the_mac():
    good = payment.sign(KEY, DEVICE, "T1", 25000, TS)
    for field, value in (("txn", "T2"), ("amount", 25001), ("ts", TS + 1),
                         ("mac", "0" * 64), ("mac", good["mac"][:-1] + ("1" if good["mac"][-1] == "0" else "0"))):
        forged = dict(good)
        forged[field] = value
        assert not payment.authentic(parsed(forged), KEY, DEVICE), field
    upper = dict(good)
    upper["mac"] = good["mac"].upper()  # hex case is not part of the value
    assert payment.authentic(parsed(upper), KEY, DEVICE)


def test_missing_currency_means_inr_and_is_signed_as_such():
    fields = payment.sign(KEY, DEVICE, "T1", 100, TS)
    del fields["currency"]
    assert payment.authentic(parsed(fields), KEY, DEVICE)


def test_ts_and_mac_are_required_and_checked():
    good = payment.sign(KEY, DEVICE, "T1", 100, TS)
    cases = [
        ("ts", None, "missing field: ts"),
        ("ts", 1.5, "ts must be a positive integer (ms since 1970)"),
        ("ts", "1732240000123", "ts must be a positive integer (ms since 1970)"),
        ("ts", True, "ts must be a positive integer (ms since 1970)"),
        ("ts", 0, "ts must be a positive integer (ms since 1970)"),
        ("mac", None, "missing field: mac"),
        ("mac", "abc", "mac must be 64 hex digits"),
        ("mac", "zz" * 32, "mac must be 64 hex digits"),
        ("mac", 5, "mac must be 64 hex digits"),
    ]
    for field, value, expected in cases:
        fields = dict(good)
        if value is None:
            del fields[field]
        else:
            fields[field] = value
        assert reason(fields) == (expected, "T1"), (field, value)


def test_field_errors_come_before_the_mac_check():
    # An unsigned malformed notification says what is wrong with its fields.
    assert reason({"txn": "T1", "amount": 250.0})[0] == "amount must be integer paise, not a float"
    assert reason({"txn": "T1", "amount": 5, "currency": "USD"}) == ("unknown currency: USD", "T1")
    assert reason({"txn": "T1", "amount": 5, "currency": "X" * 500})[0] == "unknown currency: " + "X" * 16


def test_payment_key_file_parses_and_errors_do_not_quote_it():
    text = binascii.hexlify(KEY) + b"\n"
    assert payment.parse_key(text) == KEY
    assert payment.parse_key(b"  " + text.upper()) == KEY
    for bad in (b"", b"00" * 31, b"00" * 33, b"zz" * 32, b"0" * 63):
        try:
            payment.parse_key(bad)
        except ValueError as e:
            assert "zz" not in str(e) and "0000" not in str(e)
        else:
            raise AssertionError("accepted %r" % bad)


def test_age_verdict_against_the_limit():
    limit = 120000
    now = TS + 10 ** 6
    assert payment.age_verdict(now, now, limit) == payment.FRESH
    assert payment.age_verdict(now - limit, now, limit) == payment.FRESH
    assert payment.age_verdict(now - limit - 1, now, limit) == payment.STALE
    assert payment.age_verdict(now - 10 ** 9, now, limit) == payment.STALE
    assert payment.age_verdict(now + limit, now, limit) == payment.FRESH
    assert payment.age_verdict(now + limit + 1, now, limit) == payment.AHEAD


def test_the_provider_is_signed_with_its_own_tag():
    assert payment.canonical(DEVICE, "T1", 25000, "INR", TS, "phonepe") == (
        b"sb-pay-v2\nsb-0001\nT1\n25000\nINR\n1732240000123\nphonepe")
    note = payment.sign(KEY, DEVICE, "T1", 25000, TS, provider="phonepe")
    assert note["provider"] == "phonepe" and "provider" not in payment.sign(KEY, DEVICE, "T1", 25000, TS)
    parsed = payment.parse_notification(json.dumps(note).encode())
    assert parsed.provider == "phonepe" and payment.authentic(parsed, KEY, DEVICE)


def test_adding_stripping_or_changing_the_provider_breaks_the_mac():
    signed = payment.sign(KEY, DEVICE, "T1", 25000, TS, provider="phonepe")
    plain = payment.sign(KEY, DEVICE, "T1", 25000, TS)
    for forged in (dict(signed, provider="paytm"), dict(plain, provider="phonepe"),
                   dict((k, v) for k, v in signed.items() if k != "provider")):
        note = payment.parse_notification(json.dumps(forged).encode())
        assert not payment.authentic(note, KEY, DEVICE), forged


def test_a_malformed_provider_is_an_invalid_notification_with_its_txn():
    for bad in ("", "PhonePe", "phone pe", "a" * 17, 7, ["upi"], "upi\n"):
        note = dict(payment.sign(KEY, DEVICE, "T1", 25000, TS), provider=bad)
        try:
            payment.parse_notification(json.dumps(note).encode())
            assert False, "accepted provider %r" % (bad,)
        except payment.InvalidNotification as e:
            assert e.txn == "T1" and "provider must be" in e.reason, (bad, e.reason)
    # A well-formed id the box does not know is authentic; the app says the payment without it.
    note = payment.parse_notification(json.dumps(payment.sign(KEY, DEVICE, "T1", 25000, TS, provider="newpay")).encode())
    assert note.provider == "newpay" and payment.authentic(note, KEY, DEVICE)
