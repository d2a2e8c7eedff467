"""Soundbox device SDK: sans-I/O protocol cores and thin asyncio drivers.

Everything in this package runs unchanged on MicroPython (ESP32) and CPython.
"""

VERSION = "0.1.0"
