"""MQTT side of the cloud handler: device registry, payment notifications, ack records."""
import datetime
import json
import logging
import os
import socket
import ssl
import threading
import time
import uuid
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from cryptography import x509
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from soundbox import payment, voice
from soundbox_cloud.artifacts import ArtifactStore
from soundbox_cloud.campaign_store import CampaignStore
from soundbox_cloud.campaigns import Campaigns, is_tag
from soundbox_cloud.chunkserver import DEFAULT_BURST, DEFAULT_RATE, ChunkServer
from soundbox_cloud.errors import BrokerUnavailable, CloudError, Rejected
from soundbox_cloud.keys import PaymentKeys
from soundbox_cloud.store import Store
from soundbox_cloud.validation import check_payment_request, is_device_id, is_txn

log = logging.getLogger("soundbox_cloud")

STARTUP_TIMEOUT_S = 5.0     # TCP connect + CONNACK + SUBACK, so a dead broker fails fast
KEEPALIVE_S = 30
MAX_QUEUED_NOTIFICATIONS = 10_000   # paho's own outbound queue; beyond it a payment gets 503
ACK_STATUSES = ("announced", "duplicate", "stale", "invalid", "failed")
DEVICE_STATES = ("online", "offline")
MAX_TEXT = 200              # device-supplied strings (reason, fw) are cut to this length
TICK_S = 1.0                # how often the campaign engine and the re-sender run
# Re-sending unacked notifications: a broker killed (or stopped) just after a box's ack
# reached it loses that ack (measured: 26 of 130 payments stuck 'sent' over restarts,
# all played). So a payment sent before we last lost the broker and still 'sent' to an
# online box is re-sent, same txn and ts, RESEND_AFTER_S after we are back (only then: a
# box busy saying a backlog is slow, not lost), then after twice as long each time,
# MAX_RESENDS times in all
# (5+10+20+40+80+160 s: over 5 minutes), then given up on and counted. The box answers a
# repeat from its ledger ("duplicate"), so nothing is said twice; one it never got is
# announced, or counted 'stale' once past its freshness window.
RESEND_AFTER_S = 5.0
MAX_RESENDS = 6
RESEND_BATCH = 500          # at most this many re-sends per tick
# Telemetry per box: a box reports every minute or so; past a burst of TELEMETRY_BURST at
# TELEMETRY_PER_S a second, the rest is counted and dropped before it is even decoded.
# Without this a box flooding QoS 0 telemetry kept this handler busy writing rows, and the
# acks queued behind the flood at the broker (measured: an ack not stored within 60 s).
TELEMETRY_PER_S = 1.0
TELEMETRY_BURST = 10.0


