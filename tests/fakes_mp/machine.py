"""FAKE machine module for the MicroPython test VM (no hardware there). Records calls only."""

FAKE = True
calls = []  # (what, details) in order, for tests to inspect
pin_levels = {}  # GPIO number -> level a Pin reads (default 1: released key, pull-up)


class Pin:
    IN = 1
    OUT = 3
    PULL_UP = 1
    IRQ_FALLING = 4
    IRQ_RISING = 8

    def __init__(self, number, mode=-1, pull=-1, value=None):
        self.number = number
        self.level = value if value is not None else pin_levels.get(number, 1)
        calls.append(("Pin", number))

    def value(self, level=None):
        if level is None:
            return pin_levels.get(self.number, self.level)
        self.level = level
        calls.append(("Pin.value", (self.number, level)))

    def irq(self, handler=None, trigger=IRQ_FALLING | IRQ_RISING):
        """Records the handler; a test fires it as the pin's edge would (handler(pin))."""
        self.handler = handler
        calls.append(("Pin.irq", (self.number, trigger)))


class I2S:
    TX = 0
    MONO = 0

    def __init__(self, id, **kwargs):
        calls.append(("I2S", id))

    @staticmethod
    def shift(buf=None, bits=16, shift=0):
        calls.append(("I2S.shift", shift))

    def deinit(self):
        pass


class ADC:
    ATTN_11DB = 3

    def __init__(self, pin, atten=None):
        self.pin = pin

    def read_uv(self):
        return 1900000  # 1.9 V at the pin: 3.8 V behind a 1:2 divider


class WDT:
    def __init__(self, id=0, timeout=5000):
        self.timeout = timeout
        self.fed = 0
        calls.append(("WDT", timeout))

    def feed(self):
        self.fed += 1


class Timer:
    def __init__(self, id):
        self.id = id

    def init(self, period=-1, callback=None, mode=None):
        calls.append(("Timer.init", period))
        self.callback = callback

    def deinit(self):
        calls.append(("Timer.deinit", self.id))


_rtc_memory = [b""]


class RTC:
    def memory(self, data=None):
        if data is None:
            return _rtc_memory[0]
        _rtc_memory[0] = bytes(data)


class UART:
    def __init__(self, id, baudrate=115200, tx=None, rx=None):
        self.id = id

    def any(self):
        return 0

    def read(self, n=None):
        return None

    def write(self, data):
        return len(data)


def reset():
    calls.append(("reset", None))
    raise SystemExit("fake machine.reset()")
