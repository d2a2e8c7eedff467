"""The soundbox application: SDK cores wired to a HAL. Same code on an ESP32 and
in the fleet simulator; only the HAL differs.

A HAL is any object with:
    open_connection(host, port)  async -> (reader, writer)   transport factory
    audio.play(tokens, name)     async, returns when the clips have played
    storage                      read(name) / write(name, data) / append(name, data)
    clock.monotonic_ms(), clock.wall_ms()
    buttons.next_press()         async -> "replay" (and later volume keys)
    led.show(state)              "connecting" | "online" | "offline" | "error"
    battery.percent()            int
    log(message)

config: {"device_id", "broker_host", "broker_port", "keepalive"?, "lang"?,
         "tls"?: {"identity": dir with ca.pem/device.pem/device.key, "server_hostname"?}}
Without "tls" the link is plain MQTT (tests and load runs only).
"""

import asyncio
import gc
import json

from soundbox import VERSION, payment, tls, voice
from soundbox.ledger import Ledger
from soundbox.mqttclient import Client
from soundbox.mqttsession import Session

# Announcements waiting to play. When full, the handler waits before taking more,
# which delays the PUBACK: the broker keeps the payment, nothing is dropped.
QUEUE_LIMIT = 16
PROMPT_INTERVAL_MS = 600000  # say a health prompt at most every 10 minutes: do not nag
PLAY_TIMEOUT_S = 60  # the longest amount takes ~9 s to say; a stuck speaker must not wedge the box


class Soundbox:
    def __init__(self, hal, config):
        self.hal = hal
        self.device_id = config["device_id"]
        self.lang = config.get("lang", "en-IN")
        self.prefix = "sb/%s/" % self.device_id
        self.ledger = Ledger(hal.storage)
        self.pending = []  # [(txn, tokens, rx_ms)] in arrival order
        self.last_tokens = None
        self._prompted = {}  # prompt name -> monotonic ms when last said
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self.identity = None
        open_connection = hal.open_connection
        if config.get("tls"):
            self.identity = config["tls"]["identity"]
            server = config["tls"].get("server_hostname", config["broker_host"])
            open_connection = tls.connector(self.identity, server, hal.open_connection)
        offline = self._status("offline")
        session = Session(self.device_id, keepalive_s=config.get("keepalive", 60), clean=False,
                          will=(self.prefix + "status", offline, 1, True))
        self.mqtt = Client(session, config["broker_host"], config["broker_port"],
                           self._on_message, self._on_connect, self._on_disconnect,
                           open_connection=open_connection, log=hal.log, tls=bool(self.identity))
        self._tasks = []

    async def run(self):
        """Run until stop() is called."""
        self.hal.led.show("connecting")
        if self.identity and tls.missing_files(self.identity):
            # Found before any network traffic; the client keeps checking at each retry.
            self.hal.log("tls: identity incomplete: missing %s in %s"
                         % (", ".join(tls.missing_files(self.identity)), self.identity))
            self._trouble("not_registered")
        self._tasks = [asyncio.create_task(self._player()), asyncio.create_task(self._buttons())]
        try:
            await self.mqtt.run()
        finally:
            for t in self._tasks:
                t.cancel()

    async def stop(self):
        """Leave cleanly: say we are offline (retained), DISCONNECT, stop the tasks."""
        await self.mqtt.stop(last_words=(self.prefix + "status", self._status("offline"), 0, True))

    # ---- MQTT callbacks ----------------------------------------------------

    async def _on_connect(self, client, session_present):
        self.hal.led.show("online")
        await client.subscribe([(self.prefix + "notify", 1)])
        await client.publish(self.prefix + "status", self._status("online"), 1, True)
        await client.publish(self.prefix + "telemetry", json.dumps({
            "battery": self.hal.battery.percent(), "fw": VERSION,
            "heap": gc.mem_free() if hasattr(gc, "mem_free") else None}), 0)

    def _on_disconnect(self):
        refused = self.mqtt.refused
        if refused is not None and refused.permanent:
            self._trouble("not_registered")  # bad credentials / not authorised: retrying won't help
        else:
            self.hal.led.show("offline")

    async def _on_message(self, msg):
        if msg.topic == self.prefix + "notify":
            await self._on_notify(msg.payload)

    async def _on_notify(self, payload):
        rx = self.hal.clock.wall_ms()
        try:
            txn, amount = payment.parse_notification(payload)
        except payment.InvalidNotification as e:
            await self._ack(e.txn, payment.INVALID, e.reason, rx)
            return
        if txn in self.ledger:
            await self._ack(txn, payment.DUPLICATE, "already announced", rx)
            return
        tokens = voice.announcement_tokens(amount, self.lang)
        while len(self.pending) >= QUEUE_LIMIT:
            self._room.clear()
            await self._room.wait()
        self.ledger.add(txn)  # before playing: a reboot mid-announcement never repeats it
        self.pending.append((txn, tokens, rx))
        self._wake.set()

    # ---- tasks -------------------------------------------------------------

    async def _player(self):
        clock = self.hal.clock
        while True:
            while not self.pending:
                self._wake.clear()
                await self._wake.wait()
            txn, tokens, rx = self.pending.pop(0)
            self._room.set()
            play = clock.wall_ms()
            try:
                await asyncio.wait_for(self.hal.audio.play(tokens, txn), PLAY_TIMEOUT_S)
            except Exception as e:  # a sink failure must not stop the box
                self.hal.log("audio failed for %s: %r" % (txn, e))
                await self._ack(txn, payment.FAILED, "playback failed: %r" % (e,), rx, play)
                continue
            self.last_tokens = tokens
            await self._ack(txn, payment.ANNOUNCED, "", rx, play, clock.wall_ms())

    async def _buttons(self):
        while True:
            press = await self.hal.buttons.next_press()
            if press == "replay" and self.last_tokens:
                await self.hal.audio.play(self.last_tokens, "replay")

    # ---- helpers -----------------------------------------------------------

    async def _ack(self, txn, status, reason, rx, play=None, done=None):
        await self.mqtt.publish(self.prefix + "ack",
                                payment.ack_payload(txn, status, reason, rx, play, done), 1)

    def _trouble(self, prompt):
        """Show the error LED and say the prompt, at most once per PROMPT_INTERVAL_MS."""
        self.hal.led.show("error")
        now = self.hal.clock.monotonic_ms()
        last = self._prompted.get(prompt)
        if last is None or now - last >= PROMPT_INTERVAL_MS:
            self._prompted[prompt] = now
            asyncio.create_task(self.hal.audio.play(voice.prompt_tokens(prompt, self.lang), prompt))

    def _status(self, state):
        return json.dumps({"state": state, "fw": VERSION})
