"""The soundbox application: SDK cores wired to a HAL. Same code on an ESP32 and
in the fleet simulator; only the HAL differs.

A HAL is any object with:
    open_connection(host, port)  async -> (reader, writer)   transport factory
    audio.play(tokens, name)     async, returns when the clips have played
    storage                      read(name) / write(name, data) / append(name, data)
    clock.monotonic_ms(), clock.wall_ms()
    clock.trusted()              True once wall_ms() is real time (NTP on the ESP32)
    audio.set_volume(level)      optional: 1 (quietest) .. 5; called at start and on each change
    buttons.next_press()         async -> "replay" | "today" (long press of replay) |
                                 "volume_up" | "volume_down"
    led.show(state)              "connecting" | "online" | "offline" | "error" | "updating"
    battery.percent()            int
    battery.charging()           optional: True while on external power
    network_up()                 optional: False while the box has no network at all (WiFi
                                 down), so "no network" is said instead of "server unreachable"
    log(message)
    ota                          optional: where updates land (soundbox.otaslots.FileSlots
                                 interface); without it the box takes no updates
    ota_rollbacks                with ota: {kind: reason} rollbacks the boot step just did
    reboot()                     with ota: restart the box (does not return on a device)

config: {"device_id", "broker_host", "broker_port", "keepalive"?, "lang"?,
         "mqtt"?: 4 (MQTT 3.1.1, the default) or 5 (MQTT 5: the broker learns our 64 KiB
                  packet limit and drops what we could not take, and says why it refuses),
         "identity"?: dir with payment.key (default: the TLS identity dir, else /certs),
         "freshness_s"?: how old a payment may be and still be announced (default 120),
         "tz_offset_min"?: local time zone for "today" (default 330, India),
         "tls"?: {"identity": dir with ca.der/device.der/device.key.der, "server_hostname"?},
         "ota_keys"?: {"keys": [hex P-256 public keys]} file of trusted release keys
                      (default: ota_keys.json in the identity dir)}
Without "tls" the link is plain MQTT (tests and load runs only); the payment key
is needed either way.

A notification is announced only when its MAC verifies under this device's
payment key, its txn was never seen (ledger), and it is fresh by a trusted clock.
Until the clock is trusted, verified payments are held (bounded, on flash) and
judged once it is. Authentic payments older than the limit (the box was offline)
are acked "stale" and rolled into one spoken summary, said when the backlog has
stopped arriving or just before the next fresh payment.

The speaker's queue (voice UX):
- announcements play in arrival order; when more than MERGE_ABOVE payments are
  waiting, the waiting ones are said as one "N payments received, total ..." and
  each is acked "announced" with that announcement's play/done times and the
  reason "merged with N-1 others";
- at most QUEUE_LIMIT payments wait; then the handler waits, which delays the
  PUBACK (the broker keeps the payment; nothing is dropped);
- a payment is written to flash (unsaid.json) before it is queued and taken off once
  said, so one queued or playing when the power is cut is judged again at the next
  start: said then if still fresh, else put in the offline summary, and acked either way;
- the replay key says the last announcement again with the time it was received (only
  announced payments, in the current language); a long press says today's count and total (local day,
  announced and stale payments, kept on flash); the volume keys step 1..5 and say
  "minimum/maximum volume" at the ends.
Commands on sb/<id>/cmd (QoS 1, JSON; the rule is soundbox.commands, the cloud's too),
answered on sb/<id>/cmdack with {"id", "cmd", "ok", "reason"} (id: the command's, echoed):
volume, language, replay, reboot (acked, then a planned restart once the speaker is quiet)
and telemetry (published at once). Volume and language are kept on flash (settings.json)
and outlive a restart; the config's "lang" is only the default. At most one replay waits
(another is refused), and a payment that arrives goes before a waiting replay: replays
never delay a payment's words.

Updates (soundbox_fw.updater) arrive on sb/<id>/ota/job and download over the same
connection while payments keep being announced; the voice goes first.
"""

import asyncio
import binascii
import gc
import json

