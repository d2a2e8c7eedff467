"""ESP32 board support: the HAL the soundbox app runs on, on a real board.

Pins and options come from the board description (/board.json, see
soundbox_fw.board): a MAX98357A I2S amplifier, three keys, a status LED and a
battery divider. Announcements play from the language's voice pack,
/voice/<lang>.pack (soundbox.voicepack; `soundbox voicepack build`).
The network link and NTP are in esp32net, the LED in esp32led, the boot
sequence in esp32boot, where updates land in esp32slots (esp32boot.start_ota).
"""

import asyncio

import esp32
import machine

from soundbox import clock
from soundbox.storage import FileStorage
from soundbox.voicepack import Pack
from soundbox_fw.board import check_battery
from soundbox_fw.esp32led import Led

LONG_PRESS_MS = 1500  # hold replay this long for today's total
DEBOUNCE_MS = 50
POLL_MS = 20
BLOCK = 2048  # bytes read from the pack and streamed to I2S at a time: the GC heap is ~110 KB
I2S_BUFFER = 8192  # bytes of I2S DMA buffer: 256 ms of 16 kHz audio
CLOCK_WAIT_S = 8  # a TLS connect waits this long for NTP (inside the client's 10 s connect timeout)


class FlashStorage(FileStorage):
    """/data on littlefs for files; a block device by name (the ledger's record ring) is the
    raw data partition of that label (firmware/boards/*/partitions-*.csv: "ledger"), where a
    record costs one page program. A board flashed with an older partition table has none:
    its ring is a file on littlefs (correct, but each record rewrites a littlefs block)."""

    def blocks(self, name, count):
        found = esp32.Partition.find(esp32.Partition.TYPE_DATA, label=name)
        if found and found[0].ioctl(4, 0) >= count:
            return found[0]
        return FileStorage.blocks(self, name, count)


