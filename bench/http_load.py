"""Benchmark: the cloud's HTTP payment API under load, beside a bare peer, in one run.

    .venv/bin/python bench/http_load.py [--devices 1000] [--requests 5000 | --seconds S]
                                        [--levels 1,10,100] [--skip-peer] [--json out.json]

Starts a private mosquitto (mutual TLS, on a free loopback port), a development PKI,
N simulated boxes running the real firmware in the simulator's worker processes
(soundbox_sim.worker), and the real cloud as a subprocess (`soundbox cloud`), with an
admin key of a high rate made in its database. Then, for each level C of concurrent
clients, C persistent HTTP/1.1 keep-alive connections each POST /payments one at a time
(unique txns, the N boxes round robin, small amounts) and every request is timed from
its first byte sent to its last byte received: p50, p99 and accepted (202) per second.

End to end: after each level the boxes' acks are awaited; accepted-and-acked payments per
second = the level's 202s whose ack the cloud recorded, over first POST to last first-ack
(the ack times are read from the cloud's own SQLite, read-only; /stats is cross-checked).

The bare peer: after the cloud is stopped (both use the cloud's certificate, and the
broker keeps one connection per identity), a minimal uvicorn app in this file, as its own
process, answers POST /payments by parsing the JSON body and publishing it with paho at
QoS 1 to sb/<device>/notify, then 202: no auth, no database, no signing. The same client
load runs against it through the same broker to the same boxes (which ack its unsigned
notes "invalid" to nobody), so cloud/peer shows what the cloud's safety costs.

Per level it also prints the CPU each process used (client, server, broker, boxes), in
% of one core: on this 2-core machine that says which one is the bottleneck.
--profile-cloud runs the cloud under cProfile in every thread (HTTP loop, threadpool,
paho) and prints its top functions.

Targets (from the issue): >= 1,000 payments/s accepted end to end with the broker and the
boxes running, API p99 < 50 ms at 100 concurrent clients.
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import secrets
import shutil
import signal
import sqlite3
import sys
import tempfile
import threading
import time

TARGET_RATE = 1000.0       # payments/s accepted and acked
TARGET_P99_MS = 50.0       # at TARGET_P99_CLIENTS concurrent clients
TARGET_P99_CLIENTS = 100
PROGRESS_S = 2.0
ACK_WAIT_S = 120.0         # at most this long for a level's acks
ACK_STALL_S = 20.0         # ...or this long without one more
WARMUP_REQUESTS = 50       # per side, before the first level: first-call costs, not load


def log(text):
    print("http_load: " + text, flush=True)


# ---- the load generator: hand-written HTTP/1.1 keep-alive on asyncio streams -----------------

class HttpConnection:
    """One persistent connection sending one request at a time (Content-Length bodies)."""

    def __init__(self, host, port, headers):
        self.host, self.port = host, port
        self.head = "".join("%s: %s\r\n" % kv for kv in [("Host", "%s:%d" % (host, port))] + headers)
        self.reader = self.writer = None

    async def open(self):
        # asyncio turns Nagle off on TCP connections it makes
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self):
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    async def request(self, method, path, body=b""):
        """(status, body bytes); reconnects once if the server had closed the connection."""
        if self.writer is None:
            await self.open()
        self.writer.write(("%s %s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n"
                           % (method, path, self.head, len(body))).encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length, close = 0, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        data = await self.reader.readexactly(length) if length else b""
        if close:
            self.close()
        return status, data


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


class Payments:
    """Unique txns, the boxes round robin, small amounts; a prefix per level for range queries."""

    def __init__(self, ids, run):
        self.ids = ids
        self.run = run
        self.seq = 0

    def prefix(self, side, level):
        return "hl-%s-%s-c%d-" % (self.run, side, level)

    def next(self, prefix):
        n = self.seq
        self.seq += 1
        txn = "%s%07d" % (prefix, n)
        body = json.dumps({"device": self.ids[n % len(self.ids)], "amount": 100 + n % 900, "txn": txn},
                          separators=(",", ":")).encode()
        return txn, body


async def run_level(host, port, headers, clients, requests, seconds, payments, prefix, progress_label,
                    meters, rate=None):
    """Run one level; returns its figures and the txns answered 202. rate: offered requests
    a second over all clients (open loop: request n is due at start + n / rate, and its
    latency counts from then, so time spent queued behind a slow server counts too);
    None: each client sends its next request as soon as the last is answered."""
    conns = [HttpConnection(host, port, headers) for _ in range(clients)]
    await asyncio.gather(*(c.open() for c in conns))
    latencies, statuses, accepted = [], {}, []
    errors = []
    state = {"issued": 0}
    cpu_before = meters.sample()
    first_wall_ms = time.time() * 1000
    start = time.perf_counter()
    deadline = start + seconds if seconds else None

    async def client(conn):
        while True:
            if deadline is not None:
                if time.perf_counter() >= deadline:
                    return
            elif state["issued"] >= requests:
                return
            n = state["issued"]
            state["issued"] += 1
            txn, body = payments.next(prefix)
            t = time.perf_counter()
            if rate:
                due = start + n / rate
                if due > t:
                    await asyncio.sleep(due - t)
                t = due
            try:
                status, _ = await conn.request("POST", "/payments", body)
            except (OSError, asyncio.IncompleteReadError, ValueError) as e:
                errors.append(type(e).__name__)
                conn.close()
                continue
            latencies.append(time.perf_counter() - t)
            statuses[status] = statuses.get(status, 0) + 1
            if status == 202:
                accepted.append(txn)

    async def report():
        while True:
            await asyncio.sleep(PROGRESS_S)
            elapsed = time.perf_counter() - start
            log("%s: %d done in %.1f s, %.0f accepted/s, %d errors"
                % (progress_label, len(latencies), elapsed, len(accepted) / elapsed, len(errors)))

    reporter = asyncio.ensure_future(report())
    try:
        await asyncio.gather(*(client(c) for c in conns))
    finally:
        reporter.cancel()
        for c in conns:
            c.close()
    wall = time.perf_counter() - start
    cpu = meters.since(cpu_before, wall)
    latencies.sort()
    figures = {"clients": clients, "requests": len(latencies), "wall_s": round(wall, 3),
               "accepted": len(accepted), "accepted_per_s": round(len(accepted) / wall, 1),
               "statuses": {str(k): v for k, v in sorted(statuses.items())},
               "errors": len(errors),
               "p50_ms": _ms(percentile(latencies, 0.50)), "p99_ms": _ms(percentile(latencies, 0.99)),
               "max_ms": _ms(latencies[-1] if latencies else None),
               "cpu_pct": cpu, "first_post_ms": first_wall_ms}
    return figures, accepted


def _ms(seconds):
    return None if seconds is None else round(seconds * 1000, 2)


# ---- CPU meters: /proc/<pid>/stat of each process we started ---------------------------------

def proc_cpu_s(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")   # utime + stime


class Meters:
    """{name: pid or [pids]}; sample() and since() give % of one core per name."""

    def __init__(self):
        self.pids = {}

    def sample(self):
        out = {}
        for name, pids in self.pids.items():
            if name == "client":
                t = os.times()
                out[name] = t.user + t.system
            else:
                out[name] = sum(proc_cpu_s(p) for p in pids)
        return out

    def since(self, before, wall):
        now = self.sample()
        return {k: round(100 * (now[k] - before.get(k, 0)) / wall) for k in now}


# ---- the bare peer (runs as its own process: --serve-peer) ---------------------------------

def serve_peer(hostport, broker_url, certs):
    """POST /payments: parse the JSON body, publish it at QoS 1 to sb/<device>/notify, 202."""
    import socket
    import ssl

    import paho.mqtt.client as mqtt
    import uvicorn
    from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

    from soundbox import wire
    from soundbox_cloud.http_server import BACKLOG, listen   # the cloud's own socket settings
    from soundbox_cloud.mqttlink import MAX_QUEUED, parse_broker_url

    host, port, tls = parse_broker_url(broker_url)
    connected = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="http-load-peer", protocol=mqtt.MQTTv311,
                         clean_session=True)
    if tls:
        client.tls_set(ca_certs=os.path.join(certs, "ca.pem"), certfile=os.path.join(certs, "cloud.pem"),
                       keyfile=os.path.join(certs, "cloud.key"), cert_reqs=ssl.CERT_REQUIRED)
    client.max_queued_messages_set(MAX_QUEUED)
    client.on_socket_open = lambda c, u, sock: sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.on_connect = lambda c, u, flags, rc, props: rc.is_failure or connected.set()
    client.connect(host, port, keepalive=60)
    client.loop_start()
    if not connected.wait(10):
        print("peer: the broker at %s did not accept us" % broker_url, file=sys.stderr)
        sys.exit(1)

    async def answer(send, status, payload):
        body = json.dumps(payload).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] != "/payments" or scope["method"] != "POST":
            return await answer(send, 404, {"error": "no such path"})
        try:
            note = json.loads(body)
            device, txn = note["device"], note["txn"]
        except (ValueError, KeyError, TypeError):
            return await answer(send, 400, {"error": "bad body"})
        if client.publish(wire.topic(device, wire.NOTIFY), body, qos=1).rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            return await answer(send, 503, {"error": "queue full"})
        await answer(send, 202, {"txn": txn, "device": device, "status": "sent"})

    http_host, http_port = hostport.rsplit(":", 1)
    sock = listen(http_host, int(http_port))
    config = uvicorn.Config(app, http="httptools", loop="asyncio", lifespan="off", access_log=False,
                            log_level="warning", server_header=False, backlog=BACKLOG)
    try:
        uvicorn.Server(config).run(sockets=[sock])   # SIGTERM: finishes what is in flight, returns
    finally:
        client.disconnect()
        client.loop_stop()


# ---- the cloud under cProfile in every thread (runs as its own process: --profiled-cloud) ---

def profiled_cloud(out_path, cli_args):
    """`soundbox cloud ...` with a cProfile per thread (python -m cProfile sees only the main
    thread, which just waits); at exit the threads' stats are merged into out_path."""
    import cProfile
    import marshal
    import pstats

    profilers = []
    lock = threading.Lock()

    def start_in_this_thread(frame, event, arg):
        # threading.setprofile runs this on a new thread's first event; enable() then
        # replaces it with the C profiler for that thread.
        p = cProfile.Profile()
        with lock:
            profilers.append(p)
        p.enable()

    threading.setprofile(start_in_this_thread)
    from soundbox_tools.cli import main as cli_main

    main_profiler = cProfile.Profile()
    profilers.append(main_profiler)
    main_profiler.enable()
    try:
        rc = cli_main(cli_args)
    finally:
        main_profiler.disable()
        merged = None
        with lock:
            for i, p in enumerate(profilers):
                p.snapshot_stats()   # without disable(): that only works from the profiler's own thread
                part = "%s.%d" % (out_path, i)
                with open(part, "wb") as f:
                    marshal.dump(p.stats, f)
                if merged is None:
                    merged = pstats.Stats(part)
                else:
                    merged.add(part)
                os.remove(part)
        if merged is not None:
            merged.dump_stats(out_path)
    sys.exit(rc)


def print_profile(path, top=25):
    import pstats

    if not os.path.exists(path):
        log("no cloud profile at %s" % path)
        return
    stats = pstats.Stats(path)
    print("\ncloud cProfile, all threads summed (a thread waiting for a lock counts its wait):")
    stats.sort_stats("tottime").print_stats(top)
    payments = sum(v[0] for k, v in stats.stats.items() if k[0].endswith("soundbox_cloud/cloud.py") and k[2] == "pay")
    areas = {}
    for key, (_, _, tottime, _, _) in stats.stats.items():
        area = profile_area(key)
        areas[area] = areas.get(area, 0.0) + tottime
    print("own time by area, per payment (%d payments):" % payments)
    for area, t in sorted(areas.items(), key=lambda kv: -kv[1]):
        print("  %-44s %8.1f s  %7.3f ms/payment" % (area, t, 1000 * t / max(1, payments)))


# Which part of the stack a profiled function belongs to (by file, or by name for C code).
AREAS = (("soundbox_cloud/", None), ("/sdk/", "sdk (signing, payment rules)"),
         ("sqlite3", "sqlite3 (C calls)"), ("/fastapi/", "fastapi"), ("/starlette/", "starlette"),
         ("/pydantic", "pydantic"), ("/anyio/", "anyio (threadpool hand-off)"), ("/uvicorn/", "uvicorn"),
         ("httptools", "uvicorn"), ("/paho/", "paho"), ("_ssl", "TLS (ssl C calls)"),
         ("asyncio", "asyncio"), ("/json/", "json"), ("_json", "json"))


