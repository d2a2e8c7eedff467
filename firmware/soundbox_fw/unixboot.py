"""Boot sequence of a desktop soundbox (MicroPython's unix port), after firmware/unix_main.py
has run the update slots' boot step and chosen the app bundle.

    config   the device config (soundbox_fw.app) plus the UnixHal keys (soundbox_fw.unixhal)
    ota      with "ota_keys": update slots under <flash>/ota, model "soundbox-unix"
    app      Soundbox(hal, config).run() until stopped; a restart the app asks for
             (after an update) exits with unixhal.REBOOT_EXIT for the launcher to start it again

Same app, same SDK as on the ESP32: only the HAL differs.
"""

import asyncio
import sys

from soundbox import VERSION
from soundbox.otakinds import APP, FIRMWARE, VOICE
from soundbox.otaslots import FileSlots
from soundbox.storage import makedirs
from soundbox_fw.app import Soundbox
from soundbox_fw.unixhal import UnixHal

MODEL = "soundbox-unix"
CAPACITIES = {APP: 1 << 20, FIRMWARE: 4 << 20, VOICE: 4 << 20}


def firmware_version():
    return "micropython-%d.%d.%d" % tuple(sys.implementation.version[:3])


def slots_root(config):
    return config["flash"] + "/ota"


def start_ota(hal, config, rollbacks, app_problem):
    """The update slots, when the box has release keys (else it takes no updates)."""
    keys = config.get("ota_keys")
    if not keys:
        return
    # FileSlots writes its staging file and pointers into this directory but never makes it
    # (the simulator hands it the device's existing state dir): without it the first job's
    # slots.begin() failed with OSError(2) and no update could ever download.
    makedirs(slots_root(config))
    slots = FileSlots(slots_root(config), config.get("model", MODEL),
                      {APP: VERSION, FIRMWARE: firmware_version()}, CAPACITIES, voice_dir=config["voice_dir"])
    if app_problem:  # the updated bundle did not load: back to the one before it
        slots.rollback(APP, APP)
        rollbacks[APP] = app_problem
    for kind in rollbacks:
        hal.log("boot: %s rolled back: %s" % (kind, rollbacks[kind]))
    hal.enable_ota(slots, rollbacks)


async def boot(config, rollbacks, app_problem):
    hal = UnixHal(config)
    hal.log("boot: soundbox %s on %s, device %s" % (VERSION, firmware_version(), config["device_id"]))
    start_ota(hal, config, rollbacks, app_problem)
    app = Soundbox(hal, config)
    hal.log("boot: app starting")
    await app.run()


def run(config, rollbacks=None, app_problem=None):
    asyncio.run(boot(config, rollbacks or {}, app_problem))
