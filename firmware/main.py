# Soundbox entry point on the ESP32, run after boot.py on a hard reset.
# Safe mode: hold the replay key while pressing reset and for a second after;
# the app does not start and the REPL stays, so a broken app can always be replaced.
# The key comes from /board.json ("safe_mode_button"); without a usable one, GPIO0.
#
# Which app bundle runs: the one /ota/app.json points at (an update in /ota/app_a or
# /ota/app_b, put ahead of the factory bundle on sys.path), or the factory bundle: the
# one `soundbox device deploy` wrote, in /lib, or with `deploy --romfs` in the ROMFS image
# at /rom/lib (its .mpy files run in place from flash; deploy --romfs removes /lib's copy).
# When both hold the app, /lib wins: a later plain deploy replaces a ROMFS one without
# erasing the image. The factory bundle is put ahead of the other place on sys.path, so
# a stale copy there is never half-imported. A bundle on trial that already started once
# without being confirmed is skipped for the one before it (the update's boot step then
# rolls it back); one that is missing or does not import falls back to the factory
# bundle, so a broken update cannot brick the box.
import json
import os
import sys
import time

import machine

SAFE_WINDOW_MS = 1000  # after reset, how long a held key still counts
HOLD_MS = 100  # held this long without a break: a finger, not noise
OTA_ROOT = "/ota"  # soundbox_fw.esp32boot.OTA_ROOT
FACTORIES = ("/lib", "/rom/lib")  # where a deploy puts the app: plain, --romfs


def safe_mode_pin():
    try:
        with open("/board.json") as f:
            board = json.load(f)
        return board["buttons"][board["safe_mode_button"]]
    except Exception:
        return 0  # GPIO0 is the BOOT key of nearly every ESP32 board


def key_held(pin_number):
    pin = machine.Pin(pin_number, machine.Pin.IN, machine.Pin.PULL_UP)
    start = time.ticks_ms()
    low_since = None
    while time.ticks_diff(time.ticks_ms(), start) < SAFE_WINDOW_MS:
        if pin.value() == 0:
            if low_since is None:
                low_since = time.ticks_ms()
            elif time.ticks_diff(time.ticks_ms(), low_since) >= HOLD_MS:
                return True
        else:
            low_since = None
        time.sleep_ms(10)
    return False


def has_app(directory):
    for name in ("esp32boot.mpy", "esp32boot.py"):
        try:
            os.stat(directory + "/soundbox_fw/" + name)
            return True
        except OSError:
            pass
    return False


def factory_bundle():
    """/lib if a deploy put the app there, else /rom/lib if the ROMFS image holds it, else /lib."""
    for directory in FACTORIES:
        if has_app(directory):
            return directory
    return FACTORIES[0]


def put_first(factory):
    """`factory` on sys.path ahead of the other places a factory bundle can be."""
    path = sys.path
    first = len(path)
    for directory in FACTORIES:
        if directory != factory and directory in path and path.index(directory) < first:
            first = path.index(directory)
    if factory in path:
        if path.index(factory) < first:
            return
        path.remove(factory)
    path.insert(first, factory)


def chosen_bundle(root, factory):
    """The app bundle directory app.json selects (the rule of soundbox.otaslots' boot step)."""
    try:
        with open(root + "/app.json") as f:
            pointer = json.load(f)
        name = pointer["active"]
        if pointer.get("trial") and pointer.get("boots", 0) >= 1:
            name = pointer.get("previous")  # started once already and never confirmed
    except (OSError, ValueError, KeyError, TypeError):
        return factory  # no update installed yet (or an unreadable pointer)
    if not isinstance(name, str) or not name or name == "lib":
        return factory
    return root + "/" + name


def _forget_app_modules():
    for name in list(sys.modules):
        if name == "soundbox" or name.startswith("soundbox.") or name.startswith("soundbox_fw"):
            del sys.modules[name]


def load_app(root=OTA_ROOT, factory=None):
    """(soundbox_fw.esp32boot from the chosen bundle or else the factory one, why the chosen one
    was not used or None). The module is None when even the factory bundle does not load.
    factory: the factory bundle's directory (default: factory_bundle())."""
    if factory is None:
        factory = factory_bundle()
    put_first(factory)
    bundle = chosen_bundle(root, factory)
    problem = None
    if bundle != factory:
        try:
            os.stat(bundle + "/soundbox_fw")
            os.stat(bundle + "/soundbox")
        except OSError:
            problem = "app bundle %s is missing or incomplete" % bundle
        if problem is None:
            at = sys.path.index(factory) if factory in sys.path else len(sys.path)
            sys.path.insert(at, bundle)
            try:
                from soundbox_fw import esp32boot
                esp32boot.FACTORY_APP_DIR = factory  # what the update slots call "lib"
                return esp32boot, None
            except Exception as e:
                problem = "app bundle %s does not load: %r" % (bundle, e)
            sys.path.remove(bundle)
            _forget_app_modules()
        print("soundbox: %s; starting the factory bundle %s" % (problem, factory))
    try:
        from soundbox_fw import esp32boot
    except Exception as e:  # a half-finished deploy: say so and keep the REPL
        print("soundbox: cannot load the app: %r; run `soundbox device deploy` again. REPL ready" % (e,))
        return None, problem
    esp32boot.FACTORY_APP_DIR = factory  # (an esp32boot from before ROMFS ignores it)
    return esp32boot, problem


def main():
    if key_held(safe_mode_pin()):
        print("soundbox: safe mode (key held at reset): app not started, REPL ready")
        return
    esp32boot, problem = load_app()
    if esp32boot is None:
        return
    if problem is None:
        esp32boot.run()
    else:
        esp32boot.run(problem)  # the factory bundle's boot step rolls the update back


main()
