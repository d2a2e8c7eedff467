"""FAKE asyncio for the MicroPython test VM, which has no asyncio package.

Only lets modules that use asyncio be imported: the classes and names exist,
nothing runs an event loop. Running async code in the VM is not what these
fakes are for (the asyncio drivers are tested on CPython and, for real, on a board).
"""

FAKE = True


class TimeoutError(Exception):
    pass


class CancelledError(BaseException):
    pass


class Event:
    def __init__(self):
        self._set = False

    def set(self):
        self._set = True

    def clear(self):
        self._set = False

    def is_set(self):
        return self._set

    async def wait(self):
        raise NotImplementedError("fake asyncio: no event loop in the test VM")


class ThreadSafeFlag(Event):
    """What an interrupt handler may set (MicroPython's has set, clear and wait)."""


class Lock:
    async def acquire(self):
        raise NotImplementedError("fake asyncio: no event loop in the test VM")

    def release(self):
        pass


class StreamWriter:
    def __init__(self, stream, extra=None):
        self.stream = stream


def _not_here(*args, **kwargs):
    raise NotImplementedError("fake asyncio: no event loop in the test VM")


run = create_task = sleep = sleep_ms = wait_for = wait_for_ms = open_connection = gather = _not_here
