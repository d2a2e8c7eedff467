"""Audit log: who (which API key) did what to which target, and what the answer was."""
import re
import time

from soundbox_cloud.errors import CloudError
from soundbox_cloud.store import Database

DETAIL_MAX = 200
TARGET_MAX = 200
ROWS_MAX = 1000
# The newest rows kept: a bounded table even under a flood of refused requests.
KEPT = 1_000_000

# An API key pasted into a detail or target (a mistyped header echoed back, say) is cut to its id.
TOKEN = re.compile(r"(sbk_[0-9a-f]{10}_)[A-Za-z0-9_-]+")


def scrub(text, limit):
    return TOKEN.sub(r"\1***", str(text))[:limit]


class AuditLog(Database):
    """The audit table; one row per recorded request."""

    def __init__(self, path, kept=KEPT):
        super().__init__(path)
        self.kept = kept

    def record(self, principal, action, target, status, detail="", now_ms=None):
        """One row; principal None for a request without a valid key."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        who = (None, None, None) if principal is None else (principal.key_id, principal.role, principal.tenant)
        with self._tx() as tx:
            row_id = tx.one(
                "INSERT INTO audit (at_ms, key_id, role, tenant, action, target, status, detail)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (now_ms,) + who + (scrub(action, TARGET_MAX), None if target is None else scrub(target, TARGET_MAX),
                                   int(status), scrub(detail or "", DETAIL_MAX)))["id"]
            if row_id > self.kept:
                tx.run("DELETE FROM audit WHERE id <= ?", (row_id - self.kept,))

    def rows(self, limit=100, tenant=None):
        """The newest `limit` rows (at most ROWS_MAX), newest first; only one tenant's if given."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= ROWS_MAX:
            raise CloudError("limit must be a whole number from 1 to %d, got %r" % (ROWS_MAX, limit))
        if tenant is None:
            return self._all("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))
        return self._all("SELECT * FROM audit WHERE tenant = ? ORDER BY id DESC LIMIT ?", (tenant, limit))
