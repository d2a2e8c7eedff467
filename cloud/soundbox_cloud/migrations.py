"""The cloud's one schema, for SQLite and PostgreSQL, as numbered migration steps.

schema_version holds one row per step applied. Opening a database applies the steps it lacks
in one transaction (PostgreSQL: under an advisory lock; SQLite: BEGIN IMMEDIATE), so two
processes opening it at once migrate it once. A database whose newest step is unknown here
was written by a newer cloud: it is refused, never half-understood.

SQLite files made before versioning (no schema_version) get step 1, which is written to be
harmless on them: CREATE ... IF NOT EXISTS, and each column that older releases lacked added
only where it is missing (what store.py's _add_column used to do at every start).

The text is SQLite's dialect; for PostgreSQL every INTEGER becomes BIGINT (ms timestamps
pass 2^31), REAL becomes DOUBLE PRECISION, and {id} (SQLite's rowid alias) an identity.
A new step is appended to STEPS, never an old one edited.
"""
import re
import time

# An arbitrary constant: the advisory lock that serialises migrations of one database.
PG_MIGRATION_LOCK = 0x50B0C10D

BASE_TABLES = """
CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY, state TEXT NOT NULL, fw TEXT, last_seen_ms INTEGER);
CREATE TABLE IF NOT EXISTS payments (
    txn TEXT PRIMARY KEY, device TEXT NOT NULL, amount INTEGER NOT NULL,
    sent_ms INTEGER NOT NULL, sends INTEGER NOT NULL DEFAULT 1,
    status TEXT NOT NULL DEFAULT 'sent', provider TEXT);
CREATE TABLE IF NOT EXISTS acks (
    id {id}, txn TEXT, device TEXT NOT NULL, status TEXT NOT NULL,
    reason TEXT, rx INTEGER, play INTEGER, done INTEGER, received_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS stray_acks (
    id {id}, txn TEXT, device TEXT NOT NULL, status TEXT NOT NULL,
    reason TEXT, received_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS resends (
    txn TEXT PRIMARY KEY, tries INTEGER NOT NULL, next_ms INTEGER NOT NULL, outcome TEXT);
CREATE TABLE IF NOT EXISTS commands (
    id TEXT PRIMARY KEY, device TEXT NOT NULL, tenant TEXT, command TEXT NOT NULL,
    sent_ms INTEGER NOT NULL, status TEXT NOT NULL DEFAULT 'sent', reason TEXT, acked_ms INTEGER);

CREATE TABLE IF NOT EXISTS device_profiles (
    device TEXT PRIMARY KEY, model TEXT, versions TEXT NOT NULL DEFAULT '{}', updated_ms INTEGER);
CREATE TABLE IF NOT EXISTS device_tags (
    device TEXT NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (device, tag));
CREATE TABLE IF NOT EXISTS campaigns (
    id TEXT PRIMARY KEY, created_ms INTEGER NOT NULL, manifest TEXT NOT NULL,
    artifact TEXT NOT NULL, spec TEXT NOT NULL, state TEXT NOT NULL, wave INTEGER NOT NULL,
    reason TEXT NOT NULL DEFAULT '', override_wave INTEGER NOT NULL DEFAULT -1,
    base_failures INTEGER NOT NULL DEFAULT 0, base_finished INTEGER NOT NULL DEFAULT 0,
    updated_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS campaign_devices (
    campaign TEXT NOT NULL, device TEXT NOT NULL, wave INTEGER NOT NULL, position INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending', reason TEXT NOT NULL DEFAULT '',
    have INTEGER, total INTEGER, job_ms INTEGER, status_ms INTEGER, confirmed_ms INTEGER,
    PRIMARY KEY (campaign, device));

CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, tenant TEXT,
    secret_sha256 TEXT NOT NULL, created_ms INTEGER NOT NULL, expires_ms INTEGER,
    revoked_ms INTEGER, last_used_ms INTEGER, rate REAL NOT NULL);

CREATE TABLE IF NOT EXISTS audit (
    id {id}, at_ms INTEGER NOT NULL, key_id TEXT, role TEXT, tenant TEXT,
    action TEXT NOT NULL, target TEXT, status INTEGER NOT NULL, detail TEXT);

CREATE TABLE IF NOT EXISTS webhook_endpoints (
    tenant TEXT PRIMARY KEY, url TEXT NOT NULL, secret TEXT NOT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS webhook_outbox (
    id {id}, event_id TEXT UNIQUE NOT NULL, tenant TEXT NOT NULL,
    type TEXT NOT NULL, body TEXT NOT NULL, created_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_ms INTEGER NOT NULL,
    lease_until_ms INTEGER, lease_owner TEXT, delivered_ms INTEGER, dead_ms INTEGER, last_error TEXT);
"""

