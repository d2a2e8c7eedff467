"""The CPython HAL a simulated soundbox runs on: a directory for flash, a sink
for audio, the host's clock, idle buttons, a recorded LED and a full battery."""

import asyncio

from soundbox import clock
from soundbox.storage import FileStorage


class HostClock:
    monotonic_ms = staticmethod(clock.monotonic_ms)
    wall_ms = staticmethod(clock.wall_ms)

    def trusted(self):
        return True  # the host keeps its clock in sync (NTP) itself


class IdleButtons:
    """Nobody presses a simulated button (scenarios may inject presses later)."""

    async def next_press(self):
        await asyncio.Event().wait()


class RecordedLed:
    def __init__(self):
        self.state = None

    def show(self, state):
        self.state = state


class MainsBattery:
    def percent(self):
        return 100


class SimHal:
    def __init__(self, storage_dir, audio, log, open_connection=asyncio.open_connection):
        self.storage = FileStorage(storage_dir)
        self.audio = audio
        self.log = log
        self.open_connection = open_connection
        self.clock = HostClock()
        self.buttons = IdleButtons()
        self.led = RecordedLed()
        self.battery = MainsBattery()
