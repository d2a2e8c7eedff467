# Runs first on every reset, soft ones included. Keep it tiny: anything that fails
# here leaves no REPL. It imports nothing of ours, so a broken deploy cannot break it.
import gc

import machine

# A watchdog the app started survives a soft reset (mpremote does one) and cannot be
# stopped: feed it from a timer so the REPL and a deploy are not reset under us.
# main.py's app takes the watchdog over when it starts (soundbox_fw.esp32boot).
if machine.RTC().memory() == b"sb-wdt":
    _wdt = machine.WDT(timeout=60000)
    machine.Timer(0).init(period=2000, callback=lambda t: _wdt.feed())

gc.collect()
