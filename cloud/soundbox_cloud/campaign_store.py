"""OTA tables: device profiles (model, versions), tags, campaigns and their devices.

Lives in the handler's database (SQLite or PostgreSQL; the tables are migrations.py's), so the
campaign engine can ask the payments and acks tables whether an updated device still acks
payments (payments_by_device serves that question).
"""
import json

from soundbox_cloud.store import Database

CAMPAIGN_FIELDS = ("wave", "state", "reason", "override_wave", "base_failures", "base_finished")
DEVICE_FIELDS = ("state", "reason", "have", "total", "job_ms", "status_ms", "confirmed_ms")


class CampaignStore(Database):
    def __init__(self, path):
        super().__init__(path)

    def _exec(self, sql, args=()):
        self._change(sql, args)

    # device profiles and tags

    def set_profile(self, device, model, versions, now_ms):
        """Merge what telemetry or an OTA status says about a device; None leaves a value alone."""
        with self._tx() as tx:
            row = tx.one("SELECT model, versions FROM device_profiles WHERE device = ?" + self.for_update,
                         (device,))
            merged = json.loads(row["versions"]) if row else {}
            merged.update(versions or {})
            tx.run(
                "INSERT INTO device_profiles (device, model, versions, updated_ms) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (device) DO UPDATE SET model = COALESCE(excluded.model, device_profiles.model),"
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
        with self._tx() as tx:
            tx.many("INSERT INTO device_tags (device, tag) VALUES (?, ?) ON CONFLICT DO NOTHING",
                    [(device, t) for t in add])
            tx.many("DELETE FROM device_tags WHERE device = ? AND tag = ?", [(device, t) for t in remove])

    # campaigns

    def add_campaign(self, campaign, devices):
        """campaign: dict of the campaigns columns; devices: [(device, wave, position), ...]."""
        columns = ("id", "created_ms", "manifest", "artifact", "spec", "state", "wave", "updated_ms")
        with self._tx() as tx:
            tx.run("INSERT INTO campaigns (%s) VALUES (%s)" % (", ".join(columns), ", ".join("?" * len(columns))),
                   tuple(campaign[c] for c in columns))
            tx.many("INSERT INTO campaign_devices (campaign, device, wave, position) VALUES (?, ?, ?, ?)",
                    [(campaign["id"], d, w, p) for d, w, p in devices])

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
