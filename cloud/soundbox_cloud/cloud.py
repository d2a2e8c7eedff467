"""The cloud as one domain object: payments, devices, commands, OTA, stats, for a caller.

Every public operation takes the caller (an auth.Principal) and checks, in this order,
its role (403), then that the device / payment / campaign is its tenant's (404, so one
tenant cannot learn another's ids), then the request against the current state. Every
state-changing operation leaves one audit row, refused or not. The HTTP app and the MQTT
link are thin adapters: they turn bytes into calls of this object and its answers back
into bytes. Request bodies arrive already checked against the shared rules (validation,
soundbox.commands, campaigns.check_spec) by the HTTP layer's models.
"""
import contextlib
import ipaddress
import json
import logging
import os
import secrets
import socket
import threading
import time
from urllib.parse import urlsplit

from soundbox import payment, wire
from soundbox_cloud.artifacts import ArtifactError, ArtifactStore
from soundbox_cloud.audit import AuditLog
from soundbox_cloud.auth import KeyStore, RateLimiter
from soundbox_cloud.campaign_store import CampaignStore
from soundbox_cloud.campaigns import Campaigns
from soundbox_cloud.chunkserver import DEFAULT_BURST, DEFAULT_RATE, ChunkServer
from soundbox_cloud.db import is_postgres
from soundbox_cloud.errors import Rejected
from soundbox_cloud.keys import PaymentKeys
from soundbox_cloud.metrics import CloudMetrics
from soundbox_cloud.mqttlink import (MqttLink, TelemetryGate, decode_object, now_ms, parse_ack,
                                     parse_cmdack, parse_status, text_or_none)
from soundbox_cloud.percentiles import nearest_rank
from soundbox_cloud.store import TIMED_OUT, Store
from soundbox_cloud.webhooks import Webhooks

log = logging.getLogger("soundbox_cloud")

TICK_S = 1.0                # how often the campaign engine, the re-sender and the deadline run
# Re-sending unacked notifications: a broker killed (or stopped) just after a box's ack
# reached it loses that ack (measured: 26 of 130 payments stuck 'sent' over restarts,
# all played). So a payment sent before we last lost the broker and still unacked to an
# online box is re-sent, same txn and ts, RESEND_AFTER_S after we are back (only then: a
# box busy saying a backlog is slow, not lost), then after twice as long each time,
# MAX_RESENDS times in all (5+10+20+40+80+160 s: over 5 minutes), then given up on and
# counted. The box answers a repeat from its ledger ("duplicate"), so nothing is said
# twice; one it never got is announced, or counted 'stale' once past its freshness window.
RESEND_AFTER_S = 5.0
MAX_RESENDS = 6
RESEND_BATCH = 500          # at most this many re-sends per tick
# A payment no device has acknowledged this long after its first send is 'timed_out' (the
# PSP hears it by webhook); a late ack from the box still settles it.
ACK_DEADLINE_S = 120.0
# A notification waits at the broker for an offline box at most this long (MQTT 5 Message
# Expiry, counted from the payment's first send), so a box that is gone for good does not
# pile up payments there. Not the box's 120 s freshness window: a stale payment is still
# worth delivering, the box acks it 'stale' and says it in its offline summary and in
# today's total; after a day "today" is over and the summary says little.
NOTIFY_EXPIRY_S = 86400
# Commands: a device has at most this many unanswered in the last window; more is 429.
# (Measured before: 40 queued "replay" commands delayed a real payment by 50 s.)
MAX_UNACKED_COMMANDS = 5
COMMAND_WINDOW_S = 60
# After (re)connecting, the cloud asks every online box it knows no model of for its
# telemetry, once the retained statuses have arrived: boxes that reported before this
# process started would otherwise stay unknown to campaigns until they reconnect.
ASK_TELEMETRY_AFTER_S = 2.0
CAMPAIGN_ACTIONS = ("pause", "resume", "abort")


