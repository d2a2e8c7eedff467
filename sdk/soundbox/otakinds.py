"""The OTA kinds in one table: per kind, where its bytes land and what follows from that.

The manifest check (soundbox.otamanifest), the slot stores (soundbox.otaslots.FileSlots and
soundbox_fw.esp32slots.Esp32Slots) and the box's telemetry read it here instead of naming
kinds. A new kind is one entry in KINDS, plus an installer in the stores if it lands in a
way none of the landings below covers.

How a store puts a verified artifact in place (`lands`):
- BUNDLE  a file list (the manifest's "files") unpacked into the inactive one of two
          directories, switched by one write of the pointer <root>/<kind>.json;
- IMAGE   one image into the inactive one of two slots, the same pointer: two files in
          FileSlots, the chip's two OTA partitions on an ESP32 (so one IMAGE kind only);
- PACK    one file renamed over <dir>/<name><suffix>, the old one kept until confirmed;
          versions in <root>/<kind>.json, {name: [version, previous version]}.
BUNDLE and IMAGE kinds run on trial from the next start: boot() rolls back one that was
never confirmed.

Runs on MicroPython and CPython; three small records at import.
"""

BUNDLE = "bundle"
IMAGE = "image"
PACK = "pack"

APP = "app"  # the bundle main.py puts on sys.path
FIRMWARE = "firmware"  # the MicroPython image
VOICE = "voice"  # a voice pack per language


class UnknownKind(ValueError):
    """A kind not in the table; str(e) is the reason an OTA status carries."""


class Kind:
    """One kind of update. slots: the A/B pair (directory or file names under the store's
    root), None for a PACK. factory_slot: the slot that runs when no update was ever
    installed. suffix: a PACK's file name ending. per_language: one artifact per language,
    the manifest's name being the language. restart: the new version takes effect only
    after a restart. copies: times its size it takes on the filesystem while it goes in."""

    __slots__ = ("name", "lands", "slots", "factory_slot", "suffix", "per_language", "restart", "copies")

    def __init__(self, name, lands, slots=None, factory_slot=None, suffix="", per_language=False,
                 restart=True, copies=1):
        self.name = name
        self.lands = lands
        self.slots = slots
        self.factory_slot = factory_slot
        self.suffix = suffix
        self.per_language = per_language
        self.restart = restart
        self.copies = copies


KINDS = (
    # "lib": main.py's factory bundle (/lib, or /rom/lib from ROMFS). Staged, then unpacked: twice its size.
    Kind(APP, BUNDLE, slots=("app_a", "app_b"), factory_slot="lib", copies=2),
    Kind(FIRMWARE, IMAGE, slots=("fw_a.bin", "fw_b.bin"), factory_slot="fw_a.bin"),
    # Spoken from the next announcement on: no restart.
    Kind(VOICE, PACK, suffix=".pack", per_language=True, restart=False),
)
NAMES = tuple([k.name for k in KINDS])


def get(name):
    """The Kind called `name`, or None."""
    for k in KINDS:
        if k.name == name:
            return k
    return None


def of(name):
    """The Kind called `name`; UnknownKind otherwise."""
    k = get(name)
    if k is None:
        raise UnknownKind("unknown kind %r" % (name,))
    return k


def version_key(kind, name):
    """The key a version is reported under in telemetry "versions", and its security counter
    kept under: the kind, or kind/name for a kind per language (voice/hi-IN)."""
    if of(kind).per_language:
        return kind + "/" + name
    return kind


def running_versions(slots, lang):
    """What runs now, for telemetry: {"app": .., "firmware": .., "voice/<lang>": ..}. A kind
    per language is reported for the box's language, and only once one is installed."""
    out = {}
    for k in KINDS:
        if k.per_language:
            version = slots.running(k.name, lang)
            if version:
                out[k.name + "/" + lang] = version
        else:
            out[k.name] = slots.running(k.name, k.name)
    return out


def capacities(room):
    """{kind: bytes} an update of each kind may take of `room` free filesystem bytes.
    (An ESP32 image goes to its partition instead: Esp32Slots.capacity says how much.)"""
    out = {}
    for k in KINDS:
        out[k.name] = room // k.copies
    return out
