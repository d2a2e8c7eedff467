"""Issuance: what the development PKI writes, and that bad input and broken bundles are caught."""
import datetime
import hashlib
import hmac
import ipaddress
import json
import os
import shutil
import stat
import subprocess
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from soundbox_tools import pki as pki_module
from soundbox_tools.pki import Pki, PkiError, check_identity

SOUNDBOX = [sys.executable, "-m", "soundbox_tools.cli"]
UTC = datetime.timezone.utc


def cert(path):
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def cn(c):
    return c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def fresh(tmp_path):
    """A PKI of this test's own, for tests that change it."""
    return Pki(tmp_path / "certs").init()


def test_init_writes_the_layout_with_private_keys_0600(fresh):
    for name in ("ca.key", "ca.pem", "crl.pem", "broker.key", "broker.pem", "cloud.key", "cloud.pem",
                 "payment-master.key", "index.json"):
        assert os.path.isfile(fresh.path(name)), name
    for name in ("ca.key", "broker.key", "cloud.key", "payment-master.key"):
        assert mode(fresh.path(name)) == 0o600, name
    with open(fresh.path("ca.key"), "rb") as f:
        assert f.read().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, unencrypted
    assert len(bytes.fromhex(open(fresh.path("payment-master.key")).read().strip())) == 32


def test_init_keeps_the_ca_unless_forced_and_never_replaces_the_payment_master(fresh):
    ca, master = open(fresh.path("ca.pem")).read(), open(fresh.path("payment-master.key")).read()
    Pki(fresh.root).init()
    assert open(fresh.path("ca.pem")).read() == ca
    Pki(fresh.root).init(force=True)
    assert open(fresh.path("ca.pem")).read() != ca
    assert open(fresh.path("payment-master.key")).read() == master


def test_ca_is_a_ten_year_p256_ca(pki):
    ca = cert(pki.path("ca.pem"))
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey) and ca.public_key().curve.name == "secp256r1"
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    assert (ca.not_valid_after_utc - ca.not_valid_before_utc).days >= 3650


def test_broker_certificate_names_localhost_and_127_0_0_1(pki):
    broker = cert(pki.path("broker.pem"))
    assert cn(broker) == "localhost"
    sans = broker.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    eku = broker.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    broker.verify_directly_issued_by(cert(pki.path("ca.pem")))


def test_cloud_certificate_is_a_client_certificate_named_cloud(pki):
    cloud = cert(pki.path("cloud.pem"))
    assert cn(cloud) == "cloud"
    assert list(cloud.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH]


def test_device_bundle_cn_is_the_id_and_the_chain_verifies(pki):
    d = pki.device_dir("sb-0002")
    assert sorted(os.listdir(d)) == ["ca.der", "ca.pem", "device.der", "device.key", "device.key.der",
                                     "device.pem", "payment.key"]
    device = cert(os.path.join(d, "device.pem"))
    assert cn(device) == "sb-0002"
    assert device.issuer == cert(pki.path("ca.pem")).subject
    device.verify_directly_issued_by(cert(os.path.join(d, "ca.pem")))
    assert not device.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = device.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    assert list(device.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH]
    for name in ("device.key", "device.key.der", "payment.key"):
        assert mode(os.path.join(d, name)) == 0o600, name
    assert check_identity(d) == []


def test_device_bundle_der_files_hold_the_same_identity_as_the_pem_ones(pki):
    # The device reads the DER files (MicroPython's mbedTLS has no PEM parser).
    d = pki.device_dir("sb-0002")
    der = lambda name: open(os.path.join(d, name), "rb").read()
    assert x509.load_der_x509_certificate(der("device.der")) == cert(os.path.join(d, "device.pem"))
    assert x509.load_der_x509_certificate(der("ca.der")) == cert(pki.path("ca.pem"))
    key = serialization.load_der_private_key(der("device.key.der"), password=None)
    pem_key = serialization.load_pem_private_key(der("device.key"), password=None)
    assert key.private_numbers() == pem_key.private_numbers()
    pkcs8 = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    assert der("device.key.der") == pkcs8


