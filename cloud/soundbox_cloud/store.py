"""Devices, payments, acks and commands, in the cloud's database (SQLite or PostgreSQL, see db.py;
the tables are migrations.py's)."""
import json

from soundbox import wire
from soundbox_cloud.db import Database, private_file  # noqa: F401 (private_file: older importers)
from soundbox_cloud.errors import Rejected
from soundbox_cloud.migrations import LATER_COLUMNS  # noqa: F401 (the columns older files lacked)

PROFILE_FIELDS = ("name", "vpa", "language")

# An ack whose txn we never sent (or without a txn) settles nothing: it is counted, and only
# the newest STRAY_ACKS_KEPT are kept to look at, so a device flooding them (measured before
# this cap: 1.1 MB/s of rows, for ever) costs a bounded table. Acks for a real txn are kept,
# up to ACKS_PER_TXN: a box says at most a few (announced, a duplicate per re-send), so the
# rest of a flood on one txn is only counted.
STRAY_ACKS_KEPT = 1000
ACKS_PER_TXN = 32

# Set by the cloud, not a device: no ack within the deadline. A late device ack still wins.
TIMED_OUT = "timed_out"
UNSETTLED = ("sent", TIMED_OUT)

# Acks from a device other than the payment's are kept but never count for the payment.
OWN_ACKS = "acks a JOIN payments p ON a.txn = p.txn AND a.device = p.device"
SCOPED_OWN_ACKS = OWN_ACKS.replace("JOIN payments", "JOIN scoped")   # counts(): one tenant's

# Latencies from the first notification, per payment: to the device receiving it (the
# transport alone), to the announcement starting (includes waiting behind earlier
# announcements on the same speaker), to the ack reaching us (the cloud's own clock).
LATENCIES = {
    "notify_to_receive": """(SELECT a.rx FROM acks a WHERE a.txn = p.txn AND a.device = p.device
                             ORDER BY a.id LIMIT 1) - p.sent_ms""",
    "notify_to_announce": """(SELECT a.play FROM acks a WHERE a.txn = p.txn AND a.device = p.device
                              AND a.status = 'announced' ORDER BY a.id LIMIT 1) - p.sent_ms""",
    "notify_to_ack": """(SELECT MIN(a.received_ms) FROM acks a
                         WHERE a.txn = p.txn AND a.device = p.device) - p.sent_ms""",
}
LATENCY_COLUMNS = ", ".join("%s AS %s" % (sql, name) for name, sql in LATENCIES.items())


