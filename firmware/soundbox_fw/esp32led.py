"""The status LED: one pattern per state, blinked by an asyncio task.

A pattern is a list of durations in ms, alternately lit and dark, repeated;
a single duration means steady. A plain LED blinks the pattern; an RGB LED
(NeoPixel, e.g. on the ESP32-S3-DevKitC-1) blinks it in the state's colour.
The meaning of each pattern is in docs/esp32.md.
"""

import asyncio

import machine

# state -> (pattern in ms: lit, dark, lit, dark ..., RGB colour)
PATTERNS = {
    "booting": ([1000], (40, 40, 40)),  # steady: starting up
    "connecting": ([500, 500], (0, 0, 60)),  # slow blink: joining WiFi / the broker
    "online": ([2900, 100], (0, 50, 0)),  # lit, a short dark blip every 3 s: all well
    "offline": ([100, 1900], (60, 30, 0)),  # a short flash every 2 s: link lost, retrying
    "error": ([100, 100], (60, 0, 0)),  # fast blink: needs a person (see the spoken prompt)
    "updating": ([150, 150, 150, 1050], (40, 0, 60)),  # double flash: an update is installing
}
TICK_MS = 50  # how soon a new state shows


class Led:
    """show(state) returns at once; the task started by run() does the blinking."""

    def __init__(self, led):
        self.kind = led["kind"]
        self.active_low = bool(led.get("active_low"))
        pin = machine.Pin(led["pin"], machine.Pin.OUT)
        self.pixel = None
        self.pin = pin
        if self.kind == "neopixel":
            import neopixel  # frozen into MicroPython's ESP32 firmware

            self.pixel = neopixel.NeoPixel(pin, 1)
        self.state = "booting"
        self.changed = True
        self._set(True, PATTERNS["booting"][1])

    def show(self, state):
        if state not in PATTERNS:
            state = "error"  # an unknown state is a bug worth seeing
        if state != self.state:
            self.state = state
            self.changed = True

    def _set(self, lit, colour):
        if self.pixel is not None:
            self.pixel[0] = colour if lit else (0, 0, 0)
            self.pixel.write()
        else:
            self.pin.value(1 if lit != self.active_low else 0)

    async def run(self):
        while True:
            self.changed = False
            pattern, colour = PATTERNS[self.state]
            lit = True
            i = 0
            while not self.changed:
                self._set(lit, colour)
                if len(pattern) == 1:
                    await asyncio.sleep_ms(TICK_MS)  # steady: only watch for a change
                    continue
                left = pattern[i]
                while left > 0 and not self.changed:
                    step = TICK_MS if left > TICK_MS else left
                    await asyncio.sleep_ms(step)
                    left -= step
                i = (i + 1) % len(pattern)
                lit = not lit
