"""`soundbox device deploy` and `provision`: put files on a board, skipping what is already there.

Both go through deviceport.Board (mpremote's raw-REPL transport). The board is
asked once for the size and sha256 of every file we mean to write (hashed on
the board, so a file is compared by content, not by date), and only files that
differ are written. Files are written parents first and main.py last, so a
deploy cut short leaves the old main.py, which reports the half-finished deploy.

deploy:    the bundle (boot.py, main.py, lib/, board.json, voice/), the PKI's CA
           (/certs/ca.der) and OTA release keys (/certs/ota_keys.json, from
           <certs>/ota/trusted.json when present), and optionally a config file.
           With romfs: the code goes as the bundle's ROMFS image into the board's romfs
           partition instead (mpremote's `romfs deploy`, skipped when the partition already
           holds the same bytes, hashed on the board), then the other files as above, and
           the code files in /lib are removed: main.py runs /lib's app when there is one,
           so a copy left there would shadow the image.
provision: one device's identity (issued with the PKI if missing) into /certs/
           and its /config.json (device id, broker, TLS, WiFi), merged over the
           config already on the board. Secrets are written, never printed.
"""

import hashlib
import json
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from soundbox_cloud.errors import BrokerUnavailable
from soundbox_cloud.mqttlink import parse_broker_url
from soundbox_tools.devicebuild import DeviceError, _sha256, flash_bytes, kib, read_manifest
from soundbox_tools.pki import BUNDLE_FILES, check_identity

# Runs on the board: PATHS is prepended. Prints one JSON line.
_SURVEY = """
import os, hashlib, binascii, json
def _h(p):
    try:
        size = os.stat(p)[6]
    except OSError:
        return None
    d = hashlib.sha256()
    b = bytearray(1024)
    with open(p, 'rb') as f:
        while True:
            n = f.readinto(b)
            if not n:
                break
            d.update(b if n == 1024 else b[:n])
    return [size, binascii.hexlify(d.digest()).decode()]
def _walk(d, out):
    try:
        entries = list(os.ilistdir(d))
    except OSError:
        return
    for e in entries:
        if e[1] == 0x4000:
            _walk(d + '/' + e[0], out)
        else:
            out.append(d + '/' + e[0])
_lib = []
_walk('/lib', _lib)
try:
    os.stat('/rom/lib/soundbox_fw/esp32boot.mpy')
    _rom_app = True
except OSError:
    _rom_app = False
_free = None
try:
    _s = os.statvfs('/')
    _free = _s[0] * _s[3]
except (AttributeError, OSError):
    pass
print(json.dumps({'files': {p: _h(p) for p in PATHS}, 'lib': _lib, 'free': _free, 'rom_app': _rom_app}))
"""

_MKDIRS = """
import os
for _d in DIRS:
    try:
        os.mkdir(_d)
    except OSError:
        pass
"""

CONFIG_PATH = "/config.json"
# The pointer to an app bundle an over-the-air update installed (firmware/main.py runs it
# ahead of /lib). A deploy removes it, so the bundle just deployed is the one that runs.
OTA_APP_POINTER = "/ota/app.json"
_REMOVE_IF_THERE = """
import os
try:
    os.remove(%r)
    print(1)
except OSError:
    print(0)
"""


def survey(board, paths):
    """{"files": {path: [size, sha256] | None}, "lib": [paths under /lib], "free": bytes | None,
    "rom_app": whether a ROMFS image mounted at /rom holds an app}."""
    out = board.exec("PATHS = %r\n%s" % (sorted(paths), _SURVEY))
    try:
        return json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise DeviceError("the board answered the file survey with %r" % out[-80:])


def sync(board, targets, keep_last="/main.py", lib_keep=None):
    """Write each (device path, bytes) in `targets` whose content differs on the board.

    lib_keep: when a set of paths, files under /lib that are not in it are removed
    (a module dropped from the bundle must not linger and be imported).
    Returns {"written", "unchanged", "bytes", "removed", "free", "ota_app_reset", "rom_app"};
    ota_app_reset is True when an over-the-air app update had been running and the deployed
    bundle now runs again; rom_app when the board's ROMFS image (/rom/lib) holds an app.
    """
    targets = dict(targets)
    state = survey(board, targets)
    have = state["files"]
    todo = {}
    for path, data in targets.items():
        now = have.get(path)
        if now is None or now[0] != len(data) or now[1] != _hex(data):
            todo[path] = data
    grow = sum(flash_bytes(len(d)) - (flash_bytes(have[p][0]) if have.get(p) else 0) for p, d in todo.items())
    if state["free"] is not None and grow > state["free"]:
        raise DeviceError("not enough room on the board: the changed files need %s more, %s is free "
                          "(build with fewer voice packs, or erase old files)" % (kib(grow), kib(state["free"])))
    dirs = sorted({p[:i] for p in todo for i in range(1, len(p)) if p[i] == "/"}, key=len)
    if dirs:
        board.exec("DIRS = %r\n%s" % (dirs, _MKDIRS))
    for path in sorted(todo, key=lambda p: (p == keep_last, p)):
        board.write_file(path, todo[path])
    removed = []
    ota_app_reset = False
    if lib_keep is not None:
        removed = [p for p in state["lib"] if p not in lib_keep]
        for p in removed:
            board.exec("import os\nos.remove(%r)" % p)
        ota_app_reset = board.exec(_REMOVE_IF_THERE % OTA_APP_POINTER).strip().endswith(b"1")
    return {"written": len(todo), "unchanged": len(targets) - len(todo),
            "bytes": sum(len(d) for d in todo.values()), "removed": len(removed), "free": state["free"],
            "ota_app_reset": ota_app_reset, "rom_app": bool(state.get("rom_app"))}


