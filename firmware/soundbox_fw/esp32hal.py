"""ESP32 board support: the HAL the soundbox app runs on, on a real board.

Default pins are for an ESP32-WROVER with a MAX98357A I2S amplifier; override
any of them under "pins" in /config.json. Voice clips come from the pack in
/voice/<lang>/ as 22050 Hz mono 16-bit WAV (the pack builder's format).
"""

import asyncio

import machine
import network
import ntptime

from soundbox import clock
from soundbox.storage import FileStorage

DEFAULT_PINS = {"i2s_sck": 26, "i2s_ws": 25, "i2s_sd": 22, "led": 2, "replay": 0, "battery": 35}
WAV_HEADER = 44  # the pack builder writes canonical PCM WAV files
BLOCK = 2048  # bytes streamed to I2S at a time: small, the GC heap is ~110 KB


class I2sSink:
    """Streams a clip at a time, in small blocks, through the I2S DMA buffer."""

    def __init__(self, pins, voice_dir, rate=22050):
        self.voice_dir = voice_dir
        self.i2s = machine.I2S(0, sck=machine.Pin(pins["i2s_sck"]), ws=machine.Pin(pins["i2s_ws"]),
                               sd=machine.Pin(pins["i2s_sd"]), mode=machine.I2S.TX, bits=16,
                               format=machine.I2S.MONO, rate=rate, ibuf=8192)
        self.out = asyncio.StreamWriter(self.i2s, {})
        self.buf = bytearray(BLOCK)

    async def play(self, tokens, name=None):
        view = memoryview(self.buf)
        for token in tokens:
            with open("%s/%s.wav" % (self.voice_dir, token), "rb") as f:
                f.seek(WAV_HEADER)
                while True:
                    n = f.readinto(self.buf)
                    if not n:
                        break
                    self.out.write(view[:n])
                    await self.out.drain()


class Led:
    def __init__(self, pin):
        self.pin = machine.Pin(pin, machine.Pin.OUT)

    def show(self, state):
        self.pin.value(1 if state == "online" else 0)


class Buttons:
    """The replay key, polled and debounced (50 ms) in the event loop."""

    def __init__(self, pin):
        self.pin = machine.Pin(pin, machine.Pin.IN, machine.Pin.PULL_UP)

    async def next_press(self):
        while True:
            await asyncio.sleep_ms(20)
            if self.pin.value() == 0:
                await asyncio.sleep_ms(50)
                if self.pin.value() == 0:
                    while self.pin.value() == 0:
                        await asyncio.sleep_ms(20)
                    return "replay"


class Battery:
    """Li-ion cell behind a 1:2 divider: 3.3 V is empty, 4.2 V is full."""

    def __init__(self, pin):
        self.adc = machine.ADC(machine.Pin(pin), atten=machine.ADC.ATTN_11DB)

    def percent(self):
        volts = self.adc.read_uv() * 2 / 1000000
        return max(0, min(100, int((volts - 3.3) / 0.9 * 100)))


class HardwareClock:
    monotonic_ms = staticmethod(clock.monotonic_ms)
    wall_ms = staticmethod(clock.wall_ms)


class Esp32Hal:
    def __init__(self, config):
        pins = dict(DEFAULT_PINS)
        pins.update(config.get("pins", {}))
        self.storage = FileStorage("/data")
        self.audio = I2sSink(pins, "/voice/" + config.get("lang", "en-IN"))
        self.led = Led(pins["led"])
        self.buttons = Buttons(pins["replay"])
        self.battery = Battery(pins["battery"])
        self.clock = HardwareClock()
        self.open_connection = asyncio.open_connection

    def log(self, message):
        print(message)


async def wifi_up(ssid, password, timeout_ms=30000):
    """Join the shop's WiFi; the ESP32 driver reconnects by itself after that."""
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    if not wlan.isconnected():
        wlan.connect(ssid, password)
    waited = 0
    while not wlan.isconnected():
        if waited >= timeout_ms:
            return False
        await asyncio.sleep_ms(200)
        waited += 200
    return True


def sync_time():
    """Set the RTC from NTP: payment timestamps (and, later, TLS) need true time."""
    try:
        ntptime.settime()
        return True
    except OSError:
        return False