def default_ota_dir(db):
    """Signed artifacts live next to a SQLite database; with PostgreSQL, in .state/ota."""
    if is_postgres(db):
        return os.path.join(".state", "ota")
    return os.path.join(os.path.dirname(os.path.abspath(str(db))), "ota")


def unknown(kind, key):
    return Rejected(404, kind, "unknown %s %s" % (kind, key))


class Cloud:
    """One cloud process: its stores, its MQTT link and the background ticks.

    certs: the PKI directory. payment-master.key there signs every notification (each
    device verifies with its derived key); ca.pem, cloud.pem / cloud.key and cloud-bulk.pem /
    cloud-bulk.key are the TLS identities of its two connections for mqtts://. Several
    processes may share one database file (and broker group).
    """

    def __init__(self, broker_url, db_path, group="cloud", certs="certs", instance="0", ota_dir=None,
                 tick_s=TICK_S, chunk_rate=DEFAULT_RATE, chunk_burst=DEFAULT_BURST,
                 resend_after_s=RESEND_AFTER_S, ack_deadline_s=ACK_DEADLINE_S, webhook_every_s=0.5,
                 private_webhooks=False, notify_expiry_s=NOTIFY_EXPIRY_S):
        self.resend_after_s = resend_after_s
        self.notify_expiry_s = notify_expiry_s
        self.private_webhooks = private_webhooks   # True: webhooks may point at this network
        self.ack_deadline_s = ack_deadline_s
        self.bad_messages = 0   # malformed device messages dropped (each logs one line)
        self.telemetry_gate = TelemetryGate()
        self._ask_telemetry_at = None
        self._closing = False
        self._tick_stop = threading.Event()
        self._ticker = None
        self.link = None
        self._parts = []        # what close() closes, newest first
        try:
            self.keys = PaymentKeys(certs)
            self.store = self._part(Store(db_path))
            self.api_keys = self._part(KeyStore(db_path))
            self.audit = self._part(AuditLog(db_path))
            self.webhooks = self._part(Webhooks(db_path))
            self.rate_limiter = RateLimiter()
            # OTA: signed artifacts next to the database unless told otherwise; the chunk
            # server and the campaign engine must exist before the first message arrives.
            self.artifacts = self._part(ArtifactStore(
                ota_dir or default_ota_dir(db_path),
                trusted=os.path.join(str(certs), "ota", "trusted.json")))
            self.artifacts.load_all()
            self.campaign_store = self._part(CampaignStore(db_path))
            self.campaigns = Campaigns(self.campaign_store, self.artifacts, self._publish_job)
            # chunk_rate/chunk_burst: bytes a second (None: no limit) and burst, per device
            self.chunks = ChunkServer(self.artifacts, self._publish_chunk, chunk_rate, chunk_burst)
            self.metrics = CloudMetrics(self)
            self.link = MqttLink(self, broker_url, group, certs, instance)
            self.link.connect()
        except BaseException:
            self.close()
            raise
        if webhook_every_s:
            self.webhooks.start(webhook_every_s)
        if tick_s:
            self._ticker = threading.Thread(target=self._tick_loop, args=(tick_s,), name="cloud-tick", daemon=True)
            self._ticker.start()

    def _part(self, part):
        self._parts.insert(0, part)
        return part

    @property
    def connected(self):
        return self.link is not None and self.link.connected

    def close(self):
        if self._closing:
            return
        self._closing = True
        self._tick_stop.set()
        if self._ticker is not None:
            self._ticker.join()
        if self.link is not None:
            self.link.close()
        for part in self._parts:
            part.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # callers

    def authenticate(self, authorization):
        """The Principal of an Authorization header value, within its rate; Unauthorized
        (401) for a missing, unknown, revoked or expired key, Rejected 429 past its rate."""
        caller = self.api_keys.verify(authorization)
        wait_s = self.rate_limiter.check(caller)
        if wait_s:
            raise Rejected(429, None, "rate limit of %g requests/s exceeded; retry in %.2f s"
                           % (caller.rate, wait_s), retry_after_s=wait_s)
        return caller

    @staticmethod
    def _require(caller, action):
        if not caller.may(action):
            raise Rejected(403, None, "role %s may not %s" % (caller.role, action))

    @contextlib.contextmanager
    def _audited(self, caller, action, target, success_row=True):
        """Check the role, run the block, and leave one audit row with its outcome.
        success_row False: the block's own record says who did it (an accepted payment
        carries its key id), so only a refusal writes a row."""
        try:
            self._require(caller, action)
            yield
        except Rejected as e:
            self.audit.record(caller, action, target, e.http_status, str(e))
            raise
        except Exception as e:
            self.audit.record(caller, action, target, 500, type(e).__name__)
            raise
        else:
            if success_row:
                self.audit.record(caller, action, target, 200)

    def _device(self, caller, device):
        """The caller's tenant's device record; 404 for an unknown one or another tenant's."""
        record = self.store.device(device)
        if record is None or not (caller.platform or record["tenant"] == caller.tenant):
            raise unknown("device", device)
        return record

    def _check_link(self):
        if not self.connected:
            raise Rejected(503, "broker", "not connected to the MQTT broker; retry later")

    # payments

    def pay(self, caller, device, amount, txn, provider=None):
        """Record and publish one notification (accepted: 202 with the record); Rejected
        with nothing published when the request cannot be served. A repeat of the same
        txn is sent again and counted, never announced twice (the box keeps a ledger)."""
        with self._audited(caller, "payments:create", txn, success_row=False):
            record = self._device(caller, device)
            if record["state"] == "unseen":
                raise Rejected(409, "device", "device %s is registered but has never connected" % device)
            if not self.connected:
                raise Rejected(503, "broker", "not connected to the MQTT broker; retry the same txn later")
            sent = self.store.record_send(device, amount, txn, now_ms(), provider, tenant=record["tenant"],
                                          key_id=caller.key_id)
            if not self._publish_notification(device, txn, amount, sent["sent_ms"], provider):
                raise Rejected(503, "broker", "too many notifications waiting for the broker; retry the same txn later")
        self.metrics.payments_accepted.inc()
        answer = {"txn": txn, "device": device, "amount": amount, "status": "sent", "sends": sent["sends"]}
        if provider is not None:
            answer["provider"] = provider
        return answer

    def payment(self, caller, txn):
        self._require(caller, "payments:read")
        record = self.store.payment(txn)
        if record is None or not (caller.platform or record["tenant"] == caller.tenant):
            raise unknown("txn", txn)
        return record

    def _publish_notification(self, device, txn, amount, sent_ms, provider=None):
        """Sign and publish one notification (QoS 1); False when paho's queue is full.
        A resend carries the first send's ts: freshness is the payment's age, so one the
        box missed for long goes into its offline summary instead of sounding brand new."""
        note = payment.sign(self.keys.key(device), device, txn, amount, sent_ms, provider=provider)
        expiry_s = self.notify_expiry_s - max(0, now_ms() - sent_ms) / 1000
        return self.link.publish(wire.topic(device, wire.NOTIFY), json.dumps(note, separators=(",", ":")),
                                 expiry_s=expiry_s)

    def _settled(self, record):
        """A payment reached a final status (a device's ack, or our deadline): tell its PSP."""
        if record["status"] not in wire.FINAL_ACK_STATUSES + (TIMED_OUT,):
            return   # a "duplicate" ack settles nothing
        if record["status"] != TIMED_OUT:
            self.metrics.ack_latency.observe(max(0, now_ms() - record["sent_ms"]) / 1000)
        self.webhooks.enqueue(record["tenant"], "payment.%s" % record["status"],
                              {key: record[key] for key in ("txn", "device", "amount", "status", "provider",
                                                            "sent_ms", "sends")})

    # devices

    def devices(self, caller):
        self._require(caller, "devices:read")
        return self.store.devices(None if caller.platform else caller.tenant)

    def device(self, caller, device):
        self._require(caller, "devices:read")
        return self._device(caller, device)

    def register(self, caller, device, tenant=None, profile=None, tags=()):
        """Register a device to a tenant with its merchant profile, or update the profile.
        Only the platform assigns a device to a tenant (it issued the box's identity): an
        operator updates its own tenant's devices, and any other id is unknown to it, so
        no tenant can claim a box that is not yet assigned."""
        with self._audited(caller, "devices:write", device):
            existing = self.store.device(device)
            if not caller.platform:
                if existing is None or existing["tenant"] != caller.tenant:
                    raise unknown("device", device)
                if tenant not in (None, caller.tenant):
                    raise Rejected(403, "tenant", "only an admin key moves a device to another tenant")
            elif existing is not None and existing["tenant"] not in (None, tenant or existing["tenant"]):
                raise Rejected(409, "tenant", "device %s belongs to tenant %s; move it instead"
                               % (device, existing["tenant"]))
            tenant = tenant or (existing or {}).get("tenant")
            if tenant is None:
                raise Rejected(400, "tenant", "tenant is required: a device belongs to one tenant")
            record = self.store.register(device, tenant, profile or {}, now_ms())
            if tags:
                self.campaign_store.change_tags(device, list(tags), [])
        return dict(record, tags=self.campaign_store.tags(device))

    def move(self, caller, device, tenant):
        """Move a device to another tenant: its new owner's payments and commands reach it
        from now on; its past payments stay with the tenant that sent them."""
        with self._audited(caller, "devices:move", device):
            record = self._device(caller, device)
            self.store.register(device, tenant, {}, now_ms())
            log.info("device %s moved from tenant %s to %s", device, record["tenant"], tenant)
        return self.store.device(device)

    def tags(self, caller, device):
        self._require(caller, "devices:read")
        self._device(caller, device)
        return self.campaign_store.tags(device)

    def change_tags(self, caller, device, add=(), remove=()):
        with self._audited(caller, "devices:write", device):
            self._device(caller, device)
            self.campaign_store.change_tags(device, list(add), list(remove))
        return self.campaign_store.tags(device)

    # commands

    def command(self, caller, device, command):
        """Publish one checked command (soundbox.commands.parse) to sb/<device>/cmd under a
        fresh id; the box answers on sb/<device>/cmdack and command_status() shows it."""
        with self._audited(caller, "commands:send", device):
            record = self._device(caller, device)
            self._check_link()
            now = now_ms()
            if self.store.unacked_commands(device, now - COMMAND_WINDOW_S * 1000) >= MAX_UNACKED_COMMANDS:
                raise Rejected(429, "device", "device %s has %d commands awaiting its answer; retry later"
                               % (device, MAX_UNACKED_COMMANDS), retry_after_s=COMMAND_WINDOW_S / 10)
            command = dict(command, id="c-" + secrets.token_hex(6))
            self.store.add_command(command["id"], device, record["tenant"], command, now)
            if not self.link.publish(wire.topic(device, wire.CMD), json.dumps(command, separators=(",", ":"))):
                self.store.forget_command(command["id"])
                raise Rejected(503, "broker", "too many messages waiting for the broker; retry later")
        return {"id": command["id"], "device": device, "command": command, "status": "sent"}

    def command_status(self, caller, device, command_id):
        self._require(caller, "commands:read")
        self._device(caller, device)
        record = self.store.command(device, command_id)
        if record is None:
            raise unknown("command", command_id)
        return record

    # stats and liveness

    def stats(self, caller):
        self._require(caller, "stats:read")
        tenant = None if caller.platform else caller.tenant
        stats = self.store.counts(tenant)
        stats["latency_ms"] = {name: nearest_rank(values) for name, values in self.store.latencies(tenant).items()}
        if caller.platform:
            stats["ota_chunks"] = self.chunks.stats()
            stats["webhooks"] = self.webhooks.stats()
            stats["device_messages_dropped"] = {"malformed": self.bad_messages,
                                                "telemetry_over_limit": self.telemetry_gate.dropped}
        return stats

    def audit_rows(self, caller, limit=100):
        """The newest audit rows, newest first (at most 1000)."""
        self._require(caller, "audit:read")
        if not 1 <= limit <= 1000:
            raise Rejected(400, "limit", "limit must be from 1 to 1000")
        return self.audit.rows(limit)

    def health(self):
        """Liveness: the process answers. Readiness: it can take payments (broker linked)."""
        ok = self.connected
        return {"ok": ok, "broker": "connected" if ok else "disconnected"}

    # OTA: artifacts are the platform's (signed firmware); campaigns belong to a tenant

    def artifacts_list(self, caller):
        self._require(caller, "ota:read")
        return [a.summary() for a in self.artifacts.all()]

    def artifact(self, caller, name):
        self._require(caller, "ota:read")
        artifact = self.artifacts.get(name)
        if artifact is None:
            raise Rejected(404, "artifact", "no registered artifact %s" % name)
        return artifact.summary()

    def register_artifact(self, caller, name):
        with self._audited(caller, "ota:publish", name), self._artifact_errors():
            return self.artifacts.register(name).summary()

    def save_envelope(self, caller, name, data):
        with self._audited(caller, "ota:publish", name), self._artifact_errors():
            self.artifacts.save_envelope(name, data)

    def save_binary(self, caller, name, data):
        with self._audited(caller, "ota:publish", name), self._artifact_errors():
            return self.artifacts.save_binary(name, data).summary()

    @staticmethod
    @contextlib.contextmanager
    def _artifact_errors():
        try:
            yield
        except ArtifactError as e:
            raise Rejected(e.http_status, e.field, str(e)) from None

    def _campaign(self, caller, campaign_id):
        campaign = self.campaign_store.campaign(campaign_id)
        if campaign is None or not (caller.platform or campaign["spec"].get("tenant") == caller.tenant):
            raise unknown("campaign", campaign_id)
        return campaign

    def campaigns_list(self, caller):
        self._require(caller, "ota:read")
        mine = None if caller.platform else {c["id"] for c in self.campaign_store.campaigns()
                                            if c["spec"].get("tenant") == caller.tenant}
        return [c for c in self.campaigns.list() if mine is None or c["id"] in mine]

    def campaign(self, caller, campaign_id):
        self._require(caller, "ota:read")
        self._campaign(caller, campaign_id)
        return self.campaigns.status(campaign_id)

    def create_campaign(self, caller, body):
        with self._audited(caller, "ota:rollout", body.get("artifact") if isinstance(body, dict) else None):
            if caller.platform:
                return self.campaigns.create(body)
            allowed = {d["id"] for d in self.store.devices(caller.tenant)}
            return self.campaigns.create(body, tenant=caller.tenant, allowed=allowed)

    def campaign_action(self, caller, campaign_id, action):
        with self._audited(caller, "ota:rollout", campaign_id):
            self._campaign(caller, campaign_id)
            return getattr(self.campaigns, action)(campaign_id)

    # webhooks

    def set_webhook(self, caller, url):
        """Point the tenant's payment-outcome webhooks at url; returns the signing secret, once."""
        with self._audited(caller, "webhooks:manage", url):
            tenant = self._own_tenant(caller)
            if not self.private_webhooks:
                self._check_public(url)
            secret = self.webhooks.set_endpoint(tenant, url)
        return dict(self.webhooks.endpoint(tenant), secret=secret)

    def webhook(self, caller):
        self._require(caller, "webhooks:manage")
        endpoint = self.webhooks.endpoint(self._own_tenant(caller))
        if endpoint is None:
            raise Rejected(404, "webhook", "no webhook set for tenant %s" % caller.tenant)
        return endpoint

    @staticmethod
    def _check_public(url):
        """A tenant's webhook must not make the cloud call into its own network (loopback,
        private, link-local: the metadata service, the database, the broker)."""
        host = urlsplit(url).hostname or ""
        try:
            addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
        except (socket.gaierror, UnicodeError):
            raise Rejected(400, "url", "cannot resolve the webhook host %r" % host[:80]) from None
        for address in addresses:
            if not ipaddress.ip_address(address.split("%")[0]).is_global:
                raise Rejected(400, "url", "webhook host %s is a non-public address (%s)" % (host[:80], address))

    @staticmethod
    def _own_tenant(caller):
        if caller.tenant is None:
            raise Rejected(400, "tenant", "webhooks belong to a tenant: use a key of that tenant")
        return caller.tenant

    # the MQTT side (paho's thread)

    def on_link(self, up):
        self._ask_telemetry_at = time.monotonic() + ASK_TELEMETRY_AFTER_S if up else None

    def on_device_message(self, device, kind, payload):
        """A device's message, on the paho thread of the connection that carries its kind
        (main or bulk: two threads; the stores and the campaign engine take their locks)."""
        if kind == wire.TELEMETRY and not self.telemetry_gate.allow(device):
            return
        try:
            if kind == wire.OTA_REQ:
                self.chunks.handle(device, payload)
            elif kind == wire.OTA_STATUS:
                self.campaigns.on_status(device, decode_object(payload))
            elif kind == wire.ACK:
                outcome, settled = self.store.add_ack(device, parse_ack(payload), now_ms())
                if settled is not None:
                    self._settled(settled)
            elif kind == wire.STATUS and payload:   # an empty retained payload just clears it
                state, fw = parse_status(payload)
                self.store.set_device_status(device, state, fw, now_ms())
            elif kind == wire.TELEMETRY:
                telemetry = decode_object(payload)
                self.store.touch_device(device, text_or_none(telemetry.get("fw")), now_ms())
                self.campaigns.on_telemetry(device, telemetry)
            elif kind == wire.CMDACK:
                command_id, ok, reason = parse_cmdack(payload)
                self.store.ack_command(device, command_id, ok, reason, now_ms())
        except Exception as e:   # a device's bad message must never stop the handler
            self.bad_messages += 1
            log.warning("dropped %s from %s: %s", kind, device, e)

    def _publish_chunk(self, topic, payload):
        self.link.publish_bulk(topic, payload)

    def _publish_job(self, topic, payload):
        """One QoS 1 job or cancel; False when it cannot go out now (the engine retries)."""
        return self.connected and self.link.publish(topic, payload, qos=1)

    # background work, owned through the database: any cloud process may do it

    def _tick_loop(self, every_s):
        while not self._tick_stop.wait(every_s):
            for name, job in (("re-send", self.resend_due), ("deadline", self.time_out_due),
                              ("telemetry", self.ask_telemetry), ("campaign", self.campaigns.tick)):
                try:
                    job()
                except Exception as e:   # a bug must not end the background thread silently
                    log.error("%s tick failed: %r", name, e)

    def time_out_due(self):
        """Mark payments unacked past the deadline timed out and tell their PSPs; returns how many."""
        rows = self.store.time_out(now_ms() - int(self.ack_deadline_s * 1000))
        for record in rows:
            self._settled(record)
        return len(rows)

    def ask_telemetry(self):
        """Once after each (re)connect: ask online boxes of unknown model for telemetry."""
        if self._ask_telemetry_at is None or time.monotonic() < self._ask_telemetry_at or not self.connected:
            return 0
        self._ask_telemetry_at = None
        profiles = self.campaign_store.profiles()
        asked = 0
        for record in self.store.devices():
            if record["state"] == wire.ONLINE and (profiles.get(record["id"]) or {}).get("model") is None:
                command = {"cmd": "telemetry", "id": "hello-" + secrets.token_hex(4)}
                self.link.publish(wire.topic(record["id"], wire.CMD), json.dumps(command, separators=(",", ":")))
                asked += 1
        return asked

    def resend_due(self):
        """Re-send the notifications whose re-send is due (see RESEND_AFTER_S); returns how many."""
        if not self.connected:
            return 0
        now = now_ms()
        first_ms = int(self.resend_after_s * 1000)
        lost, back = self.link.lost_ms, self.link.back_ms
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
