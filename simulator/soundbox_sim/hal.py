"""The CPython HAL a simulated soundbox runs on: a directory for flash, a sink
for audio, the host's clock, buttons nobody presses unless a test does, a
recorded LED and a battery that stays where a test sets it (full by default).

The flash directory also holds the ledger's record ring, ledger.ring (FileStorage.blocks:
soundbox.blockdev.FileBlocks, NOR behaviour in a file that grows only as its blocks are
used). It opens the file for each record and closes it: a record program measured 20 us
that way against 14 us with a descriptor kept open, and a fleet of thousands of devices
would otherwise hold thousands of descriptors."""

import asyncio

from soundbox import clock
from soundbox.storage import FileStorage


class HostClock:
    """The host's clock, with a skew a fault can set (a device whose RTC drifted).
    Only the device's view moves: the simulator's own measurements use the host clock."""

    monotonic_ms = staticmethod(clock.monotonic_ms)
    skew_ms = 0  # class default: subclasses that skip __init__ still work

    def __init__(self, skew_ms=0):
        self.skew_ms = skew_ms

    def wall_ms(self):
        return clock.wall_ms() + self.skew_ms

    def trusted(self):
        return True  # the host keeps its clock in sync (NTP) itself


class SimButtons:
    """Keys nobody presses until a test calls press() (on the device's event loop,
    e.g. loop.call_soon_threadsafe(hal.buttons.press, "replay"))."""

    def __init__(self):
        self._presses = []
        self._pressed = asyncio.Event()

    def press(self, name):
        """name: "replay", "today" (long press of replay), "volume_up", "volume_down"."""
        self._presses.append(name)
        self._pressed.set()

    async def next_press(self):
        while not self._presses:
            self._pressed.clear()
            await self._pressed.wait()
        return self._presses.pop(0)


class RecordedLed:
    def __init__(self):
        self.state = None

    def show(self, state):
        self.state = state


class SimBattery:
    """A battery whose charge (`level`, percent) and charger (`plugged`) a test sets."""

    def __init__(self, level=100, plugged=False):
        self.level = level
        self.plugged = plugged

    def percent(self):
        return self.level

    def charging(self):
        return self.plugged


def _no_reboot():
    raise RuntimeError("this SimHal has no reboot handler (run the device in a Fleet)")


class SimHal:
    """reboot: called (no arguments) by the app to restart itself; in a Fleet it
    restarts the device on the same storage (the app awaits forever after calling it)."""

    def __init__(self, storage_dir, audio, log, open_connection=asyncio.open_connection, reboot=None,
                 clock=None):
        self.storage = FileStorage(storage_dir)
        self.audio = audio
        self.log = log
        self.open_connection = open_connection
        self.reboot = reboot or _no_reboot
        self.clock = clock or HostClock()
        self.buttons = SimButtons()
        self.led = RecordedLed()
        self.battery = SimBattery()