class TelemetryGate:
    """A token bucket per device; allow(device) says whether one more message may pass."""

    def __init__(self, rate=TELEMETRY_PER_S, burst=TELEMETRY_BURST, clock=time.monotonic):
        self.rate, self.burst, self.clock = rate, burst, clock
        self.buckets = {}   # device -> [tokens, last time]; one entry per device id seen
        self.dropped = 0

    def allow(self, device):
        now = self.clock()
        tokens, last = self.buckets.get(device, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1:
            self.buckets[device] = (tokens, now)
            self.dropped += 1
            return False
        self.buckets[device] = (tokens - 1, now)
        return True


def now_ms():
    return int(time.time() * 1000)


def parse_broker_url(url):
    """(host, port, tls) from mqtt://HOST[:PORT] or mqtts://HOST[:PORT]; BrokerUnavailable otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
    except ValueError as e:
        raise BrokerUnavailable("bad broker URL %r: %s" % (url, e)) from None
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise BrokerUnavailable("broker URL must look like mqtt(s)://HOST:PORT, got %r" % url)
    return parts.hostname, port, parts.scheme == "mqtts"


def tls_files(certs):
    """(ca, cert, key) of the cloud identity in a PKI directory, checked before connecting."""
    files = tuple(os.path.join(certs, name) for name in ("ca.pem", "cloud.pem", "cloud.key"))
    missing = [f for f in files if not os.path.exists(f)]
    if missing:
        raise CloudError("cloud TLS identity incomplete: missing %s (run: soundbox pki init)"
                         % ", ".join(missing))
    with open(files[1], "rb") as f:  # an expired certificate: say so before any network traffic
        expires = x509.load_pem_x509_certificate(f.read()).not_valid_after_utc
    if expires < datetime.datetime.now(datetime.timezone.utc):
        raise CloudError("cloud certificate %s expired on %s (run: soundbox pki init --force)"
                         % (files[1], expires.isoformat()))
    return files


def decode_object(payload):
    try:
        msg = json.loads(payload)
    except (ValueError, RecursionError):
        raise ValueError("payload is not JSON") from None
    if not isinstance(msg, dict):
        raise ValueError("payload is not a JSON object")
    return msg


def int_or_none(value):
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def text_or_none(value):
    return value[:MAX_TEXT] if isinstance(value, str) else None


def parse_ack(payload):
    msg = decode_object(payload)
    status, txn = msg.get("status"), msg.get("txn")
    if status not in ACK_STATUSES:
        raise ValueError("unknown ack status %r" % (status,))
    if txn is not None and not is_txn(txn):
        raise ValueError("malformed txn")
    return {"txn": txn, "status": status, "reason": text_or_none(msg.get("reason")) or "",
            "rx": int_or_none(msg.get("rx")), "play": int_or_none(msg.get("play")),
            "done": int_or_none(msg.get("done"))}


def parse_status(payload):
    msg = decode_object(payload)
    if msg.get("state") not in DEVICE_STATES:
        raise ValueError("unknown state %r" % (msg.get("state"),))
    return msg["state"], text_or_none(msg.get("fw"))


COMMAND_LANGUAGES = voice.LANGUAGES
VOLUME_LEVELS = 5


def check_command(body):
    """The command to publish, only its known fields, or Rejected naming the field and why.
    The device checks again and answers ok/reason on sb/<id>/cmdack."""
    if not isinstance(body, dict):
        raise Rejected(400, "body", "request body must be a JSON object")
    cmd = body.get("cmd")
    if cmd == "volume":
        level = body.get("level")
        if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= VOLUME_LEVELS:
            raise Rejected(400, "level", "level must be an integer 1-%d" % VOLUME_LEVELS)
        return {"cmd": cmd, "level": level}
    if cmd == "language":
        if body.get("lang") not in COMMAND_LANGUAGES:
            raise Rejected(400, "lang", "lang must be one of %s" % ", ".join(COMMAND_LANGUAGES))
        return {"cmd": cmd, "lang": body["lang"]}
    if cmd == "replay":
        return {"cmd": cmd}
    if "cmd" not in body:
        raise Rejected(400, "cmd", "missing field 'cmd'")
    raise Rejected(400, "cmd", "cmd must be one of language, replay, volume")


def reason_of(error):
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


class CloudHandler:
    """One paho connection: publishes notifications, records acks, status and telemetry in the store.

    certs: the PKI directory. payment-master.key there signs every notification (each
    device verifies with its derived key); ca.pem, cloud.pem and cloud.key are the TLS
    identity for mqtts://.
    """

    def __init__(self, broker_url, db_path, group="cloud", certs="certs", instance="0", ota_dir=None,
                 tick_s=TICK_S, chunk_rate=DEFAULT_RATE, chunk_burst=DEFAULT_BURST,
                 resend_after_s=RESEND_AFTER_S):
        if not group or any(ch in group for ch in "/+#"):
            raise CloudError("group must be a non-empty name without '/', '+' or '#', got %r" % group)
        self.broker_url = broker_url
        self.host, self.port, tls = parse_broker_url(broker_url)
        self.tls = tls_files(certs) if tls else None
        self.keys = PaymentKeys(certs)
        self.group = group
        self.instance = instance
        self.bad_messages = 0   # malformed device messages dropped (each logs one line)
        self.resend_after_s = resend_after_s
        self.telemetry_gate = TelemetryGate()
        self._link_lost_ms = None   # when we last lost the broker (None: not since start)
        self._link_back_ms = None   # when our subscriptions were last granted
        self._closing = False
        self._startup = threading.Event()
        self._startup_error = None
        self._connected = threading.Event()
        self._tick_stop = threading.Event()
        self._ticker = None
        self.store = Store(db_path)
        self.client = None
        try:
            # OTA: signed artifacts next to the database unless told otherwise; the chunk
            # server and the campaign engine must exist before the first message arrives.
            self.artifacts = ArtifactStore(ota_dir or os.path.join(os.path.dirname(os.path.abspath(str(db_path))), "ota"),
                                           trusted=os.path.join(str(certs), "ota", "trusted.json"))
            self.artifacts.load_all()
            self.campaign_store = CampaignStore(db_path)
            self.campaigns = Campaigns(self.campaign_store, self.artifacts, self._publish_job)
            # chunk_rate/chunk_burst: bytes a second (None: no limit) and burst, per device
            self.chunks = ChunkServer(self.artifacts, self._publish_chunk, chunk_rate, chunk_burst)
            self.client = self._make_client()
            self._connect()
        except BaseException:
            self.close()
            raise
        if tick_s:
            self._ticker = threading.Thread(target=self._tick_loop, args=(tick_s,), name="cloud-campaigns",
                                            daemon=True)
            self._ticker.start()

    def _make_client(self):
        # A persistent session under a stable id: acks that arrive while this handler is
        # reconnecting (or the broker restarts) wait for it instead of being dropped.
        # Several handlers side by side need distinct --instance ids (over mTLS, distinct
        # certificates: the broker uses the certificate CN as the client id).
        client_id = "soundbox-cloud-%s-%s" % (self.group, self.instance)
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=mqtt.MQTTv311, clean_session=False)
        if self.tls:
            ca, cert, key = self.tls
            client.tls_set(ca_certs=ca, certfile=cert, keyfile=key, cert_reqs=ssl.CERT_REQUIRED)
        client.connect_timeout = STARTUP_TIMEOUT_S
        client.max_queued_messages_set(MAX_QUEUED_NOTIFICATIONS)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_socket_open = self._on_socket_open
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _connect(self):
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        try:
            self.client.connect(self.host, self.port, keepalive=KEEPALIVE_S)
        except (OSError, ValueError) as e:
            raise BrokerUnavailable("cannot reach MQTT broker at %s: %s"
                                    % (self.broker_url, reason_of(e))) from None
        self.client.loop_start()
        if not self._startup.wait(max(0.5, deadline - time.monotonic())):
            raise BrokerUnavailable("MQTT broker at %s did not answer within %.0f s"
                                    % (self.broker_url, STARTUP_TIMEOUT_S))
        if self._startup_error:
            raise BrokerUnavailable(self._startup_error)

    @property
    def connected(self):
        return self._connected.is_set()

    def close(self):
        if self._closing:
            return
        self._closing = True
        self._tick_stop.set()
        if self._ticker is not None:
            self._ticker.join()
        if self.client is not None:
            # disconnect() queues DISCONNECT behind any notification still being written.
            self.client.disconnect()
            self.client.loop_stop()
        for part in ("campaign_store", "artifacts"):   # absent when __init__ failed early
            if hasattr(self, part):
                getattr(self, part).close()
        self.store.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # paho callbacks (paho's loop thread); an exception escaping one would end that thread

    def _on_socket_open(self, client, userdata, sock):
        # paho leaves Nagle on: notifications then wait for the previous segment's ACK.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            self._startup_error = "MQTT broker at %s refused the connection: %s" % (self.broker_url, reason_code)
            if self._startup.is_set():   # paho keeps retrying with backoff; say why once per try
                log.warning(self._startup_error)
            self._startup.set()
            return
        # Subscribing here also restores the subscriptions after a reconnect (clean session).
        # Status is retained and a shared subscription never gets retained messages: plain subscription.
        share = "$share/%s/" % self.group
        client.subscribe([(share + "sb/+/ack", 1), ("sb/+/status", 1), (share + "sb/+/telemetry", 1),
                          (share + "sb/+/ota/req", 0), (share + "sb/+/ota/status", 1)])

    def _on_subscribe(self, client, userdata, mid, reason_code_list, properties):
        refused = [str(rc) for rc in reason_code_list if rc.is_failure]
        if refused:
            self._startup_error = "MQTT broker at %s refused our subscriptions: %s" % (
                self.broker_url, ", ".join(refused))
            log.error(self._startup_error)
        else:
            self._link_back_ms = now_ms()
            self._connected.set()
        self._startup.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self._connected.clear()
        self._link_lost_ms = now_ms()
        if not self._closing and self._startup.is_set():
            log.warning("lost connection to MQTT broker at %s (%s); reconnecting", self.broker_url, reason_code)

    def _on_message(self, client, userdata, msg):
        parts = msg.topic.split("/")
        if len(parts) == 4 and parts[2] == "ota":   # sb/<id>/ota/req|status
            parts[2:] = ["ota/" + parts[3]]
        if len(parts) != 3 or parts[0] != "sb" or not is_device_id(parts[1]):
            return
        device, kind = parts[1], parts[2]
        if kind == "telemetry" and not self.telemetry_gate.allow(device):
            return
        try:
            if kind == "ota/req":
                self.chunks.handle(device, msg.payload)
            elif kind == "ota/status":
                self.campaigns.on_status(device, decode_object(msg.payload))
            elif kind == "ack":
                self.store.add_ack(device, parse_ack(msg.payload), now_ms())
            elif kind == "status" and msg.payload:   # an empty retained payload just clears it
                state, fw = parse_status(msg.payload)
                self.store.set_device_status(device, state, fw, now_ms())
            elif kind == "telemetry":
                telemetry = decode_object(msg.payload)
                self.store.touch_device(device, text_or_none(telemetry.get("fw")), now_ms())
                self.campaigns.on_telemetry(device, telemetry)
        except Exception as e:   # a device's bad message must never stop the handler
            self.bad_messages += 1
            log.warning("dropped %s from %s: %s", kind, device, e)

    # OTA

    def _publish_chunk(self, topic, payload):
        self.client.publish(topic, payload, qos=0)

    def _publish_job(self, topic, payload):
        """One QoS 1 job or cancel; False when it cannot go out now (the engine retries)."""
        if not self.connected:
            return False
        return self.client.publish(topic, payload, qos=1).rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    def _tick_loop(self, every_s):
        while not self._tick_stop.wait(every_s):
            for name, job in (("re-send", self.resend_due), ("campaign", self.campaigns.tick)):
                try:
                    job()
                except Exception as e:   # a bug must not end the rollout thread silently
                    log.error("%s tick failed: %r", name, e)

    def resend_due(self):
        """Re-send the notifications whose re-send is due (see RESEND_AFTER_S); returns how many."""
        if not self.connected:
            return 0
        now = now_ms()
        first_ms = int(self.resend_after_s * 1000)
        lost, back = self._link_lost_ms, self._link_back_ms
        # First re-sends: what was sent before the link loss, once we have been back a while.
        sent_before = lost if lost is not None and back is not None and now >= back + first_ms else -1
        due = self.store.due_resends(now, sent_before, RESEND_BATCH)
        for p in due:
            tries = p["tries"] + 1
            if tries > MAX_RESENDS:
                self.store.note_resend(p["txn"], p["tries"], now, "gave_up")
                log.warning("gave up re-sending %s to %s: no ack after %d re-sends", p["txn"], p["device"],
                            p["tries"])
                continue
            if not self._publish_notification(p["device"], p["txn"], p["amount"], p["sent_ms"], p["provider"]):
                break   # paho's queue is full: try again next tick
            self.store.note_resend(p["txn"], tries, now + first_ms * (2 ** tries))
        return len(due)

    def set_tags(self, device, body):
        """Add/remove tags of a known device: body {"add": [...], "remove": [...]}; returns its tags."""
        if not is_device_id(device):
            raise Rejected(400, "device", "device must match [a-z0-9][a-z0-9-]{0,31}")
        if not isinstance(body, dict) or not set(body) <= {"add", "remove"}:
            raise Rejected(400, "body", 'body must be {"add": [tags], "remove": [tags]}')
        lists = {}
        for field in ("add", "remove"):
            value = body.get(field, [])
            if not isinstance(value, list) or len(value) > 100 or not all(is_tag(t) for t in value):
                raise Rejected(400, field, "%s must be a list of tags ([A-Za-z0-9][A-Za-z0-9._:-]{0,31})" % field)
            lists[field] = value
        if self.store.device(device) is None:
            raise Rejected(404, "device", "unknown device %s (it has never reported its status)" % device)
        self.campaign_store.change_tags(device, lists["add"], lists["remove"])
        return self.campaign_store.tags(device)

    # commands

    def send_command(self, device, body):
        """Validate and publish one command to sb/<device>/cmd (QoS 1); returns what was sent.
        The device answers on sb/<device>/cmdack. Raises Rejected and publishes nothing on bad input."""
        if not is_device_id(device):
            raise Rejected(400, "device", "device must match [a-z0-9][a-z0-9-]{0,31}")
        command = check_command(body)
        if self.store.device(device) is None:
            raise Rejected(404, "device", "unknown device %s (it has never reported its status)" % device)
        if not self.connected:
            raise Rejected(503, "broker", "not connected to the MQTT broker; retry later")
        info = self.client.publish("sb/%s/cmd" % device, json.dumps(command, separators=(",", ":")), qos=1)
        if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            raise Rejected(503, "broker", "too many messages waiting for the broker; retry later")
        return command

    # payments

    def send_payment(self, device, amount, txn, provider=None):
        """Validate, record and publish one notification; returns the payment record.

        Raises Rejected (with an HTTP status) and publishes nothing when the request is bad.
        """
        check_payment_request({"device": device, "amount": amount, "txn": txn, "provider": provider})
        if self.store.device(device) is None:
            raise Rejected(404, "device", "unknown device %s (it has never reported its status)" % device)
        if not self.connected:
            raise Rejected(503, "broker", "not connected to the MQTT broker; retry the same txn later")
        record = self.store.record_send(device, amount, txn, now_ms(), provider)
        if not self._publish_notification(device, txn, amount, record["sent_ms"], provider):
            raise Rejected(503, "broker", "too many notifications waiting for the broker; retry the same txn later")
        return record

    def _publish_notification(self, device, txn, amount, sent_ms, provider=None):
        """Sign and publish one notification (QoS 1); False when paho's queue is full.
        A resend carries the first send's ts: freshness is the payment's age, so one the
        box missed for long goes into its offline summary instead of sounding brand new."""
        note = payment.sign(self.keys.key(device), device, txn, amount, sent_ms, provider=provider)
        payload = json.dumps(note, separators=(",", ":"))
        info = self.client.publish("sb/%s/notify" % device, payload, qos=1)
        return info.rc != MQTTErrorCode.MQTT_ERR_QUEUE_SIZE