# Columns added to payments and devices after the first release (files from then lack them).
LATER_COLUMNS = (("payments", "provider", "TEXT"), ("payments", "tenant", "TEXT"), ("payments", "key_id", "TEXT"),
                 ("devices", "tenant", "TEXT"), ("devices", "name", "TEXT"), ("devices", "vpa", "TEXT"),
                 ("devices", "language", "TEXT"), ("devices", "registered_ms", "INTEGER"))

BASE_INDEXES = """
CREATE INDEX IF NOT EXISTS acks_by_txn ON acks (txn, device);
CREATE INDEX IF NOT EXISTS payments_by_status ON payments (status);
CREATE INDEX IF NOT EXISTS commands_by_device ON commands (device, sent_ms);
CREATE INDEX IF NOT EXISTS campaign_devices_by_device ON campaign_devices (device);
CREATE INDEX IF NOT EXISTS payments_by_device ON payments (device, sent_ms);
CREATE INDEX IF NOT EXISTS audit_by_tenant ON audit (tenant, id);
CREATE INDEX IF NOT EXISTS webhook_outbox_due ON webhook_outbox (next_ms)
    WHERE delivered_ms IS NULL AND dead_ms IS NULL;
CREATE INDEX IF NOT EXISTS webhook_outbox_by_tenant ON webhook_outbox (tenant, id);
"""


class AddColumn:
    """ALTER TABLE ... ADD COLUMN where the column is missing (safe on files that have it)."""

    def __init__(self, table, column, kind):
        self.table, self.column, self.kind = table, column, kind

    def apply(self, engine, tx):
        if self.column not in engine.columns(tx, self.table):
            tx.run("ALTER TABLE %s ADD COLUMN %s %s" % (self.table, self.column, dialect(engine, self.kind)))


# (version, what it does, [SQL text or AddColumn, ...]); append only.
STEPS = [
    (1, "the tables and indexes of the first versioned release",
     [BASE_TABLES] + [AddColumn(*c) for c in LATER_COLUMNS] + [BASE_INDEXES]),
]
LATEST = STEPS[-1][0]

VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL)"


def dialect(engine, sql):
    if engine.kind != "postgresql":
        return sql.replace("{id}", "INTEGER PRIMARY KEY")
    sql = re.sub(r"\bINTEGER\b", "BIGINT", sql)
    sql = re.sub(r"\bREAL\b", "DOUBLE PRECISION", sql)
    return sql.replace("{id}", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")


def statements(text):
    return [s.strip() for s in text.split(";") if s.strip()]


def version(engine):
    """The newest step applied (0: none, or no schema_version table yet)."""
    with engine.statement() as tx:
        if "version" not in engine.columns(tx, "schema_version"):
            return 0
        return tx.one("SELECT COALESCE(MAX(version), 0) AS v FROM schema_version")["v"]


def migrate(engine, now_ms=None):
    """Apply the steps the database lacks; returns the versions applied."""
    from soundbox_cloud.errors import CloudError

    if version(engine) == LATEST:   # the usual open: one read, no write lock
        return []
    applied = []
    with engine.transaction() as tx:
        if engine.kind == "postgresql":
            tx.one("SELECT pg_advisory_xact_lock(?) AS locked", (PG_MIGRATION_LOCK,))
        tx.run(dialect(engine, VERSION_TABLE))
        current = tx.one("SELECT COALESCE(MAX(version), 0) AS v FROM schema_version")["v"]
        if current > LATEST:
            raise CloudError("database schema is at version %d, newer than this cloud's %d: "
                             "run a newer cloud" % (current, LATEST))
        for number, _, actions in STEPS:
            if number <= current:
                continue
            for action in actions:
                if isinstance(action, AddColumn):
                    action.apply(engine, tx)
                else:
                    for sql in statements(dialect(engine, action)):
                        tx.run(sql)
            tx.run("INSERT INTO schema_version (version, applied_ms) VALUES (?, ?)",
                   (number, int(time.time() * 1000) if now_ms is None else now_ms))
            applied.append(number)
    return applied
