"""The cloud's MQTT side: two paho connections, device messages in, notifications out.

A thin adapter: it decodes what devices publish and hands it to its sink (the Cloud);
it publishes what the Cloud asks. No decision about payments is taken here.
"""
import datetime
import json
import logging
import os
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from cryptography import x509
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from soundbox import wire
from soundbox_cloud.errors import BrokerUnavailable, CloudError
from soundbox_cloud.validation import is_device_id, is_txn

log = logging.getLogger("soundbox_cloud")

STARTUP_TIMEOUT_S = 5.0     # TCP connect + CONNACK + SUBACK, so a dead broker fails fast
KEEPALIVE_S = 30
MAX_QUEUED = 10_000         # paho's own outbound queue; beyond it a payment gets 503
MAX_TEXT = 200              # device-supplied strings (reason, fw) are cut to this length
# Telemetry per box: a box reports every minute or so; past a burst of TELEMETRY_BURST at
# TELEMETRY_PER_S a second, the rest is counted and dropped before it is even decoded.
# Without this a box flooding QoS 0 telemetry kept this handler busy writing rows, and the
# acks queued behind the flood at the broker (measured: an ack not stored within 60 s).
TELEMETRY_PER_S = 1.0
TELEMETRY_BURST = 10.0
# What the cloud hears, by connection and topic kind. The main connection (identity
# "cloud", MQTT 5, a persistent session) carries what must not be lost: acks, command
# answers and OTA statuses through $share (several handlers split them), and the retained
# status through a plain subscription (shared ones get no retained messages). The bulk
# connection ("cloud-bulk", a clean session, QoS 0) carries telemetry and chunk requests:
# mosquitto queues per client, so a box flooding QoS 0 fills only the bulk queue. On one
# connection, a flood at 2,000 msg/s held other boxes' acks for p50 5.3 s, and at full
# speed mosquitto dropped acks once the cloud's queue was full.
MAIN_SHARED = ((wire.ACK, 1), (wire.CMDACK, 1), (wire.OTA_STATUS, 1))
MAIN_PLAIN = ((wire.STATUS, 1),)
BULK_SHARED = ((wire.TELEMETRY, 0), (wire.OTA_REQ, 0))
HEARD = frozenset(kind for kind, _ in MAIN_SHARED + MAIN_PLAIN + BULK_SHARED)
NEVER_EXPIRES = 0xFFFFFFFF   # MQTT 5 Session Expiry: the session outlives any disconnect
# Messages the broker sends us unacknowledged at once, as mosquitto's max_inflight_messages
# did for the 3.1.1 link (an MQTT 5 client's own Receive Maximum replaces that setting).
RECEIVE_MAXIMUM = 64


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


def tls_files(certs, identity="cloud"):
    """(ca, cert, key) of a cloud identity in a PKI directory, checked before connecting."""
    files = tuple(os.path.join(certs, name) for name in ("ca.pem", identity + ".pem", identity + ".key"))
    missing = [f for f in files if not os.path.exists(f)]
    if missing:
        raise CloudError("cloud TLS identity incomplete: missing %s (run: soundbox pki init)"
                         % ", ".join(missing))
    with open(files[1], "rb") as f:  # an expired certificate: say so before any network traffic
        expires = x509.load_pem_x509_certificate(f.read()).not_valid_after_utc
    if expires < datetime.datetime.now(datetime.timezone.utc):
        raise CloudError("%s certificate %s expired on %s (run: soundbox pki init --force)"
                         % (identity, files[1], expires.isoformat()))
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
    """An ack's fields; "was" (how the box finished a payment it calls a duplicate) is a
    final status or None: anything else, or on another status, is ignored."""
    msg = decode_object(payload)
    status, txn, was = msg.get("status"), msg.get("txn"), msg.get("was")
    if status not in wire.ACK_STATUSES:
        raise ValueError("unknown ack status %r" % (status,))
    if txn is not None and not is_txn(txn):
        raise ValueError("malformed txn")
    return {"txn": txn, "status": status, "reason": text_or_none(msg.get("reason")) or "",
            "rx": int_or_none(msg.get("rx")), "play": int_or_none(msg.get("play")),
            "done": int_or_none(msg.get("done")),
            "was": was if status == wire.DUPLICATE and was in wire.FINAL_ACK_STATUSES else None}


