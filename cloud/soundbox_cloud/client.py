"""Client for the cloud handler's HTTP API: what a PSP, or the `soundbox` CLI, calls to pay."""
import json
import secrets
import urllib.error
import urllib.request


class ApiError(Exception):
    """A request the cloud handler refused (with its reason) or could not be asked about."""

    def __init__(self, message, status=None, field=None):
        super().__init__(message)
        self.status = status
        self.field = field


class PayError(ApiError):
    """A payment the cloud handler refused (with its reason) or could not be asked about."""


def new_txn():
    return "txn-" + secrets.token_hex(8)


def auth_headers(api_key):
    """The Authorization header for an API key (none without one)."""
    return {"Authorization": "Bearer " + api_key} if api_key else {}


def pay(api_url, device, amount, txn=None, timeout=10.0, provider=None, api_key=None):
    """POST /payments; returns the handler's JSON answer ({"txn", "device", "amount", "status", "sends"})."""
    txn = new_txn() if txn is None else txn
    body = {"device": device, "amount": amount, "txn": txn}
    if provider is not None:
        body["provider"] = provider
    try:
        data = json.dumps(body).encode()
    except (TypeError, ValueError) as e:
        raise PayError("cannot encode the payment as JSON: %s" % e) from None
    request = urllib.request.Request(api_url.rstrip("/") + "/payments", data=data, method="POST",
                                     headers=dict(auth_headers(api_key), **{"Content-Type": "application/json"}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as e:
        raise refusal(e) from None
    except (urllib.error.URLError, OSError, ValueError):
        raise PayError("cannot reach cloud handler at %s" % api_url) from None


def refusal(http_error):
    """PayError carrying the server's own reason when it sent one; a 429 also says when to retry."""
    try:
        body = json.loads(http_error.read())
        reason = body.get("error", body.get("detail"))   # "detail": FastAPI's own errors
        if not isinstance(reason, str):
            raise TypeError
        error = PayError(reason, http_error.code, body.get("field"))
    except (ValueError, KeyError, TypeError, AttributeError, OSError):
        error = PayError("cloud handler answered HTTP %d" % http_error.code, http_error.code)
    retry = http_error.headers.get("Retry-After") if http_error.headers is not None else None
    if http_error.code == 429 and retry:
        error = PayError("%s (retry after %s s)" % (error, retry.strip()), error.status, error.field)
    return error


def call(api_url, method, path, body=None, data=None, timeout=10.0, api_key=None):
    """One request to the cloud's HTTP API: body is sent as JSON, data as raw bytes.
    api_key goes as Authorization: Bearer. Returns the decoded JSON answer; ApiError with the
    server's reason otherwise."""
    headers = auth_headers(api_key)
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    elif data is not None:
        headers["Content-Type"] = "application/octet-stream"
    request = urllib.request.Request(api_url.rstrip("/") + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as e:
        refused = refusal(e)
        raise ApiError(str(refused), refused.status, refused.field) from None
    except (urllib.error.URLError, OSError, ValueError):
        raise ApiError("cannot reach cloud handler at %s" % api_url) from None
