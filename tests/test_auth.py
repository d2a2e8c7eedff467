"""API keys, permissions, rate limits and the audit log (soundbox_cloud.auth, .audit), on real
databases of both engines (SQLite files, PostgreSQL: the `db` fixture); the client's Authorization header against a real loopback HTTP server."""
import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from soundbox_cloud.audit import DETAIL_MAX, AuditLog
from soundbox_cloud.auth import (DEFAULT_RATES, LAST_USED_EVERY_MS, PERMISSIONS, ROLES, KeyStore, Principal,
                                 RateLimiter, Unauthorized, is_tenant)
from soundbox_cloud.client import ApiError, PayError, call, pay
from soundbox_cloud.errors import CloudError

T0 = 1_800_000_000_000   # a fixed "now" in ms


@pytest.fixture
def keys(db):
    store = KeyStore(db)
    yield store
    store.close()


def bearer(token):
    return "Bearer " + token


def test_created_key_verifies_as_its_principal(keys):
    token, record = keys.create("operator", "acme", name="ops", now_ms=T0)
    assert token.startswith("sbk_" + record["id"] + "_") and len(record["id"]) == 10
    assert "secret_sha256" not in record and record["rate"] == DEFAULT_RATES["operator"]
    p = keys.verify(bearer(token), now_ms=T0 + 1)
    assert p == Principal(record["id"], "ops", "operator", "acme", 100.0)
    assert not p.platform and p.may("devices:write") and not p.may("devices:move")
    assert keys.verify("bearer   " + token, now_ms=T0).key_id == record["id"]   # scheme case-insensitive
    with pytest.raises(AttributeError):
        p.role = "admin"   # immutable


def test_admin_keys_are_platform_wide_and_others_need_a_tenant(keys):
    token, record = keys.create("admin", now_ms=T0)
    assert record["tenant"] is None and keys.verify(bearer(token), now_ms=T0).platform
    for role, tenant, reason in (("admin", "acme", "platform-wide"), ("psp", None, "needs a tenant"),
                                 ("viewer", "Acme", "not valid"), ("viewer", "-acme", "not valid"),
                                 ("viewer", "a" * 33, "not valid"), ("root", None, "unknown role")):
        with pytest.raises(CloudError, match=reason):
            keys.create(role, tenant)
    with pytest.raises(CloudError, match="expiry"):
        keys.create("viewer", "acme", expires_s=0)
    with pytest.raises(CloudError, match="rate"):
        keys.create("viewer", "acme", rate=-1)
    with pytest.raises(CloudError, match="name"):
        keys.create("viewer", "acme", name="two\nlines")
    assert [k["role"] for k in keys.list()] == ["admin"]   # refused requests wrote nothing


def test_tenant_rule():
    assert is_tenant("acme") and is_tenant("0") and is_tenant("a-1-b") and is_tenant("a" * 32)
    assert not any(is_tenant(t) for t in ("", "-a", "A", "a_b", "a" * 33, "a b", None, 7))


def test_refusals_give_a_reason_and_never_the_token(keys):
    token, record = keys.create("psp", "acme", now_ms=T0)
    wrong_secret = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    unknown_id = "sbk_" + ("0" * 10 if record["id"] != "0" * 10 else "1" * 10) + token[14:]
    cases = ((None, "missing API key: send Authorization: Bearer <key>"),
             ("", "missing API key"), ("   ", "missing API key"),
             ("Basic " + token, "malformed API key"), (token, "malformed API key"),
             ("Bearer sbk_xyz", "malformed API key"), ("Bearer " + token + " extra", "malformed API key"),
             (bearer(wrong_secret), "unknown or revoked API key"),
             (bearer(unknown_id), "unknown or revoked API key"))
    for header, reason in cases:
        with pytest.raises(Unauthorized) as e:
            keys.verify(header, now_ms=T0)
        assert str(e.value).startswith(reason) and "\n" not in str(e.value)
        assert token[14:] not in str(e.value) and e.value.http_status == 401


def test_expired_key_says_when(keys):
    token, _ = keys.create("viewer", "acme", expires_s=3600, now_ms=T0)
    assert keys.verify(bearer(token), now_ms=T0 + 3600 * 1000 - 1).role == "viewer"
    with pytest.raises(Unauthorized, match=r"^API key expired on 2027-01-15T09:00:00Z$"):
        keys.verify(bearer(token), now_ms=T0 + 3600 * 1000)