def parse_status(payload):
    msg = decode_object(payload)
    if msg.get("state") not in wire.DEVICE_STATES:
        raise ValueError("unknown state %r" % (msg.get("state"),))
    return msg["state"], text_or_none(msg.get("fw"))


def parse_cmdack(payload):
    """(command id, ok, reason) of a device's answer to a command; ValueError if malformed."""
    msg = decode_object(payload)
    if not isinstance(msg.get("id"), str) or not isinstance(msg.get("ok"), bool):
        raise ValueError("cmdack without a command id or a boolean ok")
    return msg["id"][:64], msg["ok"], text_or_none(msg.get("reason")) or ""


def topic_parts(topic):
    """(device, kind) of a topic the cloud hears (HEARD); None for anything else."""
    parts = wire.parts(topic)
    if parts is None or not is_device_id(parts[0]) or parts[1] not in HEARD:
        return None
    return parts


def reason_of(error):
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


class Connection:
    """One paho client: its identity, its session and its subscriptions. Messages go to
    sink.on_device_message(device, kind, payload) on paho's thread; on_change(up) hears
    every time the subscriptions are granted (up) or the link is lost."""

    def __init__(self, sink, broker_url, client_id, tls, persistent, shared, plain=(), group="cloud",
                 protocol=mqtt.MQTTv311, on_change=None):
        self.sink = sink
        self.broker_url = broker_url
        self.host, self.port, _ = parse_broker_url(broker_url)
        self.name = client_id
        self.subscriptions = ([("$share/%s/%s" % (group, wire.any_device(kind)), qos) for kind, qos in shared]
                              + [(wire.any_device(kind), qos) for kind, qos in plain])
        self.on_change = on_change or (lambda up: None)
        self.protocol = protocol
        self.lost_ms = None     # when we last lost the broker (None: not since start)
        self.back_ms = None     # when our subscriptions were last granted
        self.startup_error = None
        self.started = threading.Event()
        self._closing = False
        self._connected = threading.Event()
        self._connect_args = {}
        if protocol == mqtt.MQTTv5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = NEVER_EXPIRES if persistent else 0
            props.ReceiveMaximum = RECEIVE_MAXIMUM
            self._connect_args = {"clean_start": not persistent, "properties": props}
            self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
        else:
            self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol,
                                      clean_session=not persistent)
        client = self.client
        if tls:
            ca, cert, key = tls
            client.tls_set(ca_certs=ca, certfile=cert, keyfile=key, cert_reqs=ssl.CERT_REQUIRED)
        client.connect_timeout = STARTUP_TIMEOUT_S
        client.max_queued_messages_set(MAX_QUEUED)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_socket_open = self._on_socket_open
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message

    def start(self):
        """Connect in the background (paho's thread); `started` is set once subscribed or refused."""
        try:
            self.client.connect(self.host, self.port, keepalive=KEEPALIVE_S, **self._connect_args)
        except (OSError, ValueError) as e:
            raise BrokerUnavailable("cannot reach MQTT broker at %s: %s"
                                    % (self.broker_url, reason_of(e))) from None
        self.client.loop_start()

    @property
    def connected(self):
        return self._connected.is_set()

    def publish(self, topic, payload, qos=1, expiry_s=None):
        """Queue one message; False when paho's queue is full. expiry_s (MQTT 5 only): the
        broker drops the message once it has waited that long for an offline box."""
        props = None
        if expiry_s is not None and self.protocol == mqtt.MQTTv5:
            props = Properties(PacketTypes.PUBLISH)
            props.MessageExpiryInterval = max(1, int(expiry_s))
        info = self.client.publish(topic, payload, qos=qos, properties=props)
        return info.rc != MQTTErrorCode.MQTT_ERR_QUEUE_SIZE

    def close(self):
        if self._closing:
            return
        self._closing = True
        # disconnect() queues DISCONNECT behind any notification still being written.
        self.client.disconnect()
        self.client.loop_stop()

    # paho callbacks (paho's loop thread); an exception escaping one would end that thread

    def _on_socket_open(self, client, userdata, sock):
        # paho leaves Nagle on: notifications then wait for the previous segment's ACK.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            self.startup_error = "MQTT broker at %s refused the connection of %s: %s" % (
                self.broker_url, self.name, reason_code)
            if self.started.is_set():   # paho keeps retrying with backoff; say why once per try
                log.warning(self.startup_error)
            self.started.set()
            return
        # Subscribing here also restores the subscriptions after a reconnect.
        client.subscribe(self.subscriptions)

    def _on_subscribe(self, client, userdata, mid, reason_code_list, properties):
        refused = [str(rc) for rc in reason_code_list if rc.is_failure]
        if refused:
            self.startup_error = "MQTT broker at %s refused the subscriptions of %s: %s" % (
                self.broker_url, self.name, ", ".join(refused))
            log.error(self.startup_error)
        else:
            self.back_ms = now_ms()
            self._connected.set()
            self.on_change(True)
        self.started.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self._connected.clear()
        self.lost_ms = now_ms()
        self.on_change(False)
        if not self._closing and self.started.is_set():
            log.warning("%s lost its connection to MQTT broker at %s (%s); reconnecting",
                        self.name, self.broker_url, reason_code)

    def _on_message(self, client, userdata, msg):
        parts = topic_parts(msg.topic)
        if parts is not None:
            self.sink.on_device_message(parts[0], parts[1], msg.payload)


