"""The pieces a scenario key's rule is made of: key -> (types, check(value) -> problem or None,
default). scenario.py checks the file with them; faults.py states each fault kind's keys in them."""

import math

INT, NUM, BOOL, STR = (int,), (int, float), (bool,), (str,)
MAX_DEVICES = 1000000  # a fleet, or a fault's devices


def num(lo=None, hi=None, lo_open=False):
    """A check: a finite number in [lo, hi] (lo excluded when lo_open)."""
    def check(v):
        if isinstance(v, float) and not math.isfinite(v):
            return "must be a finite number"
        if lo is not None and (v <= lo if lo_open else v < lo):
            return "must be %s %s" % (">" if lo_open else ">=", lo)
        if hi is not None and v > hi:
            return "must be <= %s" % hi
        return None
    return check


def one_of(choices):
    return lambda v: None if v in choices else "must be one of %s" % ", ".join(choices)


def type_name(types):
    return {INT: "an integer", NUM: "a number", BOOL: "true or false", STR: "a string",
            RATE: 'a number or "auto"'}.get(types, "?")


# ---- the fleet's connect rate: connects per second, or "auto" (fleet.py's closed-loop ramp) ----

AUTO = "auto"
RATE = (int, float, str)
MAX_CONNECT_RATE = 100000


def check_connect_rate(v):
    """A check for [fleet] connect_rate: "auto", or a finite number in (0, MAX_CONNECT_RATE]."""
    if isinstance(v, str):
        return None if v == AUTO else 'must be a number of connects per second or "auto"'
    return num(0, MAX_CONNECT_RATE, lo_open=True)(v)


def parse_connect_rate(text):
    """--connect-rate's value: "auto" or a positive number; ValueError (one line) otherwise."""
    text = str(text).strip()
    if text.lower() == AUTO:
        return AUTO
    try:
        v = float(text)
    except ValueError:
        raise ValueError('--connect-rate must be a number of connects per second or "auto", not %r' % text) from None
    problem = check_connect_rate(v)
    if problem:
        raise ValueError("--connect-rate %s, not %s" % (problem, text))
    return v
