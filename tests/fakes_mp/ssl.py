"""FAKE ssl for the MicroPython test VM, where `import ssl` crashes. Names only, no TLS."""

FAKE = True
PROTOCOL_TLS_CLIENT = 0
CERT_NONE = 0
CERT_REQUIRED = 2


class SSLContext:
    def __init__(self, protocol):
        self.verify_mode = CERT_NONE

    def load_verify_locations(self, cafile=None, cadata=None):
        pass

    def load_cert_chain(self, certfile, keyfile):
        pass