def test_revoked_key_is_refused_and_revoke_of_unknown_id_says_so(keys):
    token, record = keys.create("operator", "acme", now_ms=T0)
    revoked = keys.revoke(record["id"], now_ms=T0 + 5)
    assert revoked["revoked_ms"] == T0 + 5
    assert keys.revoke(record["id"], now_ms=T0 + 9)["revoked_ms"] == T0 + 5   # the first time is kept
    with pytest.raises(Unauthorized, match="unknown or revoked"):
        keys.verify(bearer(token), now_ms=T0 + 6)
    with pytest.raises(CloudError, match="^no API key 0123456789$"):
        keys.revoke("0123456789")


def test_only_the_secrets_hash_is_stored(tmp_path):
    path = tmp_path / "cloud.db"
    store = KeyStore(path)
    tokens = [store.create(role, None if role == "admin" else "acme")[0] for role in ROLES]
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())   # the db and its WAL
    assert raw and all(t.split("_", 2)[2].encode() not in raw and t.encode() not in raw for t in tokens)
    store = KeyStore(path)
    assert all(store.verify(bearer(t)).role == role for t, role in zip(tokens, ROLES))
    assert all("secret" not in json.dumps(k) for k in store.list())
    store.close()


def test_last_used_is_written_at_most_once_a_minute(keys):
    token, record = keys.create("viewer", "acme", now_ms=T0)
    assert keys.list()[0]["last_used_ms"] is None
    keys.verify(bearer(token), now_ms=T0 + 10)
    keys.verify(bearer(token), now_ms=T0 + 10 + LAST_USED_EVERY_MS - 1)
    assert keys.list()[0]["last_used_ms"] == T0 + 10
    keys.verify(bearer(token), now_ms=T0 + 10 + LAST_USED_EVERY_MS)
    assert keys.list()[0]["last_used_ms"] == T0 + 10 + LAST_USED_EVERY_MS


def test_a_second_store_on_the_same_file_creates_and_revokes_for_the_first(db):
    """The CLI is another process with its own connection; the server must see its writes at once."""
    server = KeyStore(db)   # open before the key exists
    cli = KeyStore(db)
    try:
        token, record = cli.create("psp", "acme")
        assert server.verify(bearer(token)).key_id == record["id"]
        cli.revoke(record["id"])
        with pytest.raises(Unauthorized, match="unknown or revoked"):
            server.verify(bearer(token))
    finally:
        cli.close()
        server.close()


def test_list_is_oldest_first_without_hashes(keys):
    ids = [keys.create("viewer", "t%d" % n, name="k%d" % n, now_ms=T0 + n)[1]["id"] for n in (2, 0, 1)]
    listed = keys.list()
    assert [k["name"] for k in listed] == ["k0", "k1", "k2"] and {k["id"] for k in listed} == set(ids)
    assert all(set(k) == {"id", "name", "role", "tenant", "created_ms", "expires_ms", "revoked_ms",
                          "last_used_ms", "rate"} for k in listed)


def test_permission_table():
    assert set(PERMISSIONS) == {"payments:create", "payments:read", "devices:read", "devices:write",
                                "devices:move", "commands:send", "commands:read", "ota:read", "ota:publish",
                                "ota:rollout", "stats:read", "webhooks:manage", "audit:read"}
    who = {role: Principal("0" * 10, "", role, None if role == "admin" else "acme", 1.0) for role in ROLES}
    assert not who["psp"].may("commands:send") and who["operator"].may("commands:send")
    assert not who["viewer"].may("payments:create") and who["psp"].may("payments:create")
    assert not who["operator"].may("payments:create") and who["viewer"].may("payments:read")
    for action in ("devices:move", "ota:publish", "audit:read"):
        assert [r for r in ROLES if who[r].may(action)] == ["admin"]
    assert [r for r in ROLES if who[r].may("webhooks:manage")] == ["admin", "psp"]
    assert [r for r in ROLES if who[r].may("ota:rollout")] == ["admin", "operator"]
    assert all(who["admin"].may(a) for a in PERMISSIONS)
    with pytest.raises(KeyError):
        who["admin"].may("payments:delete")   # an action missing from the table is a bug