def test_payment_key_is_hmac_of_the_master_deterministic_and_distinct(pki):
    master = bytes.fromhex(open(pki.path("payment-master.key")).read().strip())
    expected = hmac.new(master, b"sb-0001", hashlib.sha256).digest()
    assert pki.payment_key("sb-0001") == expected
    assert Pki(pki.root).payment_key("sb-0001") == expected  # a fresh object derives the same key
    keys = {pki.payment_key("sb-%04d" % n) for n in range(1, 5)}
    assert len(keys) == 4
    with open(os.path.join(pki.device_dir("sb-0003"), "payment.key")) as f:
        assert bytes.fromhex(f.read().strip()) == pki.payment_key("sb-0003")


@pytest.mark.parametrize("bad", ["", "SB-0001", "-sb", "sb_1", "sb/1", "../etc", "sb 1", "a" * 33, None])
def test_bad_device_ids_are_refused_with_the_rule(fresh, bad):
    with pytest.raises(PkiError, match="bad device id .*a-z, 0-9 and '-'"):
        fresh.issue_device(bad)
    assert os.listdir(os.path.join(fresh.root, "devices")) == []


def test_a_device_cannot_take_a_service_name(fresh):
    with pytest.raises(PkiError, match="service identity"):
        fresh.issue_device("cloud")
    assert cn(cert(fresh.path("cloud.pem"))) == "cloud"


def test_issuing_without_a_ca_says_to_run_init(tmp_path):
    with pytest.raises(PkiError, match="pki init"):
        Pki(tmp_path / "nothing").issue_device("sb-0001")


def test_check_identity_names_each_problem(fresh, tmp_path):
    good = fresh.issue_device("sb-0010")
    other = fresh.issue_device("sb-0011")
    assert check_identity(good) == []

    def broken(name):
        d = str(tmp_path / name)
        shutil.copytree(good, d)
        return d

    missing = broken("missing")
    os.remove(os.path.join(missing, "device.key.der"))
    assert check_identity(missing) == ["missing device.key.der in %s" % missing]

    pem_only = broken("pem-only")  # the PEM companions are for host tools: optional
    for name in ("ca.pem", "device.pem", "device.key"):
        os.remove(os.path.join(pem_only, name))
    assert check_identity(pem_only) == []

    mismatched = broken("mismatched")
    for name in ("device.key", "device.key.der"):
        shutil.copy(os.path.join(other, name), os.path.join(mismatched, name))
    assert check_identity(mismatched) == ["device.key.der does not match device.der"]

    foreign = broken("foreign")
    stranger = Pki(tmp_path / "other-ca").init()
    shutil.copy(os.path.join(stranger.issue_device("sb-0010"), "ca.der"), os.path.join(foreign, "ca.der"))
    os.remove(os.path.join(foreign, "ca.pem"))
    assert check_identity(foreign) == ["device.der is not signed by ca.der"]

    garbage = broken("garbage")
    with open(os.path.join(garbage, "device.der"), "w") as f:
        f.write("not a certificate")
    [problem] = check_identity(garbage)
    assert problem.startswith("unreadable identity")

    # A PEM companion that is not the DER twin (a half-done copy, say) is named.
    stale_pem = broken("stale-pem")
    for name in ("device.pem", "device.key"):
        shutil.copy(os.path.join(other, name), os.path.join(stale_pem, name))
    assert check_identity(stale_pem) == ["device.pem does not hold the same certificate as device.der",
                                         "device.key does not hold the same key as device.key.der"]

    long_ago = datetime.datetime.now(UTC) - datetime.timedelta(days=30)
    expired = fresh.issue_device("sb-0012", days=10, not_before=long_ago)
    [problem] = check_identity(expired)
    assert problem.startswith("certificate expired on ")

    later = datetime.datetime.now(UTC) + datetime.timedelta(days=3)
    future = fresh.issue_device("sb-0013", not_before=later)
    [problem] = check_identity(future)
    assert problem.startswith("certificate not valid until ")


