"""OTA for a simulated soundbox: the SDK's directory-backed A/B slots in the device's
state directory, plus what a simulated firmware image does when it boots.

A simulator "firmware" image (soundbox ota sim-image) starts with a header that says
how it behaves: `"boot": "crash"` never gets as far as confirming (the boot step
rolls it back), `"audio": "broken"` boots with a dead speaker (its self-test fails).
The firmware that runs is the same Python either way; the header stands in for
what a broken build would do on a board.
"""

import os

from soundbox import VERSION
from soundbox.otakinds import APP, FIRMWARE, VOICE
from soundbox.otaslots import FileSlots

MODEL = "soundbox-sim"
CAPACITIES = {APP: 1 << 20, FIRMWARE: 4 << 20, VOICE: 4 << 20}


class DeadSpeaker:
    """The audio of an image built with a broken speaker driver: every play fails."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def play(self, tokens, name=None):
        raise OSError("I2S write failed: no audio device")


def enable_ota(hal, storage_dir, model=MODEL):
    """Give a SimHal its slots and run the boot step (the bootloader's rollback check)."""
    hal.ota = FileSlots(storage_dir, model, {APP: VERSION, FIRMWARE: VERSION}, CAPACITIES)
    hal.ota_rollbacks = {}
    for kind, reason in hal.ota.boot():
        hal.ota_rollbacks[kind] = reason
        hal.log("boot: %s rolled back: %s" % (kind, reason))
    header = hal.ota.image_header()
    if header and header.get("audio") == "broken":
        hal.audio = DeadSpeaker(hal.audio)
    return hal


def ota_config(certs):
    """Device config that lets simulated boxes take updates signed by the release keys
    `soundbox ota keygen` put in <certs>/ota; {} when there are none."""
    trusted = os.path.join(certs, "ota", "trusted.json")
    return {"ota_keys": os.path.abspath(trusted)} if os.path.exists(trusted) else {}
