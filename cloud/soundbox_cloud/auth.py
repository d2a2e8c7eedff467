"""API keys for the cloud's HTTP API: roles, tenants, the permission table, verification and
rate limits.

A key is "sbk_<id>_<secret>": the id (10 hex chars) finds the row, the secret proves it. Only
sha256(secret) is stored, so the database (or a backup of it) cannot be used to call the API.
Keys live in the same database as the rest of the cloud (SQLite or PostgreSQL); `soundbox cloud key ...` creates and
revokes them from another process while the server runs, which is why verify() reads the row on
every request instead of caching it.

Permission table (action -> roles allowed):

    action            admin  operator  psp  viewer
    payments:create     x                x
    payments:read       x       x        x     x
    devices:read        x       x        x     x
    devices:write       x       x                   register a device in own tenant, merchant profile, tags
    devices:move        x                           move a device to another tenant
    commands:send       x       x
    commands:read       x       x              x
    ota:read            x       x              x
    ota:publish         x                           upload/register artifacts
    ota:rollout         x       x                   create/pause/resume/abort campaigns (own tenant's devices)
    stats:read          x       x              x
    webhooks:manage     x                x
    audit:read          x

admin keys are platform-wide (tenant None); every other role belongs to one tenant.
"""
import datetime
import hashlib
import hmac
import math
import re
import secrets
import threading
import time
from dataclasses import dataclass

from soundbox_cloud.errors import CloudError
from soundbox_cloud.store import Database

ROLES = ("admin", "operator", "psp", "viewer")

PERMISSIONS = {
    "payments:create": frozenset({"admin", "psp"}),
    "payments:read": frozenset({"admin", "psp", "operator", "viewer"}),
    "devices:read": frozenset({"admin", "operator", "viewer", "psp"}),
    "devices:write": frozenset({"admin", "operator"}),
    "devices:move": frozenset({"admin"}),
    "commands:send": frozenset({"admin", "operator"}),
    "commands:read": frozenset({"admin", "operator", "viewer"}),
    "ota:read": frozenset({"admin", "operator", "viewer"}),
    "ota:publish": frozenset({"admin"}),
    "ota:rollout": frozenset({"admin", "operator"}),
    "stats:read": frozenset({"admin", "operator", "viewer"}),
    "webhooks:manage": frozenset({"admin", "psp"}),
    "audit:read": frozenset({"admin"}),
}

# Requests a second a key may make by default; a key may burst BURST_SECONDS worth at once.
DEFAULT_RATES = {"admin": 2000, "operator": 100, "psp": 2000, "viewer": 50}
BURST_SECONDS = 2.0

TENANT = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
TOKEN = re.compile(r"sbk_([0-9a-f]{10})_([A-Za-z0-9_-]{16,128})")
PREFIX = "sbk_"
NAME_MAX = 64

# last_used_ms is a hint for people ("is this key still in use?"), not an audit trail: writing it
# at most once a minute per key keeps verification a single indexed SELECT on the hot path.
LAST_USED_EVERY_MS = 60_000

PUBLIC_COLUMNS = "id, name, role, tenant, created_ms, expires_ms, revoked_ms, last_used_ms, rate"

MISSING = "missing API key: send Authorization: Bearer <key>"
MALFORMED = "malformed API key"
UNKNOWN = "unknown or revoked API key"


class Unauthorized(CloudError):
    """The request carries no usable API key (HTTP 401). The message never holds the key."""

    http_status = 401


def is_tenant(text):
    return isinstance(text, str) and TENANT.fullmatch(text) is not None


def iso_ms(ms):
    """A UTC time in ms as 2026-12-03T18:22:06Z."""
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now_ms():
    return int(time.time() * 1000)


def _sha256(secret):
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is calling: the verified key's identity. Holds no secret."""

    key_id: str
    name: str
    role: str
    tenant: str   # None for admin keys
    rate: float   # requests a second, > 0

    def may(self, action):
        """True if this role may do `action`; an action missing from PERMISSIONS is a bug (KeyError)."""
        return self.role in PERMISSIONS[action]

    @property
    def platform(self):
        """An admin key: not bound to a tenant, sees and acts on all of them."""
        return self.role == "admin"


def check_key_request(role, tenant=None, name="", expires_s=None, rate=None):
    """CloudError with the reason if a key with these settings cannot be made (nothing is written)."""
    if role not in ROLES:
        raise CloudError("unknown role %r: choose one of %s" % (role, ", ".join(ROLES)))
    if role == "admin":
        if tenant is not None:
            raise CloudError("admin keys are platform-wide: give no tenant")
    elif tenant is None:
        raise CloudError("a %s key needs a tenant" % role)
    elif not is_tenant(tenant):
        raise CloudError("tenant %r is not valid: 1 to 32 of a-z, 0-9 and '-', not starting with '-'" % (tenant,))
    if not isinstance(name, str) or len(name) > NAME_MAX or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise CloudError("a key's name is at most %d printable characters" % NAME_MAX)
    for what, value in (("expiry", expires_s), ("rate", rate)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value) or value <= 0):
            raise CloudError("a key's %s must be a positive number, got %r" % (what, value))