class MqttLink:
    """A cloud process's two connections (see MAIN_SHARED): `main` takes acks and sends
    notifications, commands and jobs; `bulk` takes telemetry and chunk requests and sends
    chunks. sink.on_link(up) follows `main`, the one payments need."""

    def __init__(self, sink, broker_url, group="cloud", certs="certs", instance="0"):
        if not group or any(ch in group for ch in "/+#"):
            raise CloudError("group must be a non-empty name without '/', '+' or '#', got %r" % group)
        _, _, tls = parse_broker_url(broker_url)
        # Over mTLS the broker takes the certificate's CN as the client id; these ids are
        # for plain brokers. Several handlers side by side need distinct --instance ids.
        base = "soundbox-cloud-%s-%s" % (group, instance)
        # A persistent session under a stable id: acks that arrive while this handler is
        # reconnecting (or the broker restarts) wait for it instead of being dropped.
        self.main = Connection(sink, broker_url, base, tls_files(certs) if tls else None, persistent=True,
                               shared=MAIN_SHARED, plain=MAIN_PLAIN, group=group, protocol=mqtt.MQTTv5,
                               on_change=sink.on_link)
        self.bulk = Connection(sink, broker_url, base + "-bulk", tls_files(certs, "cloud-bulk") if tls else None,
                               persistent=False, shared=BULK_SHARED, group=group)
        self.broker_url = broker_url

    def connect(self):
        """Connect and subscribe both, or raise BrokerUnavailable within STARTUP_TIMEOUT_S."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        for connection in (self.main, self.bulk):
            connection.start()
        for connection in (self.main, self.bulk):
            if not connection.started.wait(max(0.5, deadline - time.monotonic())):
                raise BrokerUnavailable("MQTT broker at %s did not answer within %.0f s (connection %s)"
                                        % (self.broker_url, STARTUP_TIMEOUT_S, connection.name))
            if connection.startup_error:
                raise BrokerUnavailable(connection.startup_error)

    @property
    def connected(self):
        return self.main.connected

    @property
    def lost_ms(self):
        return self.main.lost_ms

    @property
    def back_ms(self):
        return self.main.back_ms

    def publish(self, topic, payload, qos=1, expiry_s=None):
        """On the main connection; False when paho's queue is full. Offline, paho keeps a
        QoS 1 message for the reconnect; callers that must not queue ask `connected` first."""
        return self.main.publish(topic, payload, qos, expiry_s)

    def publish_bulk(self, topic, payload):
        """A QoS 0 message on the bulk connection (OTA chunks); False when its queue is full."""
        return self.bulk.publish(topic, payload, qos=0)

    def close(self):
        for connection in (self.bulk, self.main):
            connection.close()
