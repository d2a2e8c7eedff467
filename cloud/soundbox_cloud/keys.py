"""Per-device payment keys: HMAC-SHA256(master secret, device id).

The master secret is `payment-master.key` (hex) in the PKI directory, made by
`soundbox pki init`; the PKI writes the same derivation into each device's
bundle as payment.key. Keys are derived on demand and never stored or logged.
"""
import os

from soundbox.crypto import hmac_sha256
from soundbox_cloud.errors import CloudError

MASTER_FILE = "payment-master.key"
MIN_MASTER_BYTES = 16


class PaymentKeys:
    def __init__(self, certs):
        path = os.path.join(str(certs), MASTER_FILE)
        try:
            with open(path) as f:
                text = f.read()
        except FileNotFoundError:
            raise CloudError("no payment master secret: missing %s (run: soundbox pki init --dir %s)"
                             % (path, certs)) from None
        except OSError as e:
            raise CloudError("cannot read %s: %s" % (path, e.strerror or e)) from None
        try:
            master = bytes.fromhex(text.strip())
        except ValueError:
            raise CloudError("%s is not hex" % path) from None
        if len(master) < MIN_MASTER_BYTES:
            raise CloudError("%s holds %d bytes; a master secret needs at least %d"
                             % (path, len(master), MIN_MASTER_BYTES))
        self._master = master

    def key(self, device_id):
        return hmac_sha256(self._master, device_id.encode())
