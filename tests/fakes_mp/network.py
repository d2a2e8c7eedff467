"""FAKE network module for the MicroPython test VM (no radio there): a WLAN that never joins."""

FAKE = True
STA_IF = 0
STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010
STAT_WRONG_PASSWORD = 202
STAT_NO_AP_FOUND = 201
STAT_CONNECT_FAIL = 203
STAT_HANDSHAKE_TIMEOUT = 204


class WLAN:
    def __init__(self, interface=STA_IF):
        self._active = False

    def active(self, on=None):
        if on is not None:
            self._active = on
        return self._active

    def connect(self, ssid=None, key=None):
        pass

    def disconnect(self):
        pass

    def isconnected(self):
        return False

    def status(self):
        return STAT_NO_AP_FOUND

    def ifconfig(self):
        return ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")


class PPP:
    def __init__(self, stream):
        self.stream = stream

    def active(self, on=None):
        return False

    def connect(self, security=0, user=None, key=None):
        pass

    def isconnected(self):
        return False

    def ifconfig(self):
        return ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")