def profile_area(key):
    filename, _, name = key
    where = filename + " " + name
    if filename == "~" and any(w in name for w in ("acquire", "select", "poll", "sleep")):
        return "waiting (locks, GIL hand-offs, select)"
    for mark, area in AREAS:
        if mark in where:
            return area or "cloud: " + filename.rsplit("soundbox_cloud/", 1)[1]
    return "other (stdlib, C builtins)"


# ---- the stack ------------------------------------------------------------------------------

class Stack:
    """Broker, boxes, cloud and peer; close() stops whatever was started, in reverse."""

    def __init__(self, a):
        self.a = a
        self.state = a.state or tempfile.mkdtemp(prefix="bench-http-", dir=_tmpfs())
        self.broker = self.cloud = self.peer = None
        self.workers, self.conns, self.ticks = [], [], {}
        self.meters = Meters()
        self.meters.pids["client"] = [os.getpid()]
        self.db_path = os.path.join(self.state, "cloud.db")
        self.pki = None
        self.db_reader = None

    # set-up

    def prepare(self):
        from soundbox_sim import runner, worker
        from soundbox_tools.voicepack import build_pack

        problem = worker.ensure_fd_limit(self.a.devices + 1024)   # the broker inherits ours
        if problem:
            raise SystemExit("http_load: " + problem)
        build_pack("en-IN", self.a.voice)
        started = time.monotonic()
        self.pki, issued = runner.provision(self.a.certs, self.a.devices, log)
        if issued:
            log("issued %d device identities in %.1f s" % issued)
        log("PKI ready in %.1f s (%s)" % (time.monotonic() - started, self.pki.root))

    def start_broker(self):
        from soundbox_tools.broker import Mosquitto

        self.broker = Mosquitto(os.path.join(self.state, "broker"), pki=self.pki).start()
        self.meters.pids["broker"] = [self.broker.proc.pid]
        log("mosquitto on %s" % self.broker.url)

    def start_boxes(self):
        from soundbox_sim import fleet, runner, worker

        ids = fleet.device_ids(self.a.devices)
        flash = tempfile.mkdtemp(prefix="flash-", dir=self.state)
        n = self.a.workers or runner.default_workers(len(ids))
        ctx = multiprocessing.get_context("spawn")
        for i in range(n):
            mine = ids[i::n]
            spec = {"index": i, "ids": mine, "host": self.broker.host, "port": self.broker.port, "tls": True,
                    "identity_root": os.path.join(self.pki.root, "devices"), "state_dir": flash,
                    "pack_dir": self.a.voice, "journal": None, "connect_rate": self.a.connect_rate / n,
                    "keepalive": 60, "freshness_s": None, "langs": {d: "en-IN" for d in mine},
                    "speedup": self.a.speedup, "extra_config": {}, "proxy": False, "seed": i,
                    "wav_device": None, "out_dir": os.path.join(self.state, "out"),
                    "fd_needed": len(mine) * runner.FDS_PER_DEVICE + 256}
            parent, child = ctx.Pipe()
            p = ctx.Process(target=worker.main, args=(child, spec), name="http-load-boxes-%d" % i)
            p.start()
            child.close()
            self.workers.append(p)
            self.conns.append(parent)
        self.meters.pids["boxes"] = [p.pid for p in self.workers]
        self.ids = ids
        log("%d boxes (real firmware) in %d worker processes, connecting at %g/s"
            % (len(ids), n, self.a.connect_rate))

    def poll_workers(self, timeout=0.0):
        from multiprocessing.connection import wait

        for c in wait(self.conns, timeout):
            try:
                msg = c.recv()
            except (EOFError, OSError):
                self.conns.remove(c)
                continue
            if msg["type"] in ("tick", "final"):
                self.ticks[msg["w"]] = msg
            elif msg["type"] == "error":
                raise SystemExit("http_load: a box worker failed: %s" % msg["error"])

    def connected_boxes(self):
        return sum(t["connected"] for t in self.ticks.values())

    def wait_boxes(self, timeout):
        deadline = time.monotonic() + timeout
        last = 0
        while time.monotonic() < deadline:
            self.poll_workers(0.5)
            if any(not p.is_alive() for p in self.workers):
                raise SystemExit("http_load: a box worker died; see %s/flash-*/devices.log" % self.state)
            n = self.connected_boxes()
            if n != last and (n == self.a.devices or time.monotonic() - getattr(self, "_said", 0) > PROGRESS_S):
                log("boxes connected: %d/%d" % (n, self.a.devices))
                self._said = time.monotonic()
                last = n
            if n == self.a.devices:
                return
        raise SystemExit("http_load: only %d of %d boxes connected within %.0f s"
                         % (self.connected_boxes(), self.a.devices, timeout))

    def start_cloud(self):
        from soundbox_tools import procs

        from soundbox_cloud.auth import KeyStore

        # The key before the cloud starts. Before 9516f2b a KeyStore closed in another process
        # while the cloud ran deleted the cloud's WAL, hiding its later writes from us.
        store = KeyStore(self.db_path)
        try:
            self.key = store.create("admin", rate=1e6, name="http_load")[0]
        finally:
            store.close()
        self.cloud_port = procs.free_port()
        cli = ["cloud", "--broker", self.broker.url, "--http", "127.0.0.1:%d" % self.cloud_port,
               "--db", self.db_path, "--certs", self.pki.root]
        if self.a.profile_cloud:
            self.profile_path = os.path.join(self.state, "cloud.prof")
            argv = [sys.executable, os.path.abspath(__file__), "--profiled-cloud", self.profile_path, "--"] + cli
        else:
            argv = [sys.executable, "-m", "soundbox_tools.cli"] + cli
        self.cloud = procs.spawn(argv, log_path=os.path.join(self.state, "cloud.log"))
        if not procs.wait_port("127.0.0.1", self.cloud_port, 30, self.cloud):
            raise SystemExit("http_load: the cloud did not start; see %s/cloud.log" % self.state)
        self.meters.pids["server"] = [self.cloud.pid]
        log("cloud on http://127.0.0.1:%d (pid %d, db %s)" % (self.cloud_port, self.cloud.pid, self.db_path))

    def stop_cloud(self):
        from soundbox_tools import procs

        procs.stop(self.cloud, grace=30 if self.a.profile_cloud else 5)
        if self.db_reader is not None:   # only once the cloud is gone (see db())
            self.db_reader.close()
            self.db_reader = None

    def start_peer(self):
        from soundbox_tools import procs

        self.peer_port = procs.free_port()
        argv = [sys.executable, os.path.abspath(__file__), "--serve-peer", "127.0.0.1:%d" % self.peer_port,
                "--broker", self.broker.url, "--certs", self.pki.root]
        self.peer = procs.spawn(argv, log_path=os.path.join(self.state, "peer.log"))
        if not procs.wait_port("127.0.0.1", self.peer_port, 30, self.peer):
            raise SystemExit("http_load: the peer did not start; see %s/peer.log" % self.state)
        self.meters.pids["server"] = [self.peer.pid]
        log("bare peer on http://127.0.0.1:%d (pid %d)" % (self.peer_port, self.peer.pid))

    # the cloud's records, read-only

    def db(self):
        """One read-only connection, open until the cloud has stopped (a cloud from before
        9516f2b held no lock on its file, and a connection closed here deleted its WAL).
        Statements are read to the end (fetchall) so no snapshot stays open between queries."""
        if self.db_reader is None:
            self.db_reader = sqlite3.connect("file:%s?mode=ro" % self.db_path, uri=True, timeout=10)
        return self.db_reader

    def online_devices(self):
        return self.db().execute("SELECT COUNT(*) FROM devices WHERE state = 'online'").fetchall()[0][0]

    def acks_of(self, prefix):
        """({payment status: count}, last first-ack ms) of the txns starting with prefix."""
        hi = prefix + "~"   # '~' sorts after every digit
        c = self.db()
        statuses = dict(c.execute("SELECT status, COUNT(*) FROM payments WHERE txn >= ? AND txn < ?"
                                  " GROUP BY status", (prefix, hi)).fetchall())
        last = c.execute("SELECT MAX(first) FROM (SELECT MIN(received_ms) AS first FROM acks"
                         " WHERE txn >= ? AND txn < ? GROUP BY txn)", (prefix, hi)).fetchall()[0][0]
        return statuses, last

    # teardown

    def close(self):
        from soundbox_tools import procs

        for c in self.conns:
            try:
                c.send({"op": "stop"})
            except (BrokenPipeError, OSError):
                pass
        deadline = time.monotonic() + 15
        for p in self.workers:
            p.join(max(0.1, deadline - time.monotonic()))
            if p.is_alive():
                p.terminate()
                p.join(5)
        procs.stop(self.peer)
        self.stop_cloud()
        if self.broker is not None:
            self.broker.stop()
        if not self.a.keep and not self.a.state:
            shutil.rmtree(self.state, ignore_errors=True)


