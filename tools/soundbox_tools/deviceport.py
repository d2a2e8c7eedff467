"""The serial port to a board, checked before use so every failure is one clear line.

Talking to MicroPython goes through mpremote's own serial transport (raw REPL,
file writes, hashing on the board); we add the checks and the messages:
no such port, permission denied, port busy, and a board that is not MicroPython.
"""

import contextlib
import errno
import io
import os

import serial
import serial.tools.list_ports
from mpremote.transport import TransportError, TransportExecError
from mpremote.transport_serial import SerialTransport

from soundbox_tools.devicebuild import DeviceError

PROBE_TIMEOUT_S = 5  # how long a board may take to show its raw REPL prompt
# pyserial read timeout: mpremote's own timeouts only work when reads return; on some
# ports (ptys) it reads a byte at a time and would otherwise wait forever.
READ_TIMEOUT_S = 2


def _ports_seen():
    names = sorted(p.device for p in serial.tools.list_ports.comports())
    return ", ".join(names) if names else "none"


def check_port(port):
    """Raise DeviceError unless `port` exists and we may open it (URLs like socket:// pass)."""
    if "://" in port:
        return
    if not os.path.exists(port):
        raise DeviceError("no such port %s (is the board plugged in? serial ports seen: %s)" % (port, _ports_seen()))
    if not os.access(port, os.R_OK | os.W_OK):
        raise DeviceError(permission_message(port))


def permission_message(port):
    return ("permission denied on %s: add yourself to its group (on Debian/Ubuntu `sudo usermod -aG dialout "
            "$USER`, then log out and in again)" % port)


def open_error(port, error):
    """A DeviceError for an OSError/SerialException met while opening `port`."""
    code = getattr(error, "errno", None)
    text = str(error)
    if code == errno.EACCES or "Permission denied" in text:
        return DeviceError(permission_message(port))
    if code == errno.ENOENT or "No such file" in text:
        return DeviceError("no such port %s (unplugged?)" % port)
    if code in (errno.EBUSY, errno.EAGAIN) or "exclusively lock" in text or "busy" in text:
        return DeviceError("port %s is busy: close the other program using it (a monitor, screen, an IDE)" % port)
    return DeviceError("cannot open %s: %s" % (port, text))


class Board:
    """A MicroPython board in raw REPL mode: `with Board(port) as b: b.transport.exec(...)`."""

    def __init__(self, port, baud=115200, probe_timeout_s=PROBE_TIMEOUT_S, soft_reset=True):
        check_port(port)
        self.port = port
        try:
            # pyserial first: mpremote's transport turns every open failure into one vague message
            serial.serial_for_url(port, baudrate=baud, exclusive=True).close()
        except (OSError, serial.SerialException) as e:
            raise open_error(port, e)
        try:
            self.transport = SerialTransport(port, baudrate=baud, timeout=READ_TIMEOUT_S)
        except TransportError as e:
            raise DeviceError("cannot open %s: %s" % (port, e))
        said = io.StringIO()  # mpremote prints what it got instead of a prompt: we say it in our message
        try:
            with contextlib.redirect_stdout(said):
                self.transport.enter_raw_repl(soft_reset=soft_reset, timeout_overall=probe_timeout_s)
        except (TransportError, OSError, serial.SerialException):
            self.close()
            heard = said.getvalue().strip()[-60:] or "nothing"
            raise DeviceError("no MicroPython REPL on %s (it answered %s): flash MicroPython first "
                              "(`soundbox device flash`), or close whatever else is using the port" % (port, heard))

    def exec(self, code):
        """Run code on the board; its printed output (bytes). A board-side error is a DeviceError."""
        try:
            return self.transport.exec(code)
        except TransportExecError as e:
            last = (e.error_output.strip().splitlines() or ["?"])[-1]
            raise DeviceError("the board failed: %s" % last)
        except (TransportError, OSError, serial.SerialException) as e:
            raise DeviceError("lost the board on %s: %s" % (self.port, e))

    def write_file(self, path, data):
        try:
            self.transport.fs_writefile(path, data, chunk_size=1024)
        except (TransportError, OSError, serial.SerialException) as e:
            raise DeviceError("writing %s to the board failed: %s" % (path, e))

    def reset(self):
        """Hard-reset the board so it boots the new files (the link closes)."""
        try:
            self.transport.exec_raw_no_follow("import machine\nmachine.reset()")
        except (TransportError, OSError, serial.SerialException):
            pass  # it may reset before it answers

    def close(self):
        try:
            if self.transport.in_raw_repl:
                self.transport.exit_raw_repl()
            self.transport.close()
        except (OSError, serial.SerialException):
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
