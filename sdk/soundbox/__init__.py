"""Soundbox device SDK: sans-I/O protocol cores and thin asyncio drivers.

Everything in this package runs unchanged on MicroPython (ESP32) and CPython.
"""

VERSION = "0.1.0"


def forget(name):
    """On MicroPython, forget the module soundbox.<name>: once nothing else refers to it,
    its dict, functions and constants are garbage, and the next import loads it again. A
    CPython process (the simulator, many boxes at once) keeps what it has loaded."""
    import sys

    if sys.implementation.name != "micropython":
        return
    sys.modules.pop("soundbox." + name, None)
    package = sys.modules.get("soundbox")
    if package is not None and hasattr(package, name):
        delattr(package, name)
