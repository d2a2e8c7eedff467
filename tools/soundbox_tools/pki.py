"""Development PKI: a CA, the broker and cloud certificates, device identities, a CRL.

Layout under the root (`certs/` for the CLI, pkicli.py):

    ca.key ca.pem crl.pem          development CA (10 years) and its CRL (re-signed on change)
    broker.key broker.pem          server certificate: CN=localhost, SANs DNS:localhost, IP:127.0.0.1
    cloud.key cloud.pem            the cloud handler's client certificate, CN=cloud
    cloud-bulk.key cloud-bulk.pem  its second connection (telemetry, OTA chunks), CN=cloud-bulk
    payment-master.key             32 random bytes (hex): the cloud's master secret
    devices/<id>/                  a device's bundle:
        ca.der device.der device.key.der payment.key     what goes to the device's /certs/
        ca.pem device.pem device.key                     the same in PEM, for host tools
    index.json                     serials issued per identity, revoked serials, payment key versions

ECDSA P-256 keys and SHA-256 signatures throughout. Private keys are written 0600,
unencrypted PKCS#8. The device reads DER: MicroPython's own mbedTLS configuration has no
PEM parser (measured on the unix port: PEM gives ValueError('invalid cert') /
('invalid key'); a port built on ESP-IDF's mbedTLS may have one), and DER loads on
every port. The PEM copies are for what only reads PEM: CPython's ssl.load_cert_chain,
paho, openssl, mosquitto_sub.

The device's payment key is derived from the master secret, the device id and the
device's key version (soundbox_cloud.keys.derive): version 0, the default, is
HMAC-SHA256(master, device id), what every bundle issued before versions existed holds;
version n >= 1 is HMAC-SHA256(master, "<id>/<n>"). Every new identity for an id that had
one (`rotate`, a re-issue, `device --reissue`) and a full `revoke` bump the version in
index.json ("key_versions"), so the old key stops being the one the cloud signs with: the
cloud derives the current key when it needs it and never stores one per device; the
device keeps it in /certs/payment.key (hex). An id whose current certificate is revoked
gets a new identity only with an explicit `--reissue`.
"""

import base64
import datetime
import ipaddress
import json
import os
import re
import secrets

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from soundbox_cloud.keys import VERSIONS_FIELD, derive

ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,31}\Z")
# Service identities: no device may carry these names. The cloud has two: acks and
# notifications travel on "cloud", bulk QoS 0 traffic (telemetry, OTA chunks) on
# "cloud-bulk", so a device flooding telemetry cannot queue ahead of anyone's ack.
SERVICE_IDS = ("cloud", "cloud-bulk", "broker")
CA_DAYS = 3650
SERVICE_DAYS = 825
CRL_DAYS = 365
CRL_REFRESH_DAYS = 180  # re-sign when fewer days are left (OpenSSL refuses every client once it lapses)
CLOCK_SKEW = datetime.timedelta(minutes=5)  # certificates start a little in the past
BUNDLE_FILES = ("device.key.der", "device.der", "ca.der", "payment.key")  # what the device reads

_PEM = serialization.Encoding.PEM
_DER = serialization.Encoding.DER
_PKCS8 = serialization.PrivateFormat.PKCS8
_NO_PASSWORD = serialization.NoEncryption()


class PkiError(Exception):
    """A PKI problem the user can fix; one line, no traceback."""


