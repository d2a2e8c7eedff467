"""ESP32 board support: the HAL the soundbox app runs on, on a real board.

Default pins are for an ESP32-WROVER with a MAX98357A I2S amplifier; override
any of them under "pins" in /config.json. Announcements play from the language's
voice pack, /voice/<lang>.pack (soundbox.voicepack; `soundbox voicepack build`).
"""

import asyncio

import machine
import network
import ntptime

from soundbox import clock
from soundbox.storage import FileStorage
from soundbox.voicepack import Pack

DEFAULT_PINS = {"i2s_sck": 26, "i2s_ws": 25, "i2s_sd": 22, "led": 2, "replay": 0,
                "volume_up": 32, "volume_down": 33, "battery": 35}
LONG_PRESS_MS = 1500  # hold replay this long for today's total
BLOCK = 2048  # bytes read from the pack and streamed to I2S at a time: the GC heap is ~110 KB
I2S_BUFFER = 8192  # bytes of I2S DMA buffer: 256 ms of 16 kHz audio


class I2sSink:
    """Streams announcements from the language's voice pack to machine.I2S in small blocks.

    The pack, and I2S at the pack's sample rate, are opened at the first
    announcement: a box whose pack is missing or damaged still boots and acks
    (the app reports the playback failure), and tries again next time.
    """

    def __init__(self, pins, pack_path):
        self.pins = pins
        self.pack_path = pack_path
        self.pack = None
        self.i2s = None
        self.out = None
        self.buf = bytearray(BLOCK)
        self.shift = 0  # volume: each bit of right shift is 6 dB quieter

    def set_volume(self, level):
        self.shift = level - 5  # level 5: full scale; level 1: -24 dB

    def set_language(self, lang):
        path = "/voice/%s.pack" % lang
        if path != self.pack_path:
            self.pack_path = path
            self.pack = None  # opened at the next announcement
            if self.i2s is not None:  # its rate may differ: set I2S up again too
                self.i2s.deinit()
                self.i2s = self.out = None

    def _open(self):
        pack = self.pack
        if pack is None:
            pack = self.pack = Pack(self.pack_path)
        out = self.out
        if out is None:
            pins = self.pins
            self.i2s = machine.I2S(0, sck=machine.Pin(pins["i2s_sck"]), ws=machine.Pin(pins["i2s_ws"]),
                                   sd=machine.Pin(pins["i2s_sd"]), mode=machine.I2S.TX, bits=16,
                                   format=machine.I2S.MONO, rate=pack.rate, ibuf=I2S_BUFFER)
            out = self.out = asyncio.StreamWriter(self.i2s, {})
        return pack, out

    async def play(self, tokens, name=None):
        pack, out = self._open()
        for block in pack.stream(tokens, self.buf):
            if self.shift:
                machine.I2S.shift(buf=block, bits=16, shift=self.shift)
            out.write(block)
            await out.drain()  # before the next block refills the buffer
        # The last blocks are still in the DMA buffer: return when the speaker has said them.
        await asyncio.sleep_ms(I2S_BUFFER * 1000 // (pack.rate * 2))


class Led:
    def __init__(self, pin):
        self.pin = machine.Pin(pin, machine.Pin.OUT)

    def show(self, state):
        self.pin.value(1 if state == "online" else 0)


class Buttons:
    """Replay and volume keys, active low, polled every 20 ms in the event loop.

    A press counts once it has held 50 ms (debounce) and is reported on release:
    "replay", or "today" when replay was held LONG_PRESS_MS; "volume_up", "volume_down".
    """

    def __init__(self, pins):
        self.keys = [(name, machine.Pin(pins[name], machine.Pin.IN, machine.Pin.PULL_UP))
                     for name in ("replay", "volume_up", "volume_down")]

    async def next_press(self):
        while True:
            await asyncio.sleep_ms(20)
            for name, pin in self.keys:
                if pin.value() != 0:
                    continue
                await asyncio.sleep_ms(50)
                if pin.value() != 0:
                    continue  # a bounce, not a press
                held = 50
                while pin.value() == 0:
                    await asyncio.sleep_ms(20)
                    held += 20
                if name == "replay" and held >= LONG_PRESS_MS:
                    return "today"
                return name


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
    synced = False  # set by sync_time(): the RTC starts at 2000-01-01 after a power cut

    def trusted(self):
        """Wall time is real only after an NTP sync; until then payments wait to be judged."""
        return HardwareClock.synced


class Esp32Hal:
    def __init__(self, config):
        pins = dict(DEFAULT_PINS)
        pins.update(config.get("pins", {}))
        self.storage = FileStorage("/data")
        self.audio = I2sSink(pins, "/voice/%s.pack" % config.get("lang", "en-IN"))
        self.led = Led(pins["led"])
        self.buttons = Buttons(pins)
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
    except OSError:
        return False
    HardwareClock.synced = True
    return True
