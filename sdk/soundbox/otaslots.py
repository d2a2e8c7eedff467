"""Where updates land: directory-backed A/B slots with a trial boot and rollback.

One store serves every kind in soundbox.otakinds, by how the kind lands:
- a BUNDLE (app): files unpacked into the inactive one of <root>/app_a and
  <root>/app_b; switched by one atomic write of <root>/app.json (the pointer file
  the ESP32's main.py reads to choose the bundle on sys.path).
- an IMAGE (firmware): an image in the inactive one of <root>/fw_a.bin, <root>/fw_b.bin
  and the pointer <root>/firmware.json. This is the simulator's stand-in for
  esp32.Partition; the ESP32 subclass (soundbox_fw.esp32slots) overrides it.
- a PACK (voice): a pack renamed over <voice_dir>/<lang>.pack, the old one kept until the
  new one is confirmed.

A new version first runs on trial. If the box restarts before confirm() (a crash,
a failed self-test, a power cut), boot() puts the previous version back, as the
ESP32 bootloader does with an image that was never marked valid.

Every write that matters goes through _write_file / _write_at / _rename, whole
files by rename, so a power cut leaves the old or the new state, never half.
"""

import binascii
import hashlib
import json
import os

from soundbox import otakinds
from soundbox.otakinds import BUNDLE, PACK
from soundbox.storage import makedirs

STAGE = "ota_stage.bin"
SIM_IMAGE_MAGIC = b"SBSIM1\n"  # a simulator firmware image starts with this, then a JSON header line
BLOCK = 4096  # read size when hashing a staged artifact


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


