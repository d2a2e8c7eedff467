# Soundbox entry point on the ESP32, run after boot.py on a hard reset.
# Safe mode: hold the replay key while pressing reset and for a second after;
# the app does not start and the REPL stays, so a broken app can always be replaced.
# The key comes from /board.json ("safe_mode_button"); without a usable one, GPIO0.
import json
import time

import machine

SAFE_WINDOW_MS = 1000  # after reset, how long a held key still counts
HOLD_MS = 100  # held this long without a break: a finger, not noise


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


def main():
    if key_held(safe_mode_pin()):
        print("soundbox: safe mode (key held at reset): app not started, REPL ready")
        return
    try:
        from soundbox_fw import esp32boot
    except Exception as e:  # a half-finished deploy: say so and keep the REPL
        print("soundbox: cannot load the app: %r; run `soundbox device deploy` again. REPL ready" % (e,))
        return
    esp32boot.run()


main()