class KeyStore(Database):
    """The api_keys table: create, list, revoke, verify."""

    def __init__(self, path):
        super().__init__(path)
        self._noted_ms = {}   # key id -> when this process last wrote its last_used_ms
        self._noted_lock = threading.Lock()

    def create(self, role, tenant=None, name="", expires_s=None, rate=None, now_ms=None):
        """A new key: (token, record). The token is returned once and never stored."""
        check_key_request(role, tenant, name, expires_s, rate)
        now_ms = _now_ms() if now_ms is None else now_ms
        expires_ms = None if expires_s is None else now_ms + int(expires_s * 1000)
        rate = float(DEFAULT_RATES[role] if rate is None else rate)
        secret = secrets.token_urlsafe(32)
        for _ in range(5):   # 40-bit ids: a clash is rare, and then we draw another
            key_id = secrets.token_hex(5)
            try:
                self._change(
                    "INSERT INTO api_keys (id, name, role, tenant, secret_sha256, created_ms, expires_ms, rate)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (key_id, name, role, tenant, _sha256(secret), now_ms, expires_ms, rate))
                break
            except self.IntegrityError:
                continue
            except self.Error as e:
                raise CloudError("cannot write API key to %s: %s" % (self.path, e)) from None
        else:
            raise CloudError("could not draw an unused API key id")
        return PREFIX + key_id + "_" + secret, self.record(key_id)

    def record(self, key_id):
        """The key's row without its hash, or None."""
        return self._one("SELECT %s FROM api_keys WHERE id = ?" % PUBLIC_COLUMNS, (key_id,))

    def list(self):
        """Every key (revoked ones too), oldest first, without hashes."""
        return self._all("SELECT %s FROM api_keys ORDER BY created_ms, id" % PUBLIC_COLUMNS)

    def revoke(self, key_id, now_ms=None):
        """Revoke at once (every verify reads the row); revoking twice keeps the first time."""
        now_ms = _now_ms() if now_ms is None else now_ms
        changed = self._change("UPDATE api_keys SET revoked_ms = COALESCE(revoked_ms, ?) WHERE id = ?",
                            (now_ms, key_id))
        if changed == 0:
            raise CloudError("no API key %s" % key_id)
        return self.record(key_id)

    def verify(self, authorization, now_ms=None):
        """The Principal for an Authorization header value ("Bearer sbk_..."), or Unauthorized."""
        if not authorization or not authorization.strip():
            raise Unauthorized(MISSING)
        scheme, _, token = authorization.strip().partition(" ")
        match = TOKEN.fullmatch(token.strip())
        if scheme.lower() != "bearer" or match is None:
            raise Unauthorized(MALFORMED)
        key_id, secret = match.groups()
        row = self._one("SELECT id, name, role, tenant, secret_sha256, expires_ms, revoked_ms, rate"
                        " FROM api_keys WHERE id = ?", (key_id,))
        # Same answer for an unknown id, a wrong secret and a revoked key: a caller without the
        # secret learns nothing about which ids exist.
        if row is None or not hmac.compare_digest(_sha256(secret), row["secret_sha256"]) \
                or row["revoked_ms"] is not None:
            raise Unauthorized(UNKNOWN)
        now_ms = _now_ms() if now_ms is None else now_ms
        if row["expires_ms"] is not None and now_ms >= row["expires_ms"]:
            raise Unauthorized("API key expired on %s" % iso_ms(row["expires_ms"]))
        self._note_use(key_id, now_ms)
        return Principal(row["id"], row["name"], row["role"], row["tenant"], row["rate"])

    def _note_use(self, key_id, now_ms):
        with self._noted_lock:
            if now_ms - self._noted_ms.get(key_id, -LAST_USED_EVERY_MS) < LAST_USED_EVERY_MS:
                return
            self._noted_ms[key_id] = now_ms
        try:
            self._change("UPDATE api_keys SET last_used_ms = ? WHERE id = ?", (now_ms, key_id))
        except self.Error:
            pass   # a busy database must not refuse a valid key; the hint is written next minute


class RateLimiter:
    """A token bucket per key: `principal.rate` requests a second, bursts of BURST_SECONDS worth."""

    def __init__(self, clock=time.monotonic, burst_seconds=BURST_SECONDS):
        self._clock = clock
        self._burst_seconds = burst_seconds
        self._buckets = {}   # key id -> [tokens, at]
        self._lock = threading.Lock()

    def check(self, principal, now=None):
        """0.0 and one request taken if allowed; else the seconds until one more is (nothing taken)."""
        now = self._clock() if now is None else now
        rate = float(principal.rate)
        capacity = max(1.0, rate * self._burst_seconds)   # a slow key can still make one request
        with self._lock:
            bucket = self._buckets.get(principal.key_id)
            if bucket is None:
                bucket = self._buckets[principal.key_id] = [capacity, now]
            tokens = min(capacity, bucket[0] + max(0.0, now - bucket[1]) * rate)
            bucket[1] = max(bucket[1], now)
            if tokens >= 1.0 - 1e-9:   # float drift must not turn "now" into a 1 s Retry-After
                bucket[0] = max(0.0, tokens - 1.0)
                return 0.0
            bucket[0] = tokens
            return (1.0 - tokens) / rate
