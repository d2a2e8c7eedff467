"""The cloud's database, on either engine: a SQLite file (the default) or PostgreSQL
(`postgresql://...`, psycopg 3 with a connection pool).

Every store (Store, CampaignStore, KeyStore, AuditLog, Webhooks) is a Database on the same
URL; all of them see one schema, brought up to date by migrations.py when the first of them
opens it. The stores write their SQL once, in SQLite's dialect with `?` placeholders; the
PostgreSQL engine turns `?` into `%s`. What differs beyond that is named here (FOR UPDATE).

Threads: the cloud calls its stores from paho's thread, the tick thread and HTTP workers.
SQLite: one connection per Database, serialised by a lock (WAL lets other processes read).
PostgreSQL: a pool per URL shared by every Database of the process; each call or
transaction takes its own connection, so threads run side by side.
"""
import contextlib
import functools
import os
import re
import sqlite3
import threading

from soundbox_cloud.errors import CloudError

PG_PREFIX = "postgresql://"
PG_CONNECT_TIMEOUT_S = 5     # an unreachable server is a one-line error within this
PG_POOL_MAX = 8              # connections per process and URL: the HTTP workers plus the ticks
PG_WAIT_S = 10               # a call waits this long for a free pooled connection


def is_postgres(url):
    """True for a postgresql:// URL; anything else is a SQLite path."""
    return str(url).startswith(PG_PREFIX)


def redact(url):
    """The URL without its password, for messages and logs."""
    return re.sub(r"^(postgresql://[^:/@]*):[^@/]*@", r"\1:***@", str(url))


def private_file(path):
    """Create the database file owner-only (0600) before SQLite opens it, and tighten an
    older one: it holds payments and key hashes. SQLite gives -wal and -shm the same mode.
    Never open and close an existing one: closing any descriptor of a file drops every
    POSIX lock this process holds on it, SQLite's included, and another process would
    then take the WAL for its own (measured: the cloud's writes unseen by other processes)."""
    if path == ":memory:" or path.startswith("file:"):
        return
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, 0o600)


def one_line(error):
    """psycopg's multi-line message (reason, then a hint) as one line."""
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return text or type(error).__name__