def test_rate_limiter_allows_a_burst_then_says_when_to_retry():
    clock = [100.0]
    limiter = RateLimiter(clock=lambda: clock[0])
    p = Principal("a" * 10, "", "viewer", "acme", 5.0)   # 5/s, burst 10
    assert [limiter.check(p) for _ in range(10)] == [0.0] * 10
    wait = limiter.check(p)
    assert wait == pytest.approx(0.2) and math.ceil(wait) == 1
    clock[0] += 0.1
    assert limiter.check(p) == pytest.approx(0.1)   # a refusal takes nothing
    clock[0] += 0.1
    assert limiter.check(p) == 0.0 and limiter.check(p) > 0
    other = Principal("b" * 10, "", "viewer", "acme", 5.0)
    assert limiter.check(other) == 0.0   # one bucket per key
    clock[0] += 3600
    assert [limiter.check(p) for _ in range(10)] == [0.0] * 10 and limiter.check(p) > 0   # refill caps at the burst


def test_rate_limiter_is_thread_safe():
    limiter = RateLimiter(clock=lambda: 0.0)
    p = Principal("c" * 10, "", "operator", "acme", 100.0)   # burst 200, the clock stands still
    allowed = []

    def hammer():
        allowed.append(sum(limiter.check(p) == 0.0 for _ in range(100)))

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(allowed) == 200


def test_audit_log_newest_first_per_tenant_and_no_token(db, tmp_path):
    log = AuditLog(db)
    token = "sbk_0123456789_" + "S" * 43
    acme = Principal("0123456789", "ops", "operator", "acme", 100.0)
    log.record(acme, "devices:write", "sb-0001", 200, "tags +north", now_ms=T0)
    log.record(None, "payments:create", "/payments", 401, "bad header Bearer " + token, now_ms=T0 + 1)
    log.record(Principal("9" * 10, "", "viewer", "zeta", 50.0), "stats:read", None, 200, "x" * 500, now_ms=T0 + 2)
    rows = log.rows()
    assert [r["at_ms"] for r in rows] == [T0 + 2, T0 + 1, T0]
    assert len(rows[0]["detail"]) == DETAIL_MAX and rows[1]["key_id"] is None and rows[1]["status"] == 401
    assert [r["target"] for r in log.rows(tenant="acme")] == ["sb-0001"]
    assert rows[2]["role"] == "operator" and rows[2]["tenant"] == "acme"
    assert [r["at_ms"] for r in log.rows(limit=1)] == [T0 + 2]
    with pytest.raises(CloudError, match="limit"):
        log.rows(limit=0)
    stored = json.dumps(log._all("SELECT * FROM audit"))
    assert "sbk_0123456789_***" in stored and "S" * 43 not in stored
    log.close()
    if db.startswith(str(tmp_path)):   # SQLite: not in the file or its WAL either
        assert b"S" * 43 not in b"".join(p.read_bytes() for p in tmp_path.iterdir())


def test_audit_log_keeps_the_newest_rows(db):
    log = AuditLog(db, kept=3)
    for n in range(5):
        log.record(None, "stats:read", str(n), 200, now_ms=T0 + n)
    assert [r["target"] for r in log.rows()] == ["4", "3", "2"]
    log.close()


class Recorder(BaseHTTPRequestHandler):
    """Answers with the status and body the test queued, remembering the Authorization header."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.seen.append(self.headers.get("Authorization"))
        status, body, extra = self.server.answer
        self.send_response(status)
        for name, value in extra.items():
            self.send_header(name, value)
        data = json.dumps(body).encode()
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST

    def log_message(self, *args):
        pass


@pytest.fixture
def recorder():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_client_sends_the_key_and_reports_refusals(recorder):
    url = "http://127.0.0.1:%d" % recorder.server_address[1]
    recorder.answer = (200, {"txn": "t1", "device": "sb-1", "amount": 5, "status": "sent", "sends": 1}, {})
    assert pay(url, "sb-1", 5, "t1", api_key="sbk_k")["status"] == "sent"
    assert call(url, "GET", "/stats")["txn"] == "t1"
    assert recorder.seen == ["Bearer sbk_k", None]
    recorder.answer = (401, {"error": "unknown or revoked API key"}, {})
    with pytest.raises(PayError, match="^unknown or revoked API key$") as e:
        pay(url, "sb-1", 5, api_key="sbk_k")
    assert e.value.status == 401
    recorder.answer = (403, {"detail": "a viewer key may not payments:create"}, {})
    with pytest.raises(ApiError, match="^a viewer key may not payments:create$"):
        call(url, "POST", "/payments", {}, api_key="sbk_k")
    recorder.answer = (429, {"error": "rate limit: 50 requests a second"}, {"Retry-After": "2"})
    with pytest.raises(ApiError, match=r"^rate limit: 50 requests a second \(retry after 2 s\)$") as e:
        call(url, "GET", "/devices", api_key="sbk_k")
    assert e.value.status == 429
