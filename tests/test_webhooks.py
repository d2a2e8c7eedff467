"""Webhook outbox: signed delivery to a real local HTTP receiver, retries with backoff, dead
events, leases shared by two deliverers on one database, idempotent enqueue; on SQLite and on
PostgreSQL (the `db` fixture)."""
import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from soundbox_cloud import webhooks
from soundbox_cloud.errors import Rejected
from soundbox_cloud.webhooks import MAX_ATTEMPTS, Webhooks, verify_signature

T0_MS = 1_750_000_000_000


class Receiver:
    """A real HTTP server on a free loopback port answering from a script of statuses
    (the last one repeats) and recording every request."""

    def __init__(self, statuses=(200,)):
        self.statuses = list(statuses)
        self.requests = []
        self.got = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver._lock:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                receiver.got.set()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/hooks/soundbox?v=1" % self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(statuses=(200,)):
        made.append(Receiver(statuses))
        return made[-1]

    yield make
    for r in made:
        r.close()


class Clock:
    def __init__(self, ms=T0_MS):
        self.ms = ms

    def __call__(self):
        return self.ms / 1000


@pytest.fixture
def hooks(db):
    """Webhooks on each engine; every one made in a test shares that test's database."""
    made = []

    def make(**kw):
        made.append(Webhooks(db, **kw))
        return made[-1]

    yield make
    for h in made:
        h.close()


def row(h, event_id):
    return h._one("SELECT * FROM webhook_outbox WHERE event_id = ?", (event_id,))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_retries_with_backoff_then_delivers_once_signed(hooks, receiver):
    r = receiver([500, 500, 200])
    clock = Clock()
    h = hooks(clock=clock)
    secret = h.set_endpoint("acme", r.url)
    event_id = h.enqueue("acme", "payment.final", {"txn": "T1", "status": "announced", "amount": 100})

    delays = []
    for attempt in (1, 2):
        assert h.deliver_due() == 1
        queued = row(h, event_id)
        delay = queued["next_ms"] - clock.ms
        base = 1000 * 2 ** (attempt - 1)
        assert base * (1 - webhooks.JITTER) <= delay <= base, (attempt, delay)
        assert queued["attempts"] == attempt and queued["last_error"] == "HTTP 500"
        clock.ms += delay - 1
        assert h.deliver_due() == 0  # not due yet
        clock.ms += 1
        delays.append(delay)
    assert h.deliver_due() == 1
    clock.ms += 3_600_000
    assert h.deliver_due() == 0  # delivered: never sent again

    assert len(r.requests) == 3
    delivered = row(h, event_id)
    assert delivered["delivered_ms"] == clock.ms - 3_600_000 and delivered["last_error"] is None
    assert h.stats() == {"pending": 0, "delivered": 1, "dead": 0, "attempts": 3}
    assert [e["state"] for e in h.events("acme")] == ["delivered"]

    last = r.requests[-1]
    body, header = last["body"], last["headers"]["Soundbox-Signature"]
    assert last["path"] == "/hooks/soundbox?v=1"
    assert last["headers"]["Content-Type"] == "application/json"
    assert last["headers"]["Soundbox-Event-Id"] == event_id
    assert json.loads(body) == {"id": event_id, "type": "payment.final", "created_ms": T0_MS,
                                "data": {"txn": "T1", "status": "announced", "amount": 100}}
    assert all(req["body"] == body for req in r.requests)  # the same bytes each attempt
    sent_s = (clock.ms - 3_600_000) // 1000
    assert header.startswith("t=%d," % sent_s)
    assert verify_signature(secret, header, body, now_s=sent_s)
    assert not verify_signature("whsec_other", header, body, now_s=sent_s)
    assert not verify_signature(secret, header, body.replace(b"100", b"900"), now_s=sent_s)
    assert not verify_signature(secret, header, body, now_s=sent_s + 301)  # a replay, later
    assert not verify_signature(secret, "v1=" + header.split("v1=")[1], body, now_s=sent_s)
    assert not verify_signature(secret, "garbage", body, now_s=sent_s)