class Store(Database):
    """Devices, payments and acks."""

    def __init__(self, path):
        super().__init__(path)

    # devices

    def set_device_status(self, device, state, fw, now_ms):
        self._change(
            "INSERT INTO devices (id, state, fw, last_seen_ms) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET state = excluded.state,"
            " fw = COALESCE(excluded.fw, devices.fw), last_seen_ms = excluded.last_seen_ms",
            (device, state, fw, now_ms))

    def touch_device(self, device, fw, now_ms):
        """Telemetry from a known device; unknown devices only appear through their status."""
        self._change("UPDATE devices SET last_seen_ms = ?, fw = COALESCE(?, fw) WHERE id = ?",
                  (now_ms, fw, device))

    def register(self, device, tenant, profile, now_ms):
        """Register a device to a tenant with its merchant profile (name, vpa, language);
        a device that has not connected yet is kept as 'unseen'. Returns the record."""
        fields = [profile.get(f) for f in PROFILE_FIELDS]
        self._change(
            "INSERT INTO devices (id, state, tenant, name, vpa, language, registered_ms)"
            " VALUES (?, 'unseen', ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
            " tenant = excluded.tenant, name = COALESCE(excluded.name, devices.name),"
            " vpa = COALESCE(excluded.vpa, devices.vpa),"
            " language = COALESCE(excluded.language, devices.language),"
            " registered_ms = COALESCE(devices.registered_ms, excluded.registered_ms)",
            (device, tenant, *fields, now_ms))
        return self.device(device)

    def device(self, device):
        return self._one("SELECT * FROM devices WHERE id = ?", (device,))

    def devices(self, tenant=None):
        """Every device (tenant None), or one tenant's."""
        if tenant is None:
            return self._all("SELECT * FROM devices ORDER BY id")
        return self._all("SELECT * FROM devices WHERE tenant = ? ORDER BY id", (tenant,))

    def online_count(self):
        return self._one("SELECT COUNT(*) AS n FROM devices WHERE state = 'online'")["n"]

    # payments

    def record_send(self, device, amount, txn, now_ms, provider=None, tenant=None, key_id=None):
        """Record a new payment, or count one more send of the same one; Rejected(409) on a clash.
        A clash with another tenant's payment says nothing about that payment. key_id: the
        API key that first sent it (the payment's own audit record)."""
        # A new txn, the usual case, is one statement.
        inserted = self._one(
            "INSERT INTO payments (txn, device, amount, sent_ms, provider, tenant, key_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (txn) DO NOTHING RETURNING *",
            (txn, device, amount, now_ms, provider, tenant, key_id))
        if inserted is not None:
            return inserted
        # A repeat: in a transaction holding the row (SQLite: the file), so another handler
        # process cannot slip in between the comparison and the count (payments are never deleted).
        with self._tx() as tx:
            row = tx.one("SELECT device, amount, provider, tenant FROM payments WHERE txn = ?" + self.for_update,
                         (txn,))
            if row["tenant"] != tenant:
                raise Rejected(409, "txn", "txn %s is taken; use another txn" % txn)
            elif (row["device"], row["amount"]) != (device, amount):
                raise Rejected(409, "txn", "txn %s was already sent to %s for %d paise"
                               % (txn, row["device"], row["amount"]))
            elif row["provider"] != provider:
                raise Rejected(409, "provider", "txn %s was already sent with provider %s"
                               % (txn, row["provider"] or "none"))
            return tx.one("UPDATE payments SET sends = sends + 1 WHERE txn = ? RETURNING *", (txn,))

    def time_out(self, sent_before_ms, limit=1000):
        """Mark payments still 'sent' since before sent_before_ms as timed out; returns them.
        One statement: a payment settled meanwhile by another process (status no longer
        'sent' when its row is written) is left alone, and two handlers never both time out one."""
        rows = self._all(
            "UPDATE payments SET status = ? WHERE status = 'sent' AND txn IN (SELECT txn FROM payments"
            " WHERE status = 'sent' AND sent_ms < ? ORDER BY sent_ms LIMIT ?) RETURNING *",
            (TIMED_OUT, sent_before_ms, limit))
        return sorted(rows, key=lambda r: (r["sent_ms"], r["txn"]))

    def add_ack(self, device, ack, now_ms):
        """Keep the ack and settle the payment's status if the ack comes from its own device;
        an ack for an unknown txn is counted and kept in the capped stray table. Returns
        (outcome, settled): outcome "kept", "unknown" or "excess" (kept only as a count);
        settled the payment record when this ack changed its status, else None."""
        with self._tx() as tx:
            outcome = self._triage_ack(tx, ack["txn"])
            if outcome == "unknown":
                self._keep_stray(tx, device, ack, now_ms)
            if outcome != "kept":
                self._count(tx, outcome + "_acks")
                return outcome, None
            tx.run(
                "INSERT INTO acks (txn, device, status, reason, rx, play, done, received_ms)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (ack["txn"], device, ack["status"], ack["reason"], ack["rx"], ack["play"],
                 ack["done"], now_ms))
            # First ack sets the status (a late one replaces our 'timed_out'); a later final
            # one replaces only a "duplicate", except that "announced" also replaces "invalid"
            # and "failed": a forged notification (bad MAC) under a real txn, or a failed
            # playback the broker redelivered, must not hide that the merchant did hear it.
            # A duplicate that says how the box finished the payment ("was", from its ledger:
            # the broker lost the first ack) settles it as that ack would have; the row kept
            # above stays "duplicate", so it is never counted as a second announcement.
            status = ack.get("was") or ack["status"]
            settled = tx.one(
                "UPDATE payments SET status = ? WHERE txn = ? AND device = ?"
                " AND (status IN ('sent', 'timed_out') OR (status = 'duplicate' AND ?)"
                " OR (? AND status IN ('invalid', 'failed'))) RETURNING *",
                (status, ack["txn"], device, status in wire.FINAL_ACK_STATUSES, status == wire.ANNOUNCED))
            return "kept", settled

    def _triage_ack(self, tx, txn):
        """"unknown" (no such payment), "excess" (its acks are at the cap) or "kept". Holds the
        payment's row (PostgreSQL) so acks for one txn are counted one after another."""
        if txn is None or tx.one("SELECT txn FROM payments WHERE txn = ?" + self.for_update, (txn,)) is None:
            return "unknown"
        n = tx.one("SELECT COUNT(*) AS n FROM acks WHERE txn = ?", (txn,))["n"]
        return "excess" if n >= ACKS_PER_TXN else "kept"

    def _keep_stray(self, tx, device, ack, now_ms):
        kept = tx.one(
            "INSERT INTO stray_acks (txn, device, status, reason, received_ms) VALUES (?, ?, ?, ?, ?)"
            " RETURNING id", (ack["txn"], device, ack["status"], ack["reason"], now_ms))["id"]
        tx.run("DELETE FROM stray_acks WHERE id <= ?", (kept - STRAY_ACKS_KEPT,))

    def _count(self, tx, name, by=1):
        tx.run("INSERT INTO counters (name, value) VALUES (?, ?)"
               " ON CONFLICT (name) DO UPDATE SET value = counters.value + excluded.value", (name, by))

    # re-sends of notifications still unacked (see CloudHandler.resend_due)

    def due_resends(self, now_ms, sent_before_ms, limit):
        """Payments unacked (sent or timed out) to an online device whose next re-send is due: never re-sent
        and first sent at or before sent_before_ms, or past their next_ms and not given up."""
        return self._all(
            "SELECT p.txn, p.device, p.amount, p.sent_ms, p.provider, COALESCE(r.tries, 0) AS tries"
            " FROM payments p JOIN devices d ON d.id = p.device AND d.state = 'online'"
            " LEFT JOIN resends r ON r.txn = p.txn"
            " WHERE p.status IN ('sent', 'timed_out') AND ((r.txn IS NULL AND p.sent_ms <= ?)"
            "   OR (r.outcome IS NULL AND r.next_ms <= ?))"
            " ORDER BY p.sent_ms LIMIT ?", (sent_before_ms, now_ms, limit))

    def note_resend(self, txn, tries, next_ms, outcome=None):
        """Record one more re-send (outcome None), or that we gave up ('gave_up')."""
        self._change("INSERT INTO resends (txn, tries, next_ms, outcome) VALUES (?, ?, ?, ?)"
                  " ON CONFLICT (txn) DO UPDATE SET tries = excluded.tries,"
                  " next_ms = excluded.next_ms, outcome = excluded.outcome",
                  (txn, tries, next_ms, outcome))

    def resend(self, txn):
        return self._one("SELECT tries, next_ms, outcome FROM resends WHERE txn = ?", (txn,))

    def counter(self, name):
        row = self._one("SELECT value FROM counters WHERE name = ?", (name,))
        return row["value"] if row else 0

    def stray_acks(self):
        """The newest stray acks kept (at most STRAY_ACKS_KEPT), oldest first."""
        return self._all("SELECT txn, device, status, reason, received_ms FROM stray_acks ORDER BY id")

    def payment(self, txn):
        """The payment with its latencies and every ack for its txn, or None."""
        record = self._one("SELECT p.*, %s FROM payments p WHERE p.txn = ?" % LATENCY_COLUMNS, (txn,))
        if record is None:
            return None
        record["latency_ms"] = {name: record.pop(name) for name in LATENCIES}
        record["acks"] = self._all(
            "SELECT device, status, reason, rx, play, done, received_ms FROM acks"
            " WHERE txn = ? ORDER BY id", (txn,))
        return record

    def counts(self, tenant=None):
        """Payment and ack counts over every payment (tenant None) or one tenant's."""
        # CAST: PostgreSQL's SUM of a BIGINT is a NUMERIC (a Decimal in Python).
        return self._one(
            "WITH scoped AS (SELECT * FROM payments WHERE CAST(? AS TEXT) IS NULL OR tenant = ?)"
            " SELECT"
            " (SELECT COUNT(*) FROM scoped) AS sent,"
            " (SELECT COUNT(*) FROM scoped WHERE status = 'announced') AS announced,"
            " (SELECT COUNT(*) FROM scoped WHERE status NOT IN ('sent', 'timed_out')) AS acked,"
            " (SELECT COUNT(*) FROM scoped WHERE status = 'invalid') AS invalid,"
            " (SELECT COUNT(*) FROM scoped WHERE status = 'stale') AS stale,"
            " (SELECT COUNT(*) FROM %s WHERE a.status = 'duplicate') AS duplicate_acks,"
            " (SELECT COUNT(*) FROM (SELECT a.txn FROM %s WHERE a.status = 'announced'"
            "   GROUP BY a.txn HAVING COUNT(*) > 1) AS twice) AS duplicated,"
            " (SELECT COUNT(*) FROM scoped WHERE status = 'sent') AS pending,"
            " (SELECT CAST(COALESCE(SUM(value), 0) AS BIGINT) FROM counters WHERE name = 'unknown_acks')"
            "   AS unknown_acks,"
            " (SELECT CAST(COALESCE(SUM(value), 0) AS BIGINT) FROM counters WHERE name = 'excess_acks')"
            "   AS excess_acks,"
            " (SELECT CAST(COALESCE(SUM(tries), 0) AS BIGINT) FROM resends) AS resends,"
            " (SELECT COUNT(*) FROM resends r JOIN scoped p ON p.txn = r.txn"
            "   WHERE r.outcome = 'gave_up' AND p.status = 'sent') AS resends_given_up,"
            " (SELECT COUNT(*) FROM scoped WHERE status = 'timed_out') AS timed_out"
            % (SCOPED_OWN_ACKS, SCOPED_OWN_ACKS), (tenant, tenant))

    def status_counts(self):
        """{status: payments} over all payments (for metrics)."""
        return {r["status"]: r["n"] for r in self._all("SELECT status, COUNT(*) AS n FROM payments GROUP BY status")}

    # commands to devices and their acks (sb/<id>/cmdack)

    def add_command(self, command_id, device, tenant, command, now_ms):
        self._change("INSERT INTO commands (id, device, tenant, command, sent_ms) VALUES (?, ?, ?, ?, ?)",
                  (command_id, device, tenant, json.dumps(command, separators=(",", ":")), now_ms))

    def forget_command(self, command_id):
        """Drop a command that could not be published after all."""
        self._change("DELETE FROM commands WHERE id = ?", (command_id,))

    def unacked_commands(self, device, since_ms):
        return self._one("SELECT COUNT(*) AS n FROM commands WHERE device = ? AND status = 'sent'"
                         " AND sent_ms >= ?", (device, since_ms))["n"]

    def ack_command(self, device, command_id, ok, reason, now_ms):
        """Record the device's answer to its own command; False if there is no such command."""
        return self._change(
            "UPDATE commands SET status = ?, reason = ?, acked_ms = ? WHERE id = ? AND device = ?"
            " AND status = 'sent'", ("ok" if ok else "refused", reason, now_ms, command_id, device)) == 1

    def command(self, device, command_id):
        record = self._one("SELECT * FROM commands WHERE id = ? AND device = ?", (command_id, device))
        if record is not None:
            record["command"] = json.loads(record["command"])
        return record

    def latencies(self, tenant=None):
        """{measure: [ms, ...]} over the acked payments (of one tenant, unless None), one
        entry per payment (see LATENCIES)."""
        rows = self._all("SELECT %s FROM payments p WHERE p.status NOT IN ('sent', 'timed_out')"
                         " AND (CAST(? AS TEXT) IS NULL OR p.tenant = ?)" % LATENCY_COLUMNS, (tenant, tenant))
        return {name: [r[name] for r in rows if r[name] is not None] for name in LATENCIES}