def _hex(data):
    return hashlib.sha256(data).hexdigest()


def deploy_targets(bundle_dir, certs=None, config_file=None, romfs=False):
    """(manifest, targets, lib paths to keep): the bundle checked against its manifest, plus trust
    and config. romfs: the code is left out (it goes in the ROMFS image) and no /lib file is kept."""
    manifest = read_manifest(bundle_dir)
    targets = {}
    for entry in manifest["files"]:
        if romfs and entry["path"].startswith("lib/"):
            continue
        local = Path(bundle_dir) / entry["path"]
        if not local.is_file() or _sha256(local) != entry["sha256"]:
            raise DeviceError("%s does not match the bundle's manifest: run `soundbox device build` again" % local)
        targets["/" + entry["path"]] = local.read_bytes()
    if certs is not None:
        ca = Path(certs) / "ca.pem"
        if ca.is_file():
            targets["/certs/ca.der"] = _ca_der(ca)
        trusted = Path(certs) / "ota" / "trusted.json"
        if trusted.is_file():
            targets["/certs/ota_keys.json"] = trusted.read_bytes()
    if config_file is not None:
        targets[CONFIG_PATH] = _config_bytes(config_file)
    lib = {p for p in targets if p.startswith("/lib/")}
    return manifest, targets, lib


def _ca_der(path):
    """The PKI's CA certificate in DER: MicroPython's mbedTLS reads no PEM."""
    try:
        return x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(Encoding.DER)
    except ValueError as e:
        raise DeviceError("%s is not a PEM certificate (%s): run `soundbox pki init` for a CA" % (path, e))


def _config_bytes(path):
    try:
        config = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise DeviceError("no config file %s" % path)
    except ValueError as e:
        raise DeviceError("%s is not valid JSON: %s" % (path, e))
    missing = [k for k in ("device_id", "broker_host", "broker_port") if not isinstance(config, dict) or k not in config]
    if missing:
        raise DeviceError("%s lacks %s (soundbox device provision writes a complete one)" % (path, ", ".join(missing)))
    if config.get("mqtt", 4) not in (4, 5) or isinstance(config.get("mqtt"), bool):
        raise DeviceError("%s: mqtt must be 4 (MQTT 3.1.1) or 5, got %r" % (path, config["mqtt"]))
    return (json.dumps(config, indent=1, sort_keys=True) + "\n").encode()


def read_device_config(board):
    """The board's /config.json as a dict, {} when it has none (or an unreadable one)."""
    out = board.exec("try:\n with open(%r) as f:\n  print(f.read())\nexcept OSError:\n print('{}')" % CONFIG_PATH)
    try:
        config = json.loads(out.decode())
    except ValueError:
        return {}
    return config if isinstance(config, dict) else {}


def identity_targets(pki, device_id, certs):
    """The device's /certs files, issuing its identity first if it has none."""
    if not pki.exists():
        raise DeviceError("no CA in %s: run `soundbox pki init --dir %s` first" % (pki.root, certs))
    if pki.is_revoked(device_id):  # its bundle would be refused by the broker and its payment key is retired
        raise DeviceError("%s is revoked: `soundbox pki device %s --reissue --dir %s` gives it a new identity first"
                          % (device_id, device_id, certs))
    directory = pki.device_dir(device_id)
    issued = False
    if any(not os.path.exists(os.path.join(directory, f)) for f in BUNDLE_FILES):
        pki.issue_device(device_id)
        issued = True
    problems = check_identity(directory)
    if problems:
        raise DeviceError("identity of %s is unusable: %s (`soundbox pki rotate %s` issues a new one)"
                          % (device_id, "; ".join(problems), device_id))
    targets = {"/certs/" + f: Path(directory, f).read_bytes() for f in BUNDLE_FILES}
    trusted = Path(certs) / "ota" / "trusted.json"
    if trusted.is_file():
        targets["/certs/ota_keys.json"] = trusted.read_bytes()
    return targets, issued


def provisioned_config(existing, device_id, broker=None, server_name=None, wifi_ssid=None, wifi_password=None,
                       network=None, apn=None, lang=None, mqtt=None):
    """The board's new config: the existing one with this device's identity, broker and link."""
    config = dict(existing)
    config["device_id"] = device_id
    if broker is not None:
        try:
            host, port, tls = parse_broker_url(broker)
        except BrokerUnavailable as e:
            raise DeviceError(str(e)) from None
        config["broker_host"], config["broker_port"] = host, port
        if tls:
            config["tls"] = {"identity": "/certs"}
            if server_name:
                config["tls"]["server_hostname"] = server_name
        else:
            config.pop("tls", None)
    if "broker_host" not in config:
        raise DeviceError("the board has no broker yet: give --broker mqtts://HOST:PORT")
    if network == "ppp":
        config["network"] = "ppp"
        config["apn"] = apn or config.get("apn", "")
    elif network == "wifi" or wifi_ssid is not None:
        config["network"] = "wifi"
    if wifi_ssid is not None:
        config["wifi_ssid"] = wifi_ssid
    if wifi_password is not None:
        config["wifi_password"] = wifi_password
    if config.get("network", "wifi") == "wifi" and not config.get("wifi_ssid"):
        raise DeviceError("the board has no WiFi network yet: give --wifi-ssid NAME "
                          "(the password comes from $SOUNDBOX_WIFI_PASSWORD or a prompt)")
    if lang is not None:
        config["lang"] = lang
    config.setdefault("lang", "en-IN")
    if mqtt is not None:   # 4 or 5; absent on the board means 4
        config["mqtt"] = mqtt
    return config
