"""HTTP JSON API of the cloud handler, on the standard library's ThreadingHTTPServer."""
import json
import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

from soundbox_cloud import ota_api
from soundbox_cloud.errors import CloudError, Rejected
from soundbox_cloud.validation import check_payment_request, is_txn

log = logging.getLogger("soundbox_cloud")

MAX_BODY_BYTES = 16 * 1024
MAX_DISCARD_BYTES = 1024 * 1024
IDLE_TIMEOUT_S = 30     # a keep-alive or half-sent request cannot hold a thread longer than this
ROUTES = {("GET", "/health"), ("GET", "/devices"), ("GET", "/stats"),
          ("POST", "/payments"), ("GET", "/payments/"), ("POST", "/devices/*/commands")}


def percentiles(values, ps=(50, 90, 99)):
    """Nearest-rank percentiles: the smallest value with at least p% of the values at or below it."""
    ordered = sorted(values)
    n = len(ordered)
    result = {"p%d" % p: ordered[max(1, -(-p * n // 100)) - 1] if n else None for p in ps}
    result["n"] = n
    return result


class ClientGone(Exception):
    """The client stopped sending mid-body; there is nobody to answer."""


class ApiRequestHandler(BaseHTTPRequestHandler):
    server_version = "soundbox-cloud"
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT_S
    # Headers and body go out as two writes; with Nagle on, the body waits for the client's
    # delayed ACK (measured: every request took 44 ms on loopback).
    disable_nagle_algorithm = True

    def do_GET(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    do_PUT = do_DELETE = do_PATCH = do_GET

    def _dispatch(self):
        path = urlsplit(self.path).path
        self._body_read = False
        try:
            status, body = self._route(path)
        except Rejected as e:
            status, body = e.http_status, e.body()
        except ClientGone:
            self.close_connection = True
            return
        except Exception as e:   # a bug, not bad input: one line in the log, a plain 500 to the client
            log.error("internal error on %s %s: %r", self.command, path, e)
            status, body = 500, {"error": "internal error", "field": None}
        if not self._body_read and (self.headers.get("Transfer-Encoding")
                                    or (self.headers.get("Content-Length") or "0").strip() != "0"):
            self.close_connection = True   # an unread body would be parsed as the next request
        self._reply(status, body)

    def _route(self, path):
        cloud = self.server.cloud
        if ota_api.handles(path):
            return ota_api.route(self, self.command, path)
        route = "/payments/" if path.startswith("/payments/") else path
        parts = path.split("/")
        if len(parts) == 4 and parts[1] == "devices" and parts[3] == "commands":
            route = "/devices/*/commands"
        if (self.command, route) not in ROUTES:
            if any(known == route for _, known in ROUTES):
                raise Rejected(405, None, "%s is not allowed on %s" % (self.command, path))
            raise Rejected(404, None, "no such path: %s" % path)
        if route == "/payments":
            device, amount, txn, provider = check_payment_request(self.read_json_body())
            record = cloud.send_payment(device, amount, txn, provider)
            answer = {"txn": txn, "device": device, "amount": amount, "status": "sent", "sends": record["sends"]}
            if provider is not None:
                answer["provider"] = provider
            return 202, answer
        if route == "/devices/*/commands":
            command = cloud.send_command(unquote(parts[2]), self.read_json_body())
            return 202, {"device": unquote(parts[2]), "command": command, "status": "sent"}
        if route == "/payments/":
            return 200, self._payment(unquote(path[len("/payments/"):]))
        if route == "/devices":
            return 200, cloud.store.devices()
        if route == "/stats":
            stats = cloud.store.counts()
            stats["latency_ms"] = {name: percentiles(values)
                                   for name, values in cloud.store.latencies().items()}
            stats["ota_chunks"] = cloud.chunks.stats()
            return 200, stats
        ok = cloud.connected
        return (200 if ok else 503), {"ok": ok, "broker": "connected" if ok else "disconnected"}

    def _payment(self, txn):
        if not is_txn(txn):
            raise Rejected(400, "txn", "txn must be 1-64 printable ASCII characters without spaces")
        record = self.server.cloud.store.payment(txn)
        if record is None:
            raise Rejected(404, "txn", "unknown txn %s" % txn)
        return record

    def read_json_body(self, max_bytes=MAX_BODY_BYTES):
        try:
            return json.loads(self.read_body(max_bytes))
        except (ValueError, RecursionError):
            raise Rejected(400, "body", "body is not valid JSON") from None

    def read_body(self, max_bytes):
        """The request body as bytes (Content-Length required, at most max_bytes)."""
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise Rejected(411, "body", "send the body with a Content-Length, not chunked")
        length = (self.headers.get("Content-Length") or "").strip()
        if not (length.isascii() and length.isdigit()):
            self.close_connection = True
            raise Rejected(411 if not length else 400, "body", "a valid Content-Length is required")
        if int(length) > max_bytes:
            self._discard_body(int(length))
            raise Rejected(413, "body", "body is larger than %d bytes" % max_bytes)
        try:
            raw = self.rfile.read(int(length))
        except OSError:
            raise ClientGone() from None
        if len(raw) < int(length):
            raise ClientGone()
        self._body_read = True
        return raw

    def _discard_body(self, length):
        # Closing with unread bytes makes the kernel send RST, which can destroy our 413 before
        # the client reads it; so swallow a moderately large body, and just close on a huge one.
        self.close_connection = True
        if length <= MAX_DISCARD_BYTES:
            try:
                while length > 0:
                    chunk = self.rfile.read(min(length, 65536))
                    if not chunk:
                        break
                    length -= len(chunk)
            except OSError:
                raise ClientGone() from None

    def _reply(self, status, body):
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":   # a HEAD answer has headers only
                self.wfile.write(data)
        except OSError:
            self.close_connection = True   # client hung up; nothing to tell it

    def send_error(self, code, message=None, explain=None):
        # Called by the stdlib for malformed requests and unknown methods: answer in JSON too.
        self.close_connection = True
        self._reply(code, {"error": message or self.responses.get(code, ("error",))[0], "field": None})

    def log_message(self, format, *args):
        pass   # no per-request lines on the console


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, cloud, host, port):
        self.cloud = cloud
        try:
            super().__init__((host, port), ApiRequestHandler)
        except OSError as e:
            raise CloudError("cannot listen on http://%s:%d: %s" % (host, port, e.strerror or e)) from None

    @property
    def url(self):
        host, port = self.server_address[:2]
        return "http://%s:%d" % (host, port)

    def handle_error(self, request, client_address):
        # Reached only when a client breaks the connection mid-request: not worth a traceback.
        log.debug("connection from %s ended abruptly", client_address)
