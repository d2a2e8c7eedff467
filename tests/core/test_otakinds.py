"""The OTA kinds table (soundbox.otakinds) and what reads it: the manifest check, the slot
store, the telemetry versions. CPython and MicroPython."""

from check import error_message

from soundbox import otakinds, otamanifest
from soundbox.otakinds import BUNDLE, IMAGE, PACK
from soundbox.otaslots import FileSlots

FACTORY = {"app": "1.0.0", "firmware": "micropython-1.27.0"}


class MemorySlots(FileSlots):
    """FileSlots whose JSON files are held here (the WASI VM has no writable disk)."""

    def __init__(self, files=None):
        FileSlots.__init__(self, "/nowhere", "soundbox-sim", FACTORY, {})
        self.files = files or {}

    def _read_json(self, name, default):
        value = self.files.get(name, default)
        return value if type(value) is type(default) else default


def versions_as_the_app_computed_them(slots, lang):
    """Soundbox.versions' body before the table (firmware/soundbox_fw/app.py)."""
    out = {"app": slots.running("app", "app"), "firmware": slots.running("firmware", "firmware")}
    voice_version = slots.running("voice", lang)
    if voice_version:
        out["voice/" + lang] = voice_version
    return out


def test_each_kind_lands_where_the_table_says():
    assert otakinds.NAMES == ("app", "firmware", "voice")
    app, firmware, voice = otakinds.of("app"), otakinds.of("firmware"), otakinds.of("voice")
    assert (app.lands, app.slots, app.factory_slot, app.restart, app.copies) == \
        (BUNDLE, ("app_a", "app_b"), "lib", True, 2)
    assert (firmware.lands, firmware.slots, firmware.factory_slot, firmware.restart) == \
        (IMAGE, ("fw_a.bin", "fw_b.bin"), "fw_a.bin", True)
    assert (voice.lands, voice.slots, voice.suffix, voice.per_language, voice.restart) == \
        (PACK, None, ".pack", True, False)
    assert not app.per_language and not firmware.per_language
    assert otakinds.get("voice") is voice and otakinds.get("bootloader") is None


def test_every_entry_is_one_a_store_can_install():
    for k in otakinds.KINDS:
        assert k.lands in (BUNDLE, IMAGE, PACK), k.name
        if k.lands == PACK:
            assert k.slots is None and k.suffix, k.name
        else:
            assert len(k.slots) == 2 and k.slots[0] != k.slots[1] and k.factory_slot, k.name
        assert k.copies >= 1
    assert [k.name for k in otakinds.KINDS if k.slots] == ["app", "firmware"]  # the order boot() checks them in


def test_an_unknown_kind_is_refused_with_the_reason_the_status_carries():
    assert error_message(otakinds.UnknownKind, otakinds.of, "bootloader") == "unknown kind 'bootloader'"
    assert error_message(ValueError, otakinds.of, None) == "unknown kind None"
    m = {"format": 1, "kind": "bootloader", "name": "bootloader", "version": "2", "model": "soundbox-sim"}
    assert error_message(otamanifest.Refused, otamanifest.check, m, "soundbox-sim", {}, 1, lambda kind: 1) == \
        "unknown kind 'bootloader'"
    assert error_message(otakinds.UnknownKind, otakinds.version_key, "bootloader", "x") == "unknown kind 'bootloader'"
    slots = MemorySlots()
    assert error_message(otakinds.UnknownKind, slots.install, {"kind": "bootloader"}) == "unknown kind 'bootloader'"
    assert slots.running("bootloader", "bootloader") is None  # left on flash by another version: none runs


def test_versions_and_counters_are_keyed_per_kind_and_per_language():
    assert otakinds.version_key("app", "app") == "app"
    assert otakinds.version_key("firmware", "micropython") == "firmware"
    assert otakinds.version_key("voice", "hi-IN") == "voice/hi-IN"
    for kind, name in (("app", "bundle"), ("firmware", "firmware"), ("voice", "ta-IN")):
        assert otamanifest.counter_key({"kind": kind, "name": name}) == otakinds.version_key(kind, name)


def test_running_versions_are_what_the_app_reported():
    states = [
        {},  # nothing ever installed: the factory versions, no voice
        {"app.json": {"active": "app_b", "previous": "lib", "trial": True, "boots": 0,
                      "versions": {"lib": "1.0.0", "app_b": "2.0.0"}},
         "voice.json": {"hi-IN": ["3", "2"], "en-IN": ["1", None]}},
        {"firmware.json": {"active": "fw_b.bin", "previous": "fw_a.bin", "trial": False, "boots": 1,
                           "versions": {"fw_b.bin": "fw-2"}},
         "voice.json": {"hi-IN": [None, "2"]}},  # rolled back to a pack that never had a version
    ]
    for files in states:
        slots = MemorySlots(files)
        for lang in ("en-IN", "hi-IN", "ta-IN"):
            assert otakinds.running_versions(slots, lang) == versions_as_the_app_computed_them(slots, lang)
    assert otakinds.running_versions(MemorySlots(), "en-IN") == {"app": "1.0.0", "firmware": "micropython-1.27.0"}
    assert otakinds.running_versions(MemorySlots(states[1]), "hi-IN") == \
        {"app": "2.0.0", "firmware": "micropython-1.27.0", "voice/hi-IN": "3"}


def test_the_store_reads_its_slots_from_the_table():
    slots = MemorySlots()
    assert slots._default_active("app") == "lib" and slots._default_active("firmware") == "fw_a.bin"
    assert slots._inactive("app", {"active": "app_a"}) == "app_b"
    assert slots._inactive("firmware", {"active": "fw_a.bin"}) == "fw_b.bin"
    assert slots._pack(otakinds.of("voice"), "hi-IN") == "/nowhere/voice/hi-IN.pack"


def test_filesystem_room_per_kind():
    # A bundle is staged, then unpacked: twice its size; an image or a pack is renamed into place.
    assert otakinds.capacities(1000) == {"app": 500, "firmware": 1000, "voice": 1000}
