"""How a connection attempt ended, told apart the same way on every runtime: a refused
TCP connect is never taken for a TLS refusal, a failed certificate check is an untrusted
broker. The errors are the ones each runtime really raises (measured on the MicroPython
unix port 1.29 with mbedTLS and on CPython 3.11); the real sockets are in the end-to-end
tests (tests/test_micropython_e2e.py, tests/test_mqttclient.py)."""

from soundbox.linkfailure import CLOSED, UNREACHABLE, UNTRUSTED, Refusal, failure_kind


def test_a_refused_or_unroutable_connect_is_unreachable():
    for errno in (111, 113, 101, 110):  # MicroPython: OSError(errno) from the first write or read
        assert failure_kind(OSError(errno)) == UNREACHABLE
    assert failure_kind(OSError(111, "Connect call failed")) == UNREACHABLE  # CPython's shape


def test_a_failed_certificate_check_is_an_untrusted_broker():
    # MicroPython's mbedTLS messages come wrapped in newlines
    assert failure_kind(ValueError("\nThe certificate is not correctly signed by the trusted CA\n")) == UNTRUSTED
    assert failure_kind(ValueError("\nThe certificate Common Name (CN) does not match with the expected CN\n")) \
        == UNTRUSTED


def test_a_close_or_reset_after_connecting_is_closed():
    for errno in (32, 104, -0x7880):  # EPIPE, ECONNRESET (a broker rejecting our certificate), an mbedTLS code
        assert failure_kind(OSError(errno)) == CLOSED
    assert failure_kind(OSError()) == CLOSED


def test_a_refusal_is_permanent_and_says_whose_fault():
    assert Refusal("identity unusable").permanent and not Refusal("x").server
    assert Refusal("broker certificate not trusted", server=True).server