def check_device_id(device_id):
    if not isinstance(device_id, str) or not ID_PATTERN.match(device_id):
        raise PkiError("bad device id %r: use 1-32 characters a-z, 0-9 and '-', starting with a "
                       "letter or digit (e.g. sb-0001)" % (device_id,))
    return device_id


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(path, data, private=False):
    """Whole-file atomic write: a reader sees the old file or the new one, never half of one."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _key_pem(key):
    return key.private_bytes(_PEM, _PKCS8, _NO_PASSWORD)


def _key_der(key):
    return key.private_bytes(_DER, _PKCS8, _NO_PASSWORD)


def _read_cert(path):
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def _read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def _pem_body(data):
    """The DER inside a one-block PEM file (armour lines dropped, base64 decoded)."""
    lines = data.decode("ascii").strip().splitlines()
    if len(lines) < 3 or not lines[0].startswith("-----BEGIN ") or not lines[-1].startswith("-----END "):
        raise ValueError("not a PEM block")
    return base64.b64decode("".join(lines[1:-1]), validate=True)


def _read_key(path):
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


class Pki:
    def __init__(self, root="certs"):
        self.root = os.path.abspath(str(root))
        self._ca = None  # (key, cert), loaded once: bulk issuance reuses it
        self._master_secret = None

    # ---- paths ------------------------------------------------------------------

    def path(self, name):
        return os.path.join(self.root, name)

    def device_dir(self, device_id):
        return os.path.join(self.root, "devices", check_device_id(device_id))

    def files(self, name):
        """{"ca", "cert", "key"} paths of an identity: a service (SERVICE_IDS) or a device id."""
        if name in SERVICE_IDS:
            return {"ca": self.path("ca.pem"), "cert": self.path(name + ".pem"),
                    "key": self.path(name + ".key")}
        d = self.device_dir(name)
        return {"ca": os.path.join(d, "ca.pem"), "cert": os.path.join(d, "device.pem"),
                "key": os.path.join(d, "device.key")}

    def exists(self):
        return os.path.exists(self.path("ca.pem")) and os.path.exists(self.path("ca.key"))

    # ---- CA, services -----------------------------------------------------------

    def init(self, force=False):
        """Create whatever is missing; an existing CA (and everything it signed) is kept
        unless `force`, which makes a new CA, broker and cloud certificate and forgets the
        old serials. The payment master secret is never replaced: devices hold keys derived
        from it."""
        os.makedirs(os.path.join(self.root, "devices"), exist_ok=True)
        if force or not self.exists():
            # Key versions survive a new CA: with the same master secret, starting a device
            # at version 0 again would bring back a key that was retired.
            versions = self._load_index().get(VERSIONS_FIELD, {}) if self.exists() else {}
            self._new_ca()
            self._save_index({"issued": {}, "revoked": {}, VERSIONS_FIELD: versions})
        for service in SERVICE_IDS:
            if force or not os.path.exists(self.path(service + ".pem")):
                self._issue_service(service)
        if not os.path.exists(self.path("payment-master.key")):
            _write(self.path("payment-master.key"), secrets.token_hex(32).encode() + b"\n", private=True)
        self.write_crl()
        return self

    def _new_ca(self):
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (x509.CertificateBuilder()
                .subject_name(_name("Soundbox Development CA"))
                .issuer_name(_name("Soundbox Development CA"))
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - CLOCK_SKEW)
                .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False,
                                             key_agreement=False, key_cert_sign=True, crl_sign=True,
                                             encipher_only=False, decipher_only=False), critical=True)
                .add_extension(ski, critical=False)
                .sign(key, hashes.SHA256()))
        _write(self.path("ca.key"), _key_pem(key), private=True)
        _write(self.path("ca.pem"), cert.public_bytes(_PEM))
        self._ca = (key, cert)

    def _load_ca(self):
        if self._ca is None:
            if not self.exists():
                raise PkiError("no CA in %s: run `soundbox pki init` first" % self.root)
            self._ca = (_read_key(self.path("ca.key")), _read_cert(self.path("ca.pem")))
        return self._ca

    def _issue_service(self, name):
        sans = None
        usage = ExtendedKeyUsageOID.CLIENT_AUTH
        cn = name
        if name == "broker":
            cn, usage = "localhost", ExtendedKeyUsageOID.SERVER_AUTH
            sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        key, cert = self._sign_new(cn, SERVICE_DAYS, usage, sans)
        _write(self.path(name + ".key"), _key_pem(key), private=True)
        _write(self.path(name + ".pem"), cert.public_bytes(_PEM))
        index = self._load_index()
        self._record(index, name, cert)
        self._save_index(index)

    def _sign_new(self, cn, days, usage, sans=None, not_before=None):
        """A fresh key and a leaf certificate for it signed by the CA."""
        ca_key, ca_cert = self._load_ca()
        key = ec.generate_private_key(ec.SECP256R1())
        start = not_before or _now() - CLOCK_SKEW
        builder = (x509.CertificateBuilder()
                   .subject_name(_name(cn))
                   .issuer_name(ca_cert.subject)
                   .public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(start)
                   .not_valid_after(start + datetime.timedelta(days=days))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                                key_encipherment=False, data_encipherment=False,
                                                key_agreement=False, key_cert_sign=False, crl_sign=False,
                                                encipher_only=False, decipher_only=False), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                                  critical=False))
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return key, builder.sign(ca_key, hashes.SHA256())

    # ---- devices ------------------------------------------------------------------

    def issue_device(self, device_id, days=825, not_before=None, reissue=False):
        """Issue (or re-issue) one device's bundle; returns its directory. An id whose
        current certificate is revoked needs `reissue`. `not_before` lets tests make a
        certificate that is already expired."""
        index = self._load_index()
        self._refuse_revoked(index, [check_device_id(device_id)], reissue)
        d = self._issue_into(index, device_id, days, not_before)
        self._save_index(index)
        return d

    def issue_devices(self, ids, progress=None, days=825, reissue=False):
        """Issue many bundles with one CA load and one index write; progress(done, total).
        Every id is checked (format, revoked without `reissue`) before anything is written."""
        ids = [check_device_id(i) for i in ids]
        index = self._load_index()
        self._refuse_revoked(index, ids, reissue)
        for n, device_id in enumerate(ids, 1):
            self._issue_into(index, device_id, days)
            if progress and (n % 500 == 0 or n == len(ids)):
                progress(n, len(ids))
        self._save_index(index)
        return [self.device_dir(i) for i in ids]

    def _issue_into(self, index, device_id, days, not_before=None):
        check_device_id(device_id)
        if device_id in SERVICE_IDS:
            raise PkiError("%r is the name of a service identity, not a device id" % device_id)
        key, cert = self._sign_new(device_id, days, ExtendedKeyUsageOID.CLIENT_AUTH,
                                   not_before=not_before)
        if index["issued"].get(device_id):
            self._bump_key_version(index, device_id)  # a new identity retires the old payment key
        d = self.device_dir(device_id)
        os.makedirs(d, exist_ok=True)
        # Key before certificate, each replaced atomically: check_identity() reports a
        # key/certificate mismatch if we are interrupted between the two.
        _write(os.path.join(d, "device.key"), _key_pem(key), private=True)
        _write(os.path.join(d, "device.key.der"), _key_der(key), private=True)
        _write(os.path.join(d, "device.pem"), cert.public_bytes(_PEM))
        _write(os.path.join(d, "device.der"), cert.public_bytes(_DER))
        _write(os.path.join(d, "ca.pem"), self._ca_pem())
        _write(os.path.join(d, "ca.der"), self._load_ca()[1].public_bytes(_DER))
        _write(os.path.join(d, "payment.key"),
               self.payment_key(device_id, self._key_version(index, device_id)).hex().encode() + b"\n",
               private=True)
        self._record(index, device_id, cert)
        return d

    def rotate(self, device_id):
        """New key and certificate for the same CN; the old certificate stays valid until
        `revoke(id, old_only=True)` (or a full revoke), so a device can switch at leisure.
        The payment key changes at once (its version is bumped): the cloud signs with the
        new one from now on, so the device must get its new bundle (payment.key) too."""
        d = self.device_dir(device_id)
        if not (os.path.exists(os.path.join(d, "device.der")) or os.path.exists(os.path.join(d, "device.pem"))):
            raise PkiError("no identity for %s to rotate: issue it with `soundbox pki device %s`"
                           % (device_id, device_id))
        return self.issue_device(device_id)

    def is_revoked(self, device_id, index=None):
        """Whether the id's current (last issued) certificate is on the CRL."""
        index = index or self._load_index()
        serials = index["issued"].get(device_id)
        return bool(serials) and serials[-1] in index["revoked"]

    def _refuse_revoked(self, index, ids, reissue):
        if reissue:
            return
        revoked = [i for i in ids if self.is_revoked(i, index)]
        if not revoked:
            return
        if len(ids) == 1:
            raise PkiError("%s is revoked: a new identity for it needs `soundbox pki device %s --reissue` "
                           "(new certificate, new payment key)" % (revoked[0], revoked[0]))
        named = ", ".join(revoked[:3]) + (" and %d more" % (len(revoked) - 3) if len(revoked) > 3 else "")
        raise PkiError("%d of these ids are revoked (%s): nothing issued; `soundbox pki device ... --reissue` "
                       "gives them new identities (new certificates, new payment keys)" % (len(revoked), named))

    def key_version(self, device_id):
        """The device's current payment key version (0 when never bumped)."""
        return self._key_version(self._load_index(), check_device_id(device_id))

    @staticmethod
    def _key_version(index, device_id):
        return index.get(VERSIONS_FIELD, {}).get(device_id, 0)

    @staticmethod
    def _bump_key_version(index, device_id):
        versions = index.setdefault(VERSIONS_FIELD, {})
        versions[device_id] = versions.get(device_id, 0) + 1

    def revoke(self, device_id, old_only=False):
        """Put the identity's serials (all, or all but the current one) into the CRL and
        re-sign it; returns the serials revoked now. A broker reload (SIGHUP) refuses them
        from then on; a restart also cuts a connection that is already up."""
        if device_id not in SERVICE_IDS:
            check_device_id(device_id)
        index = self._load_index()
        serials = index["issued"].get(device_id)
        if not serials:
            raise PkiError("no certificate was ever issued to %s" % device_id)
        chosen = serials[:-1] if old_only else serials
        stamp = _now().strftime("%Y-%m-%dT%H:%M:%SZ")
        newly = [s for s in chosen if s not in index["revoked"]]
        for s in newly:
            index["revoked"][s] = stamp
        if not old_only and newly and device_id not in SERVICE_IDS:
            # The revoked box's payment key is retired too: the cloud stops signing with it
            # even while a session opened before the revocation is still up.
            self._bump_key_version(index, device_id)
        self._save_index(index)
        self.write_crl(index)
        return newly

    def payment_key(self, device_id, version=None):
        """The device's payment key (32 bytes) at `version`, by default its current one."""
        check_device_id(device_id)
        if version is None:
            version = self.key_version(device_id)
        return derive(self._master(), device_id, version)

    def _master(self):
        if self._master_secret is None:
            try:
                with open(self.path("payment-master.key")) as f:
                    self._master_secret = bytes.fromhex(f.read().strip())
            except FileNotFoundError:
                raise PkiError("no payment master secret in %s: run `soundbox pki init` first" % self.root)
            except ValueError:
                raise PkiError("%s is not hex" % self.path("payment-master.key"))
        return self._master_secret

    def check(self, device_id):
        return check_identity(self.device_dir(device_id))

    def _ca_pem(self):
        return self._load_ca()[1].public_bytes(_PEM)

    # ---- CRL --------------------------------------------------------------------

    def write_crl(self, index=None):
        ca_key, ca_cert = self._load_ca()
        index = index or self._load_index()
        now = _now()
        builder = (x509.CertificateRevocationListBuilder()
                   .issuer_name(ca_cert.subject)
                   .last_update(now - CLOCK_SKEW)
                   .next_update(now + datetime.timedelta(days=CRL_DAYS)))
        for serial, stamp in sorted(index["revoked"].items()):
            when = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(int(serial, 16)).revocation_date(when).build())
        crl = builder.sign(ca_key, hashes.SHA256())
        _write(self.path("crl.pem"), crl.public_bytes(_PEM))
        return self.path("crl.pem")

    def current_crl(self):
        """The CRL's path, re-signed first if it is missing, from another CA or close to lapsing."""
        try:
            with open(self.path("crl.pem"), "rb") as f:
                crl = x509.load_pem_x509_crl(f.read())
            fresh = (crl.next_update_utc - _now() > datetime.timedelta(days=CRL_REFRESH_DAYS)
                     and crl.is_signature_valid(self._load_ca()[0].public_key()))
        except (OSError, ValueError):
            fresh = False
        return self.path("crl.pem") if fresh else self.write_crl()

    # ---- index ------------------------------------------------------------------

    def _load_index(self):
        try:
            with open(self.path("index.json")) as f:
                return json.load(f)
        except FileNotFoundError:
            if not self.exists():
                raise PkiError("no CA in %s: run `soundbox pki init` first" % self.root)
            return {"issued": {}, "revoked": {}}
        except ValueError as e:
            raise PkiError("%s is damaged: %s" % (self.path("index.json"), e))

    def _save_index(self, index):
        _write(self.path("index.json"), json.dumps(index, indent=1, sort_keys=True).encode())

    @staticmethod
    def _record(index, name, cert):
        index["issued"].setdefault(name, []).append("%x" % cert.serial_number)


