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
    return {INT: "an integer", NUM: "a number", BOOL: "true or false", STR: "a string"}.get(types, "?")
