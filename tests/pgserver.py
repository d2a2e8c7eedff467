"""A private PostgreSQL server for the tests: initdb + pg_ctl from Debian's binaries in a temp
dir, on a free loopback port (never the machine's own instance on 5432), stopped at the end.

initdb refuses to run as root, and CI runs as root: then every server command runs as the
`postgres` user (runuser) in a directory that user owns. Trust authentication on 127.0.0.1
only; fsync off: the tests need a real server, not durability. One server per test session,
a fresh database per test (new_database)."""
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile

from soundbox_tools import procs

USER = "soundbox"            # the cluster's superuser
SERVER_OPTIONS = ("-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
                  " -c max_connections=300 -c shared_buffers=32MB")


class PgUnavailable(RuntimeError):
    pass


def bin_dir():
    """Debian's PostgreSQL binaries (15 preferred, else the newest installed)."""
    if os.path.exists("/usr/lib/postgresql/15/bin/initdb"):
        return "/usr/lib/postgresql/15/bin"
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[-3]) if p.split("/")[-3].isdigit() else 0)
    if not found:
        raise PgUnavailable("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin: "
                            "apt-get install postgresql (./dev.sh does)")
    return os.path.dirname(found[-1])


class PgServer:
    def __init__(self):
        self.bin = bin_dir()
        self.as_root = os.geteuid() == 0
        self.root = tempfile.mkdtemp(prefix="sb-pg-")
        self.data = os.path.join(self.root, "data")
        self.log = os.path.join(self.root, "server.log")
        self.port = None
        self._names = itertools.count(1)
        if self.as_root:
            pg = pwd.getpwnam("postgres")
            os.chown(self.root, pg.pw_uid, pg.pw_gid)

    def _run(self, *argv, timeout=60):
        argv = [os.path.join(self.bin, argv[0])] + list(argv[1:])
        if self.as_root:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=self.root)
        if r.returncode != 0:
            raise PgUnavailable("%s failed (%d): %s" % (" ".join(argv[:6]),
                                                        r.returncode, (r.stderr or r.stdout).strip()[-800:]))
        return r

    def start(self):
        self._run("initdb", "-D", self.data, "-U", USER, "--auth=trust", "--locale=C", "-E", "UTF8", "-N")
        for attempt in range(3):   # a port taken between free_port() and the bind: draw another
            self.port = procs.free_port()
            options = "-p %d -h 127.0.0.1 -k %s %s" % (self.port, self.root, SERVER_OPTIONS)
            try:
                self._run("pg_ctl", "-D", self.data, "-l", self.log, "-o", options, "-w", "-t", "30", "start")
                return self
            except PgUnavailable:
                if attempt == 2:
                    raise PgUnavailable("postgres did not start; its log:\n" + self.log_tail())
        return self

    def log_tail(self):
        try:
            with open(self.log) as f:
                return f.read()[-2000:]
        except OSError:
            return "(no log)"

    def url(self, database="postgres"):
        return "postgresql://%s@127.0.0.1:%d/%s" % (USER, self.port, database)

    def new_database(self):
        """The URL of a new, empty database on this server."""
        import psycopg

        name = "t_%d" % next(self._names)
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE %s" % name)
        return self.url(name)

    def stop(self):
        try:
            if self.port is not None and os.path.exists(os.path.join(self.data, "postmaster.pid")):
                self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()
