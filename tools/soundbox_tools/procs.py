"""Small helpers for the processes and ports the tools start on loopback."""
import errno
import glob
import os
import signal
import socket
import subprocess
import time

LOOPBACK = "127.0.0.1"


def free_port(host=LOOPBACK):
    """A TCP port that was free a moment ago (the OS picks it; callers retry on a clash)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_in_use(host, port):
    """True if something already listens on host:port. Binds it the way mosquitto does
    (SO_REUSEADDR), so sockets in TIME_WAIT from an earlier run do not count as taken."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            return e.errno == errno.EADDRINUSE
    return False


def _listening_inodes(port):
    """Socket inodes of every TCP listener on `port` (any address), from /proc/net."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)   # header
                for line in f:
                    fields = line.split()
                    # fields[1] is ADDR:PORT in hex, fields[3] the state (0A = LISTEN)
                    if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(fields[9])
        except FileNotFoundError:
            continue
    return inodes


def _family(pid):
    """pid and its descendants: a listener may belong to a child the process started."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        for children in glob.glob("/proc/%d/task/*/children" % p):
            try:
                with open(children) as f:
                    todo.extend(int(c) for c in f.read().split())
            except OSError:
                pass   # the task ended meanwhile
    return pids


def _socket_inodes(pid):
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue   # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def owns_listener(pid, port):
    """True if pid (or a descendant) holds a listening TCP socket on `port`, False if not,
    None where /proc cannot tell (not Linux, or the process's fds are not ours to read)."""
    if not os.path.isdir("/proc/%d/fd" % pid) or not os.path.exists("/proc/net/tcp"):
        return None
    listening = _listening_inodes(port)
    if not listening:
        return False
    try:
        return any(listening & _socket_inodes(p) for p in _family(pid))
    except PermissionError:
        return None
    except FileNotFoundError:
        return False   # the process is gone


def _accepts(host, port):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_port(host, port, timeout, proc=None):
    """Wait until host:port accepts TCP connections; False on timeout or if proc exits.

    With a proc, the listener must be proc's own (where /proc can tell): another process
    holding the port would otherwise pass for a child that died on "Address already in use"."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        owned = owns_listener(proc.pid, port) if proc is not None else None
        if owned or (owned is None and _accepts(host, port)):
            # Looked at once more: the child may have died just after we checked it.
            return proc is None or proc.poll() is None
        time.sleep(0.05)
    return False


def spawn(argv, log_path=None, env=None):
    """Start a child in its own process group, so Ctrl-C reaches only us and we stop it ourselves."""
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    finally:
        if log_path:
            out.close()


def stop(proc, grace=5.0):
    """SIGTERM the child's process group, then SIGKILL it if it has not gone within `grace`."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass
