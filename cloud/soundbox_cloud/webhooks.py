"""Signed webhooks to payment service providers: an outbox in the database and its deliverer.

The database owns each event's delivery state, so any cloud process sharing it may die and
another delivers: a row is leased before it is sent, atomically (SQLite: BEGIN IMMEDIATE;
PostgreSQL: FOR UPDATE SKIP LOCKED), so two processes never send the same attempt. Delivery is at least once (a process dying between the
POST and its record leaves the lease to expire): receivers dedupe on Soundbox-Event-Id.
"""
import hashlib
import hmac
import http.client
import json
import logging
import os
import random
import secrets
import socket
import threading
import time
from urllib.parse import urlsplit

from soundbox_cloud.errors import Rejected
from soundbox_cloud.store import Database

TIMEOUT_S = 5          # per socket operation of one POST
BACKOFF_S = 1          # delay after the first failure, doubling after each one...
BACKOFF_CAP_S = 300    # ...up to this
JITTER = 0.2           # each delay is shortened by up to this fraction, so retries spread out
MAX_ATTEMPTS = 12      # then the event is dead (about 18 minutes after the first attempt)
# A claimed row is ours this long per row of the batch: a whole batch of slow receivers
# (connect and read each up to TIMEOUT_S) finishes before another process may take it over.
LEASE_PER_ROW_S = 2 * TIMEOUT_S + 5

log = logging.getLogger("soundbox_cloud")


def sign(secret, t, body):
    """The Soundbox-Signature header for body (bytes) sent at unix second t."""
    mac = hmac.new(secret.encode(), b"%d." % t + body, hashlib.sha256).hexdigest()
    return "t=%d,v1=%s" % (t, mac)


def verify_signature(secret, header, body, now_s=None, tolerance_s=300):
    """True if header ("t=<s>,v1=<hex>", v1 may repeat) signs body with secret, within
    tolerance_s of now_s: a replayed old request fails even with a valid MAC."""
    body = body.encode() if isinstance(body, str) else body
    t, macs = None, []
    for part in (header or "").split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isascii() and value.isdigit():
            t = int(value)
        elif key == "v1":
            macs.append(value)
    now_s = time.time() if now_s is None else now_s
    if t is None or not macs or abs(now_s - t) > tolerance_s:
        return False
    expected = sign(secret, t, body).rpartition("v1=")[2]
    return any(hmac.compare_digest(expected, mac) for mac in macs)


def backoff_s(attempts):
    """Seconds to wait after the attempts-th failure (1-based), jitter included."""
    base = min(BACKOFF_CAP_S, BACKOFF_S * 2 ** (attempts - 1))
    return base * (1 - JITTER * random.random())


