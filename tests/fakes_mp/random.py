"""FAKE random for the MicroPython test VM, whose WASI build lacks the module (the ESP32 has it).

A fixed-seed linear congruential generator: repeatable, and not random at all.
"""

FAKE = True
_state = [12345]


def getrandbits(bits):
    _state[0] = (_state[0] * 1103515245 + 12345) & 0x7FFFFFFF
    return _state[0] >> max(0, 31 - bits)


def random():
    return getrandbits(24) / 16777216


def randint(a, b):
    return a + getrandbits(24) % (b - a + 1)


def seed(n=None):
    _state[0] = (n or 0) & 0x7FFFFFFF