class FileSlots:
    def __init__(self, root, model, versions, capacities, voice_dir=None):
        """versions: what runs when no update was ever installed, {"app": .., "firmware": ..}.
        capacities: {kind: bytes}. voice_dir: where voice packs land (<root>/voice if None);
        any other PACK kind lands in <root>/<kind>."""
        self.root = root
        self.model = model
        self.factory = versions
        self.capacities = capacities
        self.voice_dir = voice_dir or root + "/voice"
        self.pack_dirs = {otakinds.VOICE: self.voice_dir}

    # ---- file primitives (a power-cut test overrides these) ----------------------

    def _write_file(self, path, data):
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, path)

    def _write_at(self, path, offset, data):
        with open(path, "r+b") as f:
            f.seek(offset)
            f.write(data)

    def _rename(self, src, dst):
        os.rename(src, dst)

    def _read_json(self, name, default):
        try:
            with open(self.root + "/" + name) as f:
                value = json.load(f)
            if type(value) is type(default):
                return value
        except (OSError, ValueError):
            pass
        return default

    def _write_json(self, name, value):
        self._write_file(self.root + "/" + name, json.dumps(value).encode())

    # ---- download staging ----------------------------------------------------

    def capacity(self, kind):
        return self.capacities.get(kind, 0)

    def begin(self, manifest, resume):
        """Prepare the staging area for `manifest`; keep what is there when resuming."""
        path = self.root + "/" + STAGE
        if not resume or not _exists(path):
            with open(path, "wb") as f:
                f.write(b"")  # sparse: chunks are written at their offsets

    def write(self, offset, data):
        self._write_at(self.root + "/" + STAGE, offset, data)

    def digest(self, manifest):
        """Hex SHA-256 of the staged artifact's first manifest["size"] bytes."""
        h = hashlib.sha256()
        left = manifest["size"]
        with open(self.root + "/" + STAGE, "rb") as f:
            while left > 0:
                block = f.read(BLOCK if left > BLOCK else left)
                if not block:
                    break
                h.update(block)
                left -= len(block)
        return _hex(h.digest())

    def read_staged(self, offset, n):
        with open(self.root + "/" + STAGE, "rb") as f:
            f.seek(offset)
            return f.read(n)

    # ---- A/B pointers -------------------------------------------------------------

    def _default_active(self, kind):
        """The slot that runs when no update was ever installed."""
        return otakinds.of(kind).factory_slot

    def _pointer(self, kind):
        default_active = self._default_active(kind)
        p = self._read_json(kind + ".json", {})
        if "active" not in p:
            p = {"active": default_active, "previous": None, "trial": False, "boots": 0,
                 "versions": {default_active: self.factory.get(kind)}}
        return p

    def _inactive(self, kind, pointer):
        a, b = otakinds.of(kind).slots
        return b if pointer["active"] == a else a

    def install(self, manifest):
        """Put the verified staged artifact in place, on trial. True when a reboot is needed."""
        k = otakinds.of(manifest["kind"])
        if k.lands == PACK:
            self._install_pack(k, manifest)
            return k.restart
        pointer = self._pointer(k.name)
        slot = self._inactive(k.name, pointer)
        if k.lands == BUNDLE:
            self._unpack(manifest, self.root + "/" + slot)
        else:
            self._install_image(manifest, slot)
        pointer["versions"][slot] = manifest["version"]
        pointer.update({"previous": pointer["active"], "active": slot, "trial": True, "boots": 0})
        self._write_json(k.name + ".json", pointer)  # the switch: one atomic write
        return k.restart

    def _install_image(self, manifest, slot):
        self._rename(self.root + "/" + STAGE, self.root + "/" + slot)

    def _unpack(self, manifest, directory):
        _rmtree(directory)
        for entry in manifest["files"]:
            path = directory + "/" + entry["path"]
            makedirs(path[:path.rfind("/")])
            body = self.read_staged(entry["offset"], entry["size"])
            if _hex(hashlib.sha256(body).digest()) != entry["sha256"]:
                raise OSError("file %s does not match the manifest" % entry["path"])
            self._write_file(path, body)

    def boot(self):
        """The bootloader's step, once per start: a version still on trial from the last
        start was never confirmed, so the previous one comes back. Returns
        [(kind, reason)] for each rollback done."""
        done = []
        for k in otakinds.KINDS:
            if not k.slots:
                continue  # a pack is on trial until its self-test, not until a start
            reason = self._boot_step(k.name)
            if reason:
                done.append((k.name, reason))
        return done

    def _boot_step(self, kind):
        """boot() for one kind: the reason it was rolled back, or None."""
        pointer = self._pointer(kind)
        if not pointer["trial"]:
            return None
        if pointer["boots"] >= 1:
            reason = "restarted before version %s confirmed" % pointer["versions"].get(pointer["active"])
        else:
            reason = self._boot_problem(kind, pointer)
        if reason:
            self._revert(kind, pointer)
            return reason
        pointer["boots"] = 1
        self._write_json(kind + ".json", pointer)
        return None

    def _boot_problem(self, kind, pointer):
        """Why the trial version cannot even start (None if it can): the simulator's images
        can be built to crash at boot."""
        if otakinds.of(kind).lands != otakinds.IMAGE:
            return None
        header = self.image_header()
        if header and header.get("boot") == "crash":
            return "version %s crashed at boot" % header.get("version")
        return None

    def image_header(self):
        """A simulator image's behaviour header, or None (not an image, or none installed)."""
        pointer = self._pointer(otakinds.FIRMWARE)
        try:
            with open(self.root + "/" + pointer["active"], "rb") as f:
                head = f.read(256)
        except OSError:
            return None
        if not head.startswith(SIM_IMAGE_MAGIC):
            return None
        try:
            return json.loads(head[len(SIM_IMAGE_MAGIC):].split(b"\n", 1)[0])
        except ValueError:
            return None

    def _revert(self, kind, pointer):
        pointer.update({"active": pointer["previous"] or pointer["active"], "previous": None,
                        "trial": False, "boots": 0})
        self._write_json(kind + ".json", pointer)

    # ---- versions, confirm, rollback -------------------------------------------------

    def running(self, kind, name):
        k = otakinds.get(kind)
        if k is None:
            return None  # a kind this version does not know (left on flash by another): none runs
        if k.lands == PACK:
            return self._read_json(kind + ".json", {}).get(name, [None])[0]
        pointer = self._pointer(kind)
        return pointer["versions"].get(pointer["active"])

    def on_trial(self, kind, name):
        k = otakinds.of(kind)
        if k.lands == PACK:
            return _exists(self._pack(k, name) + ".old")
        return self._pointer(kind)["trial"]

    def confirm(self, kind, name):
        k = otakinds.of(kind)
        if k.lands == PACK:
            try:
                os.remove(self._pack(k, name) + ".old")
            except OSError:
                pass
            return
        pointer = self._pointer(kind)
        if pointer["trial"]:
            pointer["trial"] = False
            self._write_json(kind + ".json", pointer)

    def rollback(self, kind, name):
        """Back to the previous version; True when that takes a reboot."""
        k = otakinds.of(kind)
        if k.lands == PACK:
            old = self._pack(k, name) + ".old"
            if _exists(old):
                self._rename(old, self._pack(k, name))
            versions = self._read_json(kind + ".json", {})
            if name in versions:
                versions[name] = [versions[name][1], None]
                self._write_json(kind + ".json", versions)
            return k.restart
        self._revert(kind, self._pointer(kind))
        return k.restart

    def active_app_dir(self):
        return self.root + "/" + self._pointer(otakinds.APP)["active"]

    # ---- packs (voice) -------------------------------------------------------------

    def _pack_dir(self, k):
        return self.pack_dirs.get(k.name) or self.root + "/" + k.name

    def _pack(self, k, name):
        return "%s/%s%s" % (self._pack_dir(k), name, k.suffix)

    def _install_pack(self, k, manifest):
        name = manifest["name"]
        pack = self._pack(k, name)
        makedirs(self._pack_dir(k))
        if _exists(pack):
            self._rename(pack, pack + ".old")
        self._rename(self.root + "/" + STAGE, pack)
        versions = self._read_json(k.name + ".json", {})  # name -> [version, previous version]
        versions[name] = [manifest["version"], versions.get(name, [None])[0]]
        self._write_json(k.name + ".json", versions)


def _hex(digest):
    return binascii.hexlify(digest).decode()


def _rmtree(path):
    try:
        entries = os.listdir(path)
    except OSError:
        return
    for name in entries:
        child = path + "/" + name
        try:
            os.remove(child)
        except OSError:
            _rmtree(child)
    try:
        os.rmdir(path)
    except OSError:
        pass