from soundbox import VERSION, commands, payment, tls, voice
from soundbox.ledger import Ledger
from soundbox.mqttclient import Client
from soundbox.mqttsession import Session, Subscribed
from soundbox_fw.stored import DAY_MS, VOLUME_LEVELS, Backlog, Payments, Settings, Tally

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
UNSAID_FILE = "unsaid.json"  # accepted payments whose words were not said yet
CLOCK_POLL_S = 1
# The offline summary is said this long after the last stale payment arrived, so a
# backlog the broker hands over in a burst becomes one announcement.
SUMMARY_DEBOUNCE_MS = 2000
SUMMARY_NAME = "offline-summary"
# More waiting payments than this are said as one merged announcement.
MERGE_ABOVE = 3
MERGED_NAME = "merged"  # the sink's name for it: "merged <txn> <txn> ..." (txns have no spaces)
REPLAY_NAME = "replay"
TODAY_NAME = "today"
TZ_OFFSET_MIN = 330  # India Standard Time: "today" and replayed times are the merchant's
MQTT_PROTOCOLS = (4, 5)  # config "mqtt": the protocol level, 3.1.1 or 5
HEALTH_POLL_S = 5  # how often the battery and the link are looked at
UNREACHABLE_MS = 60000  # disconnected this long: say "server unreachable"
LOW_BATTERY_PERCENT = 15
QUIET_TIMEOUT_S = 120  # a planned restart waits this long at most for the speaker and the acks


def said_txns(name):
    """(txns, merged count or 0) a sink's announcement name stands for: a merged one,
    "merged <txn> <txn> ...", said each of its payments (txns have no spaces)."""
    parts = name.split(" ") if isinstance(name, str) else [name]
    if len(parts) > 1 and parts[0] == MERGED_NAME:
        return parts[1:], len(parts) - 1
    return [name], 0


def _is_replay(entry):
    """A pending entry is a replay (a payment's name is its txn, which may be anything)."""
    return entry[0] is None and entry[4] == REPLAY_NAME


