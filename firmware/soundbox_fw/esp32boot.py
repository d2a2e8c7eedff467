"""Boot sequence of a real board, after main.py has checked for safe mode and chosen
the app bundle (the factory one in /lib or /rom/lib, or an updated one in /ota/app_a|app_b).

    1. booting     read /config.json and /board.json (a problem: message, REPL kept);
                   with release keys, the update slots' boot step (rollback check)
    2. connecting  join WiFi (or dial the 4G modem); not joined in 30 s: say "no network"
    3.             set the clock from NTP before any TLS; not set: say "clock not set",
                   go on retrying in the background (TLS connects wait for it)
    4. app         Soundbox(hal, config).run(): its LED states take over
                   (connecting, online, offline, error, updating)
    5. watchdog    machine.WDT, fed every 2 s only while the app says it is healthy

Every step logs one line to the serial console (`soundbox device monitor`).
If the app stops with an error, the box restarts after 10 s (Ctrl-C in that time
keeps the REPL). After Ctrl-C the watchdog, which cannot be stopped once started,
is fed by a timer so the REPL and `soundbox device deploy` are not cut off.
"""

import asyncio
import json
import os
import sys
import time

import machine

from soundbox import VERSION, voice
from soundbox.storage import makedirs
from soundbox_fw import board as boards
from soundbox_fw import esp32net
from soundbox_fw.app import Soundbox
from soundbox_fw.esp32hal import Esp32Hal

CONFIG_PATH = "/config.json"
WDT_TIMEOUT_MS = 60000  # longer than the slowest blocking step (TLS handshake, DNS, NTP)
FEED_EVERY_MS = 2000
WDT_FLAG = b"sb-wdt"  # in RTC memory (survives soft and WDT resets): boot.py keeps feeding after a soft reset
RESTART_AFTER_S = 10
CONFIG_KEYS = ("device_id", "broker_host", "broker_port")
OTA_ROOT = "/ota"  # update slots and pointers; main.py reads OTA_ROOT/app.json (keep the two equal)
FS_RESERVE = 65536  # filesystem bytes an update leaves free for the app's own state
FACTORY_APP_DIR = "/lib"  # the factory bundle: main.py sets it ("/rom/lib" after `deploy --romfs`)


class ConfigError(ValueError):
    pass


def load_config(path=CONFIG_PATH):
    try:
        with open(path) as f:
            config = json.load(f)
    except OSError:
        raise ConfigError("no %s: write it with `soundbox device provision`" % path)
    except ValueError:
        raise ConfigError("%s is not valid JSON" % path)
    if type(config) is not dict:
        raise ConfigError("%s must hold a JSON object" % path)
    needed = list(CONFIG_KEYS)
    if config.get("network", "wifi") == "wifi":
        needed += ["wifi_ssid", "wifi_password"]
    missing = [k for k in needed if k not in config]
    if missing:
        raise ConfigError("%s lacks %s" % (path, ", ".join(missing)))
    return config


def release_keys_path(config):
    """Where the app looks for the trusted release keys (the same rule as soundbox_fw.app)."""
    tls = config.get("tls") or {}
    return config.get("ota_keys") or "%s/ota_keys.json" % (config.get("identity") or tls.get("identity") or "/certs")


def firmware_version():
    """The running MicroPython, named for telemetry until a firmware update says otherwise."""
    return "micropython-%d.%d.%d" % tuple(sys.implementation.version[:3])


def fs_room(root):
    """Filesystem bytes an update may use: free now, plus a resumed download's staging file."""
    from soundbox.otaslots import STAGE  # here: a box without release keys never loads otaslots
    try:
        s = os.statvfs("/")
        free = s[0] * s[3]
    except (AttributeError, OSError):
        return 0
    try:
        free += os.stat(root + "/" + STAGE)[6]
    except OSError:
        pass
    return max(0, free - FS_RESERVE)


