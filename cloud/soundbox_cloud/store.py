"""SQLite store for devices, payments, acks and commands: one connection, one lock, WAL mode."""
import json
import os
import sqlite3
import threading

from soundbox_cloud.errors import CloudError, Rejected

SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY, state TEXT NOT NULL, fw TEXT, last_seen_ms INTEGER);
CREATE TABLE IF NOT EXISTS payments (
    txn TEXT PRIMARY KEY, device TEXT NOT NULL, amount INTEGER NOT NULL,
    sent_ms INTEGER NOT NULL, sends INTEGER NOT NULL DEFAULT 1,
    status TEXT NOT NULL DEFAULT 'sent', provider TEXT);
CREATE TABLE IF NOT EXISTS acks (
    id INTEGER PRIMARY KEY, txn TEXT, device TEXT NOT NULL, status TEXT NOT NULL,
    reason TEXT, rx INTEGER, play INTEGER, done INTEGER, received_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS acks_by_txn ON acks (txn, device);
CREATE TABLE IF NOT EXISTS stray_acks (
    id INTEGER PRIMARY KEY, txn TEXT, device TEXT NOT NULL, status TEXT NOT NULL,
    reason TEXT, received_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS resends (
    txn TEXT PRIMARY KEY, tries INTEGER NOT NULL, next_ms INTEGER NOT NULL, outcome TEXT);
CREATE INDEX IF NOT EXISTS payments_by_status ON payments (status);
CREATE TABLE IF NOT EXISTS commands (
    id TEXT PRIMARY KEY, device TEXT NOT NULL, tenant TEXT, command TEXT NOT NULL,
    sent_ms INTEGER NOT NULL, status TEXT NOT NULL DEFAULT 'sent', reason TEXT, acked_ms INTEGER);
CREATE INDEX IF NOT EXISTS commands_by_device ON commands (device, sent_ms);
"""
# Columns added after the first release; _add_column brings older files up to date.
LATER_COLUMNS = (("payments", "provider", "TEXT"), ("payments", "tenant", "TEXT"), ("payments", "key_id", "TEXT"),
                 ("devices", "tenant", "TEXT"), ("devices", "name", "TEXT"), ("devices", "vpa", "TEXT"),
                 ("devices", "language", "TEXT"), ("devices", "registered_ms", "INTEGER"))
PROFILE_FIELDS = ("name", "vpa", "language")

# An ack whose txn we never sent (or without a txn) settles nothing: it is counted, and only
# the newest STRAY_ACKS_KEPT are kept to look at, so a device flooding them (measured before
# this cap: 1.1 MB/s of rows, for ever) costs a bounded table. Acks for a real txn are kept,
# up to ACKS_PER_TXN: a box says at most a few (announced, a duplicate per re-send), so the
# rest of a flood on one txn is only counted.
STRAY_ACKS_KEPT = 1000
ACKS_PER_TXN = 32

# Acks that settle a payment; a "duplicate" ack only says the device had already seen it.
# "stale": authentic but too old to announce alone; the device said it in its offline summary.
FINAL_STATUSES = ("announced", "stale", "invalid", "failed")
# Set by the cloud, not a device: no ack within the deadline. A late device ack still wins.
TIMED_OUT = "timed_out"
UNSETTLED = ("sent", TIMED_OUT)

# Acks from a device other than the payment's are kept but never count for the payment.
OWN_ACKS = "acks a JOIN payments p ON a.txn = p.txn AND a.device = p.device"

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


def private_file(path):
    """Create the database file owner-only (0600) before SQLite opens it, and tighten an
    older one: it holds payments and key hashes. SQLite gives -wal and -shm the same mode.
    Never open and close an existing one: closing any descriptor of a file drops every
    POSIX lock this process holds on it, SQLite's included, and another process would
    then take the WAL for its own (measured: the cloud's writes unseen by other processes)."""
    if path == ":memory:" or path.startswith("file:"):
        return
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, 0o600)


class Database:
    """One SQLite connection (WAL) shared by the paho thread and the HTTP threads; the lock
    serialises it. Subclasses name their tables in `schema`."""

    def __init__(self, path, schema):
        self.path = str(path)
        self._lock = threading.Lock()
        try:
            private_file(self.path)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                       timeout=5.0)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a commit survives the process dying (what a restart or kill -9 does)
            # but may be lost to a power cut before the next checkpoint; FULL's fsync per
            # commit cost a fifth of the throughput. A lost record's box still answers from its
            # ledger, so a PSP's retry of the same txn is never announced twice.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(schema)
        except sqlite3.Error as e:
            raise CloudError("cannot open database %s: %s" % (self.path, e)) from None
        except OSError as e:
            raise CloudError("cannot open database %s: %s" % (self.path, e.strerror or e)) from None

    def close(self):
        with self._lock:
            self._db.close()

    def _all(self, sql, args=()):
        with self._lock:
            return [dict(row) for row in self._db.execute(sql, args)]

    def _one(self, sql, args=()):
        rows = self._all(sql, args)
        return rows[0] if rows else None


class Store(Database):
    """Devices, payments and acks."""

    def __init__(self, path):
        super().__init__(path, SCHEMA)
        for table, column, kind in LATER_COLUMNS:
            self._add_column(table, column, kind)

    def _add_column(self, table, column, kind):
        with self._lock:
            columns = [row["name"] for row in self._db.execute("PRAGMA table_info(%s)" % table)]
            if column not in columns:
                self._db.execute("ALTER TABLE %s ADD COLUMN %s %s" % (table, column, kind))

    # devices

    def set_device_status(self, device, state, fw, now_ms):
        with self._lock:
            self._db.execute(
                "INSERT INTO devices (id, state, fw, last_seen_ms) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET state = excluded.state,"
                " fw = COALESCE(excluded.fw, fw), last_seen_ms = excluded.last_seen_ms",
                (device, state, fw, now_ms))

    def touch_device(self, device, fw, now_ms):
        """Telemetry from a known device; unknown devices only appear through their status."""
        with self._lock:
            self._db.execute("UPDATE devices SET last_seen_ms = ?, fw = COALESCE(?, fw) WHERE id = ?",
                             (now_ms, fw, device))

    def register(self, device, tenant, profile, now_ms):
        """Register a device to a tenant with its merchant profile (name, vpa, language);
        a device that has not connected yet is kept as 'unseen'. Returns the record."""
        fields = [profile.get(f) for f in PROFILE_FIELDS]
        with self._lock:
            self._db.execute(
                "INSERT INTO devices (id, state, tenant, name, vpa, language, registered_ms)"
                " VALUES (?, 'unseen', ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                " tenant = excluded.tenant, name = COALESCE(excluded.name, name),"
                " vpa = COALESCE(excluded.vpa, vpa), language = COALESCE(excluded.language, language),"
                " registered_ms = COALESCE(registered_ms, excluded.registered_ms)",
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
        with self._lock:
            # A new txn, the usual case, is one statement.
            inserted = self._db.execute(
                "INSERT INTO payments (txn, device, amount, sent_ms, provider, tenant, key_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (txn) DO NOTHING RETURNING *",
                (txn, device, amount, now_ms, provider, tenant, key_id)).fetchone()
            if inserted is not None:
                return dict(inserted)
            # A repeat: IMMEDIATE, so another handler process sharing this file cannot slip in
            # between the comparison and the count (payments are never deleted).
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT device, amount, provider, tenant FROM payments WHERE txn = ?",
                                       (txn,)).fetchone()
                if row["tenant"] != tenant:
                    raise Rejected(409, "txn", "txn %s is taken; use another txn" % txn)
                elif (row["device"], row["amount"]) != (device, amount):
                    raise Rejected(409, "txn", "txn %s was already sent to %s for %d paise"
                                   % (txn, row["device"], row["amount"]))
                elif row["provider"] != provider:
                    raise Rejected(409, "provider", "txn %s was already sent with provider %s"
                                   % (txn, row["provider"] or "none"))
                else:
                    self._db.execute("UPDATE payments SET sends = sends + 1 WHERE txn = ?", (txn,))
                record = dict(self._db.execute("SELECT * FROM payments WHERE txn = ?", (txn,)).fetchone())
                self._db.execute("COMMIT")
                return record
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def time_out(self, sent_before_ms, limit=1000):
        """Mark payments still 'sent' since before sent_before_ms as timed out; returns them."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                rows = [dict(r) for r in self._db.execute(
                    "SELECT * FROM payments WHERE status = 'sent' AND sent_ms < ? ORDER BY sent_ms LIMIT ?",
                    (sent_before_ms, limit))]
                self._db.executemany("UPDATE payments SET status = ? WHERE txn = ? AND status = 'sent'",
                                     [(TIMED_OUT, r["txn"]) for r in rows])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        for r in rows:
            r["status"] = TIMED_OUT
        return rows

    def add_ack(self, device, ack, now_ms):
        """Keep the ack and settle the payment's status if the ack comes from its own device;
        an ack for an unknown txn is counted and kept in the capped stray table. Returns
        (outcome, settled): outcome "kept", "unknown" or "excess" (kept only as a count);
        settled the payment record when this ack changed its status, else None."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                outcome = self._triage_ack(ack["txn"])
                if outcome == "unknown":
                    self._keep_stray(device, ack, now_ms)
                if outcome != "kept":
                    self._count(outcome + "_acks")
                    self._db.execute("COMMIT")
                    return outcome, None
                self._db.execute(
                    "INSERT INTO acks (txn, device, status, reason, rx, play, done, received_ms)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (ack["txn"], device, ack["status"], ack["reason"], ack["rx"], ack["play"],
                     ack["done"], now_ms))
                # First ack sets the status (a late one replaces our 'timed_out'); a later final
                # one replaces only a "duplicate", except that "announced" also replaces "invalid"
                # and "failed": a forged notification (bad MAC) under a real txn, or a failed
                # playback the broker redelivered, must not hide that the merchant did hear it.
                settled = self._db.execute(
                    "UPDATE payments SET status = ? WHERE txn = ? AND device = ?"
                    " AND (status IN ('sent', 'timed_out') OR (status = 'duplicate' AND ?)"
                    " OR (? AND status IN ('invalid', 'failed'))) RETURNING *",
                    (ack["status"], ack["txn"], device, ack["status"] in FINAL_STATUSES,
                     ack["status"] == "announced")).fetchone()
                self._db.execute("COMMIT")
                return "kept", None if settled is None else dict(settled)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _triage_ack(self, txn):
        """"unknown" (no such payment), "excess" (its acks are at the cap) or "kept"."""
        row = None if txn is None else self._db.execute(
            "SELECT (SELECT COUNT(*) FROM acks WHERE txn = ?1) FROM payments WHERE txn = ?1", (txn,)).fetchone()
        if row is None:
            return "unknown"
        return "excess" if row[0] >= ACKS_PER_TXN else "kept"

    def _keep_stray(self, device, ack, now_ms):
        cursor = self._db.execute(
            "INSERT INTO stray_acks (txn, device, status, reason, received_ms) VALUES (?, ?, ?, ?, ?)",
            (ack["txn"], device, ack["status"], ack["reason"], now_ms))
        self._db.execute("DELETE FROM stray_acks WHERE id <= ?", (cursor.lastrowid - STRAY_ACKS_KEPT,))

    def _count(self, name, by=1):
        self._db.execute("INSERT INTO counters (name, value) VALUES (?, ?)"
                         " ON CONFLICT (name) DO UPDATE SET value = value + excluded.value", (name, by))

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
        with self._lock:
            self._db.execute("INSERT INTO resends (txn, tries, next_ms, outcome) VALUES (?, ?, ?, ?)"
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
        scope = "(SELECT * FROM payments WHERE ?1 IS NULL OR tenant = ?1)"
        return self._one(
            ("SELECT"
            " (SELECT COUNT(*) FROM payments) AS sent,"
            " (SELECT COUNT(*) FROM payments WHERE status = 'announced') AS announced,"
            " (SELECT COUNT(*) FROM payments WHERE status NOT IN ('sent', 'timed_out')) AS acked,"
            " (SELECT COUNT(*) FROM payments WHERE status = 'invalid') AS invalid,"
            " (SELECT COUNT(*) FROM payments WHERE status = 'stale') AS stale,"
            " (SELECT COUNT(*) FROM %s WHERE a.status = 'duplicate') AS duplicate_acks,"
            " (SELECT COUNT(*) FROM (SELECT a.txn FROM %s WHERE a.status = 'announced'"
            "   GROUP BY a.txn HAVING COUNT(*) > 1)) AS duplicated,"
            " (SELECT COUNT(*) FROM payments WHERE status = 'sent') AS pending,"
            " (SELECT COALESCE(SUM(value), 0) FROM counters WHERE name = 'unknown_acks') AS unknown_acks,"
            " (SELECT COALESCE(SUM(value), 0) FROM counters WHERE name = 'excess_acks') AS excess_acks,"
            " (SELECT COALESCE(SUM(tries), 0) FROM resends) AS resends,"
            " (SELECT COUNT(*) FROM resends r JOIN payments p ON p.txn = r.txn"
            "   WHERE r.outcome = 'gave_up' AND p.status = 'sent') AS resends_given_up,"
            " (SELECT COUNT(*) FROM payments WHERE status = 'timed_out') AS timed_out"
            % (OWN_ACKS, OWN_ACKS)).replace("FROM payments", "FROM " + scope).replace(
                "JOIN payments", "JOIN " + scope), (tenant,))

    def status_counts(self):
        """{status: payments} over all payments (for metrics)."""
        return {r["status"]: r["n"] for r in self._all("SELECT status, COUNT(*) AS n FROM payments GROUP BY status")}

    # commands to devices and their acks (sb/<id>/cmdack)

    def add_command(self, command_id, device, tenant, command, now_ms):
        with self._lock:
            self._db.execute("INSERT INTO commands (id, device, tenant, command, sent_ms) VALUES (?, ?, ?, ?, ?)",
                             (command_id, device, tenant, json.dumps(command, separators=(",", ":")), now_ms))

    def forget_command(self, command_id):
        """Drop a command that could not be published after all."""
        with self._lock:
            self._db.execute("DELETE FROM commands WHERE id = ?", (command_id,))

    def unacked_commands(self, device, since_ms):
        return self._one("SELECT COUNT(*) AS n FROM commands WHERE device = ? AND status = 'sent'"
                         " AND sent_ms >= ?", (device, since_ms))["n"]

    def ack_command(self, device, command_id, ok, reason, now_ms):
        """Record the device's answer to its own command; False if there is no such command."""
        with self._lock:
            return self._db.execute(
                "UPDATE commands SET status = ?, reason = ?, acked_ms = ? WHERE id = ? AND device = ?"
                " AND status = 'sent'", ("ok" if ok else "refused", reason, now_ms, command_id, device)).rowcount == 1

    def command(self, device, command_id):
        record = self._one("SELECT * FROM commands WHERE id = ? AND device = ?", (command_id, device))
        if record is not None:
            record["command"] = json.loads(record["command"])
        return record

    def latencies(self, tenant=None):
        """{measure: [ms, ...]} over the acked payments (of one tenant, unless None), one
        entry per payment (see LATENCIES)."""
        rows = self._all("SELECT %s FROM payments p WHERE p.status NOT IN ('sent', 'timed_out')"
                         " AND (?1 IS NULL OR p.tenant = ?1)" % LATENCY_COLUMNS, (tenant,))
        return {name: [r[name] for r in rows if r[name] is not None] for name in LATENCIES}