class I2sSink:
    """Streams announcements from the language's voice pack to machine.I2S in small blocks.

    The pack, and I2S at the pack's sample rate, are opened at the first
    announcement: a box whose pack is missing or damaged still boots and acks
    (the app reports the playback failure), and tries again next time.
    """

    def __init__(self, i2s, pack_path):
        self.conf = i2s
        self.pack_path = pack_path
        self.pack = None
        self.i2s = None
        self.out = None
        self.buf = bytearray(BLOCK)
        self.shift = 0  # volume: each bit of right shift is 6 dB quieter
        self.amp = None  # MAX98357A SD_MODE pin, when wired: low mutes the amplifier between announcements
        if i2s.get("amp_enable") is not None:
            self.amp = machine.Pin(i2s["amp_enable"], machine.Pin.OUT, value=0)

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
            conf = self.conf
            self.i2s = machine.I2S(conf.get("id", 0), sck=machine.Pin(conf["bclk"]), ws=machine.Pin(conf["lrclk"]),
                                   sd=machine.Pin(conf["din"]), mode=machine.I2S.TX, bits=16,
                                   format=machine.I2S.MONO, rate=pack.rate, ibuf=I2S_BUFFER)
            out = self.out = asyncio.StreamWriter(self.i2s, {})
        return pack, out

    async def play(self, tokens, name=None):
        pack, out = self._open()
        if self.amp is not None:
            self.amp.value(1)
        try:
            for block in pack.stream(tokens, self.buf):
                if self.shift:
                    machine.I2S.shift(buf=block, bits=16, shift=self.shift)
                out.write(block)
                await out.drain()  # before the next block refills the buffer
            # The last blocks are still in the DMA buffer: return when the speaker has said them.
            await asyncio.sleep_ms(I2S_BUFFER * 1000 // (pack.rate * 2))
        finally:
            if self.amp is not None:
                self.amp.value(0)


class Buttons:
    """The three keys, active low (to GND, internal pull-ups), polled every POLL_MS in the event loop.

    A press counts once it has held DEBOUNCE_MS and is reported on release:
    "replay", or "today" when replay was held LONG_PRESS_MS; "volume_up", "volume_down".
    """

    def __init__(self, buttons):
        self.keys = [(name, machine.Pin(buttons[name], machine.Pin.IN, machine.Pin.PULL_UP))
                     for name in ("replay", "volume_up", "volume_down")]

    async def next_press(self):
        while True:
            await asyncio.sleep_ms(POLL_MS)
            for name, pin in self.keys:
                if pin.value() != 0:
                    continue
                await asyncio.sleep_ms(DEBOUNCE_MS)
                if pin.value() != 0:
                    continue  # a bounce, not a press
                held = DEBOUNCE_MS
                while pin.value() == 0:
                    await asyncio.sleep_ms(POLL_MS)
                    held += POLL_MS
                if name == "replay" and held >= LONG_PRESS_MS:
                    return "today"
                return name


def battery_volts(microvolts, battery):
    """Cell voltage from the ADC pin's reading, through the divider and the unit's calibration."""
    return microvolts / 1000000 * battery["divider"] * battery["scale"] + battery.get("offset_v", 0)


def battery_percent(volts, battery):
    empty, full = battery["empty_v"], battery["full_v"]
    return max(0, min(100, round((volts - empty) * 100 / (full - empty))))


class Battery:
    """A Li-ion cell behind a resistor divider on an ADC1 pin (ADC2 is unusable while WiFi is on).

    read_uv() uses the chip's factory ADC calibration; "scale" and "offset_v"
    correct the divider's resistor tolerance (docs/esp32.md: measure once with a
    multimeter and put the unit's own values in config.json "battery").
    Without a battery section the box runs from mains: always 100 %.
    """

    def __init__(self, battery):
        self.conf = battery
        self.adc = None
        self.charge_pin = None
        self.changed = None  # the app's health checks wait on it: set on the charger's edges
        if battery is not None:
            self.adc = machine.ADC(machine.Pin(battery["pin"]), atten=machine.ADC.ATTN_11DB)
            if battery.get("charge_pin") is not None:
                self.charge_pin = pin = machine.Pin(battery["charge_pin"], machine.Pin.IN, machine.Pin.PULL_UP)
                # An interrupt, not a poll: plugging in is said at once, and an idle box
                # wakes once a minute for its battery instead of every few seconds.
                self.changed = changed = asyncio.ThreadSafeFlag()  # the one asyncio object an IRQ may set
                pin.irq(lambda _: changed.set(), machine.Pin.IRQ_RISING | machine.Pin.IRQ_FALLING)

    def volts(self):
        if self.adc is None:
            return None
        return battery_volts(self.adc.read_uv(), self.conf)

    def percent(self):
        volts = self.volts()
        return 100 if volts is None else battery_percent(volts, self.conf)

    def charging(self):
        """The charger says it is charging; False when its pin is not wired."""
        if self.charge_pin is None:
            return False
        return self.charge_pin.value() == (0 if self.conf.get("charge_active_low", True) else 1)


class HardwareClock:
    """The RTC, trusted only once NTP has set it (it starts at 2000-01-01 after a power cut)."""

    monotonic_ms = staticmethod(clock.monotonic_ms)
    wall_ms = staticmethod(clock.wall_ms)

    def __init__(self, ntp):
        self.ntp = ntp

    def trusted(self):
        return self.ntp.synced


class Esp32Hal:
    def __init__(self, config, board, ntp):
        battery = board.get("battery")
        if battery is not None and config.get("battery"):
            battery = dict(battery)  # this unit's own calibration, measured once
            battery.update(config["battery"])
            check_battery(battery, "config.json battery")
        self.ntp = ntp
        self.storage = FlashStorage("/data")
        self.audio = I2sSink(board["i2s"], "/voice/%s.pack" % config.get("lang", "en-IN"))
        self.led = Led(board["led"])
        self.buttons = Buttons(board["buttons"])
        self.battery = Battery(battery)
        self.clock = HardwareClock(ntp)
        self.network_up = None  # esp32boot sets the network link's connected() once it exists

    async def open_connection(self, host, port, **kwargs):
        """asyncio.open_connection, but a TLS connect first waits for NTP: certificate dates
        cannot be checked against a clock that says 2000."""
        if kwargs.get("ssl") is not None and not self.ntp.synced:
            try:
                await asyncio.wait_for(self.ntp.ready.wait(), CLOCK_WAIT_S)
            except asyncio.TimeoutError:
                raise OSError("clock not set (no NTP answer yet): TLS would refuse the broker's certificate")
        return await asyncio.open_connection(host, port, **kwargs)

    def enable_ota(self, slots, rollbacks):
        """Take updates into `slots` (soundbox_fw.esp32slots, whose boot step esp32boot.start_ota
        ran); rollbacks: {kind: reason} that step did, for the updater's report."""
        self.ota = slots
        self.ota_rollbacks = rollbacks

    def reboot(self):
        """Restart the board (after an update is installed); does not return."""
        machine.reset()

    def log(self, message):
        print(message)