def _tmpfs():
    # Flash, broker and the cloud's SQLite on tmpfs: a commit per ack must not wait for a disk.
    return "/dev/shm" if os.access("/dev/shm", os.W_OK) else None


# ---- one side: warm-up, the levels, the acks -------------------------------------------------

def run_side(stack, side, port, headers, payments, a):
    results = []
    loop_levels = a.levels
    warm = payments.prefix(side, 0) + "warm-"
    asyncio.run(run_level("127.0.0.1", port, headers, min(10, max(loop_levels)), WARMUP_REQUESTS, None,
                          payments, warm, "%s warm-up" % side, stack.meters))
    for clients in loop_levels:
        prefix = payments.prefix(side, clients)
        label = "%s C=%d" % (side, clients)
        log("%s: %s" % (label, "%g s" % a.seconds if a.seconds else "%d requests" % a.requests))
        figures, accepted = asyncio.run(run_level("127.0.0.1", port, headers, clients, a.requests, a.seconds,
                                                  payments, prefix, label, stack.meters, a.rate))
        stack.poll_workers()
        log("%s: %d accepted/s, p50 %s ms, p99 %s ms, statuses %s, CPU %s"
            % (label, figures["accepted_per_s"], figures["p50_ms"], figures["p99_ms"], figures["statuses"],
               _cpu_text(figures["cpu_pct"])))
        if side == "cloud":
            figures["e2e"] = wait_acks(stack, prefix, figures, label)
        results.append(figures)
    return results


