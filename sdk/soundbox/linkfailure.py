"""What ended a connection attempt, the same way on MicroPython and CPython (pure).

The two runtimes show the same events differently: MicroPython's open_connection returns
before a non-blocking connect completes, so a refused TCP connect surfaces as
OSError(111) from the first write or read, where CPython raises ConnectionRefusedError
from open_connection; a failed check of the broker's certificate is a ValueError on
MicroPython ("The certificate is not correctly signed by the trusted CA") and an
SSLCertVerificationError (a ValueError and an OSError) on CPython.
"""

# errnos that say the TCP connection was never made (a broker restarting, no route).
# MicroPython's open_connection returns before a non-blocking connect completes, so
# these surface from the first write or read there; they are never a TLS refusal.
NEVER_CONNECTED = (111, 113, 101, 110)  # ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, ETIMEDOUT

# What ended a connection attempt (see failure_kind).
UNREACHABLE = "unreachable"  # no TCP connection: retry soon
UNTRUSTED = "untrusted"  # the broker's certificate failed our check: retry late
CLOSED = "closed"  # connected, then closed or reset: a refusal sign before CONNACK over TLS


def failure_kind(error):
    """UNREACHABLE, UNTRUSTED or CLOSED for the exception that ended a connection."""
    if isinstance(error, ValueError):
        return UNTRUSTED
    if isinstance(error, OSError) and error.args and error.args[0] in NEVER_CONNECTED:
        return UNREACHABLE
    return CLOSED


class Refusal:
    """Why the client waits the longest backoff, when no CONNACK said so: our identity is
    unusable or rejected (server False), or the broker's certificate is not trusted
    (server True). Retrying soon would not help either way."""

    permanent = True

    def __init__(self, reason, server=False):
        self.reason = reason
        self.server = server
