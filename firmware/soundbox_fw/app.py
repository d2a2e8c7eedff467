"""The soundbox application: SDK cores wired to a HAL. Same code on an ESP32 and
in the fleet simulator; only the HAL differs.

A HAL is any object with:
    open_connection(host, port)  async -> (reader, writer)   transport factory
    audio.play(tokens, name)     async, returns when the clips have played
    storage                      read(name) / write(name, data) / append(name, data)
    clock.monotonic_ms(), clock.wall_ms()
    clock.trusted()              True once wall_ms() is real time (NTP on the ESP32)
    buttons.next_press()         async -> "replay" (and later volume keys)
    led.show(state)              "connecting" | "online" | "offline" | "error"
    battery.percent()            int
    log(message)

config: {"device_id", "broker_host", "broker_port", "keepalive"?, "lang"?,
         "identity"?: dir with payment.key (default: the TLS identity dir, else /certs),
         "freshness_s"?: how old a payment may be and still be announced (default 120),
         "tls"?: {"identity": dir with ca.pem/device.pem/device.key, "server_hostname"?}}
Without "tls" the link is plain MQTT (tests and load runs only); the payment key
is needed either way.

A notification is announced only when its MAC verifies under this device's
payment key, its txn was never seen (ledger), and it is fresh by a trusted clock.
Until the clock is trusted, verified payments are held (bounded, on flash) and
judged once it is. Authentic payments older than the limit (the box was offline)
are acked "stale" and rolled into one spoken summary, said when the backlog has
stopped arriving or just before the next fresh payment.
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
FRESHNESS_S = 120  # an older payment is not announced on its own: the customer has left
# Verified payments waiting for a trusted clock. Beyond this they are acked "failed"
# and not recorded, so the cloud can send them again later.
HOLD_LIMIT = 32
HELD_FILE = "held.json"
CLOCK_POLL_S = 1
# The offline summary is said this long after the last stale payment arrived, so a
# backlog the broker hands over in a burst becomes one announcement.
SUMMARY_DEBOUNCE_MS = 2000
SUMMARY_NAME = "offline-summary"


class Soundbox:
    def __init__(self, hal, config):
        self.hal = hal
        self.device_id = config["device_id"]
        self.lang = config.get("lang", "en-IN")
        self.prefix = "sb/%s/" % self.device_id
        self.ledger = Ledger(hal.storage)
        self.pending = []  # [(txn, tokens, rx_ms)] in arrival order; txn None for a summary
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
        self.key_path = "%s/payment.key" % (config.get("identity") or self.identity or "/certs")
        self.payment_key = self._load_payment_key()
        self.freshness_ms = int(config.get("freshness_s", FRESHNESS_S) * 1000)
        self.held = self._load_held()  # [[txn, amount, ts, rx]] waiting for a trusted clock
        self._held_added = asyncio.Event()
        self.offline_count = 0  # stale payments not yet summarised, and their total
        self.offline_total = 0
        self._summary_due = 0  # monotonic ms
        self._stale_added = asyncio.Event()
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
        if self.payment_key is None:
            self._trouble("not_registered")  # without its key the box can verify no payment
        self._tasks = [asyncio.create_task(self._player()), asyncio.create_task(self._buttons()),
                       asyncio.create_task(self._release_held()),
                       asyncio.create_task(self._offline_summaries())]
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
            note = payment.parse_notification(payload)
        except payment.InvalidNotification as e:
            await self._ack(e.txn, payment.INVALID, e.reason, rx)
            return
        if self.payment_key is None:
            await self._ack(note.txn, payment.INVALID, "no payment key on the device", rx)
            return
        if not payment.authentic(note, self.payment_key, self.device_id):
            # Say which txn, never the MACs: the expected one is an oracle for forgers.
            self.hal.log("payment %s: bad MAC, not announced" % note.txn)
            await self._ack(note.txn, payment.INVALID, "bad MAC", rx)
            return
        if note.txn in self.ledger:
            await self._ack(note.txn, payment.DUPLICATE, "already announced", rx)
            return
        if self._is_held(note.txn):
            await self._ack(note.txn, payment.DUPLICATE, "already received, waiting for the clock", rx)
            return
        if self.held or not self.hal.clock.trusted():
            await self._hold(note, rx)  # behind those already held: keep arrival order
            return
        await self._judge(note.txn, note.amount, note.ts, rx)

    async def _judge(self, txn, amount, ts, rx):
        """Announce, summarise or refuse an authentic, unseen payment by its age (trusted clock)."""
        verdict = payment.age_verdict(ts, self.hal.clock.wall_ms(), self.freshness_ms)
        if verdict == payment.AHEAD:
            await self._ack(txn, payment.INVALID, "ts is %d s ahead of the device clock"
                            % ((ts - self.hal.clock.wall_ms()) // 1000), rx)
            return
        if verdict == payment.STALE:
            if self.offline_total + amount > voice.MAX_TOTAL_PAISE:
                self._queue_summary()  # the summary's total must stay sayable
            self.ledger.add(txn)  # a replay of it is then a duplicate
            self.offline_count += 1
            self.offline_total += amount
            self._summary_due = self.hal.clock.monotonic_ms() + SUMMARY_DEBOUNCE_MS
            self._stale_added.set()
            await self._ack(txn, payment.STALE, "paid %d s ago, over the %d s limit: in the offline summary"
                            % ((self.hal.clock.wall_ms() - ts) // 1000, self.freshness_ms // 1000), rx)
            return
        self._queue_summary()  # the backlog first, then what is happening now
        tokens = voice.announcement_tokens(amount, self.lang)
        while len(self.pending) >= QUEUE_LIMIT:
            self._room.clear()
            await self._room.wait()
        self.ledger.add(txn)  # before playing: a reboot mid-announcement never repeats it
        self.pending.append((txn, tokens, rx))
        self._wake.set()

    # ---- payments waiting for a trusted clock ---------------------------------

    async def _hold(self, note, rx):
        if len(self.held) >= HOLD_LIMIT:
            await self._ack(note.txn, payment.FAILED, "clock not set and %d payments already held: send again later"
                            % HOLD_LIMIT, rx)
            return
        self.held.append([note.txn, note.amount, note.ts, rx])
        self._save_held()  # before the PUBACK: a reboot keeps it
        if not self.hal.clock.trusted():  # else it only waits behind held ones being judged
            self.hal.log("payment %s: clock not trusted yet, held (%d waiting)" % (note.txn, len(self.held)))
            self._trouble("clock_not_set")
        self._held_added.set()

    def _is_held(self, txn):
        for entry in self.held:
            if entry[0] == txn:
                return True
        return False

    def _load_held(self):
        raw = self.hal.storage.read(HELD_FILE)
        if not raw:
            return []
        try:
            entries = json.loads(raw)
        except (ValueError, UnicodeError):
            entries = None
        if type(entries) is not list:
            self.hal.log("payment: %s unreadable, held payments lost" % HELD_FILE)
            return []
        return [e for e in entries if type(e) is list and len(e) == 4 and payment.valid_txn(e[0])
                and payment.amount_problem(e[1]) is None and type(e[2]) is int and type(e[3]) is int]

    def _save_held(self):
        self.hal.storage.write(HELD_FILE, json.dumps(self.held).encode())

    async def _release_held(self):
        clock = self.hal.clock
        while True:
            while not self.held:
                self._held_added.clear()
                await self._held_added.wait()
            while not clock.trusted():
                await asyncio.sleep(CLOCK_POLL_S)
            while self.held:
                txn, amount, ts, rx = self.held[0]
                if txn not in self.ledger:  # it is, if power failed between judging and saving
                    await self._judge(txn, amount, ts, rx)
                self.held.pop(0)
                self._save_held()

    # ---- the offline summary ------------------------------------------------------

    def _queue_summary(self):
        """Put 'while offline: N payments, total ...' on the speaker's queue, if any are waiting."""
        if not self.offline_count:
            return
        count, total = self.offline_count, self.offline_total
        self.offline_count = self.offline_total = 0
        try:
            tokens = voice.offline_summary_tokens(count, total, self.lang)
        except Exception as e:  # the payments are acked already; only the words are lost
            self.hal.log("offline summary of %d payments failed: %r" % (count, e))
            return
        self.pending.append((None, tokens, None))  # may pass QUEUE_LIMIT by this one
        self._wake.set()

    async def _offline_summaries(self):
        clock = self.hal.clock
        while True:
            self._stale_added.clear()
            await self._stale_added.wait()
            # Each stale arrival moves the due time on; a fresh payment may say it earlier.
            while self.offline_count and clock.monotonic_ms() < self._summary_due:
                await asyncio.sleep((self._summary_due - clock.monotonic_ms()) / 1000)
            self._queue_summary()

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
                await asyncio.wait_for(self.hal.audio.play(tokens, txn or SUMMARY_NAME), PLAY_TIMEOUT_S)
            except Exception as e:  # a sink failure must not stop the box
                self.hal.log("audio failed for %s: %r" % (txn or SUMMARY_NAME, e))
                if txn is not None:
                    await self._ack(txn, payment.FAILED, "playback failed: %r" % (e,), rx, play)
                continue
            if txn is None:
                continue  # the summary's payments were acked "stale" when they arrived
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

    def _load_payment_key(self):
        try:
            with open(self.key_path, "rb") as f:
                data = f.read()
        except OSError:
            self.hal.log("payment: no key at %s: no payment can be verified" % self.key_path)
            return None
        try:
            return payment.parse_key(data)
        except ValueError as e:
            self.hal.log("payment: %s (%s): no payment can be verified" % (e, self.key_path))
            return None

    def _status(self, state):
        return json.dumps({"state": state, "fw": VERSION})
