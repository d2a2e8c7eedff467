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
    battery.changed              optional: a flag (set / clear / wait) the HAL sets when the
                                 charger plugs or unplugs (asyncio.ThreadSafeFlag on the ESP32,
                                 set from the charge pin's interrupt); without it the charger is
                                 looked at with the battery, every HEALTH_POLL_S
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
stopped arriving or just before the next fresh payment. Those rules, the stores on
flash and the speaker's queue are soundbox.desk.PaymentDesk (sans-I/O); this module
feeds it messages and the time, publishes its acks and plays what it queues.

The speaker's queue (voice UX):
- announcements play in arrival order; when more than MERGE_ABOVE payments are
  waiting, the waiting ones are said as one "N payments received, total ..." and
  each is acked "announced" with that announcement's play/done times and the
  reason "merged with N-1 others";
- at most QUEUE_LIMIT payments wait; then the handler waits, which delays the
  PUBACK (the broker keeps the payment; nothing is dropped);
- a payment is written to flash (one record of the ledger's ring, "to say") before it is
  queued and marked once said, so one queued or playing when the power is cut is judged
  again at the next start: said then if still fresh, else put in the offline summary, and
  acked either way;
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

from soundbox import VERSION, commands, desk, payment, tls, voice, wire
# Re-exported: test_micropython_e2e, the simulator and unixhal take them from the app.
from soundbox.mqttclient import Client, within
from soundbox.mqttsession import Session, Subscribed
from soundbox_fw.stored import VOLUME_LEVELS, Settings

PROMPT_INTERVAL_MS = 600000  # say a health prompt at most every 10 minutes: do not nag
PLAY_TIMEOUT_S = 60  # the longest amount takes ~9 s to say; a stuck speaker must not wedge the box
TODAY_NAME = "today"
MQTT_PROTOCOLS = (4, 5)  # config "mqtt": the protocol level, 3.1.1 or 5
# How often the battery is looked at: its level drifts over hours, the charger has its edge
# (battery.changed) and a lost link wakes the checks itself. Thousands of simulated boxes
# polling every 5 s cost about 2,000 wake-ups a second for nothing.
HEALTH_POLL_S = 60
UNREACHABLE_MS = 60000  # disconnected this long: say "server unreachable"
LOW_BATTERY_PERCENT = 15
QUIET_TIMEOUT_S = 120  # a planned restart waits this long at most for the speaker and the acks


class Soundbox:
    def __init__(self, hal, config):
        self.hal = hal
        self.device_id = device = config["device_id"]
        self.notify_topic = wire.topic(device, wire.NOTIFY)
        self.cmd_topic = wire.topic(device, wire.CMD)
        self.ack_topic = wire.topic(device, wire.ACK)
        self.status_topic = wire.topic(device, wire.STATUS)
        storage, log = hal.storage, hal.log
        self.settings = Settings(storage, config.get("lang", "en-IN"), voice.LANGUAGES, log)
        self._offline_since = None  # monotonic ms the link was last lost (or the box started)
        self._prompted = {}  # prompt name -> monotonic ms when last said
        self._wake = asyncio.Event()  # the player's: something was queued
        self._room = asyncio.Event()  # the player took something: the queue has room
        self._desk_wake = asyncio.Event()  # the desk may want the time sooner than it said
        self._desk_due = None  # when the desk clock's task tells the desk the time next
        # The health checks': the charger changed or the link went down.
        self._health_wake = getattr(hal.battery, "changed", None) or asyncio.Event()
        self.identity = None
        open_connection = hal.open_connection
        if config.get("tls"):
            self.identity = config["tls"]["identity"]
            server = config["tls"].get("server_hostname", config["broker_host"])
            open_connection = tls.connector(self.identity, server, hal.open_connection)
        self.key_path = "%s/payment.key" % (config.get("identity") or self.identity or "/certs")
        # The payments: judgment, the ledger, held / unsaid / backlog / tally on flash, the queue.
        self.desk = desk.PaymentDesk(storage, device, self._load_payment_key(), hal.clock.wall_ms(),
                                     lang=self.settings.lang, freshness_s=config.get("freshness_s", desk.FRESHNESS_S),
                                     tz_offset_min=config.get("tz_offset_min", desk.TZ_OFFSET_MIN),
                                     read_key=self._new_payment_key, log=log)
        offline = self._status(wire.OFFLINE)
        session = Session(device, keepalive_s=config.get("keepalive", 60), clean=False,
                          will=(self.status_topic, offline, 1, True), protocol=self._protocol(config))
        self.mqtt = Client(session, config["broker_host"], config["broker_port"],
                           self._on_message, self._on_connect, self._on_disconnect,
                           open_connection=open_connection, log=hal.log, tls=bool(self.identity),
                           on_notice=self._on_mqtt_notice)
        self._tasks = []
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
        if self.desk.key is None:
            self._prompt("not_registered")  # without its key the box can verify no payment
        self._tasks = [asyncio.create_task(self._player()), asyncio.create_task(self._buttons()),
                       asyncio.create_task(self._desk_clock()), asyncio.create_task(self._health())]
        if self.updater is not None:
            self._tasks.append(asyncio.create_task(self.updater.run()))
        try:
            await self.mqtt.run()
        finally:
            for t in self._tasks:
                t.cancel()

    async def stop(self):
        """Leave cleanly: say we are offline (retained), DISCONNECT, stop the tasks."""
        await self.mqtt.stop(last_words=(self.status_topic, self._status(wire.OFFLINE), 0, True))

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
        if any(topic == self.notify_topic for topic, _ in refused):
            self._prompt("not_registered")

    async def _on_connect(self, client, session_present):
        self.hal.led.show("online")
        self._offline_since = None
        topics = [(self.notify_topic, 1), (self.cmd_topic, 1)]
        if self.ota is not None:
            topics += [(wire.topic(self.device_id, wire.OTA_JOB), 1), (wire.topic(self.device_id, wire.OTA_CHUNK), 0)]
        await client.subscribe(topics)
        await client.publish(self.status_topic, self._status(wire.ONLINE), 1, True)
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
        await self.mqtt.publish(wire.topic(self.device_id, wire.TELEMETRY), json.dumps(telemetry), 0)

    def _on_disconnect(self):
        if self._offline_since is None:
            self._offline_since = self.hal.clock.monotonic_ms()
            self._health_wake.set()  # "server unreachable" is due UNREACHABLE_MS from now
        refused = self.mqtt.refused
        if refused is not None and refused.permanent:
            # Retrying soon won't help: our identity is refused (or unusable), or the broker's
            # certificate fails our check (a wrong host or CA: the server, not this box).
            self._prompt("server_unreachable" if getattr(refused, "server", False) else "not_registered")
        else:
            self.hal.led.show("offline")

    async def _on_message(self, msg):
        if msg.topic == self.notify_topic:
            if not self.accepting:
                # Going down for a planned restart: never return, so no PUBACK is sent and
                # the broker hands this payment to the restarted box.
                await asyncio.Event().wait()
            await self._on_notify(msg.payload)
        elif msg.topic == self.cmd_topic:
            await self._on_command(msg.payload)
        elif self.ota is None:
            return
        elif msg.topic == wire.topic(self.device_id, wire.OTA_JOB):
            updater = self.updater
            if updater is None:
                updater = self._load_updater()
                self._tasks.append(asyncio.create_task(updater.run()))
            await updater.on_job(msg.payload)
        elif msg.topic == wire.topic(self.device_id, wire.OTA_CHUNK) and self.updater is not None:
            await self.updater.on_chunk(msg.payload)

    # ---- payments: the desk's inputs and actions ------------------------------

    async def _on_notify(self, payload):
        rx = self.hal.clock.wall_ms()
        while True:
            actions = self._tell_clock()  # the desk judges freshness by a clock it trusts
            try:
                actions += self.desk.notification(payload, rx)
                break
            except desk.QueueFull:
                # The speaker's queue is full: wait (the PUBACK with it: the broker keeps the
                # payment), then the desk judges it again, as received at rx.
                self._room.clear()  # before the awaits: the player may take one meanwhile
                await self._run(actions)
                await self._room.wait()
        self._poke_desk_clock()  # a held payment changes when the desk wants the time
        await self._run(actions)

    def _tell_clock(self):
        clock = self.hal.clock
        return self.desk.clock(clock.monotonic_ms(), clock.wall_ms(), clock.trusted())

    async def _desk_clock(self):
        """Tell the desk the time when it asks (the offline summary's debounce, an untrusted
        clock it waits on) and when it may want it sooner (a payment held, room on the queue)."""
        clock = self.hal.clock
        while True:
            self._desk_wake.clear()
            await self._run(self._tell_clock())
            self._desk_due = deadline = self.desk.next_deadline()
            if deadline is None:
                await self._desk_wake.wait()
            elif deadline > clock.monotonic_ms():
                try:
                    await within((deadline - clock.monotonic_ms()) / 1000, self._desk_wake.wait())
                except asyncio.TimeoutError:
                    pass  # the deadline: tell the desk the time

    def _poke_desk_clock(self):
        """Wake the desk clock's task if what the desk wants changed (a payment held, room on
        the queue for one): not for every payment, which would cost two wake-ups each."""
        if self.desk.next_deadline() != self._desk_due:
            self._desk_wake.set()

    async def _run(self, actions):
        """Carry out the desk's actions, in order."""
        for action in actions:
            if isinstance(action, desk.Ack):
                await self.mqtt.publish(self.ack_topic, payment.ack_payload(
                    action.txn, action.status, action.reason, action.rx, action.play, action.done, action.was), 1)
            elif isinstance(action, desk.Prompt):
                self._prompt(action.name)
            else:  # Say: it is on the desk's queue
                self._wake.set()

    async def _player(self):
        clock = self.hal.clock
        while True:
            utterance = self.desk.next_utterance()
            if utterance is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            self._room.set()
            self._poke_desk_clock()  # held payments may go on the queue now
            play = clock.wall_ms()
            try:
                await within(PLAY_TIMEOUT_S, self.hal.audio.play(utterance.tokens, utterance.name))
            except Exception as e:  # a sink failure must not stop the box
                self.hal.log("audio failed for %s: %r" % (utterance.name, e))
                await self._run(self.desk.failed(utterance, e, play))
                continue
            await self._run(self.desk.said(utterance, play, clock.wall_ms()))

    def _say(self, tokens, name):
        """Queue something that is not a payment behind what is already waiting."""
        if not self.desk.say(tokens, name):
            return False
        self._wake.set()
        return True

    def _replay(self):
        """Say the last announcement again; None when queued, else why not."""
        reason = self.desk.replay()
        if reason is None:
            self._wake.set()
        return reason

    async def _buttons(self):
        while True:
            press = await self.hal.buttons.next_press()
            if press == "replay":
                self._replay()
            elif press == "today":
                count, total = self.desk.tally.now(self.hal.clock.wall_ms())
                self._say(voice.today_tokens(count, total, self.lang), TODAY_NAME)
            elif press == "volume_up" or press == "volume_down":
                step = 1 if press == "volume_up" else -1
                self._set_volume(min(VOLUME_LEVELS, max(1, self.volume + step)))

    async def _health(self):
        """Spoken health prompts (_prompt keeps each from nagging): the battery and the
        charger every HEALTH_POLL_S or on the charger's edge, the link UNREACHABLE_MS after
        it went down."""
        clock = self.hal.clock
        wake = self._health_wake
        was_charging = None  # unknown until the first look: plugging in is what is said
        look_at = clock.monotonic_ms() + min(HEALTH_POLL_S, 5) * 1000  # the first look soon after boot
        while True:
            now = clock.monotonic_ms()
            due = look_at
            since = self._offline_since
            if since is not None and not self.mqtt.connected:
                if now - since >= UNREACHABLE_MS:
                    network_up = getattr(self.hal, "network_up", None)  # None: cannot tell WiFi from server
                    self._prompt("server_unreachable" if network_up is None or network_up() else "no_network")
                else:
                    due = min(due, since + UNREACHABLE_MS)
            wake.clear()
            try:
                await within(max(0, due - now) / 1000, wake.wait())
                woken = True
            except asyncio.TimeoutError:
                woken = False
            if woken or clock.monotonic_ms() >= look_at:  # an edge: look at the charger now
                look_at = clock.monotonic_ms() + HEALTH_POLL_S * 1000
                was_charging = self._look_at_battery(was_charging)

    def _look_at_battery(self, was_charging):
        """Say "charging" when the charger was plugged in, "low battery" when low and not
        charging; returns whether it is charging (was_charging when the read failed)."""
        charging = getattr(self.hal.battery, "charging", None)
        try:
            level = self.hal.battery.percent()
            now_charging = charging() if charging is not None else False
        except Exception as e:  # a flaky ADC read must not stop the checks
            self.hal.log("battery read failed: %r" % (e,))
            return was_charging
        if now_charging and was_charging is False:
            self._prompt("charging", led=False)
        if level < LOW_BATTERY_PERCENT and not now_charging:
            self._prompt("low_battery", led=False)
        return now_charging

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
        await self.mqtt.publish(wire.topic(self.device_id, wire.CMDACK),
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
        self.desk.lang = self.lang  # the words it queues from now on
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
        return self.desk.idle()

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
        from soundbox import otakinds  # loaded with the slots: no heap on a box without OTA

        return otakinds.running_versions(self.hal.ota, self.lang)

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
        key = self.desk.key
        if key is None:
            raise OSError("no payment key")
        ts = self.hal.clock.wall_ms()
        probe = payment.parse_notification(json.dumps(
            payment.sign(key, self.device_id, "selftest", 100, ts)).encode())
        if not payment.authentic(probe, key, self.device_id):
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

    def _new_payment_key(self):
        """payment.key again, if it now holds a different valid key (else None). The desk asks
        only after a MAC check failed (65 bytes), never on the accepted path."""
        try:
            with open(self.key_path, "rb") as f:
                key = payment.parse_key(f.read())
        except (OSError, ValueError):
            return None  # the key in memory stays: a half-copied file must not lose it
        if key == self.desk.key:
            return None
        self.hal.log("payment: a new key in %s replaced the one in use" % self.key_path)
        return key

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