def wait_acks(stack, prefix, figures, label):
    """The level's acks as the cloud recorded them: acked count, last first-ack, rate."""
    want = figures["accepted"]
    start = time.monotonic()
    last_progress, acked, best = start, 0, -1
    statuses, last_ms = {}, None
    while True:
        statuses, last_ms = stack.acks_of(prefix)
        acked = sum(n for s, n in statuses.items() if s not in ("sent", "timed_out"))
        now = time.monotonic()
        if acked > best:
            best, last_progress = acked, now
        if acked >= want or now - start > ACK_WAIT_S or now - last_progress > ACK_STALL_S:
            break
        stack.poll_workers(0.25)
    e2e = {"acked": acked, "statuses": statuses, "waited_s": round(time.monotonic() - start, 2)}
    if acked and last_ms:
        span = (last_ms - figures["first_post_ms"]) / 1000
        e2e["span_s"] = round(span, 3)
        e2e["acked_per_s"] = round(acked / span, 1)
    log("%s: %d of %d accepted acked (%s), end to end %s/s over %s s"
        % (label, acked, want, json.dumps(statuses), e2e.get("acked_per_s"), e2e.get("span_s")))
    return e2e


def _cpu_text(cpu):
    return ", ".join("%s %d%%" % kv for kv in sorted(cpu.items()))


