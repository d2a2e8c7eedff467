"""Where updates land on an ESP32: app bundles and voice packs on the filesystem (as in
soundbox.otaslots.FileSlots), firmware images straight into the other OTA partition.
Which is which is the kind's landing in soundbox.otakinds: an IMAGE goes to a partition
(the chip has one A/B pair, so one IMAGE kind), the rest is FileSlots'.

Firmware (the MicroPython image) uses the chip's own A/B scheme, esp32.Partition:
- the download goes chunk by chunk into Partition(RUNNING).get_next_update(), each
  4 KiB flash sector erased and written in one writeblocks(block, buf) call, so a
  sector rewritten after a power cut is simply written again;
- install() records the pending version in <root>/firmware.json, then set_boot();
- the new image starts on trial. ESP-IDF's bootloader (MicroPython builds it with
  CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE) boots it once; if the board resets before
  mark_app_valid_cancel_rollback(), the bootloader itself goes back to the previous
  image. boot() notices that (the running partition is not the one we set) and
  reports it;
- confirm() marks the image valid, only after the updater's self-test passed;
  rollback() sets the previous partition to boot.

The pointer firmware.json has FileSlots' shape with partition labels as slot names:
{"active": "ota_1", "previous": "ota_0", "trial": true, "boots": 0,
 "versions": {"ota_0": "..", "ota_1": ".."}}.
A MicroPython build without OTA partitions (one "factory" app partition) has no
next partition: the firmware slot then holds 0 bytes and firmware updates are
refused; app and voice updates still work.
"""

import hashlib

import esp32

from soundbox import otakinds
from soundbox.otaslots import FileSlots, _hex

SECTOR = 4096  # flash erase unit = esp32.Partition block


def _in_partition(kind):
    """An IMAGE kind (the firmware) lands in the other OTA partition, not the filesystem.
    An unknown kind is FileSlots', which refuses it."""
    k = otakinds.get(kind)
    return k is not None and k.lands == otakinds.IMAGE


