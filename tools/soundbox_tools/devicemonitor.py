"""`soundbox device monitor`: the board's serial console, surviving unplug and replug.

pyserial reads the port; when it disappears (unplugged, board reset into the
bootloader) the monitor says so once and waits for it to come back. With
--json, lines that are JSON objects are shown as "LEVEL message key=value ...";
other lines pass through unchanged.
"""

import json
import sys
import time

import serial

from soundbox_tools.deviceport import check_port, open_error


def format_line(line, as_json):
    if not as_json or not line.startswith("{"):
        return line
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict):
        return line
    level = str(record.pop("level", "info")).upper()
    message = record.pop("msg", record.pop("message", record.pop("event", "")))
    rest = " ".join("%s=%s" % (k, json.dumps(record[k])) for k in sorted(record))
    return ("%-5s %s %s" % (level, message, rest)).rstrip()


def monitor(port, baud=115200, as_json=False, out=None, retry_s=0.5, stop=None):
    """Print the port's lines until stop() is true (or forever); reopen the port after it goes away."""
    out = out or sys.stdout
    check_port(port)
    first = True
    waiting = False
    while stop is None or not stop():
        try:
            link = serial.serial_for_url(port, baudrate=baud, timeout=0.2, exclusive=True)
        except (OSError, serial.SerialException) as e:
            if first:
                raise open_error(port, e)
            if not waiting:
                print("monitor: %s is gone, waiting for it to come back (Ctrl-C stops)" % port, file=out, flush=True)
                waiting = True
            time.sleep(retry_s)
            continue
        if waiting:
            print("monitor: %s is back" % port, file=out, flush=True)
            waiting = False
        elif first:
            print("monitor: %s at %d baud (Ctrl-C stops)" % (port, baud), file=out, flush=True)
        first = False
        try:
            _follow(link, as_json, out, stop)
        except (OSError, serial.SerialException):
            print("monitor: lost %s (unplugged?)" % port, file=out, flush=True)
            waiting = True
        finally:
            link.close()


def _follow(link, as_json, out, stop):
    pending = b""
    while stop is None or not stop():
        chunk = link.read(max(1, link.in_waiting))
        if not chunk:
            continue
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace").rstrip("\r")
            print(format_line(line, as_json), file=out, flush=True)
