"""`soundbox cloud key ...` and `soundbox cloud device ...` as real CLI processes: keys land in a
real SQLite file that KeyStore verifies; the device commands' requests go to a loopback stand-in
(the cloud's own /devices endpoints are tested with the server)."""
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from soundbox_cloud.auth import KeyStore, Unauthorized

SOUNDBOX = [sys.executable, "-m", "soundbox_tools.cli"]


def soundbox(*argv, env=None):
    environment = {k: v for k, v in os.environ.items() if k != "SOUNDBOX_API_KEY"}
    environment.update(env or {})
    return subprocess.run(SOUNDBOX + [str(a) for a in argv], capture_output=True, text=True, timeout=60,
                          env=environment)


def refused(r, reason):
    """Exit non-zero with one line that gives the reason, never a traceback."""
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and reason in r.stderr, r.stderr


def test_created_key_is_accepted_listed_without_its_secret_and_revoked(tmp_path):
    db = tmp_path / "cloud.db"
    server = KeyStore(db)   # the running cloud's view of the same file
    try:
        r = soundbox("cloud", "key", "create", "--db", db, "--role", "operator", "--tenant", "acme",
                     "--name", "night shift", "--expires-days", "30", "--rate", "7")
        assert r.returncode == 0, r.stderr
        token = r.stdout.splitlines()[0]
        principal = server.verify("Bearer " + token)
        assert (principal.role, principal.tenant, principal.name, principal.rate) == ("operator", "acme",
                                                                                      "night shift", 7.0)
        assert "key %s (operator, tenant acme) created; shown once, store it now" % principal.key_id in r.stderr
        assert token not in r.stderr

        admin = soundbox("cloud", "key", "create", "--db", db, "--role", "admin")
        assert admin.returncode == 0 and server.verify("Bearer " + admin.stdout.splitlines()[0]).platform

        listing = soundbox("cloud", "key", "list", "--db", db)
        assert listing.returncode == 0, listing.stderr
        lines = listing.stdout.splitlines()
        assert lines[0].split() == ["id", "name", "role", "tenant", "created", "expires", "last", "used", "revoked"]
        assert len(lines) == 3 and lines[1].startswith(principal.key_id) and "night shift" in lines[1]
        secrets = (token.split("_", 2)[2], admin.stdout.split("_", 2)[2].strip())
        assert not any(s in listing.stdout for s in secrets)

        r = soundbox("cloud", "key", "revoke", "--db", db, principal.key_id)
        assert r.returncode == 0 and "revoked" in r.stdout, r.stderr
        with pytest.raises(Unauthorized, match="unknown or revoked"):
            server.verify("Bearer " + token)   # at once, no restart
        revoked_line = soundbox("cloud", "key", "list", "--db", db).stdout.splitlines()[1]
        assert revoked_line.split()[-2:] != ["-", "-"]   # the revoked column now holds a time
    finally:
        server.close()


@pytest.mark.parametrize("argv, reason", [
    (["--role", "root", "--tenant", "acme"], "unknown role 'root'"),
    (["--role", "psp"], "a psp key needs a tenant"),
    (["--role", "viewer", "--tenant", "Not_A_Tenant"], "is not valid"),
    (["--role", "admin", "--tenant", "acme"], "platform-wide"),
    (["--role", "viewer", "--tenant", "acme", "--expires-days", "0"], "--expires-days must be a positive"),
    (["--role", "viewer", "--tenant", "acme", "--rate", "-3"], "rate must be a positive"),
])
def test_bad_key_requests_are_refused_in_one_line_and_write_nothing(tmp_path, argv, reason):
    db = tmp_path / "cloud.db"
    refused(soundbox("cloud", "key", "create", "--db", db, *argv), reason)
    assert not db.exists()


def test_key_commands_on_a_missing_or_unreadable_database(tmp_path):
    refused(soundbox("cloud", "key", "list", "--db", tmp_path / "none.db"), "no database at")
    refused(soundbox("cloud", "key", "revoke", "--db", tmp_path / "none.db", "0123456789"), "no database at")
    (tmp_path / "junk.db").write_text("not a database at all " * 100)
    refused(soundbox("cloud", "key", "list", "--db", tmp_path / "junk.db"), "cannot open database")
    refused(soundbox("cloud", "key", "create", "--db", tmp_path / "no" / "dir.db", "--role", "admin"),
            "no directory")
    KeyStore(tmp_path / "ok.db").close()
    refused(soundbox("cloud", "key", "revoke", "--db", tmp_path / "ok.db", "0123456789"), "no API key 0123456789")


def test_serving_still_needs_a_broker(tmp_path):
    r = soundbox("cloud", "--db", tmp_path / "c.db")
    assert r.returncode == 2 and "required: --broker" in r.stderr and "Traceback" not in r.stderr


class StandIn(BaseHTTPRequestHandler):
    """Records each request and answers with the queued status and JSON body."""

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"null")
        self.server.seen.append((self.path, self.headers.get("Authorization"), body))
        status, answer = self.server.answer
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def stand_in():
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    server.seen = []
    server.url = "http://127.0.0.1:%d" % server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_device_register_and_move_send_what_was_given(stand_in):
    stand_in.answer = (201, {"id": "sb-0001", "tenant": "acme"})
    r = soundbox("cloud", "device", "register", "sb-0001", "--cloud", stand_in.url, "--tenant", "acme",
                 "--vpa", "shop@upi", "--tag", "north", "--tag", "pilot", env={"SOUNDBOX_API_KEY": "sbk_env"})
    assert r.returncode == 0 and json.loads(r.stdout) == {"id": "sb-0001", "tenant": "acme"}, r.stderr
    r = soundbox("cloud", "device", "move", "sb-0001", "--tenant", "zeta", "--cloud", stand_in.url,
                 "--api-key", "sbk_flag", env={"SOUNDBOX_API_KEY": "sbk_env"})
    assert r.returncode == 0, r.stderr
    assert stand_in.seen == [
        ("/devices", "Bearer sbk_env", {"id": "sb-0001", "tenant": "acme", "vpa": "shop@upi",
                                        "tags": ["north", "pilot"]}),
        ("/devices/sb-0001/move", "Bearer sbk_flag", {"tenant": "zeta"})]
    stand_in.answer = (403, {"error": "an operator key may not devices:move"})
    refused(soundbox("cloud", "device", "move", "sb-0001", "--tenant", "zeta", "--cloud", stand_in.url),
            "an operator key may not devices:move")
    assert stand_in.seen[-1][1] is None   # no key given, none sent


def test_device_command_argument_errors(tmp_path):
    r = soundbox("cloud", "device", "move", "sb-0001", "--cloud", "http://127.0.0.1:9")
    assert r.returncode == 2 and "--tenant" in r.stderr and "Traceback" not in r.stderr
    refused(soundbox("cloud", "device", "register", "sb-0001", "--tenant", "Bad Tenant", "--cloud",
                     "http://127.0.0.1:9"), "tenant 'Bad Tenant' is not valid")
    r = soundbox("cloud", "device", "register", "--cloud", "http://127.0.0.1:9")
    assert r.returncode == 2 and "ID" in r.stderr


def test_pay_sends_the_api_key(stand_in):
    stand_in.answer = (429, {"error": "rate limit"})
    refused(soundbox("pay", "sb-0001", "500", "--txn", "t-1", "--cloud", stand_in.url, "--api-key", "sbk_p"),
            "rate limit")
    assert stand_in.seen == [("/payments", "Bearer sbk_p", {"device": "sb-0001", "amount": 500, "txn": "t-1"})]