def test_connection_refused_retries_then_dead(hooks, caplog):
    clock = Clock()
    h = hooks(clock=clock)
    h.set_endpoint("acme", "http://127.0.0.1:%d/" % free_port())  # nobody listens there
    event_id = h.enqueue("acme", "payment.final", {"txn": "T2", "status": "failed"})

    with caplog.at_level(logging.WARNING, logger="soundbox_cloud"):
        for attempt in range(1, MAX_ATTEMPTS + 1):
            assert h.deliver_due() == 1
            queued = row(h, event_id)
            assert queued["attempts"] == attempt
            if attempt < MAX_ATTEMPTS:
                base = min(webhooks.BACKOFF_CAP_S, 2 ** (attempt - 1)) * 1000
                assert base * (1 - webhooks.JITTER) <= queued["next_ms"] - clock.ms <= base
                clock.ms = queued["next_ms"]
    dead = row(h, event_id)
    assert dead["dead_ms"] == clock.ms and "ConnectionRefused" in dead["last_error"]
    clock.ms += 3_600_000
    assert h.deliver_due() == 0
    assert h.stats() == {"pending": 0, "delivered": 0, "dead": 1, "attempts": MAX_ATTEMPTS}
    failures = [rec.getMessage() for rec in caplog.records]
    assert len(failures) == MAX_ATTEMPTS and all(event_id in m for m in failures)
    assert failures[-1].endswith("dead")


def test_gone_is_dead_at_once(hooks, receiver):
    r = receiver([410])
    h = hooks(clock=Clock())
    h.set_endpoint("acme", r.url)
    event_id = h.enqueue("acme", "payment.final", {"txn": "T3", "status": "announced"})
    assert h.deliver_due() == 1
    assert row(h, event_id)["dead_ms"] is not None and row(h, event_id)["last_error"] == "HTTP 410"
    assert h.deliver_due(now_ms=T0_MS + 3_600_000) == 0
    assert len(r.requests) == 1