class Soundbox:
    def __init__(self, hal, config):
        self.hal = hal
        self.device_id = config["device_id"]
        self.prefix = "sb/%s/" % self.device_id
        storage, log = hal.storage, hal.log
        self.ledger = Ledger(storage)
        # [(txn, tokens, rx_ms, amount, name)] in arrival order; txn None for what is not a
        # payment (offline summary, replay, today, volume prompt); the offline summary's
        # rx_ms is the count of payments it says
        self.pending = []
        self.last_said = None  # (count, total paise, wall ms received) of the last announcement
        self.settings = Settings(storage, config.get("lang", "en-IN"), voice.LANGUAGES, log)
        self.tz_offset_ms = int(config.get("tz_offset_min", TZ_OFFSET_MIN)) * 60000
        self.tally = Tally(storage, self.tz_offset_ms, log)
        self._offline_since = None  # monotonic ms the link was last lost (or the box started)
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
        self.held = Payments(storage, HELD_FILE, log)  # verified, waiting for a trusted clock
        self.unsaid = Payments(storage, UNSAID_FILE, log)  # accepted, words not said yet
        self.backlog = Backlog(storage, log)  # stale, acked, their summary not said yet
        # Judged before a restart cut their words short: judged again by age, first in line.
        self._recovered = list(self.unsaid.entries)
        for entry in self._recovered:
            txn, amount, ts = entry[0], entry[1], entry[2]
            if txn not in self.ledger:  # the power failed between the two writes
                self.ledger.add(txn)
                self.tally.count(amount, ts, hal.clock.wall_ms())
        self._held_added = asyncio.Event()
        # Stale payments not yet on the speaker's queue (the backlog also counts queued ones).
        self.offline_count = self.backlog.count
        self.offline_total = self.backlog.total
        self._summary_due = 0  # monotonic ms
        self._stale_added = asyncio.Event()
        offline = self._status("offline")
        session = Session(self.device_id, keepalive_s=config.get("keepalive", 60), clean=False,
                          will=(self.prefix + "status", offline, 1, True), protocol=self._protocol(config))
        self.mqtt = Client(session, config["broker_host"], config["broker_port"],
                           self._on_message, self._on_connect, self._on_disconnect,
                           open_connection=open_connection, log=hal.log, tls=bool(self.identity),
                           on_notice=self._on_mqtt_notice)
        self._tasks = []
        self._playing = None  # the name of what the speaker is saying now
        self._restart = None  # the planned restart a reboot command started
        self.accepting = True  # False once a planned restart is under way
        # The updater's code and state (about 14 KiB of heap) are loaded only while there is
        # update work: a job arrived, or one was under way or on trial before this start.
        self.updater = None
        self.ota = getattr(hal, "ota", None)
        self._ota_keys = config.get("ota_keys") or "%s/ota_keys.json" % (config.get("identity") or self.identity
                                                                         or "/certs")
        if self.ota is not None and (getattr(hal, "ota_rollbacks", None) or self._update_under_way()):
            self._load_updater()

    async def run(self):
        """Run until stop() is called."""
        self.hal.led.show("connecting")
        self._offline_since = self.hal.clock.monotonic_ms()
        self._apply_volume()
        self._apply_language()
        if self.identity and tls.old_layout(self.identity):
            self.hal.log("tls: " + tls.old_layout_reason(self.identity))
            self._prompt("not_registered")
        elif self.identity and tls.missing_files(self.identity):
            # Found before any network traffic; the client checks again at each (long) retry.
            self.hal.log("tls: identity incomplete: missing %s in %s"
                         % (", ".join(tls.missing_files(self.identity)), self.identity))
            self._prompt("not_registered")
        if self.payment_key is None:
            self._prompt("not_registered")  # without its key the box can verify no payment
        self._tasks = [asyncio.create_task(self._player()), asyncio.create_task(self._buttons()),
                       asyncio.create_task(self._release_held()),
                       asyncio.create_task(self._offline_summaries()),
                       asyncio.create_task(self._health())]
        if self._recovered:
            self._held_added.set()
        if self.updater is not None:
            self._tasks.append(asyncio.create_task(self.updater.run()))
        try:
            await self.mqtt.run()
        finally:
            for t in self._tasks:
                t.cancel()

    async def stop(self):
        """Leave cleanly: say we are offline (retained), DISCONNECT, stop the tasks."""
        await self.mqtt.stop(last_words=(self.prefix + "status", self._status("offline"), 0, True))

    # ---- MQTT callbacks ----------------------------------------------------

    def _protocol(self, config):
        protocol = config.get("mqtt", 4)
        if protocol in MQTT_PROTOCOLS:
            return protocol
        self.hal.log("config: mqtt %r is not 4 (MQTT 3.1.1) or 5; using 4" % (protocol,))
        return 4

    def _on_mqtt_notice(self, notice):
        # The broker took the connection but not our payments subscription: this box's
        # rights are gone (revoked, its certificate not refused at TLS yet). Online in name
        # only, so say it as for a refused connection. When the rights come back the broker
        # kicks the box, and it subscribes again.
        refused = notice.refused if isinstance(notice, Subscribed) else ()
        if any(topic == self.prefix + "notify" for topic, _ in refused):
            self._prompt("not_registered")

    async def _on_connect(self, client, session_present):
        self.hal.led.show("online")
        self._offline_since = None
        topics = [(self.prefix + "notify", 1), (self.prefix + "cmd", 1)]
        if self.ota is not None:
            topics += [(self.prefix + "ota/job", 1), (self.prefix + "ota/chunk", 0)]
        await client.subscribe(topics)
        await client.publish(self.prefix + "status", self._status("online"), 1, True)
        await self.publish_telemetry()
        if self.updater is not None:
            await self.updater.on_connect()

    async def publish_telemetry(self):
        """Battery, versions and free heap on sb/<id>/telemetry (QoS 0): on each connect,
        and when the cloud asks (the telemetry command)."""
        telemetry = {"battery": self.hal.battery.percent(), "fw": VERSION,
                     "heap": gc.mem_free() if hasattr(gc, "mem_free") else None}
        if self.ota is not None:
            telemetry["model"] = self.ota.model
            telemetry["versions"] = self.versions()
        await self.mqtt.publish(self.prefix + "telemetry", json.dumps(telemetry), 0)

    def _on_disconnect(self):
        if self._offline_since is None:
            self._offline_since = self.hal.clock.monotonic_ms()
        refused = self.mqtt.refused
        if refused is not None and refused.permanent:
            # Retrying soon won't help: our identity is refused (or unusable), or the broker's
            # certificate fails our check (a wrong host or CA: the server, not this box).
            self._prompt("server_unreachable" if getattr(refused, "server", False) else "not_registered")
        else:
            self.hal.led.show("offline")

    async def _on_message(self, msg):
        if msg.topic == self.prefix + "notify":
            if not self.accepting:
                # Going down for a planned restart: never return, so no PUBACK is sent and
                # the broker hands this payment to the restarted box.
                await asyncio.Event().wait()
            await self._on_notify(msg.payload)
        elif msg.topic == self.prefix + "cmd":
            await self._on_command(msg.payload)
        elif self.ota is None:
            return
        elif msg.topic == self.prefix + "ota/job":
            updater = self.updater
            if updater is None:
                updater = self._load_updater()
                self._tasks.append(asyncio.create_task(updater.run()))
            await updater.on_job(msg.payload)
        elif msg.topic == self.prefix + "ota/chunk" and self.updater is not None:
            await self.updater.on_chunk(msg.payload)

    async def _on_notify(self, payload):
        rx = self.hal.clock.wall_ms()
        try:
            note = payment.parse_notification(payload)
        except payment.InvalidNotification as e:
            await self._ack(e.txn, payment.INVALID, e.reason, rx)
            return
        if self.payment_key is None and not self._reload_payment_key():
            await self._ack(note.txn, payment.INVALID, "no payment key on the device", rx)
            return
        if not self._verified(note):
            # Say which txn, never the MACs: the expected one is an oracle for forgers.
            self.hal.log("payment %s: bad MAC, not announced" % note.txn)
            await self._ack(note.txn, payment.INVALID, "bad MAC", rx)
            return
        if note.txn in self.unsaid:
            await self._ack(note.txn, payment.DUPLICATE, "already received, to be announced", rx)
            return
        if note.txn in self.ledger:
            await self._ack(note.txn, payment.DUPLICATE, "already announced", rx)
            return
        if note.txn in self.held:
            await self._ack(note.txn, payment.DUPLICATE, "already received, waiting for the clock", rx)
            return
        if len(self.held) or self._recovered or not self.hal.clock.trusted():
            await self._hold(note, rx)  # behind those already held: keep arrival order
            return
        await self._judge(note.txn, note.amount, note.ts, rx, note.provider)

    async def _judge(self, txn, amount, ts, rx, provider=None, recovered=False):
        """Announce, summarise or refuse an authentic, unseen payment by its age (trusted clock).
        recovered: accepted before a restart cut its words short (in the ledger and unsaid)."""
        now = self.hal.clock.wall_ms()
        verdict = payment.age_verdict(ts, now, self.freshness_ms)
        if verdict == payment.AHEAD and not recovered:
            await self._ack(txn, payment.INVALID, "ts is %d s ahead of the device clock"
                            % ((ts - now) // 1000), rx)
            return
        if verdict == payment.STALE:
            if self.offline_total + amount > voice.MAX_TOTAL_PAISE:
                self._queue_summary()  # the summary's total must stay sayable
            self.backlog.add(amount)  # before it leaves unsaid: a power cut may count it twice, never lose it
            if recovered:
                self.unsaid.remove((txn,))
            else:
                self.ledger.add(txn)  # a replay of it is then a duplicate
                self.tally.count(amount, ts, now)
            self.offline_count += 1
            self.offline_total += amount
            self._summary_due = self.hal.clock.monotonic_ms() + SUMMARY_DEBOUNCE_MS
            self._stale_added.set()
            await self._ack(txn, payment.STALE, "paid %d s ago, over the %d s limit: in the offline summary"
                            % ((self.hal.clock.wall_ms() - ts) // 1000, self.freshness_ms // 1000), rx)
            return
        self._queue_summary()  # the backlog first, then what is happening now
        # A provider this box's wording does not know (a newer cloud's) is left unsaid.
        said_provider = provider if provider in voice.PROVIDERS else None
        tokens = voice.announcement_tokens(amount, self.lang, said_provider)
        while len(self.pending) >= QUEUE_LIMIT:
            self._room.clear()
            await self._room.wait()
        if not recovered:
            self.unsaid.add(txn, amount, ts, rx, provider)  # first: a power cut from here on loses nothing
            self.ledger.add(txn)
            self.tally.count(amount, ts, self.hal.clock.wall_ms())
        self.pending.append((txn, tokens, rx, amount, txn))
        self._wake.set()

    # ---- payments waiting for a trusted clock ---------------------------------

    async def _hold(self, note, rx):
        if len(self.held) >= HOLD_LIMIT:
            await self._ack(note.txn, payment.FAILED, "clock not set and %d payments already held: send again later"
                            % HOLD_LIMIT, rx)
            return
        self.held.add(note.txn, note.amount, note.ts, rx, note.provider)  # before the PUBACK: a reboot keeps it
        if not self.hal.clock.trusted():  # else it only waits behind held ones being judged
            self.hal.log("payment %s: clock not trusted yet, held (%d waiting)" % (note.txn, len(self.held)))
            self._prompt("clock_not_set")
        self._held_added.set()

    async def _release_held(self):
        """Judge, once the clock is trusted, what waits: payments a restart interrupted,
        then held ones, in that order (the order they arrived in)."""
        clock = self.hal.clock
        while True:
            while not len(self.held) and not self._recovered:
                self._held_added.clear()
                await self._held_added.wait()
            while not clock.trusted():
                await asyncio.sleep(CLOCK_POLL_S)
            while self._recovered:
                txn, amount, ts, rx, provider = self._recovered[0]
                await self._judge(txn, amount, ts, rx, provider, recovered=True)
                self._recovered.pop(0)
            while len(self.held):
                txn, amount, ts, rx, provider = self.held.entries[0]
                if txn not in self.ledger:  # it is, if power failed between judging and saving
                    await self._judge(txn, amount, ts, rx, provider)
                self.held.pop_first()

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
            self.backlog.said(count, total)
            return
        self.pending.append((None, tokens, count, total, SUMMARY_NAME))  # may pass QUEUE_LIMIT by this one
        self._wake.set()

    async def _offline_summaries(self):
        clock = self.hal.clock
        while True:
            if not self.offline_count:
                self._stale_added.clear()
                await self._stale_added.wait()
            # Each stale arrival moves the due time on; a fresh payment may say it earlier.
            while self.offline_count and clock.monotonic_ms() < self._summary_due:
                await asyncio.sleep((self._summary_due - clock.monotonic_ms()) / 1000)
            self._queue_summary()

    # ---- tasks -------------------------------------------------------------

    def _waiting_payments(self):
        n = 0
        for entry in self.pending:
            if entry[0] is not None:
                n += 1
        return n

    def _next_batch(self):
        """The next thing to say: [entry], or every waiting payment when more than
        MERGE_ABOVE wait (they are then said as one). A replay waits while payments do."""
        payments = self._waiting_payments()
        first = 1 if payments and _is_replay(self.pending[0]) else 0  # at most one replay waits
        if self.pending[first][0] is None or payments <= MERGE_ABOVE:
            return [self.pending.pop(first)]
        batch = [e for e in self.pending if e[0] is not None]
        self.pending = [e for e in self.pending if e[0] is None]
        return batch

    async def _player(self):
        clock = self.hal.clock
        while True:
            while not self.pending:
                self._wake.clear()
                await self._wake.wait()
            batch = self._next_batch()
            self._room.set()
            txns = [e[0] for e in batch if e[0] is not None]
            total = 0
            for e in batch:
                total += e[3] or 0
            if len(batch) > 1:
                tokens = voice.merged_tokens(len(batch), total, self.lang)
                name = "%s %s" % (MERGED_NAME, " ".join(txns))
            else:
                tokens, name = batch[0][1], batch[0][4]
            play = clock.wall_ms()
            self._playing = name
            try:
                await asyncio.wait_for(self.hal.audio.play(tokens, name), PLAY_TIMEOUT_S)
            except Exception as e:  # a sink failure must not stop the box
                self._playing = None
                self.hal.log("audio failed for %s: %r" % (name, e))
                self._said(batch)  # acked "failed": the cloud knows, nothing is left to say
                for entry in batch:
                    if entry[0] is not None:
                        await self._ack(entry[0], payment.FAILED, "playback failed: %r" % (e,), entry[2], play)
                continue
            self._playing = None
            self._said(batch)  # before the acks: a power cut now must not say it again
            if not txns:
                continue  # the summary's payments were acked "stale" when they arrived
            done = clock.wall_ms()
            self.last_said = (len(txns), total, batch[-1][2])
            reason = "merged with %d others" % (len(txns) - 1) if len(txns) > 1 else ""
            for entry in batch:
                await self._ack(entry[0], payment.ANNOUNCED, reason, entry[2], play, done)

    def _said(self, batch):
        """Take what was just said (or failed to be) off the flash's to-say lists."""
        txns = [e[0] for e in batch if e[0] is not None]
        if txns:
            self.unsaid.remove(txns)
        for e in batch:
            if e[4] == SUMMARY_NAME:
                self.backlog.said(e[2], e[3])

    def _say(self, tokens, name):
        """Queue something that is not a payment behind what is already waiting."""
        if len(self.pending) >= QUEUE_LIMIT:
            self.hal.log("speaker busy: %s not said" % name)
            return False
        self.pending.append((None, tokens, None, None, name))
        self._wake.set()
        return True

    def _replay(self):
        """Say the last announcement again; None when queued, else why not. One replay at
        most waits or plays: a burst of them (keys, commands) must not hold the speaker."""
        if self.last_said is None:
            return "nothing announced yet"
        if self._playing == REPLAY_NAME:
            return "replay already pending"
        for entry in self.pending:
            if _is_replay(entry):
                return "replay already pending"
        count, total, rx = self.last_said
        minutes = (rx + self.tz_offset_ms) % DAY_MS // 60000  # the merchant's local time
        tokens = voice.replay_tokens(count, total, minutes // 60, minutes % 60, self.lang)
        return None if self._say(tokens, REPLAY_NAME) else "speaker busy"

    async def _buttons(self):
        while True:
            press = await self.hal.buttons.next_press()
            if press == "replay":
                self._replay()
            elif press == "today":
                count, total = self.tally.now(self.hal.clock.wall_ms())
                self._say(voice.today_tokens(count, total, self.lang), TODAY_NAME)
            elif press == "volume_up" or press == "volume_down":
                step = 1 if press == "volume_up" else -1
                self._set_volume(min(VOLUME_LEVELS, max(1, self.volume + step)))

    async def _health(self):
        """Spoken health prompts; _prompt keeps each from nagging."""
        clock = self.hal.clock
        charging = getattr(self.hal.battery, "charging", None)
        was_charging = None  # unknown until the first look: plugging in is what is said
        while True:
            await asyncio.sleep(HEALTH_POLL_S)
            since = self._offline_since
            if since is not None and not self.mqtt.connected and clock.monotonic_ms() - since > UNREACHABLE_MS:
                network_up = getattr(self.hal, "network_up", None)  # None: cannot tell WiFi from server
                self._prompt("server_unreachable" if network_up is None or network_up() else "no_network")
            try:
                level = self.hal.battery.percent()
                now_charging = charging() if charging is not None else False
            except Exception as e:  # a flaky ADC read must not stop the checks
                self.hal.log("battery read failed: %r" % (e,))
                continue
            if now_charging and was_charging is False:
                self._prompt("charging", led=False)
            was_charging = now_charging
            if level < LOW_BATTERY_PERCENT and not now_charging:
                self._prompt("low_battery", led=False)

    # ---- commands from the cloud ---------------------------------------------

    async def _on_command(self, payload):
        try:
            body = json.loads(payload)
        except (ValueError, UnicodeError, RuntimeError, MemoryError):  # RuntimeError: nested too deep
            body = None  # parse() refuses it as not a JSON object
        try:
            command = commands.parse(body)
        except commands.CommandError as e:
            cmd = body.get("cmd") if isinstance(body, dict) else None
            await self._cmdack(commands.id_of(body), cmd if cmd in commands.COMMANDS else None, e.reason)
            return
        cmd = command["cmd"]
        reason = await self._command(command)
        await self._cmdack(command["id"], cmd, reason)
        if cmd == "reboot" and reason is None:
            # After the ack, and in a task of its own: this handler returns first, so the
            # command is PUBACKed and the broker does not hand it to the restarted box.
            self._restart = asyncio.create_task(self._reboot())

    async def _cmdack(self, command_id, cmd, reason):
        await self.mqtt.publish(self.prefix + "cmdack",
                                json.dumps(commands.ack(command_id, cmd, reason is None, reason)), 1)

    async def _command(self, command):
        """Carry out one parsed command; None when done (or, for reboot, about to be),
        else the reason it was refused."""
        cmd = command["cmd"]
        if cmd == "volume":
            self._set_volume(command["level"])
        elif cmd == "language":
            self.settings.lang = command["lang"]
            self.settings.save()
            self._apply_language()
        elif cmd == "replay":
            return self._replay()
        elif cmd == "telemetry":
            await self.publish_telemetry()
        elif cmd == "reboot":
            if getattr(self.hal, "reboot", None) is None:
                return "this box cannot restart on command"
            if self._restart is not None:
                return "a restart is already under way"
        return None

    async def _reboot(self):
        try:
            await self.restart_when_quiet()  # the ack leaves and the speaker is done first
        except Exception as e:  # a HAL that cannot restart: keep running and taking payments
            self.accepting = True
            self._restart = None
            self.hal.log("reboot failed: %r" % (e,))

    # ---- settings (flash) ---------------------------------------------------------

    @property
    def lang(self):
        return self.settings.lang

    @property
    def volume(self):
        return self.settings.volume

    def _set_volume(self, level):
        self.settings.volume = level
        self.settings.save()
        self._apply_volume()
        if level == VOLUME_LEVELS:
            self._say(voice.prompt_tokens("volume_max", self.lang), "volume_max")
        elif level == 1:
            self._say(voice.prompt_tokens("volume_min", self.lang), "volume_min")

    def _apply_language(self):
        # The speaker plays clips from one language's pack: tell it which (if it can switch).
        set_language = getattr(self.hal.audio, "set_language", None)
        if set_language is not None:
            set_language(self.lang)

    def _apply_volume(self):
        set_volume = getattr(self.hal.audio, "set_volume", None)
        if set_volume is not None:
            set_volume(self.volume)

    # ---- updates ------------------------------------------------------------

    def speaker_idle(self):
        """Nothing being said or waiting to be: an update may use the flash now."""
        return self._playing is None and not self.pending

    def _update_under_way(self):
        """A download or an update on trial was left by the last start (the updater's files)."""
        if self.hal.storage.read("ota_job.json"):
            return True
        try:
            return bool(json.loads(self.hal.storage.read("ota.json") or b"{}").get("pending"))
        except (ValueError, UnicodeError, AttributeError):
            return True  # damaged: let the updater look and say so

    def _load_updater(self):
        from soundbox_fw.updater import Updater
        self.updater = Updater(self, self._load_release_keys(self._ota_keys))
        return self.updater

    def versions(self):
        """What runs now, for telemetry: {"app": .., "firmware": .., "voice/<lang>": ..}."""
        slots = self.hal.ota
        out = {"app": slots.running("app", "app"), "firmware": slots.running("firmware", "firmware")}
        voice_version = slots.running("voice", self.lang)
        if voice_version:
            out["voice/" + self.lang] = voice_version
        return out

    def update_installing(self):
        """An update is going in and a restart follows: show it, and say it on the speaker's
        queue so the restart waits until it has been said."""
        self.hal.led.show("updating")
        if self._due("updating"):
            self._say(voice.prompt_tokens("updating", self.lang), "updating")

    async def restart_when_quiet(self, timeout_s=QUIET_TIMEOUT_S):
        """A planned restart (after an update): let the speaker finish what it has and the
        acks leave, then restart without taking another payment. Nothing accepted is lost."""
        session = self.mqtt.session
        clock = self.hal.clock
        deadline = clock.monotonic_ms() + timeout_s * 1000
        while clock.monotonic_ms() < deadline:
            if self.speaker_idle() and not session.inflight and not session.queued:
                break
            await asyncio.sleep(0.05)
        self.accepting = False  # no await between the check and the restart
        self.hal.reboot()

    def healthy(self):
        """The main loop's tasks all still run (a watchdog is fed only while this holds)."""
        for t in self._tasks:
            if t.done():
                return False
        return bool(self._tasks)

    async def selftest(self):
        """What a new version must do before it is kept: be online, speak, and take a payment
        through the verify-and-plan path. Raises with the reason when it cannot."""
        if not self.mqtt.connected:
            raise OSError("not connected to the broker")
        if self.payment_key is None:
            raise OSError("no payment key")
        ts = self.hal.clock.wall_ms()
        probe = payment.parse_notification(json.dumps(
            payment.sign(self.payment_key, self.device_id, "selftest", 100, ts)).encode())
        if not payment.authentic(probe, self.payment_key, self.device_id):
            raise OSError("payment MAC check failed on a payment signed here")
        voice.announcement_tokens(probe.amount, self.lang)
        await asyncio.wait_for(self.hal.audio.play(voice.prompt_tokens("updating", self.lang), "selftest"),
                               PLAY_TIMEOUT_S)

    def _load_release_keys(self, path):
        try:
            with open(path) as f:
                return [binascii.unhexlify(k) for k in json.load(f)["keys"]]
        except (OSError, ValueError, KeyError, TypeError) as e:
            self.hal.log("ota: no trusted release keys at %s (%r): updates will be refused" % (path, e))
            return []

    # ---- helpers -----------------------------------------------------------

    async def _ack(self, txn, status, reason, rx, play=None, done=None):
        await self.mqtt.publish(self.prefix + "ack",
                                payment.ack_payload(txn, status, reason, rx, play, done), 1)

    def _due(self, prompt):
        """True (and noted) when `prompt` was not said in the last PROMPT_INTERVAL_MS."""
        now = self.hal.clock.monotonic_ms()
        last = self._prompted.get(prompt)
        if last is not None and now - last < PROMPT_INTERVAL_MS:
            return False
        self._prompted[prompt] = now
        return True

    def _prompt(self, prompt, led=True):
        """Say a health prompt (with the error LED when led), at most once per PROMPT_INTERVAL_MS."""
        if led:
            self.hal.led.show("error")
        if self._due(prompt):
            asyncio.create_task(self.hal.audio.play(voice.prompt_tokens(prompt, self.lang), prompt))

    def _verified(self, note):
        """The note's MAC is right: with the key in memory, or with a new payment.key that
        replaced it on disk (the identity was rotated: the cloud signs with the new key)."""
        if payment.authentic(note, self.payment_key, self.device_id):
            return True
        return self._reload_payment_key() and payment.authentic(note, self.payment_key, self.device_id)

    def _reload_payment_key(self):
        """Take payment.key again if it now holds a different valid key; True when it did.
        Read only after a MAC check failed (65 bytes), never on the accepted path."""
        try:
            with open(self.key_path, "rb") as f:
                key = payment.parse_key(f.read())
        except (OSError, ValueError):
            return False  # the key in memory stays: a half-copied file must not lose it
        if key == self.payment_key:
            return False
        self.payment_key = key
        self.hal.log("payment: a new key in %s replaced the one in use" % self.key_path)
        return True

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
