"""The cloud's stores on both engines (the `db` fixture): the migrated schema, what SQLite and
PostgreSQL must agree on, and the one-line errors of a database that cannot be opened."""
import sqlite3
import threading

import pytest

from soundbox_cloud import migrations
from soundbox_cloud.auth import KeyStore
from soundbox_cloud.campaign_store import CampaignStore
from soundbox_cloud.errors import CloudError, Rejected
from soundbox_cloud.store import Store

LATE_MS = 1_800_000_000_000   # past 2^31: ms timestamps need 64-bit columns


def test_schema_is_migrated_once_and_the_stores_share_it(db):
    store, keys, campaigns = Store(db), KeyStore(db), CampaignStore(db)
    try:
        rows = store._all("SELECT version FROM schema_version")
        assert [r["version"] for r in rows] == [migrations.LATEST]
        keys.create("admin", now_ms=LATE_MS)
        campaigns.set_profile("sb-0001", "sb1", {"app": "1.0"}, LATE_MS)
        assert keys.list()[0]["created_ms"] == LATE_MS
    finally:
        for s in (store, keys, campaigns):
            s.close()


def test_payments_acks_and_counts_agree_on_both_engines(db):
    store = Store(db)
    try:
        assert store.record_send("sb-0001", 500, "t1", LATE_MS, "upi", "acme")["sends"] == 1
        assert store.record_send("sb-0001", 500, "t1", LATE_MS + 1, "upi", "acme")["sends"] == 2
        with pytest.raises(Rejected, match="already sent to sb-0001"):
            store.record_send("sb-0001", 900, "t1", LATE_MS, "upi", "acme")
        ack = {"txn": "t1", "status": "announced", "reason": None, "rx": LATE_MS + 5, "play": LATE_MS + 6,
               "done": LATE_MS + 9}
        outcome, settled = store.add_ack("sb-0001", ack, LATE_MS + 10)
        assert outcome == "kept" and settled["status"] == "announced"
        assert store.add_ack("sb-0001", dict(ack, txn="nope"), LATE_MS) == ("unknown", None)
        counts = store.counts("acme")
        assert (counts["sent"], counts["announced"], counts["unknown_acks"]) == (1, 1, 1)
        assert all(type(v) is int for v in counts.values())   # not PostgreSQL's Decimal SUMs
        assert store.counts("other")["sent"] == 0
        assert store.latencies() == {"notify_to_receive": [5], "notify_to_announce": [6], "notify_to_ack": [10]}
    finally:
        store.close()


def test_two_stores_time_a_payment_out_once(db):
    first, second = Store(db), Store(db)
    try:
        for n in range(20):
            first.record_send("sb-0001", 100, "t%d" % n, LATE_MS + n)
        got, start = [], threading.Barrier(2)

        def run(store):
            start.wait()
            got.extend(r["txn"] for r in store.time_out(LATE_MS + 100))

        threads = [threading.Thread(target=run, args=(s,)) for s in (first, second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(got) == sorted("t%d" % n for n in range(20))
    finally:
        first.close()
        second.close()


def test_a_sqlite_file_from_before_versioning_is_migrated_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE payments (txn TEXT PRIMARY KEY, device TEXT NOT NULL, amount INTEGER NOT NULL,
            sent_ms INTEGER NOT NULL, sends INTEGER NOT NULL DEFAULT 1, status TEXT NOT NULL DEFAULT 'sent');
        CREATE TABLE devices (id TEXT PRIMARY KEY, state TEXT NOT NULL, fw TEXT, last_seen_ms INTEGER,
            tenant TEXT);
        INSERT INTO payments (txn, device, amount, sent_ms) VALUES ('old-1', 'sb-0001', 500, 1);
    """)
    old.close()
    store = Store(path)
    try:
        assert store.payment("old-1")["amount"] == 500 and store.payment("old-1")["tenant"] is None
        assert store.register("sb-0001", "acme", {"name": "Shop"}, 2)["name"] == "Shop"
        assert [r["version"] for r in store._all("SELECT version FROM schema_version")] == [migrations.LATEST]
    finally:
        store.close()


def test_a_database_from_a_newer_cloud_is_refused(db):
    Store(db).close()
    store = Store(db)
    store._change("INSERT INTO schema_version (version, applied_ms) VALUES (?, ?)", (migrations.LATEST + 1, 0))
    store.close()
    with pytest.raises(CloudError, match="newer than this cloud's"):
        Store(db)


def test_an_unreachable_postgresql_is_one_line_without_the_password():
    from soundbox_tools import procs

    url = "postgresql://someone:hunter2@127.0.0.1:%d/x" % procs.free_port()
    with pytest.raises(CloudError) as e:
        Store(url)
    assert "cannot open database postgresql://someone:***@127.0.0.1" in str(e.value)
    assert "hunter2" not in str(e.value) and "\n" not in str(e.value)
