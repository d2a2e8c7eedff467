"""Talking to a real cloud in tests: API keys made in its database, JSON requests with them,
and a Cloud + HTTP server on threads of the test process."""
import http.client
import json
import shutil
import tempfile
from urllib.parse import urlsplit

from soundbox_cloud.auth import KeyStore
from soundbox_cloud.cloud import Cloud
from soundbox_cloud.db import is_postgres
from soundbox_cloud.http_server import ApiServer, listen


def make_key(db_path, role="admin", tenant=None, **options):
    """A new API key in the cloud's database, a SQLite path or a postgresql:// URL (as
    `soundbox cloud key create` makes one)."""
    store = KeyStore(db_path)
    try:
        return store.create(role, tenant, **options)[0]
    finally:
        store.close()


def request(api_url, method, path, body=None, headers=None, key=None, timeout=10):
    """One HTTP request; body may be a dict (sent as JSON) or raw bytes. Returns (status, JSON)."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    headers = dict(headers or {})
    if key is not None:
        headers["Authorization"] = "Bearer " + key
    url = urlsplit(api_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    if method == "HEAD" or not data:
        return response.status, None
    assert response.getheader("Content-Type") == "application/json", (response.status, data[:200])
    return response.status, json.loads(data)


class Api:
    """An API URL and the key to call it with."""

    def __init__(self, url, key):
        self.url, self.key = url, key

    def __call__(self, method, path, body=None, headers=None, key=None):
        return request(self.url, method, path, body, headers, key=key or self.key)

    def get(self, path, key=None):
        return self("GET", path, key=key)

    def post(self, path, body, key=None):
        return self("POST", path, body, key=key)

    def post_payment(self, body, key=None):
        return self("POST", "/payments", body, key=key)


class RunningCloud(Api):
    """A Cloud and its HTTP API on threads of this process, with an admin key. db_path: a
    SQLite path or a postgresql:// URL (the `db` fixture gives either)."""

    def __init__(self, broker_url, db_path, certs, **options):
        # OTA artifacts default to a directory beside a SQLite file; a URL has none.
        self._ota_tmp = None
        if is_postgres(db_path) and options.get("ota_dir") is None:
            options["ota_dir"] = self._ota_tmp = tempfile.mkdtemp(prefix="sb-ota-")
        try:
            self.cloud = Cloud(broker_url, db_path, certs=certs, **options)
        except BaseException:
            self._remove_ota_tmp()
            raise
        self.db_path = db_path
        try:
            self.server = ApiServer(self.cloud, listen("127.0.0.1", 0)).start()
        except BaseException:
            self.cloud.close()
            self._remove_ota_tmp()
            raise
        super().__init__(self.server.url, make_key(db_path))

    def new_key(self, role, tenant=None, **options):
        return make_key(self.db_path, role, tenant, **options)

    def _remove_ota_tmp(self):
        if self._ota_tmp is not None:
            shutil.rmtree(self._ota_tmp, ignore_errors=True)

    def close(self):
        try:
            self.server.close()
            self.cloud.close()
        finally:
            self._remove_ota_tmp()
