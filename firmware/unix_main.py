# A desktop soundbox: the real firmware on MicroPython's unix port, no board needed.
#     micropython unix_main.py CONFIG.json      (what `soundbox device run --micropython` runs)
# CONFIG.json: the device config plus "code" (the factory bundle: directories holding
# soundbox/ and soundbox_fw/), "flash", "voice_dir" and the rest of soundbox_fw.unixhal's keys.
#
# As main.py does on the ESP32, this chooses the app bundle before any of the app is
# imported: with release keys, the update slots' boot step runs first (a bundle on trial
# that already started once is rolled back), then the bundle <flash>/ota/app.json points
# at goes ahead of the factory one on sys.path. One that does not import is rolled back
# and the factory bundle starts.
import json
import sys


def forget_app_modules():
    for name in list(sys.modules):
        if name == "soundbox" or name.startswith("soundbox.") or name.startswith("soundbox_fw"):
            del sys.modules[name]


def boot_step(config):
    """({kind: rollback reason}, the chosen bundle directory or None for the factory one)."""
    if not config.get("ota_keys"):
        return {}, None
    from soundbox.otaslots import FileSlots

    slots = FileSlots(config["flash"] + "/ota", config.get("model", "soundbox-unix"), {}, {})
    rollbacks = dict(slots.boot())
    bundle = slots.active_app_dir()
    forget_app_modules()  # the chosen bundle brings its own SDK
    return rollbacks, None if bundle.endswith("/lib") else bundle


def main():
    with open(sys.argv[1]) as f:
        config = json.load(f)
    for directory in reversed(config["code"]):
        sys.path.insert(0, directory)
    rollbacks, bundle = boot_step(config)
    problem = None
    if bundle is not None:
        sys.path.insert(0, bundle)
        try:
            from soundbox_fw import unixboot
        except Exception as e:  # a half-written or broken bundle
            problem = "app bundle %s does not load: %r" % (bundle, e)
        else:
            unixboot.run(config, rollbacks)
            return
        print("soundbox: %s; starting the factory bundle" % problem)
        sys.path.remove(bundle)
        forget_app_modules()
    from soundbox_fw import unixboot
    unixboot.run(config, rollbacks, problem)


main()