# ---- the report -------------------------------------------------------------------------------

def _f(v, fmt="%.1f"):
    return "-" if v is None else fmt % v


def _ratio(a, b):
    return None if not a or not b else a / b


def print_table(cloud, peer, a, command, wall_s):
    peer_by = {r["clients"]: r for r in peer or []}
    print()
    print("http_load: %d boxes (real firmware, mTLS), same broker; %s per level; command: %s"
          % (a.devices, ("%g s" % a.seconds if a.seconds else "%d requests" % a.requests)
             + (", offered %g/s (open loop)" % a.rate if a.rate else ""), command))
    head = ("%4s | %9s %9s %6s | %8s %8s %6s | %8s %8s %6s | %10s"
            % ("C", "cloud/s", "peer/s", "ratio", "cloud50", "peer50", "ratio", "cloud99", "peer99", "ratio",
               "cloud e2e/s"))
    print(head)
    print("-" * len(head))
    for r in cloud:
        p = peer_by.get(r["clients"], {})
        e2e = r.get("e2e", {}).get("acked_per_s")
        print("%4d | %9s %9s %6s | %8s %8s %6s | %8s %8s %6s | %10s"
              % (r["clients"], _f(r["accepted_per_s"], "%.0f"), _f(p.get("accepted_per_s"), "%.0f"),
                 _f(_ratio(r["accepted_per_s"], p.get("accepted_per_s")), "%.2f"),
                 _f(r["p50_ms"], "%.2f"), _f(p.get("p50_ms"), "%.2f"), _f(_ratio(r["p50_ms"], p.get("p50_ms")), "%.1f"),
                 _f(r["p99_ms"], "%.2f"), _f(p.get("p99_ms"), "%.2f"), _f(_ratio(r["p99_ms"], p.get("p99_ms")), "%.1f"),
                 _f(e2e, "%.0f")))
    print("(accepted = answered 202 per second of the level's wall time; p50/p99 in ms, send to full"
          " response; ratio = cloud/peer; e2e = accepted and acked by a box, first POST to last ack)")
    for r in cloud:
        p = peer_by.get(r["clients"])
        print("C=%d CPU %% of a core: cloud side %s | peer side %s" % (
            r["clients"], _cpu_text(r["cpu_pct"]), _cpu_text(p["cpu_pct"]) if p else "-"))
        bad = {k: v for k, v in r["statuses"].items() if k != "202"}
        if bad or r["errors"]:
            print("C=%d cloud non-202 %s, connection errors %d" % (r["clients"], bad, r["errors"]))
    verdicts = targets(cloud, a.devices)
    for text in verdicts:
        print(text)
    print("wall time %.1f s" % wall_s)
    return verdicts


