"""FAKE neopixel for the MicroPython test VM: keeps the pixel colours, lights nothing."""

FAKE = True


class NeoPixel:
    def __init__(self, pin, n):
        self.pixels = [(0, 0, 0)] * n

    def __setitem__(self, i, colour):
        self.pixels[i] = colour

    def __getitem__(self, i):
        return self.pixels[i]

    def write(self):
        pass