def test_two_deliverers_on_one_file_send_each_event_once(hooks, receiver):
    r = receiver([200])
    clock = Clock()
    first, second = hooks(clock=clock, owner="cloud-a"), hooks(clock=clock, owner="cloud-b")
    first.set_endpoint("acme", r.url)
    ids = {first.enqueue("acme", "payment.final", {"txn": "T%d" % n, "status": "announced"})
           for n in range(30)}
    start = threading.Barrier(2)
    attempted = {}

    def drain(h):
        start.wait()
        total = 0
        while True:
            n = h.deliver_due(limit=4)
            if n == 0:
                break
            total += n
        attempted[h.owner] = total

    threads = [threading.Thread(target=drain, args=(h,)) for h in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(req["headers"]["Soundbox-Event-Id"] for req in r.requests) == sorted(ids)
    assert sum(attempted.values()) == 30
    assert first.stats() == {"pending": 0, "delivered": 30, "dead": 0, "attempts": 30}


def test_enqueue_is_idempotent_per_txn_and_status(hooks, receiver):
    clock = Clock()
    one, other = hooks(clock=clock), hooks(clock=clock)
    one.set_endpoint("acme", receiver().url)
    event_id = one.enqueue("acme", "payment.final", {"txn": "T4", "status": "announced"})
    clock.ms += 50
    assert other.enqueue("acme", "payment.final", {"txn": "T4", "status": "announced"}) == event_id
    assert one.enqueue("acme", "payment.final", {"txn": "T4", "status": "failed"}) != event_id
    assert one.enqueue("acme", "device.note", {"x": 1}) != one.enqueue("acme", "device.note", {"x": 1})
    assert one.stats()["pending"] == 4
    assert json.loads(row(one, event_id)["body"])["created_ms"] == T0_MS  # the first one stands


def test_no_endpoint_stores_nothing(hooks):
    h = hooks()
    assert h.enqueue("nobody", "payment.final", {"txn": "T5", "status": "announced"}) is None
    assert h.enqueue(None, "payment.final", {"txn": "T5", "status": "announced"}) is None
    assert h.stats() == {"pending": 0, "delivered": 0, "dead": 0, "attempts": 0}
    assert h.events("nobody") == []


@pytest.mark.parametrize("url", ["ftp://example.com/", "http://", "example.com/hook", "", None])
def test_bad_url_is_rejected(hooks, url):
    with pytest.raises(Rejected) as e:
        hooks().set_endpoint("acme", url)
    assert e.value.http_status == 400 and e.value.field == "url"


def test_secret_never_shown_again_and_rotates(hooks, receiver, caplog):
    r = receiver([500, 200])
    clock = Clock()
    h = hooks(clock=clock)
    secret = h.set_endpoint("acme", r.url)
    assert secret.startswith("whsec_") and len(secret) > 40
    assert h.endpoint("acme") == {"tenant": "acme", "url": r.url, "created_ms": T0_MS}
    event_id = h.enqueue("acme", "payment.final", {"txn": "T6", "status": "announced"})
    with caplog.at_level(logging.DEBUG, logger="soundbox_cloud"):
        h.deliver_due()
    assert event_id in caplog.text and "HTTP 500" in caplog.text and secret not in caplog.text
    assert secret not in json.dumps(h.events("acme")) and secret not in json.dumps(h.stats())

    rotated = h.set_endpoint("acme", r.url)
    assert rotated != secret
    h.deliver_due(now_ms=T0_MS + 60_000)
    header, body = r.requests[-1]["headers"]["Soundbox-Signature"], r.requests[-1]["body"]
    assert verify_signature(rotated, header, body, now_s=T0_MS / 1000 + 60)
    assert not verify_signature(secret, header, body, now_s=T0_MS / 1000 + 60)

    h.remove_endpoint("acme")
    assert h.endpoint("acme") is None
    assert h.enqueue("acme", "payment.final", {"txn": "T7", "status": "announced"}) is None


def test_background_deliverer_delivers_and_stops(hooks, receiver):
    r = receiver([200])
    h = hooks()
    secret = h.set_endpoint("acme", r.url)
    h.start(every_s=0.05)
    thread = h._thread
    h.enqueue("acme", "payment.final", {"txn": "T8", "status": "announced"})
    assert r.got.wait(timeout=20), "no delivery within 20 s"
    sent = r.requests[0]
    assert verify_signature(secret, sent["headers"]["Soundbox-Signature"], sent["body"])
    h.close()
    assert not thread.is_alive()
    assert hooks().stats()["delivered"] == 1  # recorded before close() returned


def test_a_claim_left_by_a_dead_process_is_taken_over_when_its_lease_ends(hooks, receiver):
    r = receiver([200])
    dying, survivor = hooks(owner="cloud-a"), hooks(owner="cloud-b")
    dying.set_endpoint("acme", r.url)
    event_id = dying.enqueue("acme", "payment.final", {"txn": "T9", "status": "announced"}, now_ms=T0_MS)
    assert [c["event_id"] for c in dying._claim(T0_MS, 50)] == [event_id]  # then it dies
    lease_ms = webhooks.LEASE_PER_ROW_S * 1000
    assert survivor.deliver_due(now_ms=T0_MS + lease_ms) == 0  # still leased
    assert survivor.deliver_due(now_ms=T0_MS + lease_ms + 1) == 1
    assert [req["headers"]["Soundbox-Event-Id"] for req in r.requests] == [event_id]
    assert row(survivor, event_id)["delivered_ms"] == T0_MS + lease_ms + 1


def test_a_receiver_that_never_answers_times_out_and_is_retried(hooks, monkeypatch):
    monkeypatch.setattr(webhooks, "TIMEOUT_S", 0.3)
    with socket.socket() as silent:  # the kernel accepts the connection; nobody ever answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        h = hooks(clock=Clock())
        h.set_endpoint("acme", "http://127.0.0.1:%d/" % silent.getsockname()[1])
        event_id = h.enqueue("acme", "payment.final", {"txn": "T10", "status": "announced"})
        assert h.deliver_due() == 1
    queued = row(h, event_id)
    assert "timed out" in queued["last_error"] and queued["attempts"] == 1
    assert queued["dead_ms"] is None and queued["next_ms"] > T0_MS