def test_revoke_puts_every_serial_of_the_id_into_a_ca_signed_crl(fresh):
    fresh.issue_device("sb-0020")
    fresh.rotate("sb-0020")
    fresh.issue_device("sb-0021")
    revoked = fresh.revoke("sb-0020")
    assert len(revoked) == 2
    with open(fresh.path("crl.pem"), "rb") as f:
        crl = x509.load_pem_x509_crl(f.read())
    assert crl.is_signature_valid(cert(fresh.path("ca.pem")).public_key())
    assert {"%x" % r.serial_number for r in crl} == set(revoked)
    current = cert(os.path.join(fresh.device_dir("sb-0020"), "device.pem"))
    assert crl.get_revoked_certificate_by_serial_number(current.serial_number) is not None
    bystander = cert(os.path.join(fresh.device_dir("sb-0021"), "device.pem"))
    assert crl.get_revoked_certificate_by_serial_number(bystander.serial_number) is None
    assert fresh.revoke("sb-0020") == []  # again: nothing new
    with pytest.raises(PkiError, match="no certificate was ever issued to sb-0099"):
        fresh.revoke("sb-0099")


def test_rotate_gives_a_new_key_and_certificate_for_the_same_cn(fresh):
    d = fresh.issue_device("sb-0030")
    old_cert, old_key = cert(os.path.join(d, "device.pem")), open(os.path.join(d, "device.key")).read()
    payment = open(os.path.join(d, "payment.key")).read()
    assert fresh.rotate("sb-0030") == d
    new_cert = cert(os.path.join(d, "device.pem"))
    assert cn(new_cert) == "sb-0030" and new_cert.serial_number != old_cert.serial_number
    assert open(os.path.join(d, "device.key")).read() != old_key
    # The payment key is new too (version 1), and the bundle holds it.
    assert open(os.path.join(d, "payment.key")).read() != payment
    assert bytes.fromhex(open(os.path.join(d, "payment.key")).read()) == fresh.payment_key("sb-0030", 1)
    assert check_identity(d) == []
    assert not [n for n in os.listdir(d) if n.endswith(".tmp")]
    # Retiring only the replaced certificate leaves the current one off the CRL.
    assert fresh.revoke("sb-0030", old_only=True) == ["%x" % old_cert.serial_number]
    with pytest.raises(PkiError, match="no identity for sb-0031"):
        fresh.rotate("sb-0031")
    # A bundle from before the DER files (PEM only) rotates into the full layout.
    for name in ("ca.der", "device.der", "device.key.der"):
        os.remove(os.path.join(d, name))
    fresh.rotate("sb-0030")
    assert check_identity(d) == []


def test_bulk_issue_writes_every_bundle_and_one_index(fresh):
    seen = []
    ids = ["fleet-%03d" % n for n in range(1, 121)]
    dirs = fresh.issue_devices(ids, progress=lambda done, total: seen.append((done, total)))
    assert [os.path.basename(d) for d in dirs] == ids
    assert seen[-1] == (120, 120)
    assert all(check_identity(d) == [] for d in dirs[::17])
    serials = {cert(os.path.join(d, "device.pem")).serial_number for d in dirs}
    assert len(serials) == 120
    with pytest.raises(PkiError, match="bad device id"):
        fresh.issue_devices(["ok-1", "Not-OK"])
    assert not os.path.exists(fresh.device_dir("ok-1"))  # checked before anything is written


def test_a_lapsing_crl_is_re_signed_before_the_broker_uses_it(fresh, monkeypatch):
    monkeypatch.setattr(pki_module, "CRL_DAYS", 20)
    fresh.write_crl()
    monkeypatch.undo()
    fresh.current_crl()
    with open(fresh.path("crl.pem"), "rb") as f:
        crl = x509.load_pem_x509_crl(f.read())
    assert crl.next_update_utc - datetime.datetime.now(UTC) > datetime.timedelta(days=300)


