"""Tiny assertion helpers for core tests that also run under MicroPython (no pytest there)."""


def raises(exc_type, fn, *args):
    """True if fn(*args) raised exc_type; False if it returned. Other exceptions propagate."""
    try:
        fn(*args)
    except exc_type:
        return True
    return False


def error_message(exc_type, fn, *args):
    """The message of the exc_type that fn(*args) raised, or None if it returned."""
    try:
        fn(*args)
    except exc_type as e:
        return str(e)
    return None
