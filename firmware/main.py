# Soundbox entry point on the ESP32. Hold the replay key (GPIO0, "BOOT" on most
# dev boards) during reset for safe mode: the app does not start, the REPL stays.
import asyncio
import json

import machine

from soundbox_fw.app import Soundbox
from soundbox_fw.esp32hal import DEFAULT_PINS, Esp32Hal, sync_time, wifi_up


async def start(config):
    hal = Esp32Hal(config)
    hal.led.show("connecting")
    if not await wifi_up(config["wifi_ssid"], config["wifi_password"]):
        hal.log("wifi: not connected yet; the app keeps retrying the broker")
    if not sync_time():
        hal.log("ntp: time not set; timestamps are wrong until it is")
    await Soundbox(hal, config).run()


def main():
    with open("/config.json") as f:
        config = json.load(f)
    safe = machine.Pin(config.get("pins", {}).get("replay", DEFAULT_PINS["replay"]),
                       machine.Pin.IN, machine.Pin.PULL_UP)
    if safe.value() == 0:
        print("safe mode: app not started")
        return
    asyncio.run(start(config))


main()