def run_cli(*args, cwd):
    return subprocess.run(SOUNDBOX + list(args), capture_output=True, text=True, timeout=120, cwd=cwd)


def test_cli_issues_a_numbered_fleet_and_reports_the_rate(tmp_path):
    assert run_cli("pki", "init", cwd=tmp_path).returncode == 0
    r = run_cli("pki", "device", "sb", "--count", "3", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(tmp_path / "certs" / "devices")) == ["sb-0001", "sb-0002", "sb-0003"]
    assert "issued 3 device identities (sb-0001 .. sb-0003)" in r.stdout and "per second" in r.stdout
    r = run_cli("pki", "check", "sb-0002", cwd=tmp_path)
    assert (r.returncode, r.stdout) == (0, "sb-0002: identity OK\n")
    r = run_cli("pki", "rotate", "sb-0002", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.strip().endswith(os.path.join("devices", "sb-0002"))
    r = run_cli("pki", "revoke", "sb-0002", cwd=tmp_path)
    assert r.returncode == 0 and "revoked 2 certificate(s) of sb-0002" in r.stdout


@pytest.mark.parametrize("argv, message", [
    (["pki", "device", "SB-1"], "bad device id 'SB-1'"),
    (["pki", "device", "Sb", "--count", "2"], "bad device id 'Sb-0001'"),
    (["pki", "revoke", "sb-0404"], "no certificate was ever issued to sb-0404"),
    (["pki", "check", "sb-0404"], "missing device.key.der"),
])
def test_cli_errors_are_one_line(tmp_path, argv, message):
    assert run_cli("pki", "init", cwd=tmp_path).returncode == 0
    r = run_cli(*argv, cwd=tmp_path)
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert message in r.stderr


def test_cli_without_a_ca_says_to_run_init(tmp_path):
    r = run_cli("pki", "device", "sb-0001", cwd=tmp_path)
    assert r.returncode == 1 and "run `soundbox pki init` first" in r.stderr


# ---- revoked ids and payment key versions ------------------------------------------------

def bundle(pki, device_id):
    """Every file of the device's bundle, as bytes."""
    d = pki.device_dir(device_id)
    return {n: open(os.path.join(d, n), "rb").read() for n in sorted(os.listdir(d))}


def bundle_key(pki, device_id):
    with open(os.path.join(pki.device_dir(device_id), "payment.key")) as f:
        return bytes.fromhex(f.read().strip())


def serial_of(pki, device_id):
    return cert(os.path.join(pki.device_dir(device_id), "device.pem")).serial_number


def index_text(pki):
    return open(pki.path("index.json")).read()


def json_index(pki):
    return json.loads(index_text(pki))


def test_key_version_0_is_the_key_from_before_versions_and_later_ones_differ(fresh):
    master = bytes.fromhex(open(fresh.path("payment-master.key")).read().strip())
    v0 = hmac.new(master, b"sb-0040", hashlib.sha256).digest()
    v1 = hmac.new(master, b"sb-0040/1", hashlib.sha256).digest()
    assert fresh.payment_key("sb-0040", 0) == v0
    assert fresh.payment_key("sb-0040", 1) == v1
    assert len({fresh.payment_key("sb-0040", n) for n in range(5)}) == 5
    fresh.issue_device("sb-0040")
    assert fresh.key_version("sb-0040") == 0 and bundle_key(fresh, "sb-0040") == v0
    assert "sb-0040" not in json_index(fresh)["key_versions"]  # version 0 is not written


def test_a_pki_index_from_before_key_versions_keeps_every_bundle_key(fresh):
    # An index written before versions existed has no "key_versions": every device is at
    # version 0, whose key its bundle already holds; the cloud signs with the same key.
    from soundbox_cloud.keys import PaymentKeys
    fresh.issue_devices(["old-1", "old-2"])
    index = json_index(fresh)
    index.pop("key_versions", None)
    with open(fresh.path("index.json"), "w") as f:
        f.write(json.dumps(index))
    keys = PaymentKeys(fresh.root)
    for d in ("old-1", "old-2"):
        assert keys.key(d) == bundle_key(fresh, d) == fresh.payment_key(d)
    fresh.rotate("old-1")  # the first bump adds the field
    assert json_index(fresh)["key_versions"] == {"old-1": 1}
    assert keys.key("old-2") == bundle_key(fresh, "old-2")


def test_rotate_revoke_and_reissue_each_retire_the_payment_key(fresh):
    fresh.issue_device("sb-0041")
    keys = [bundle_key(fresh, "sb-0041")]
    fresh.rotate("sb-0041")
    assert fresh.key_version("sb-0041") == 1
    keys.append(bundle_key(fresh, "sb-0041"))
    fresh.revoke("sb-0041", old_only=True)  # retiring the replaced certificate: the box keeps its key
    assert fresh.key_version("sb-0041") == 1
    fresh.revoke("sb-0041")  # the cloud stops signing with the key the revoked box holds
    assert fresh.key_version("sb-0041") == 2
    assert fresh.payment_key("sb-0041") not in keys
    fresh.revoke("sb-0041")  # nothing new revoked: no bump
    assert fresh.key_version("sb-0041") == 2
    fresh.issue_device("sb-0041", reissue=True)
    assert fresh.key_version("sb-0041") == 3
    assert bundle_key(fresh, "sb-0041") == fresh.payment_key("sb-0041") not in keys
    assert fresh.key_version("sb-0042") == 0  # never issued: the default


def test_a_revoked_id_gets_a_new_identity_only_with_reissue(fresh):
    fresh.issue_device("sb-0050")
    old_serial = serial_of(fresh, "sb-0050")
    fresh.revoke("sb-0050")
    before, index = bundle(fresh, "sb-0050"), index_text(fresh)
    for attempt in (lambda: fresh.issue_device("sb-0050"), lambda: fresh.rotate("sb-0050")):
        with pytest.raises(PkiError, match=r"sb-0050 is revoked: .*`soundbox pki device sb-0050 --reissue`"):
            attempt()
        assert bundle(fresh, "sb-0050") == before and index_text(fresh) == index  # nothing written
    assert fresh.is_revoked("sb-0050")

    fresh.issue_device("sb-0050", reissue=True)
    assert not fresh.is_revoked("sb-0050")
    assert serial_of(fresh, "sb-0050") != old_serial and check_identity(fresh.device_dir("sb-0050")) == []
    with open(fresh.path("crl.pem"), "rb") as f:
        crl = x509.load_pem_x509_crl(f.read())
    assert crl.get_revoked_certificate_by_serial_number(old_serial) is not None  # the old one stays refused
    assert crl.get_revoked_certificate_by_serial_number(serial_of(fresh, "sb-0050")) is None
    fresh.rotate("sb-0050")  # a reissued identity is an ordinary one again


def test_only_the_current_certificate_makes_an_id_revoked(fresh):
    fresh.issue_device("sb-0051")
    fresh.rotate("sb-0051")
    fresh.revoke("sb-0051", old_only=True)
    assert not fresh.is_revoked("sb-0051")
    fresh.issue_device("sb-0051")  # no --reissue needed: its current certificate is good


def test_batch_issue_refuses_revoked_ids_before_writing_anything(fresh):
    fresh.issue_devices(["b-1", "b-2", "b-3", "b-4", "b-5"])
    for d in ("b-2", "b-3", "b-4", "b-5"):
        fresh.revoke(d)
    before = {d: bundle(fresh, d) for d in ("b-1", "b-2")}
    index = index_text(fresh)
    with pytest.raises(PkiError, match=r"4 of these ids are revoked \(b-2, b-3, b-4 and 1 more\): nothing "
                                       r"issued; `soundbox pki device ... --reissue` gives them new identities"):
        fresh.issue_devices(["b-1", "b-2", "b-3", "b-4", "b-5", "b-6"])
    assert {d: bundle(fresh, d) for d in ("b-1", "b-2")} == before and index_text(fresh) == index
    assert not os.path.exists(fresh.device_dir("b-6"))
    old = {d: serial_of(fresh, d) for d in ("b-1", "b-2")}
    fresh.issue_devices(["b-1", "b-2", "b-6"], reissue=True)
    assert all(serial_of(fresh, d) != old[d] for d in old)
    assert [fresh.key_version(d) for d in ("b-1", "b-2", "b-6")] == [1, 2, 0]
    assert [fresh.is_revoked(d) for d in ("b-2", "b-3")] == [False, True]


def test_a_new_ca_keeps_the_key_versions(fresh):
    # Same master secret: forgetting a version would bring a retired key back.
    fresh.issue_device("sb-0060")
    fresh.rotate("sb-0060")
    key = fresh.payment_key("sb-0060")
    Pki(fresh.root).init(force=True)
    assert Pki(fresh.root).key_version("sb-0060") == 1 and Pki(fresh.root).payment_key("sb-0060") == key


def test_the_cloud_signs_with_the_current_version_without_a_restart(fresh):
    from soundbox_cloud.keys import PaymentKeys
    fresh.issue_devices(["sb-0070", "sb-0071"])
    keys = PaymentKeys(fresh.root)  # one object for the whole test: a running cloud
    assert keys.key("sb-0070") == bundle_key(fresh, "sb-0070")
    for step in (lambda: fresh.rotate("sb-0070"), lambda: fresh.revoke("sb-0070"),
                 lambda: fresh.issue_device("sb-0070", reissue=True)):
        old = keys.key("sb-0070")
        step()
        assert keys.key("sb-0070") == fresh.payment_key("sb-0070") != old
        assert keys.version("sb-0070") == fresh.key_version("sb-0070")
    assert keys.key("sb-0070") == bundle_key(fresh, "sb-0070")
    assert keys.key("sb-0071") == bundle_key(fresh, "sb-0071")  # the bystander is untouched


def test_the_cloud_reads_the_index_once_per_change(fresh, monkeypatch):
    from soundbox_cloud import keys as keys_module
    fresh.issue_device("sb-0072")
    keys = keys_module.PaymentKeys(fresh.root)
    reads = []
    real = keys_module.versions_from_index
    monkeypatch.setattr(keys_module, "versions_from_index", lambda *a: reads.append(1) or real(*a))
    for _ in range(50):
        keys.key("sb-0072")
    assert reads == []
    fresh.rotate("sb-0072")
    for _ in range(50):
        keys.key("sb-0072")
    assert reads == [1]


def test_a_damaged_index_stops_a_cloud_start_and_a_running_cloud_keeps_its_versions(fresh, caplog):
    from soundbox_cloud.errors import CloudError
    from soundbox_cloud.keys import PaymentKeys
    fresh.issue_device("sb-0073")
    fresh.rotate("sb-0073")
    keys = PaymentKeys(fresh.root)
    good = keys.key("sb-0073")
    intact = index_text(fresh)
    with open(fresh.path("index.json") + ".tmp", "w") as f:
        f.write('{"key_versions": {"sb-0073": "two"}}')
    os.replace(fresh.path("index.json") + ".tmp", fresh.path("index.json"))
    with pytest.raises(CloudError, match=r"key version of sb-0073 is 'two', not a whole number"):
        PaymentKeys(fresh.root)
    with caplog.at_level("WARNING", logger="soundbox_cloud"):
        assert [keys.key("sb-0073") for _ in range(3)] == [good] * 3
    warnings = [r.getMessage() for r in caplog.records if "unreadable" in r.getMessage()]
    assert len(warnings) == 1 and "still using the versions read before" in warnings[0]
    assert good.hex() not in caplog.text
    with open(fresh.path("index.json"), "w") as f:
        f.write("{not json")
    with pytest.raises(CloudError, match="cannot read the key versions in .*index.json"):
        PaymentKeys(fresh.root)
    with open(fresh.path("index.json") + ".tmp", "w") as f:
        f.write(intact)
    os.replace(fresh.path("index.json") + ".tmp", fresh.path("index.json"))
    assert keys.key("sb-0073") == good and PaymentKeys(fresh.root).key("sb-0073") == good


def test_a_bare_master_secret_without_an_index_signs_at_version_0(tmp_path):
    from soundbox_cloud.keys import PaymentKeys, derive
    master = bytes(range(32))
    (tmp_path / "payment-master.key").write_text(master.hex() + "\n")
    assert PaymentKeys(tmp_path).key("sb-0001") == derive(master, "sb-0001", 0) == hmac.new(
        master, b"sb-0001", hashlib.sha256).digest()


def test_cli_refuses_a_revoked_id_in_one_line_and_reissues_it_with_the_flag(tmp_path):
    assert run_cli("pki", "init", cwd=tmp_path).returncode == 0
    assert run_cli("pki", "device", "sb", "--count", "3", cwd=tmp_path).returncode == 0
    r = run_cli("pki", "revoke", "sb-0002", cwd=tmp_path)
    assert r.returncode == 0 and "revoked 1 certificate(s) of sb-0002; its payment key is retired" in r.stdout
    pki = Pki(tmp_path / "certs")
    before = bundle(pki, "sb-0002")
    for argv, message in ((["pki", "device", "sb-0002"], "sb-0002 is revoked: a new identity for it needs "
                                                          "`soundbox pki device sb-0002 --reissue`"),
                          (["pki", "rotate", "sb-0002"], "sb-0002 is revoked"),
                          (["pki", "device", "sb", "--count", "3"], "1 of these ids are revoked (sb-0002)")):
        r = run_cli(*argv, cwd=tmp_path)
        assert r.returncode == 1 and r.stdout == ""
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr and message in r.stderr
    assert bundle(pki, "sb-0002") == before
    r = run_cli("pki", "device", "sb-0002", "--reissue", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.strip().endswith(os.path.join("devices", "sb-0002"))
    assert pki.key_version("sb-0002") == 2 and not pki.is_revoked("sb-0002")
    assert run_cli("pki", "check", "sb-0002", cwd=tmp_path).stdout == "sb-0002: identity OK\n"
    r = run_cli("pki", "device", "sb", "--count", "3", "--reissue", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    # Nothing the CLI says holds key material.
    said = r.stdout + r.stderr
    assert not any(bundle_key(pki, d).hex() in said for d in ("sb-0001", "sb-0002", "sb-0003"))


def test_provisioning_refuses_a_revoked_identity_and_takes_the_reissued_one(fresh):
    from soundbox_tools.devicefs import DeviceError, identity_targets
    fresh.issue_device("sb-0080")
    fresh.revoke("sb-0080")
    with pytest.raises(DeviceError, match=r"sb-0080 is revoked: `soundbox pki device sb-0080 --reissue"):
        identity_targets(fresh, "sb-0080", fresh.root)
    fresh.issue_device("sb-0080", reissue=True)
    targets, issued = identity_targets(fresh, "sb-0080", fresh.root)
    assert not issued and bytes.fromhex(targets["/certs/payment.key"].decode()) == fresh.payment_key("sb-0080")


def test_the_simulator_does_not_quietly_reissue_a_revoked_identity(fresh):
    from soundbox_tools.cli import device_identities
    fresh.issue_devices(["sb-0001", "sb-0002"])
    fresh.revoke("sb-0002")
    os.remove(os.path.join(fresh.device_dir("sb-0002"), "payment.key"))  # a bundle that lost a file
    with pytest.raises(PkiError, match=r"sb-0002 is revoked: .*`soundbox pki device sb-0002 --reissue`"):
        device_identities(fresh.root, 2)
    assert not os.path.exists(os.path.join(fresh.device_dir("sb-0002"), "payment.key"))
    os.remove(os.path.join(fresh.device_dir("sb-0001"), "payment.key"))  # not revoked: issued again
    device_identities(fresh.root, 1)
    assert fresh.key_version("sb-0001") == 1 and bundle_key(fresh, "sb-0001") == fresh.payment_key("sb-0001")
