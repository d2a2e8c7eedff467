"""`soundbox broker run --port N` on a port another process holds must say so and fail,
never claim to be listening because the *other* process answers on that port."""
import selectors
import socket
import subprocess
import sys
import time

import pytest

from soundbox_tools import broker as broker_mod
from soundbox_tools import procs

SOUNDBOX = [sys.executable, "-m", "soundbox_tools.cli"]
DEADLINE_S = 20      # generous for a loaded machine; a refusal takes well under a second


@pytest.fixture
def held_port():
    """A loopback port held by a plain listening socket of the test's own."""
    with socket.socket() as s:
        s.bind((procs.LOOPBACK, 0))
        s.listen()
        yield s.getsockname()[1]


def first_line(proc, timeout):
    """The child's first stdout line, or '' if none came within timeout (never blocks longer)."""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            return ""
    return proc.stdout.readline()


def mqtt_connack(port):
    """Send a minimal MQTT 3.1.1 CONNECT; the 4-byte CONNACK that comes back."""
    connect = b"\x10\x10\x00\x04MQTT\x04\x02\x00\x3c\x00\x04test"
    with socket.create_connection((procs.LOOPBACK, port), timeout=5) as s:
        s.sendall(connect)
        reply = b""
        while len(reply) < 4:
            chunk = s.recv(4 - len(reply))
            if not chunk:
                break
            reply += chunk
        return reply


def test_run_on_a_taken_port_refuses_at_once(tmp_path, held_port):
    started = time.monotonic()
    r = subprocess.run(SOUNDBOX + ["broker", "run", "--plain", "--dir", str(tmp_path / "b"),
                                   "--port", str(held_port)],
                       capture_output=True, text=True, timeout=DEADLINE_S)
    assert r.returncode != 0
    assert time.monotonic() - started < DEADLINE_S
    assert "listening" not in r.stdout
    message = r.stderr.strip().splitlines()
    assert len(message) == 1, r.stderr
    assert str(held_port) in message[0] and "already in use" in message[0]


def test_child_dying_on_a_taken_port_is_reported_not_taken_for_listening(tmp_path, held_port, monkeypatch):
    # The port is taken between the check and mosquitto's bind (the check skipped here):
    # the wait must see our mosquitto die, not the test's socket answer.
    monkeypatch.setattr(procs, "port_in_use", lambda host, port: False)
    b = broker_mod.Mosquitto(tmp_path / "b", port=held_port)
    with pytest.raises(broker_mod.BrokerError) as e:
        b.start(timeout=DEADLINE_S)
    assert "mosquitto exited (code 1): Error: Address already in use" in str(e.value)
    assert b.proc is None


def test_wait_port_wants_the_childs_own_listener(held_port):
    # A live child that listens nowhere: the port answers, but not from it.
    idle = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        assert procs.owns_listener(idle.pid, held_port) is False
        assert not procs.wait_port(procs.LOOPBACK, held_port, 0.5, idle)
    finally:
        idle.stdin.close()
        idle.wait(DEADLINE_S)
    # A child that does listen there is found as soon as it does.
    port = procs.free_port()
    server = subprocess.Popen([sys.executable, "-c",
                               "import socket, sys; s = socket.socket(); s.bind(('127.0.0.1', %d)); "
                               "s.listen(); sys.stdin.read()" % port], stdin=subprocess.PIPE)
    try:
        assert procs.wait_port(procs.LOOPBACK, port, DEADLINE_S, server)
        assert procs.owns_listener(server.pid, port) is True
    finally:
        server.stdin.close()
        server.wait(DEADLINE_S)


def test_run_on_a_free_port_listens_and_accepts_mqtt(tmp_path):
    port = procs.free_port()
    proc = subprocess.Popen(SOUNDBOX + ["broker", "run", "--plain", "--dir", str(tmp_path / "b"),
                                        "--port", str(port)],
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        line = first_line(proc, DEADLINE_S)
        assert "listening on mqtt://127.0.0.1:%d" % port in line
        assert mqtt_connack(port) == b"\x20\x02\x00\x00"   # CONNACK, accepted
    finally:
        procs.stop(proc)
    assert proc.returncode == 0
