"""The network link of a real board: WiFi station (or PPP over a 4G modem) and NTP.

WiFi: joins the shop's network from config ("wifi_ssid", "wifi_password") and a
task keeps it joined: when the link drops it reconnects with a growing pause
(5 s doubling to 60 s), so a router reboot never needs a power cycle.

PPP (optional, config "network": "ppp"): a 4G modem on a UART (board "modem"
pins), dialled with AT commands, then network.PPP carries IP over it. Needs a
MicroPython build with PPP (ESP32 builds have network.PPP; 1.24+ has the
connect()/isconnected() API used here) and the SIM's APN in config "apn".

NTP: TLS checks certificate dates against the RTC, which starts at 2000-01-01
after a power cut, so the clock is set before the first TLS handshake and
retried in the background until it is.
"""

import asyncio

import machine
import network
import ntptime

RECONNECT_FIRST_MS = 5000
RECONNECT_MAX_MS = 60000
NTP_RETRY_S = 15
# network.WLAN.status() codes worth a clear word in the log
WIFI_REASONS = {
    network.STAT_WRONG_PASSWORD: "wrong password",
    network.STAT_NO_AP_FOUND: "no network with that name in range",
    network.STAT_CONNECT_FAIL: "connect failed",
    network.STAT_HANDSHAKE_TIMEOUT: "handshake timeout (wrong password?)",
}


class Wifi:
    def __init__(self, ssid, password, log):
        self.ssid = ssid
        self.password = password
        self.log = log
        self.wlan = network.WLAN(network.STA_IF)

    def connected(self):
        return self.wlan.isconnected()

    def why(self):
        status = self.wlan.status()
        return WIFI_REASONS.get(status, "status %s" % status)

    def start(self):
        self.wlan.active(True)
        if not self.wlan.isconnected():
            self.wlan.connect(self.ssid, self.password)

    async def up(self, timeout_ms=30000):
        """Join the network; False when not joined within timeout_ms (keep_up() goes on trying)."""
        self.start()
        waited = 0
        while not self.wlan.isconnected():
            if waited >= timeout_ms:
                self.log("wifi: %r not joined after %d s: %s" % (self.ssid, waited // 1000, self.why()))
                return False
            await asyncio.sleep_ms(200)
            waited += 200
        self.log("wifi: joined %r, address %s" % (self.ssid, self.wlan.ifconfig()[0]))
        return True

    async def keep_up(self):
        """Forever: when the link is down, disconnect and join again, pausing longer each time."""
        pause = RECONNECT_FIRST_MS
        while True:
            await asyncio.sleep_ms(pause if not self.wlan.isconnected() else RECONNECT_FIRST_MS)
            if self.wlan.isconnected():
                pause = RECONNECT_FIRST_MS
                continue
            self.log("wifi: link down (%s), joining %r again" % (self.why(), self.ssid))
            try:
                self.wlan.disconnect()
                self.wlan.connect(self.ssid, self.password)
            except OSError as e:  # the driver refuses while it is still busy: try next round
                self.log("wifi: reconnect failed: %r" % (e,))
            pause = min(pause * 2, RECONNECT_MAX_MS)


class Modem:
    """A 4G modem on a UART, dialled into data mode, then IP over PPP."""

    def __init__(self, modem, apn, log):
        self.uart = machine.UART(modem["uart"], baudrate=modem["baud"], tx=modem["tx"], rx=modem["rx"])
        self.apn = apn
        self.log = log
        self.ppp = None

    def connected(self):
        return self.ppp is not None and self.ppp.isconnected()

    def why(self):
        return "no PPP link"

    async def _at(self, command, expect, timeout_ms=5000):
        """Send an AT command; True when `expect` arrives within timeout_ms."""
        while self.uart.any():
            self.uart.read()  # drop what came before
        self.uart.write(command + "\r")
        seen = b""
        waited = 0
        while waited < timeout_ms:
            chunk = self.uart.read()
            if chunk:
                seen += chunk
                if expect in seen:
                    return True
                if b"ERROR" in seen or b"NO CARRIER" in seen:
                    break
            await asyncio.sleep_ms(50)
            waited += 50
        self.log("modem: %s -> %r" % (command, seen[-60:]))
        return False

    async def up(self, timeout_ms=60000):
        if not await self._at("AT", b"OK"):
            self.log("modem: no answer on UART: check the wiring and the modem's power")
            return False
        await self._at('AT+CGDCONT=1,"IP","%s"' % self.apn, b"OK")
        if not await self._at("ATD*99#", b"CONNECT", 30000):
            self.log("modem: dial failed: no signal, no data plan, or wrong APN %r" % self.apn)
            return False
        ppp = self.ppp = network.PPP(self.uart)
        ppp.active(True)
        ppp.connect()
        waited = 0
        while not ppp.isconnected():
            if waited >= timeout_ms:
                self.log("modem: PPP not up after %d s" % (waited // 1000))
                return False
            await asyncio.sleep_ms(200)
            waited += 200
        self.log("modem: PPP up, address %s" % ppp.ifconfig()[0])
        return True

    async def keep_up(self):
        while True:
            await asyncio.sleep_ms(RECONNECT_MAX_MS)
            if not self.connected():
                self.log("modem: link down, dialling again")
                if self.ppp is not None:
                    self.ppp.active(False)
                    self.ppp = None
                await self.up()


def link(config, board, log):
    """The configured link: PPP over the board's modem when config "network" is "ppp", else WiFi."""
    if config.get("network") == "ppp":
        if not board.get("modem"):
            raise ValueError("config network is \"ppp\" but the board has no \"modem\" section")
        return Modem(board["modem"], config.get("apn", ""), log)
    return Wifi(config["wifi_ssid"], config["wifi_password"], log)


class Ntp:
    """Sets the RTC from NTP; `synced` is True once it has (HardwareClock.trusted reads it)."""

    def __init__(self, host, log):
        if host:
            ntptime.host = host
        self.log = log
        self.synced = False
        self.ready = asyncio.Event()

    def sync(self):
        try:
            ntptime.settime()
        except (OSError, OverflowError) as e:  # no answer (OSError), or a bogus one
            self.log("ntp: %s did not answer: %r" % (ntptime.host, e))
            return False
        self.synced = True
        self.ready.set()
        self.log("ntp: clock set from %s" % ntptime.host)
        return True

    async def sync_soon(self, tries=3):
        for _ in range(tries):
            if self.sync():
                return True
            await asyncio.sleep(2)
        return False

    async def keep_trying(self):
        while not self.synced:
            await asyncio.sleep(NTP_RETRY_S)
            self.sync()