def targets(cloud, devices):
    top = max(cloud, key=lambda r: r["clients"])
    e2e = top.get("e2e", {}).get("acked_per_s")
    out = ["target: >= %d payments/s accepted and acked end to end (C=%d, %d boxes): %s/s  %s"
           % (TARGET_RATE, top["clients"], devices, _f(e2e, "%.0f"), "PASS" if e2e and e2e >= TARGET_RATE else "MISS"),
           "        (API alone, answered 202: %.0f/s  %s)"
           % (top["accepted_per_s"], "PASS" if top["accepted_per_s"] >= TARGET_RATE else "MISS")]
    at = [r for r in cloud if r["clients"] == TARGET_P99_CLIENTS]
    if at:
        p99 = at[0]["p99_ms"]
        out.append("target: API p99 < %d ms at %d concurrent clients: %s ms  %s"
                   % (TARGET_P99_MS, TARGET_P99_CLIENTS, _f(p99, "%.2f"),
                      "PASS" if p99 is not None and p99 < TARGET_P99_MS else "MISS"))
    else:
        out.append("target: API p99 at %d clients: not measured (add %d to --levels)"
                   % (TARGET_P99_CLIENTS, TARGET_P99_CLIENTS))
    return out


# ---- main ---------------------------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=1000, help="simulated boxes (default 1000)")
    p.add_argument("--requests", type=int, default=5000, help="requests per level (default 5000)")
    p.add_argument("--seconds", type=float, help="run each level this long instead of --requests")
    p.add_argument("--levels", default="1,10,100", help="concurrent clients per level (default 1,10,100)")
    p.add_argument("--skip-peer", action="store_true", help="measure the cloud only")
    p.add_argument("--rate", type=float, help="offered payments a second over all clients (open loop; "
                                              "default: closed loop, as fast as answers come)")
    p.add_argument("--json", metavar="OUT", help="write every figure to this JSON file")
    p.add_argument("--speedup", type=float, default=1000.0,
                   help="boxes play announcements this many times faster (default 1000: the boxes ack"
                        " at once instead of after 2-3 s of speech each)")
    p.add_argument("--connect-rate", type=float, default=200.0, help="box connects per second (mTLS)")
    p.add_argument("--workers", type=int, help="box worker processes (default: the simulator's)")
    p.add_argument("--certs", default=os.path.join(".state", "bench-http", "certs"),
                   help="PKI directory (device identities are cached there between runs)")
    p.add_argument("--voice", default=os.path.join(".state", "bench-http", "voice"))
    p.add_argument("--state", help="run directory, kept (default: a new one on /dev/shm, removed)")
    p.add_argument("--keep", action="store_true", help="keep the default run directory")
    p.add_argument("--profile-cloud", action="store_true", help="cProfile the cloud in every thread")
    a = p.parse_args(argv)
    try:
        a.levels = [int(x) for x in a.levels.split(",") if x.strip()]
    except ValueError:
        p.error("--levels must be a comma-separated list of client counts, e.g. 1,10,100")
    if not a.levels or min(a.levels) < 1:
        p.error("--levels must list client counts >= 1")
    if a.devices < 1 or a.requests < 1 or (a.seconds is not None and a.seconds <= 0):
        p.error("--devices and --requests must be >= 1, --seconds > 0")
    return a


