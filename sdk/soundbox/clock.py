"""Time sources that behave the same on MicroPython and CPython.

`monotonic_ms()` never wraps: MicroPython's ticks_ms() wraps after about 12 days
and a soundbox runs for years, so we accumulate ticks_diff() into a plain int.
`wall_ms()` is Unix-epoch milliseconds (MicroPython's ESP32 epoch is 2000-01-01).
"""

import time

_EPOCH_2000_MS = 946684800000

if hasattr(time, "ticks_ms"):
    _last = time.ticks_ms()
    _total = 0

    def monotonic_ms():
        global _last, _total
        now = time.ticks_ms()
        _total += time.ticks_diff(now, _last)
        _last = now
        return _total

    _epoch_offset = _EPOCH_2000_MS if time.gmtime(0)[0] == 2000 else 0

    def wall_ms():
        return time.time_ns() // 1000000 + _epoch_offset

else:
    _monotonic_ns = getattr(time, "monotonic_ns")  # CPython; not in MicroPython's stubs

    def monotonic_ms():
        return _monotonic_ns() // 1000000

    def wall_ms():
        return time.time_ns() // 1000000