def check_identity(directory, now=None):
    """Problems with a device bundle that can be found without the network; [] when usable.
    The DER files are what the device loads; the PEM companions, where present, must hold
    the same certificates and key."""
    directory = str(directory)
    missing = [n for n in BUNDLE_FILES if not os.path.exists(os.path.join(directory, n))]
    if missing:
        return ["missing %s in %s" % (n, directory) for n in missing]
    problems = []
    try:
        cert = x509.load_der_x509_certificate(_read_bytes(os.path.join(directory, "device.der")))
        ca = x509.load_der_x509_certificate(_read_bytes(os.path.join(directory, "ca.der")))
        key = serialization.load_der_private_key(_read_bytes(os.path.join(directory, "device.key.der")),
                                                 password=None)
    except (ValueError, TypeError) as e:
        return ["unreadable identity in %s: %s" % (directory, e)]
    now = now or _now()
    if now < cert.not_valid_before_utc:
        problems.append("certificate not valid until %s" % cert.not_valid_before_utc.isoformat())
    if now > cert.not_valid_after_utc:
        problems.append("certificate expired on %s" % cert.not_valid_after_utc.isoformat())
    if key.public_key() != cert.public_key():
        problems.append("device.key.der does not match device.der")
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        problems.append("device.der is not signed by ca.der")
    return problems + _pem_companion_problems(directory)


def _pem_companion_problems(directory):
    """Each PEM file present must wrap exactly the bytes of its DER twin (compared as bytes:
    no second parse, so checking 10,000 bundles stays cheap)."""
    problems = []
    for pem, der in (("ca.pem", "ca.der"), ("device.pem", "device.der"), ("device.key", "device.key.der")):
        path = os.path.join(directory, pem)
        if not os.path.exists(path):
            continue
        try:
            same = _pem_body(_read_bytes(path)) == _read_bytes(os.path.join(directory, der))
        except (ValueError, UnicodeDecodeError):  # binascii.Error is a ValueError
            same = False
        if not same:
            problems.append("%s does not hold the same %s as %s" % (pem, "key" if pem == "device.key" else
                                                                    "certificate", der))
    return problems