def main(argv):
    if argv[:1] == ["--serve-peer"]:
        p = argparse.ArgumentParser()
        p.add_argument("--serve-peer")
        p.add_argument("--broker")
        p.add_argument("--certs")
        o = p.parse_args(argv)
        return serve_peer(o.serve_peer, o.broker, o.certs)
    if argv[:1] == ["--profiled-cloud"]:
        return profiled_cloud(argv[1], argv[3:])   # --profiled-cloud OUT -- <soundbox cli args>
    a = parse_args(argv)
    command = " ".join([os.path.relpath(sys.executable)] + [os.path.relpath(__file__)] + argv)
    began = time.monotonic()
    # Ctrl-C or SIGTERM: unwind through the finally below, which stops every process.
    signal.signal(signal.SIGTERM, _interrupt)
    stack = Stack(a)
    cloud = peer = None
    try:
        stack.prepare()
        stack.start_broker()
        stack.start_boxes()
        stack.start_cloud()
        stack.wait_boxes(60 + a.devices / a.connect_rate * 2)
        deadline = time.monotonic() + 30
        while stack.online_devices() < a.devices:   # the cloud pays boxes that told it their status
            if time.monotonic() > deadline:
                raise SystemExit("http_load: the cloud knows %d of %d boxes online after 30 s"
                                 % (stack.online_devices(), a.devices))
            stack.poll_workers(0.25)
        payments = Payments(stack.ids, secrets.token_hex(3))
        log("all %d boxes online at the cloud; measuring the cloud" % a.devices)
        cloud = run_side(stack, "cloud", stack.cloud_port,
                         [("Authorization", "Bearer " + stack.key), ("Content-Type", "application/json")],
                         payments, a)
        cloud_stats = _get_stats(stack)
        stack.stop_cloud()
        if a.profile_cloud:
            print_profile(stack.profile_path)
        if not a.skip_peer:
            stack.start_peer()
            peer = run_side(stack, "peer", stack.peer_port, [("Content-Type", "application/json")], payments, a)
        wall = time.monotonic() - began
        verdicts = print_table(cloud, peer, a, command, wall)
        if cloud_stats is not None:
            print("cloud /stats at the end: sent %s, acked %s, pending %s, invalid %s, stale %s, duplicated %s"
                  % tuple(cloud_stats.get(k) for k in ("sent", "acked", "pending", "invalid", "stale", "duplicated")))
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"command": command, "devices": a.devices, "requests": a.requests, "seconds": a.seconds,
                           "speedup": a.speedup, "cloud": cloud, "peer": peer, "cloud_stats": cloud_stats,
                           "targets": verdicts, "wall_s": round(wall, 1)}, f, indent=2)
            log("figures in %s" % a.json)
    except KeyboardInterrupt:
        log("interrupted; stopping everything")
        return 130
    finally:
        stack.close()
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt()


def _get_stats(stack):
    import urllib.request

    req = urllib.request.Request("http://127.0.0.1:%d/stats" % stack.cloud_port,
                                 headers={"Authorization": "Bearer " + stack.key})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())
    except OSError as e:
        log("GET /stats failed: %s" % e)
        return None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
