"""Per-device payment keys: HMAC-SHA256(master secret, device id [+ "/" + key version]).

The master secret is `payment-master.key` (hex) in the PKI directory, made by
`soundbox pki init`. Each device has a key version, recorded by the PKI in its
index.json under "key_versions" (absent: 0). Version 0 is HMAC(master, device id),
the key of every device issued before versions existed, so their bundles keep
working; version n >= 1 is HMAC(master, "<device id>/<n>"). A device id has no "/",
so no id's version-0 input equals another's versioned one. `soundbox pki rotate`,
a full revoke and `pki device ID --reissue` bump the version; the PKI writes the
new key into the bundle, and the cloud signs with it as soon as the index changes
(no restart). Keys are derived on demand and never stored or logged.
"""
import json
import logging
import os

from soundbox.crypto import hmac_sha256
from soundbox_cloud.errors import CloudError

MASTER_FILE = "payment-master.key"
INDEX_FILE = "index.json"  # written by soundbox_tools.pki
VERSIONS_FIELD = "key_versions"  # index.json: {device id: version >= 1}
MIN_MASTER_BYTES = 16

log = logging.getLogger("soundbox_cloud")


def derive(master, device_id, version=0):
    """The payment key of `device_id` at key `version` (32 bytes)."""
    if version == 0:
        return hmac_sha256(master, device_id.encode())
    return hmac_sha256(master, ("%s/%d" % (device_id, version)).encode())


def versions_from_index(index, path):
    """{device id: version} from a parsed index; CloudError names what is wrong."""
    if not isinstance(index, dict):
        raise CloudError("%s is not a JSON object" % path)
    versions = index.get(VERSIONS_FIELD, {})
    if not isinstance(versions, dict):
        raise CloudError("%s: %r is not an object" % (path, VERSIONS_FIELD))
    for device_id, version in versions.items():
        if type(version) is not int or version < 0:
            raise CloudError("%s: key version of %s is %r, not a whole number >= 0" % (path, device_id, version))
    return versions


def _read_master(certs):
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
    return master


class PaymentKeys:
    """key(device id) -> the device's current payment key. The key versions are read from
    the PKI's index.json and read again whenever that file is replaced (the PKI writes it
    atomically, so a new inode or mtime means new content): one stat per key."""

    def __init__(self, certs):
        self._master = _read_master(certs)
        self._index_path = os.path.join(str(certs), INDEX_FILE)
        self._stamp = None  # (inode, mtime_ns, size) of the index read last; None: no file
        self._versions = {}
        self._refresh(startup=True)

    def key(self, device_id):
        self._refresh()
        return derive(self._master, device_id, self._versions.get(device_id, 0))

    def version(self, device_id):
        self._refresh()
        return self._versions.get(device_id, 0)

    def _refresh(self, startup=False):
        try:
            st = os.stat(self._index_path)
        except FileNotFoundError:
            # A PKI from before the index (or a bare master secret): every device at version 0.
            self._stamp, self._versions = None, {}
            return
        except OSError as e:
            return self._unreadable(startup, ("stat failed", e.errno), e.strerror or str(e))
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        try:
            with open(self._index_path) as f:
                versions = versions_from_index(json.load(f), self._index_path)
        except (OSError, ValueError, RecursionError, CloudError) as e:
            return self._unreadable(startup, stamp, str(e))
        self._stamp, self._versions = stamp, versions

    def _unreadable(self, startup, stamp, reason):
        if startup:
            raise CloudError("cannot read the key versions in %s: %s" % (self._index_path, reason))
        # Later on, keep signing with the versions read last (right for every device the
        # change did not touch), and read the file again only once it is replaced: said
        # once per bad file, not once per payment.
        if stamp != self._stamp:
            log.warning("key versions: %s unreadable (%s); still using the versions read before",
                        self._index_path, reason)
        self._stamp = stamp
