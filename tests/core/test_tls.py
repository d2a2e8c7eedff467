"""The device TLS context is always CERT_REQUIRED with our CA and identity loaded.

MicroPython's ssl.SSLContext defaults to CERT_NONE. `import ssl` cannot run in
the test VM, so these tests give soundbox.tls a stand-in ssl module that
behaves like MicroPython's (CERT_NONE until told otherwise, DER bytes in) and
records what it was asked to load. The real handshake is tested on CPython with
real certificates in tests/test_tls_link.py.
"""

import sys

from check import error_message, raises

HERE = __file__.rsplit("/", 1)[0]
IDENTITY = HERE + "/tls_identity"
OLD_LAYOUT = HERE + "/tls_old_layout"  # ca.pem, device.pem, device.key: before the DER files


def contents(name):
    with open(IDENTITY + "/" + name, "rb") as f:
        return f.read()


class StandInContext:
    def __init__(self, protocol):
        self.protocol = protocol
        self.verify_mode = 0  # CERT_NONE: MicroPython's client default
        self.cafile = None
        self.cadata = None
        self.chain = None

    def load_verify_locations(self, cafile=None, cadata=None):
        self.cafile = cafile
        self.cadata = cadata

    def load_cert_chain(self, certfile, keyfile):
        self.chain = (certfile, keyfile)


class StandInSsl:
    PROTOCOL_TLS_CLIENT = 0
    CERT_NONE = 0
    CERT_REQUIRED = 2
    SSLContext = StandInContext


def fresh_tls():
    """Import soundbox.tls against the stand-in ssl; returns (module, restore)."""
    saved = {name: sys.modules.get(name) for name in ("ssl", "soundbox.tls")}
    sys.modules["ssl"] = StandInSsl
    if "soundbox.tls" in sys.modules:
        del sys.modules["soundbox.tls"]
    import soundbox.tls as tls

    def restore():
        for name, module in saved.items():
            if module is None:
                if name in sys.modules:
                    del sys.modules[name]
            else:
                sys.modules[name] = module

    return tls, restore


def test_context_requires_server_certificate_and_presents_ours():
    tls, restore = fresh_tls()
    try:
        ctx = tls.client_context(IDENTITY)
        assert isinstance(ctx, StandInContext)
        assert ctx.verify_mode == StandInSsl.CERT_REQUIRED
        assert ctx.protocol == StandInSsl.PROTOCOL_TLS_CLIENT
        # The bytes of the DER files, not paths: MicroPython's mbedTLS cannot read PEM.
        assert ctx.cafile is None and ctx.cadata == contents("ca.der")
        assert ctx.chain == (contents("device.der"), contents("device.key.der"))
    finally:
        restore()


def test_a_context_that_ignores_verify_mode_is_refused():
    class Stubborn(StandInContext):
        def __setattr__(self, name, value):
            if name == "verify_mode" and hasattr(self, "verify_mode"):
                return  # stays CERT_NONE whatever we set
            object.__setattr__(self, name, value)

    tls, restore = fresh_tls()
    StandInSsl.SSLContext = Stubborn
    try:
        assert raises(tls.TlsSetupError, tls.client_context, IDENTITY)
    finally:
        StandInSsl.SSLContext = StandInContext
        restore()


def test_missing_identity_is_reported_before_any_connection():
    tls, restore = fresh_tls()
    try:
        assert tls.missing_files(IDENTITY) == []
        assert tls.missing_files(HERE + "/no-such-dir") == ["ca.der", "device.der", "device.key.der"]
        assert raises(tls.TlsSetupError, tls.client_context, HERE + "/no-such-dir")
        assert tls.TlsSetupError.permanent is True  # the client backs off long, not a retry loop
    finally:
        restore()


def test_an_old_pem_identity_gets_a_one_line_reason_to_re_provision():
    tls, restore = fresh_tls()
    try:
        assert tls.old_layout(OLD_LAYOUT) and not tls.old_layout(IDENTITY)
        assert not tls.old_layout(HERE + "/no-such-dir")
        message = error_message(tls.TlsSetupError, tls.client_context, OLD_LAYOUT)
        assert message == ("identity in %s is in the old PEM layout, which MicroPython cannot read: "
                           "re-provision it (soundbox pki device ID, then soundbox device provision)"
                           % OLD_LAYOUT)
        assert "\n" not in message
    finally:
        restore()


def test_a_chain_the_ssl_module_will_not_load_is_a_setup_error():
    class Refusing(StandInContext):
        def load_cert_chain(self, certfile, keyfile):
            raise ValueError("invalid key")  # CPython: "embedded null byte" (bytes taken as a path)

    tls, restore = fresh_tls()
    StandInSsl.SSLContext = Refusing
    try:
        message = error_message(tls.TlsSetupError, tls.client_context, IDENTITY)
        if sys.implementation.name == "micropython":
            assert message == "cannot load TLS identity from %s: invalid key" % IDENTITY
        else:  # CPython's ssl loads a chain only from PEM files: say where the context comes from
            assert "CPython" in message and "soundbox_sim.link.der_context" in message
    finally:
        StandInSsl.SSLContext = StandInContext
        restore()