class Esp32Slots(FileSlots):
    def __init__(self, root, model, versions, capacities, voice_dir=None, factory_app_dir="/lib",
                 app_problem=None):
        """factory_app_dir: the bundle that runs when app.json names "lib" (main.py's fallback).
        app_problem: why main.py could not load the app bundle app.json points at (None if it
        could): a trial bundle that did not load is rolled back by boot()."""
        FileSlots.__init__(self, root, model, versions, capacities, voice_dir)
        self.factory_app_dir = factory_app_dir
        self.app_problem = app_problem
        self._staging = False  # the artifact being downloaded goes to a partition
        self._target = None  # the partition a firmware download goes to

    # ---- partitions -----------------------------------------------------------------

    def _running_label(self):
        return esp32.Partition(esp32.Partition.RUNNING).info()[4]  # type: ignore[arg-type]

    def _next_partition(self):
        """The OTA partition that is not running, or None on a build without OTA partitions."""
        try:
            return esp32.Partition(esp32.Partition.RUNNING).get_next_update()  # type: ignore[arg-type]
        except OSError:
            return None

    def _staged_partition(self):
        return self._target if self._target is not None else self._next_partition()

    def _mark_valid(self):
        """Cancel the bootloader's rollback for the running image. ESP-IDF refuses (OSError) on a
        board whose otadata is still blank (flashed with esptool, never updated) and on a build
        without rollback support: there is nothing to cancel then."""
        try:
            esp32.Partition.mark_app_valid_cancel_rollback()
        except OSError:
            pass

    def _default_active(self, kind):
        if _in_partition(kind):
            return self._running_label()
        return FileSlots._default_active(self, kind)

    def capacity(self, kind):
        if not _in_partition(kind):
            return FileSlots.capacity(self, kind)
        part = self._next_partition()
        return part.info()[3] if part is not None else 0

    # ---- download staging ----------------------------------------------------------

    def begin(self, manifest, resume):
        self._staging = _in_partition(manifest["kind"])
        if not self._staging:
            FileSlots.begin(self, manifest, resume)
            return
        # Nothing to prepare: each sector is erased as it is written.
        self._target = self._next_partition()
        if self._target is None:
            raise OSError("this MicroPython build has no OTA partition to update")

    def write(self, offset, data):
        if not self._staging:
            FileSlots.write(self, offset, data)
            return
        part = self._target
        if part is None:
            raise OSError("firmware chunk written before begin()")
        first = offset // SECTOR
        head = offset - first * SECTOR
        end = head + len(data)
        if not head and not end % SECTOR:
            part.writeblocks(first, data)  # whole sectors: erase and write in one call
            return
        # A chunk that does not fill whole sectors (the image's last one, or a manifest with
        # another chunk size): keep what else the sectors hold. A power cut between the erase and
        # the write can lose those other chunks; the digest check before install catches that.
        buf = bytearray((end + SECTOR - 1) // SECTOR * SECTOR)
        part.readblocks(first, buf)
        buf[head:end] = data
        part.writeblocks(first, buf)

    def digest(self, manifest):
        if not _in_partition(manifest["kind"]):
            return FileSlots.digest(self, manifest)
        part = self._staged_partition()
        h = hashlib.sha256()
        buf = bytearray(SECTOR)
        left = manifest["size"]
        block = 0
        while left > 0:
            part.readblocks(block, buf)
            h.update(buf if left >= SECTOR else memoryview(buf)[:left])
            left -= SECTOR
            block += 1
        return _hex(h.digest())

    # ---- install, boot, confirm, rollback ------------------------------------------------

    def install(self, manifest):
        kind = manifest["kind"]
        if not _in_partition(kind):
            return FileSlots.install(self, manifest)
        part = self._staged_partition()
        label = part.info()[4]
        pointer = self._pointer(kind)
        running = self._running_label()
        pointer["versions"][label] = manifest["version"]
        # Recorded before set_boot(): a power cut between the two boots the old image, which
        # boot() reports as not started, and the download's job installs it again.
        pointer.update({"previous": running, "active": label, "trial": True, "boots": 0})
        self._write_json(kind + ".json", pointer)
        try:
            part.set_boot()  # ESP-IDF checks the image here
        except OSError as e:
            pointer.update({"previous": None, "active": running, "trial": False})
            self._write_json(kind + ".json", pointer)
            raise OSError("the bootloader refused the image in %s: %s" % (label, e))
        return otakinds.of(kind).restart

    def _boot_step(self, kind):
        if not _in_partition(kind):
            return FileSlots._boot_step(self, kind)
        pointer = self._pointer(kind)
        running = self._running_label()
        if pointer["trial"] and running == pointer["active"]:
            # The new image runs, on trial: the updater's self-test decides. Not marked valid:
            # a reset before that makes the bootloader go back.
            if not pointer["boots"]:
                pointer["boots"] = 1
                self._write_json(kind + ".json", pointer)
            return None
        reason = None
        if pointer["trial"]:
            reason = ("version %s did not start or restarted before it was confirmed: the bootloader "
                      "went back to %s" % (pointer["versions"].get(pointer["active"]), running))
        elif running != pointer["active"]:
            reason = ("version %s in %s stopped running: the bootloader started %s"
                      % (pointer["versions"].get(pointer["active"]), pointer["active"], running))
        if reason:
            if running not in pointer["versions"]:
                pointer["versions"][running] = self.factory.get(kind)
            pointer.update({"active": running, "previous": None, "trial": False, "boots": 0})
            self._write_json(kind + ".json", pointer)
        # A confirmed image (or the one the bootloader went back to): keep it. After set_boot()
        # the bootloader starts even the old image on trial; this cancels that.
        self._mark_valid()
        return reason

    def _boot_problem(self, kind, pointer):
        if kind == otakinds.APP:  # what main.py saw loading the bundle app.json names
            return self.app_problem
        return None

    def image_header(self):
        return None  # an ESP32 image has no simulator header

    def confirm(self, kind, name):
        if not _in_partition(kind):
            FileSlots.confirm(self, kind, name)
            return
        # Marked first: a power cut before the record only means the self-test runs again.
        # Should marking fail (a build without rollback support), there is nothing to cancel.
        self._mark_valid()
        FileSlots.confirm(self, kind, name)

    def rollback(self, kind, name):
        if not _in_partition(kind):
            return FileSlots.rollback(self, kind, name)
        pointer = self._pointer(kind)
        previous = pointer["previous"]
        self._revert(kind, pointer)
        if previous:
            try:
                esp32.Partition(previous).set_boot()
            except OSError:
                pass  # the new image is still unconfirmed: at the reset the bootloader goes back anyway
        return otakinds.of(kind).restart

    def active_app_dir(self):
        active = self._pointer(otakinds.APP)["active"]
        return self.factory_app_dir if active == "lib" else self.root + "/" + active

