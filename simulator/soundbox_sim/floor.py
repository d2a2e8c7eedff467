"""The machine's floor: a loopback TCP ping-pong between two processes.

Any latency the simulator reports includes what this machine adds to one round trip
between two processes (scheduling, loopback); it is printed next to every latency figure.
"""

import multiprocessing
import socket
import time

from soundbox_sim.metrics import exact_percentiles

MSG = b"x" * 64


def _echo(port, ready):
    with socket.socket() as srv:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", port))
        srv.listen(1)
        ready.set()
        conn, _ = srv.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with conn:
            while True:
                data = conn.recv(len(MSG))
                if not data:
                    return
                conn.sendall(data)


def ping_pong(rounds=2000, interval_s=0.0):
    """Round-trip times (ms) of `rounds` 64-byte messages to an echo process; returns percentiles."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=_echo, args=(port, ready), daemon=True)
    proc.start()
    try:
        if not ready.wait(20):
            raise RuntimeError("ping-pong echo process did not start")
        rtts = []
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for _ in range(rounds):
                t = time.perf_counter()
                s.sendall(MSG)
                got = 0
                while got < len(MSG):
                    chunk = s.recv(len(MSG) - got)
                    if not chunk:
                        raise RuntimeError("echo process hung up")
                    got += len(chunk)
                rtts.append((time.perf_counter() - t) * 1000)
                if interval_s:
                    time.sleep(interval_s)
    finally:
        proc.join(5)
        if proc.is_alive():
            proc.terminate()
    out = exact_percentiles(rtts)
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in out.items()}
