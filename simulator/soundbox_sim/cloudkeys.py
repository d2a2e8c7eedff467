"""A run's own way into the cloud it started: API keys made in the cloud's database, its
devices registered to a tenant over the HTTP API, and keyed JSON requests.

The cloud reads keys from its SQLite file on each request, so keys made here work at once
on a cloud process already running on that file. Tokens are secrets: never print or log them.
"""

import http.client
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

# Requests a second for a run's keys: a load run must meet the cloud, not its rate limiter.
RUN_RATE = 100000.0
REGISTER_THREADS = 8  # keep-alive connections registering devices at once


class CloudKeyError(Exception):
    """Keys could not be made or devices registered (one line with the reason)."""


class RunKeys:
    """An admin key (registration, reads, OTA) and a psp key of `tenant` (payments)."""

    def __init__(self, admin, psp, tenant):
        self.admin, self.psp, self.tenant = admin, psp, tenant

    def __repr__(self):  # a stray print or log line must not show the tokens
        return "RunKeys(tenant=%r)" % self.tenant


def create_keys(db_path, tenant, name="sim", rate=RUN_RATE):
    """RunKeys made in the cloud's database at db_path."""
    from soundbox_cloud.auth import KeyStore
    from soundbox_cloud.errors import CloudError

    try:
        store = KeyStore(db_path)
    except Exception as e:  # sqlite3 or CloudError: the file is not a cloud database we can write
        raise CloudKeyError("cannot open the cloud's key store %s: %s" % (db_path, e)) from None
    try:
        admin = store.create("admin", None, name=name + "-admin", rate=rate)[0]
        psp = store.create("psp", tenant, name=name + "-psp", rate=rate)[0]
    except CloudError as e:
        raise CloudKeyError("cannot make API keys in %s: %s" % (db_path, e)) from None
    finally:
        store.close()
    return RunKeys(admin, psp, tenant)


class KeyedConnection:
    """One keep-alive HTTP connection to the API sending `key` as a bearer token."""

    def __init__(self, api_url, key, timeout=30):
        url = urlsplit(api_url)
        self.host, self.port, self.timeout = url.hostname, url.port, timeout
        self.headers = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}
        self.conn = None

    def request(self, method, path, body=None):
        """(status, raw answer); status 0 with the error text when the cloud is unreachable."""
        data = None if body is None else (body if isinstance(body, (bytes, str)) else json.dumps(body))
        for _ in range(2):  # a keep-alive connection the server closed: once more
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                self.conn.request(method, path, data, self.headers)
                response = self.conn.getresponse()
                return response.status, response.read()
            except (OSError, http.client.HTTPException) as e:
                self.close()
                error = str(e).encode()
        return 0, error

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def register_devices(api_url, admin_key, tenant, ids, profile=None, threads=REGISTER_THREADS):
    """POST /devices for each id into `tenant`, from a few keep-alive connections at once.
    profile(id) -> extra fields ({"name", "vpa", ...}) or None. CloudKeyError on the first refusal."""
    local = threading.local()
    made = []
    lock = threading.Lock()

    def one(device):
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = KeyedConnection(api_url, admin_key)
            with lock:
                made.append(conn)
        body = dict(profile(device) if profile else {}, id=device, tenant=tenant)
        status, answer = conn.request("POST", "/devices", body)
        if status != 201:
            raise CloudKeyError("registering %s to tenant %s: HTTP %s %s"
                                % (device, tenant, status or "(no answer)", answer.decode(errors="replace")[:200]))

    try:
        with ThreadPoolExecutor(max_workers=max(1, min(threads, len(ids)))) as pool:
            for _ in pool.map(one, ids):  # map re-raises the first failure
                pass
    finally:
        for conn in made:
            conn.close()