@functools.lru_cache(maxsize=1024)
def to_pyformat(sql):
    """SQLite's `?` placeholders as psycopg's `%s` (a literal % doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


class Tx:
    """Statements on one connection: inside a transaction (Database._tx) or one at a time."""

    def __init__(self, conn, translate):
        self._conn = conn
        self._translate = translate

    def _cursor(self, sql, args):
        cursor = self._conn.cursor()
        cursor.execute(self._translate(sql), tuple(args))
        return cursor

    def all(self, sql, args=()):
        return [dict(row) for row in self._cursor(sql, args).fetchall()]

    def one(self, sql, args=()):
        row = self._cursor(sql, args).fetchone()
        return None if row is None else dict(row)

    def run(self, sql, args=()):
        """A statement without rows; returns how many rows it changed."""
        return self._cursor(sql, args).rowcount

    def many(self, sql, seq):
        seq = [tuple(args) for args in seq]
        if seq:
            self._conn.cursor().executemany(self._translate(sql), seq)


class SqliteEngine:
    kind = "sqlite"
    for_update = ""            # BEGIN IMMEDIATE already holds the file's write lock
    skip_locked = ""
    Error = sqlite3.Error
    IntegrityError = sqlite3.IntegrityError

    def __init__(self, path):
        self.name = path
        self._lock = threading.Lock()
        try:
            private_file(path)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=5.0)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a commit survives the process dying (what a restart or kill -9 does)
            # but may be lost to a power cut before the next checkpoint; FULL's fsync per
            # commit cost a fifth of the throughput. A lost record's box still answers from its
            # ledger, so a PSP's retry of the same txn is never announced twice.
            self._db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as e:
            raise CloudError("cannot open database %s: %s" % (path, e)) from None
        except OSError as e:
            raise CloudError("cannot open database %s: %s" % (path, e.strerror or e)) from None

    @contextlib.contextmanager
    def statement(self):
        with self._lock:
            yield Tx(self._db, str)

    @contextlib.contextmanager
    def transaction(self):
        # IMMEDIATE: another handler process sharing the file cannot write between our
        # read and our write.
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(self._db, str)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def columns(self, tx, table):
        return [row["name"] for row in tx.all("PRAGMA table_info(%s)" % table)]

    def close(self):
        with self._lock:
            self._db.close()


class _SharedPool:
    """One psycopg_pool.ConnectionPool per URL in this process, closed with its last user."""

    _lock = threading.Lock()
    _pools = {}   # url -> [pool, users]

    @classmethod
    def take(cls, url):
        import psycopg
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool

        with cls._lock:
            entry = cls._pools.get(url)
            if entry is None:
                # One direct connection first: an unreachable server or a bad password gives
                # psycopg's own one-line reason here, where the pool would only time out.
                try:
                    psycopg.connect(url, connect_timeout=PG_CONNECT_TIMEOUT_S).close()
                except psycopg.Error as e:
                    raise CloudError("cannot open database %s: %s" % (redact(url), one_line(e))) from None
                pool = ConnectionPool(url, min_size=1, max_size=PG_POOL_MAX, timeout=PG_WAIT_S,
                                      kwargs={"autocommit": True, "row_factory": dict_row,
                                              "connect_timeout": PG_CONNECT_TIMEOUT_S},
                                      open=False, name="soundbox")
                try:
                    pool.open(wait=True, timeout=PG_CONNECT_TIMEOUT_S * 2)
                except Exception as e:
                    pool.close()
                    raise CloudError("cannot open database %s: %s" % (redact(url), one_line(e))) from None
                entry = cls._pools[url] = [pool, 0]
            entry[1] += 1
            return entry[0]

    @classmethod
    def give_back(cls, url):
        with cls._lock:
            entry = cls._pools.get(url)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] == 0:
                del cls._pools[url]
                entry[0].close()


class PostgresEngine:
    kind = "postgresql"
    for_update = " FOR UPDATE"
    skip_locked = " SKIP LOCKED"

    def __init__(self, url):
        import psycopg

        self.Error = psycopg.Error
        self.IntegrityError = psycopg.IntegrityError
        self.url = url
        self.name = redact(url)
        self._pool = _SharedPool.take(url)
        self._closed = False

    @contextlib.contextmanager
    def statement(self):
        with self._pool.connection() as conn:
            yield Tx(conn, to_pyformat)

    @contextlib.contextmanager
    def transaction(self):
        with self._pool.connection() as conn, conn.transaction():
            yield Tx(conn, to_pyformat)

    def columns(self, tx, table):
        return [row["column_name"] for row in tx.all(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND table_name = ?", (table,))]

    def close(self):
        if not self._closed:
            self._closed = True
            _SharedPool.give_back(self.url)


def open_engine(url):
    url = str(url)
    return PostgresEngine(url) if is_postgres(url) else SqliteEngine(url)


class Database:
    """One store's handle on the cloud's database (a SQLite path or a postgresql:// URL).
    The schema is migrations.py's, shared by every store; opening brings it up to date."""

    def __init__(self, path):
        from soundbox_cloud import migrations

        self._engine = open_engine(path)
        self.path = self._engine.name
        self.engine = self._engine.kind
        self.Error = self._engine.Error
        self.IntegrityError = self._engine.IntegrityError
        self.for_update = self._engine.for_update
        self.skip_locked = self._engine.skip_locked
        try:
            migrations.migrate(self._engine)
        except self.Error as e:
            self._engine.close()
            raise CloudError("cannot open database %s: %s" % (self.path, one_line(e))) from None
        except BaseException:
            self._engine.close()
            raise

    def close(self):
        self._engine.close()

    def _tx(self):
        """A transaction: `with self._tx() as tx: tx.one(...); tx.run(...)`."""
        return self._engine.transaction()

    def _all(self, sql, args=()):
        with self._engine.statement() as tx:
            return tx.all(sql, args)

    def _one(self, sql, args=()):
        with self._engine.statement() as tx:
            return tx.one(sql, args)

    def _change(self, sql, args=()):
        """One statement on its own; returns how many rows it changed."""
        with self._engine.statement() as tx:
            return tx.run(sql, args)