class Webhooks(Database):
    """Endpoints per tenant and the outbox; deliver_due() sends, start() runs it in a thread."""

    def __init__(self, path, clock=time.time, owner=None):
        super().__init__(path)
        self._clock = clock
        self.owner = owner or "%s:%d:%s" % (socket.gethostname(), os.getpid(), secrets.token_hex(4))
        self._stop = threading.Event()
        self._thread = None

    def _now_ms(self, now_ms):
        return int(self._clock() * 1000) if now_ms is None else now_ms

    def _exec(self, sql, args=()):
        return self._change(sql, args)

    def set_endpoint(self, tenant, url, now_ms=None):
        """Set or replace the tenant's endpoint with a new secret, returned only this once."""
        parts = urlsplit(url or "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise Rejected(400, "url", "webhook url must be http:// or https:// with a host: %r" % url)
        secret = "whsec_" + secrets.token_urlsafe(32)
        self._exec("INSERT INTO webhook_endpoints (tenant, url, secret, created_ms) VALUES (?, ?, ?, ?)"
                   " ON CONFLICT (tenant) DO UPDATE SET url = excluded.url, secret = excluded.secret,"
                   " created_ms = excluded.created_ms", (tenant, url, secret, self._now_ms(now_ms)))
        return secret

    def endpoint(self, tenant):
        """{"tenant", "url", "created_ms"} or None; never the secret."""
        return self._one("SELECT tenant, url, created_ms FROM webhook_endpoints WHERE tenant = ?", (tenant,))

    def remove_endpoint(self, tenant):
        self._exec("DELETE FROM webhook_endpoints WHERE tenant = ?", (tenant,))

    def enqueue(self, tenant, type, data, now_ms=None):
        """The event id queued for the tenant's endpoint, or None without one. A txn's event id
        comes from (tenant, type, txn, status): two processes queueing it make one event."""
        if tenant is None or self.endpoint(tenant) is None:
            return None
        if "txn" in data:
            key = "|".join(str(v) for v in (tenant, type, data["txn"], data.get("status")))
            event_id = "evt_" + hashlib.sha256(key.encode()).hexdigest()[:24]
        else:
            event_id = "evt_" + secrets.token_hex(12)
        now = self._now_ms(now_ms)
        body = json.dumps({"id": event_id, "type": type, "created_ms": now, "data": data},
                          separators=(",", ":"))
        self._exec("INSERT INTO webhook_outbox (event_id, tenant, type, body, created_ms, next_ms)"
                   " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
                   (event_id, tenant, type, body, now, now))
        return event_id

    def _claim(self, now, limit):
        """Lease up to limit due rows to this owner; returns them with their endpoint."""
        with self._tx() as tx:   # no other process claims between read and write
            rows = tx.all(
                "SELECT o.id, o.event_id, o.body, o.attempts, e.url, e.secret FROM webhook_outbox o"
                " LEFT JOIN webhook_endpoints e ON e.tenant = o.tenant"
                " WHERE o.delivered_ms IS NULL AND o.dead_ms IS NULL AND o.next_ms <= ?"
                " AND (o.lease_until_ms IS NULL OR o.lease_until_ms < ?)"
                " ORDER BY o.next_ms LIMIT ?" + (self.for_update and " FOR UPDATE OF o" + self.skip_locked),
                (now, now, limit))
            ids = [r["id"] for r in rows]
            if ids:
                tx.run("UPDATE webhook_outbox SET lease_owner = ?, lease_until_ms = ? WHERE id IN (%s)"
                       " AND (lease_until_ms IS NULL OR lease_until_ms < ?)" % ",".join("?" * len(ids)),
                       [self.owner, now + len(ids) * LEASE_PER_ROW_S * 1000] + ids + [now])
            return rows

    def deliver_due(self, now_ms=None, limit=50):
        """POST every due event (up to limit) once; returns how many were attempted."""
        rows = self._claim(self._now_ms(now_ms), limit)
        attempted = 0
        for row in rows:
            if self._stop.is_set():  # closing: free the rest for another process at once
                self._exec("UPDATE webhook_outbox SET lease_until_ms = NULL, lease_owner = NULL"
                           " WHERE id = ? AND lease_owner = ?", (row["id"], self.owner))
            else:
                attempted += 1
                status, reason = self._post(row, self._now_ms(now_ms) // 1000)
                self._record(row, status, reason, self._now_ms(now_ms))
        return attempted

    def _post(self, row, t):
        """(HTTP status or None, reason for a failure)."""
        if row["url"] is None:
            return None, "endpoint removed"
        body = row["body"].encode()
        headers = {"Content-Type": "application/json", "Soundbox-Event-Id": row["event_id"],
                   "Soundbox-Signature": sign(row["secret"], t, body)}
        parts = urlsplit(row["url"])
        kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = kind(parts.hostname, parts.port, timeout=TIMEOUT_S)
        try:
            conn.request("POST", (parts.path or "/") + ("?" + parts.query if parts.query else ""),
                         body=body, headers=headers)
            response = conn.getresponse()
            response.read(4096)  # drain a little; the connection is closed anyway
            return response.status, "HTTP %d" % response.status
        except (OSError, http.client.HTTPException, ValueError) as e:
            return None, "%s: %s" % (type(e).__name__, e)
        finally:
            conn.close()

    def _record(self, row, status, reason, now):
        attempts = row["attempts"] + 1
        if status is not None and 200 <= status < 300:
            self._exec("UPDATE webhook_outbox SET delivered_ms = ?, attempts = attempts + 1,"
                       " last_error = NULL, lease_until_ms = NULL, lease_owner = NULL WHERE id = ?",
                       (now, row["id"]))
            return
        dead = status == 410 or row["url"] is None or attempts >= MAX_ATTEMPTS
        next_ms = now + int(backoff_s(attempts) * 1000)
        # Only while still ours: if our lease ran out, the new owner's outcome stands.
        self._exec("UPDATE webhook_outbox SET attempts = attempts + 1, last_error = ?, next_ms = ?,"
                   " dead_ms = ?, lease_until_ms = NULL, lease_owner = NULL"
                   " WHERE id = ? AND lease_owner = ? AND delivered_ms IS NULL",
                   (reason, next_ms, now if dead else None, row["id"], self.owner))
        log.warning("webhook %s attempt %d failed: %s; %s", row["event_id"], attempts, reason,
                    "dead" if dead else "retry in %.1f s" % ((next_ms - now) / 1000))

    def start(self, every_s=0.5):
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(every_s,), name="webhooks", daemon=True)
        self._thread.start()

    def _run(self, every_s):
        while not self._stop.wait(every_s):
            try:
                self.deliver_due()
            except Exception as e:  # a locked or closed database: try again next round
                log.warning("webhook delivery round failed: %s", e)

    def close(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2 * TIMEOUT_S + 1)
        super().close()

    def stats(self):
        return self._one(
            "SELECT COUNT(CASE WHEN delivered_ms IS NULL AND dead_ms IS NULL THEN 1 END) AS pending,"
            " COUNT(delivered_ms) AS delivered, COUNT(dead_ms) AS dead,"
            " CAST(COALESCE(SUM(attempts), 0) AS BIGINT) AS attempts FROM webhook_outbox")

    def events(self, tenant, limit=50):
        """The tenant's newest events, newest first, with their delivery state."""
        rows = self._all("SELECT event_id, type, body, created_ms, attempts, next_ms, delivered_ms,"
                         " dead_ms, last_error, CASE WHEN delivered_ms IS NOT NULL THEN 'delivered'"
                         " WHEN dead_ms IS NOT NULL THEN 'dead' ELSE 'pending' END AS state"
                         " FROM webhook_outbox WHERE tenant = ? ORDER BY id DESC LIMIT ?", (tenant, limit))
        for row in rows:
            row["data"] = json.loads(row.pop("body"))["data"]
        return rows
