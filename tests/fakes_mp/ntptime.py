"""FAKE ntptime for the MicroPython test VM (no network there): settime() always times out."""

FAKE = True
host = "pool.ntp.org"
timeout = 1


def settime():
    raise OSError(110)  # ETIMEDOUT, as when no NTP server answers