def start_ota(config, board, app_problem=None, log=print):
    """The update slots and their boot step, first thing after the config is read, so a new
    version that fails later in its start is counted as started (and rolled back at the next
    one). (slots, {kind: rollback reason}); (None, {}) without release keys (/certs/ota_keys.json):
    every update would be refused anyway."""
    keys = release_keys_path(config)
    try:
        os.stat(keys)
    except OSError:
        log("ota: no release keys at %s: this box takes no updates" % keys)
        return None, {}
    from soundbox import otakinds  # only boxes that take updates pay for these
    from soundbox_fw.esp32slots import Esp32Slots

    makedirs(OTA_ROOT)
    # An app bundle needs room twice (staged, then unpacked), a voice pack once (renamed into
    # place): otakinds' copies. The firmware's room is its partition (Esp32Slots.capacity).
    slots = Esp32Slots(OTA_ROOT, board["model"], {otakinds.APP: VERSION, otakinds.FIRMWARE: firmware_version()},
                       otakinds.capacities(fs_room(OTA_ROOT)), voice_dir="/voice",
                       factory_app_dir=FACTORY_APP_DIR, app_problem=app_problem)
    rollbacks = {}
    for kind, reason in slots.boot():
        rollbacks[kind] = reason
        log("boot: %s rolled back: %s" % (kind, reason))
    return slots, rollbacks


class Watchdog:
    """machine.WDT, fed while the app is healthy (Soundbox.healthy(); fed always if it has none)."""

    def __init__(self, log):
        machine.Timer(0).deinit()  # the REPL keeper boot.py may have started
        self.wdt = machine.WDT(timeout=WDT_TIMEOUT_MS)
        machine.RTC().memory(WDT_FLAG)
        self.log = log

    async def feed_while_healthy(self, app):
        healthy = getattr(app, "healthy", None)
        starving = False
        while True:
            await asyncio.sleep_ms(FEED_EVERY_MS)
            if healthy is None or healthy():
                self.wdt.feed()
                starving = False
            elif not starving:
                starving = True
                self.log("watchdog: app unhealthy: not fed, the board resets within %d s unless it recovers"
                         % (WDT_TIMEOUT_MS // 1000))


def keep_watchdog_fed():
    """After the app has stopped: feed a running WDT from a timer so the REPL is not reset."""
    if machine.RTC().memory() != WDT_FLAG:
        return
    wdt = machine.WDT(timeout=WDT_TIMEOUT_MS)
    machine.Timer(0).init(period=FEED_EVERY_MS, callback=lambda t: wdt.feed())


async def say(hal, prompt, lang):
    """A spoken prompt at boot; a missing voice pack only costs the words."""
    try:
        await hal.audio.play(voice.prompt_tokens(prompt, lang), prompt)
    except Exception as e:
        hal.log("boot: could not say %r: %r" % (prompt, e))


async def boot(app_problem=None):
    try:
        config = load_config()
        board = boards.load()
    except ValueError as e:  # BoardError, ConfigError
        print("soundbox: %s" % e)
        print("soundbox: app not started; REPL ready")
        return False
    slots, rollbacks = start_ota(config, board, app_problem)
    ntp = esp32net.Ntp(config.get("ntp_host"), print)
    hal = Esp32Hal(config, board, ntp)
    if slots is not None:
        hal.enable_ota(slots, rollbacks)
    lang = config.get("lang", "en-IN")
    asyncio.create_task(hal.led.run())
    hal.log("boot: soundbox %s on %s (%s), device %s" % (VERSION, board["name"], board["chip"], config["device_id"]))
    hal.led.show("connecting")
    link = esp32net.link(config, board, hal.log)
    hal.network_up = link.connected  # so a lost WiFi is said as "no network", not "server unreachable"
    if not await link.up():
        await say(hal, "no_network", lang)
    asyncio.create_task(link.keep_up())
    if not (link.connected() and await ntp.sync_soon()):
        hal.log("boot: clock not set yet: TLS waits for it, payments are held until then")
        await say(hal, "clock_not_set", lang)
        asyncio.create_task(ntp.keep_trying())
    app = Soundbox(hal, config)
    watchdog = Watchdog(hal.log)
    asyncio.create_task(watchdog.feed_while_healthy(app))
    hal.log("boot: app starting")
    await app.run()
    return True


def run(app_problem=None):
    """app_problem: why main.py could not load the updated app bundle and started /lib instead."""
    try:
        if not asyncio.run(boot(app_problem)):
            return  # nothing to restart: the message above says what to fix
    except KeyboardInterrupt:
        keep_watchdog_fed()
        print("soundbox: stopped (Ctrl-C); REPL ready")
        return
    except Exception as e:
        sys.print_exception(e)
    keep_watchdog_fed()
    print("soundbox: app stopped; restarting in %d s (Ctrl-C keeps the REPL)" % RESTART_AFTER_S)
    time.sleep(RESTART_AFTER_S)
    machine.reset()
