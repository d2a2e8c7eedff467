"""SQLite tables for OTA: device profiles (model, versions), tags, campaigns and their devices.

Lives in the handler's database file (own connection, WAL mode), so the campaign engine
can ask the payments and acks tables whether an updated device still acks payments.
"""
import json
import sqlite3

from soundbox_cloud.errors import CloudError
from soundbox_cloud.store import Database

SCHEMA = """
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
CREATE INDEX IF NOT EXISTS campaign_devices_by_device ON campaign_devices (device);
"""
# The payments table belongs to store.py; this index serves the "still acking?" question.
PAYMENTS_INDEX = "CREATE INDEX IF NOT EXISTS payments_by_device ON payments (device, sent_ms)"

CAMPAIGN_FIELDS = ("wave", "state", "reason", "override_wave", "base_failures", "base_finished")
DEVICE_FIELDS = ("state", "reason", "have", "total", "job_ms", "status_ms", "confirmed_ms")


class CampaignStore(Database):
    def __init__(self, path):
        super().__init__(path, SCHEMA)
        try:
            if self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'payments'").fetchone():
                self._db.execute(PAYMENTS_INDEX)
        except sqlite3.Error as e:
            raise CloudError("cannot open database %s: %s" % (self.path, e)) from None

    def _exec(self, sql, args=()):
        with self._lock:
            self._db.execute(sql, args)

    # device profiles and tags

    def set_profile(self, device, model, versions, now_ms):
        """Merge what telemetry or an OTA status says about a device; None leaves a value alone."""
        with self._lock:
            row = self._db.execute("SELECT model, versions FROM device_profiles WHERE device = ?",
                                   (device,)).fetchone()
            merged = json.loads(row["versions"]) if row else {}
            merged.update(versions or {})
            self._db.execute(
                "INSERT INTO device_profiles (device, model, versions, updated_ms) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (device) DO UPDATE SET model = COALESCE(excluded.model, model),"
                " versions = excluded.versions, updated_ms = excluded.updated_ms",
                (device, model, json.dumps(merged, sort_keys=True), now_ms))

    def profiles(self):
        """{device: {"model", "versions", "fw", "tags"}} for every registered device."""
        rows = self._all("SELECT d.id AS device, d.fw, p.model, p.versions FROM devices d"
                         " LEFT JOIN device_profiles p ON p.device = d.id")
        tags = {}
        for row in self._all("SELECT device, tag FROM device_tags"):
            tags.setdefault(row["device"], set()).add(row["tag"])
        return {r["device"]: {"model": r["model"], "fw": r["fw"],
                              "versions": json.loads(r["versions"]) if r["versions"] else {},
                              "tags": tags.get(r["device"], set())} for r in rows}

    def tags(self, device):
        return sorted(r["tag"] for r in self._all("SELECT tag FROM device_tags WHERE device = ?", (device,)))

    def change_tags(self, device, add, remove):
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany("INSERT OR IGNORE INTO device_tags (device, tag) VALUES (?, ?)",
                                     [(device, t) for t in add])
                self._db.executemany("DELETE FROM device_tags WHERE device = ? AND tag = ?",
                                     [(device, t) for t in remove])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # campaigns

    def add_campaign(self, campaign, devices):
        """campaign: dict of the campaigns columns; devices: [(device, wave, position), ...]."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.execute(
                    "INSERT INTO campaigns (id, created_ms, manifest, artifact, spec, state, wave, updated_ms)"
                    " VALUES (:id, :created_ms, :manifest, :artifact, :spec, :state, :wave, :updated_ms)",
                    campaign)
                self._db.executemany(
                    "INSERT INTO campaign_devices (campaign, device, wave, position) VALUES (?, ?, ?, ?)",
                    [(campaign["id"], d, w, p) for d, w, p in devices])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def campaign(self, campaign_id):
        rows = self._all("SELECT * FROM campaigns WHERE id = ?", (campaign_id,))
        if not rows:
            return None
        rows[0]["spec"] = json.loads(rows[0]["spec"])
        return rows[0]

    def campaigns(self, states=None):
        sql = "SELECT * FROM campaigns"
        args = ()
        if states:
            sql += " WHERE state IN (%s)" % ",".join("?" * len(states))
            args = tuple(states)
        rows = self._all(sql + " ORDER BY created_ms, id", args)
        for row in rows:
            row["spec"] = json.loads(row["spec"])
        return rows

    def update_campaign(self, campaign_id, now_ms, **fields):
        assert set(fields) <= set(CAMPAIGN_FIELDS)
        sets = ", ".join("%s = ?" % f for f in fields)
        self._exec("UPDATE campaigns SET %s, updated_ms = ? WHERE id = ?" % sets,
                   tuple(fields.values()) + (now_ms, campaign_id))

    def devices_of(self, campaign_id):
        return self._all("SELECT * FROM campaign_devices WHERE campaign = ? ORDER BY position", (campaign_id,))

    def jobs_of_device(self, device):
        """The device's rows in every campaign, newest campaign first."""
        return self._all("SELECT cd.* FROM campaign_devices cd JOIN campaigns c ON c.id = cd.campaign"
                         " WHERE cd.device = ? ORDER BY c.created_ms DESC, c.id DESC", (device,))

    def update_device(self, campaign_id, device, **fields):
        assert set(fields) <= set(DEVICE_FIELDS)
        sets = ", ".join("%s = ?" % f for f in fields)
        self._exec("UPDATE campaign_devices SET %s WHERE campaign = ? AND device = ?" % sets,
                   tuple(fields.values()) + (campaign_id, device))

    def silent_after_update(self, campaign_id, cutoff_ms):
        """{device: txn} of confirmed devices with a payment sent after their confirmation, at or
        before cutoff_ms, that no ack from that device answers."""
        rows = self._all(
            "SELECT cd.device, MIN(p.txn) AS txn FROM campaign_devices cd"
            " JOIN payments p ON p.device = cd.device AND p.sent_ms > cd.confirmed_ms AND p.sent_ms <= ?"
            " WHERE cd.campaign = ? AND cd.state = 'confirmed'"
            " AND NOT EXISTS (SELECT 1 FROM acks a WHERE a.txn = p.txn AND a.device = p.device)"
            " GROUP BY cd.device", (cutoff_ms, campaign_id))
        return {r["device"]: r["txn"] for r in rows}
