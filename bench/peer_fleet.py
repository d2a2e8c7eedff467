"""The peer baseline for bench/sim_load.py --peer: a bare fleet written directly on
paho-mqtt, what a load tester would otherwise write by hand.

Each peer device only: connects with mutual TLS (the simulator's cached device
identities, their PEM files: paho reads no DER; client id = certificate CN, persistent
session, keepalive and a retained offline will as the firmware has), says it is online
(retained status: the cloud sends payments only to devices it has seen), subscribes to
sb/<id>/notify at QoS 1 and answers every notification with an ack on sb/<id>/ack at
QoS 1, as the firmware does. It verifies nothing, plans nothing and plays nothing.

Like the simulator, the devices are spread over worker processes (one per core), started
on the same open-loop connect schedule, or with connect rate "auto" in a closed loop: a
worker starts its next client while fewer than AUTO_IN_FLIGHT of its clients wait for
their CONNACK (a client waiting more than AUTO_STALL_S stops counting). Two ways to drive paho in a worker (--peer-loop):

  select   one loop per worker over all its clients' sockets (selectors: epoll here),
           with paho's external-loop API: loop_read / loop_write / loop_misc, the
           socket open/close/register-write callbacks; no thread per client.
  threads  client.loop_start() per client: paho's own thread per connection. paho's
           loop calls select.select(), which cannot watch a descriptor numbered 1024
           or more: a worker with more than about 340 TLS clients (3 descriptors each:
           the socket and paho's wake-up socket pair) loses the later ones.

Each worker reports once a second to the parent over a pipe: connected clients, acks
sent, its RSS and CPU time, and the RSS and CPU it had before the first client (base).
"""

import json
import multiprocessing
import os
import resource
import selectors
import signal
import socket
import ssl
import threading
import time

from soundbox import wire
from soundbox_sim.worker import cpu_s, rss_kib  # measured the same way as our fleet

LOOPS = ("select", "threads")
TICK_S = 1.0
RECONNECT_S = 1.0
AUTO = "auto"
AUTO_IN_FLIGHT = 16
AUTO_STALL_S = 5.0




def raise_fd_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard) if hard != resource.RLIM_INFINITY else needed,
                                                    hard))


def now_ms():
    return int(time.time() * 1000)


# ---- one peer device: a paho client ------------------------------------------------------

class Peer:
    """A paho client that acks every notification; `loop` is the worker's SelectLoop or None."""

    def __init__(self, device_id, spec, acks, loop=None):
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.id = device_id
        self.notify = wire.topic(device_id, wire.NOTIFY)
        self.ack = wire.topic(device_id, wire.ACK)
        self.status = wire.topic(device_id, wire.STATUS)
        self.acks = acks  # the worker's Count
        self.connacks = 0  # successful CONNACKs (the auto ramp counts those still awaited)
        self.began = time.monotonic()
        c = self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device_id,
                                      protocol=mqtt.MQTTv311, clean_session=False)
        if spec["tls"]:
            identity = os.path.join(spec["identity_root"], device_id)
            c.tls_set(ca_certs=os.path.join(identity, "ca.pem"), certfile=os.path.join(identity, "device.pem"),
                      keyfile=os.path.join(identity, "device.key"), cert_reqs=ssl.CERT_REQUIRED)
        c.will_set(self.status, json.dumps({"state": wire.OFFLINE, "fw": "peer"}), 1, True)
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        c.on_socket_open = self._on_socket_open
        if loop is not None:
            loop.attach(self)

    def _on_socket_open(self, client, userdata, sock):
        # paho leaves Nagle on; asyncio (our devices) turns it off: same footing.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            return
        self.connacks += 1
        client.subscribe(self.notify, 1)
        client.publish(self.status, json.dumps({"state": wire.ONLINE, "fw": "peer"}), 1, True)

    def _on_message(self, client, userdata, msg):
        rx = now_ms()
        try:
            txn = json.loads(msg.payload)["txn"]
        except (ValueError, KeyError, TypeError):
            return
        client.publish(self.ack, json.dumps({"txn": txn, "status": wire.ANNOUNCED, "reason": "", "rx": rx,
                                             "play": rx, "done": now_ms()}), 1)
        self.acks.n += 1


class Count:
    """Acks sent by a worker (with --peer-loop threads an increment may rarely be lost:
    informative only, the cloud's records are what the benchmark reports)."""

    def __init__(self):
        self.n = 0


# ---- the two ways of driving paho ------------------------------------------------------------

class SelectLoop:
    """One selector over every client socket of the worker, plus the parent's pipe."""

    def __init__(self):
        self.sel = selectors.DefaultSelector()
        self.peers = []
        self.down = {}  # Peer -> monotonic time to reconnect at

    def attach(self, peer):
        c = peer.client
        opened = c.on_socket_open

        def on_open(client, userdata, sock):
            opened(client, userdata, sock)
            self.sel.register(sock, selectors.EVENT_READ, peer)

        def on_close(client, userdata, sock):
            try:
                self.sel.unregister(sock)
            except (KeyError, ValueError):
                pass

        def on_want_write(client, userdata, sock):
            self.sel.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, peer)

        def on_written(client, userdata, sock):
            self.sel.modify(sock, selectors.EVENT_READ, peer)

        def on_disconnect(client, userdata, flags, reason_code, properties):
            self.down[peer] = time.monotonic() + RECONNECT_S

        c.on_socket_open, c.on_socket_close = on_open, on_close
        c.on_socket_register_write, c.on_socket_unregister_write = on_want_write, on_written
        c.on_disconnect = on_disconnect

    def connect(self, peer, host, port, keepalive):
        self.peers.append(peer)
        try:
            peer.client.connect(host, port, keepalive)  # TCP and TLS handshake block here
        except (OSError, ssl.SSLError):
            self.down[peer] = time.monotonic() + RECONNECT_S

    def run_once(self, timeout):
        for key, mask in self.sel.select(timeout):
            peer = key.data
            if peer is None:
                key.fileobj.on_ready()
                continue
            c = peer.client
            if mask & selectors.EVENT_READ:
                c.loop_read()
                sock = c.socket()
                # TLS may hold decrypted bytes of the next packet that epoll cannot see.
                while sock is not None and getattr(sock, "pending", lambda: 0)() > 0:
                    c.loop_read()
                    sock = c.socket()
            if mask & selectors.EVENT_WRITE and c.socket() is not None:
                c.loop_write()

    def misc(self):
        """Once a second: keepalive pings, and reconnects of clients that lost their link."""
        now = time.monotonic()
        for peer in self.peers:
            if peer not in self.down:
                peer.client.loop_misc()
        for peer, at in list(self.down.items()):
            if at <= now:
                del self.down[peer]
                try:
                    peer.client.reconnect()
                except (OSError, ssl.SSLError):
                    self.down[peer] = now + RECONNECT_S

    def stop(self):
        for peer in self.peers:
            peer.client.disconnect()
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and any(p.client.want_write() for p in self.peers):
            self.run_once(0.05)


class PipeReady:
    """The parent's pipe in the selector: a stop command ends the worker."""

    def __init__(self, conn, stop):
        self.conn, self.stop = conn, stop

    def fileno(self):
        return self.conn.fileno()

    def on_ready(self):
        try:
            msg = self.conn.recv()
        except (EOFError, OSError):
            msg = {"op": "stop"}
        if msg.get("op") == "stop":
            self.stop()


# ---- a worker process ----------------------------------------------------------------------

class Ramp:
    """When a worker starts its next client: at i / rate seconds (open loop), or with rate
    "auto" as soon as fewer than AUTO_IN_FLIGHT started clients await their first CONNACK."""

    def __init__(self, rate, n, begin):
        self.rate, self.n, self.begin = rate, n, begin

    def _waiting(self, peers, now):
        return sum(1 for p in peers[-AUTO_IN_FLIGHT - 1:] if not p.connacks and now - p.began < AUTO_STALL_S)

    def wait_s(self, peers, now):
        """Seconds until the next client may start (0: now); inf when all have started."""
        if len(peers) >= self.n:
            return float("inf")
        if self.rate == AUTO:
            return 0.0 if self._waiting(peers, now) < AUTO_IN_FLIGHT else 0.01
        return max(0.0, self.begin + len(peers) / self.rate - now)

    def may_start(self, peers, now):
        return self.wait_s(peers, now) == 0

    def next_due(self, peers, default):
        wait = self.wait_s(peers, time.monotonic())
        return default if wait == float("inf") else time.monotonic() + wait


def worker_main(conn, spec):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent says when to stop
    raise_fd_limit(len(spec["ids"]) * 3 + 256)
    import paho.mqtt.client  # noqa: F401  (imported before the base is taken, as our workers import the firmware)
    base = {"rss_kib": rss_kib(), "cpu_s": cpu_s()}
    acks = Count()
    state = {"stop": False}

    def tick(kind="tick"):
        return {"type": kind, "w": spec["index"], "started": len(peers),
                "connected": sum(1 for p in list(peers) if p.client.is_connected()),
                "acks": acks.n, "rss_kib": rss_kib(), "cpu_s": cpu_s(), "base": base}

    peers = []
    begin = time.monotonic()
    ramp = Ramp(spec["connect_rate"], len(spec["ids"]), begin)
    if spec["loop"] == "select":
        loop = SelectLoop()
        loop.sel.register(PipeReady(conn, lambda: state.update(stop=True)), selectors.EVENT_READ, None)
        next_tick = next_misc = begin
        while not state["stop"]:
            now = time.monotonic()
            while ramp.may_start(peers, now):
                peer = Peer(spec["ids"][len(peers)], spec, acks, loop)
                peers.append(peer)
                loop.connect(peer, spec["host"], spec["port"], spec["keepalive"])
                now = time.monotonic()
            if now >= next_misc:
                loop.misc()
                next_misc += 1.0
            if now >= next_tick:
                conn.send(tick())
                next_tick += TICK_S
            wake = min(next_tick, next_misc, ramp.next_due(peers, next_tick))
            loop.run_once(max(0.0, wake - time.monotonic()))
        final = tick("final")
        loop.stop()
    else:
        ticking = threading.Event()

        def ticker():  # the only thread that writes to the pipe until the end
            while not ticking.wait(TICK_S):
                conn.send(tick())

        ticks = threading.Thread(target=ticker, daemon=True)
        ticks.start()
        for i, device_id in enumerate(spec["ids"]):
            wait = ramp.wait_s(peers, time.monotonic())
            while wait > 0 and not conn.poll(wait):
                wait = ramp.wait_s(peers, time.monotonic())
            if wait > 0:
                break  # stop during the ramp
            peer = Peer(device_id, spec, acks)
            peer.client.reconnect_delay_set(1, 30)
            peer.client.connect_async(spec["host"], spec["port"], spec["keepalive"])
            peer.client.loop_start()  # a thread for this client
            peers.append(peer)
        while not conn.poll(TICK_S):
            pass
        ticking.set()
        ticks.join()
        final = tick("final")
        for p in peers:
            p.client.disconnect()
            p.client.loop_stop()
    try:
        conn.send(final)
    except (BrokenPipeError, OSError):
        pass


# ---- the parent's side ----------------------------------------------------------------------

class PeerFleet:
    """The runner's companion (soundbox_sim.runner.Options.companion): started beside our
    fleet on its own device ids, polled for its gauges, stopped at the end."""

    def __init__(self, loop="select"):
        if loop not in LOOPS:
            raise ValueError("peer loop must be one of %s" % ", ".join(LOOPS))
        self.loop = loop
        self.name = "paho-mqtt %s, %s loop" % (_paho_version(), loop)
        self.procs, self.conns, self.ticks, self.finals = [], [], {}, {}

    def start(self, ids, host, port, identity_root, tls, connect_rate, workers, keepalive):
        ctx = multiprocessing.get_context("spawn")
        for i in range(workers):
            spec = {"index": i, "ids": ids[i::workers], "host": host, "port": port, "tls": tls,
                    "identity_root": identity_root,
                    "connect_rate": connect_rate if connect_rate == AUTO else connect_rate / workers,
                    "keepalive": keepalive, "loop": self.loop}
            parent, child = ctx.Pipe()
            p = ctx.Process(target=worker_main, args=(child, spec), name="peer-worker-%d" % i, daemon=True)
            p.start()
            child.close()
            self.procs.append(p)
            self.conns.append(parent)

    def poll(self):
        from multiprocessing.connection import wait
        for c in wait(self.conns, 0):
            try:
                msg = c.recv()
            except (EOFError, OSError):
                self.conns.remove(c)
                continue
            msg["at"] = time.monotonic()  # when it came: CPU over a window is between two ticks
            self.ticks[msg["w"]] = msg
            if msg["type"] == "final":
                self.finals[msg["w"]] = msg

    def gauges(self):
        self.poll()
        t = list(self.ticks.values())
        return {"started": sum(x["started"] for x in t), "connected": sum(x["connected"] for x in t),
                "acks": sum(x["acks"] for x in t), "rss_kib": sum(x["rss_kib"] for x in t),
                "cpu_s": round(sum(x["cpu_s"] for x in t), 3),
                "base_rss_kib": sum(x["base"]["rss_kib"] for x in t),
                "base_cpu_s": round(sum(x["base"]["cpu_s"] for x in t), 3)}

    def marks(self):
        """{worker: [when its last tick came, its cpu_s]} (the runner's snapshots)."""
        self.poll()
        return {str(w): [t["at"], t["cpu_s"]] for w, t in self.ticks.items()}

    def stop(self):
        for c in self.conns:
            try:
                c.send({"op": "stop"})
            except (BrokenPipeError, OSError):
                pass
        deadline = time.monotonic() + 10
        while len(self.finals) < len(self.procs) and self.conns and time.monotonic() < deadline:
            self.poll()
            time.sleep(0.05)
        for p in self.procs:
            p.join(max(0.1, deadline - time.monotonic()))
            if p.is_alive():
                p.terminate()
                p.join(5)


def _paho_version():
    import paho.mqtt
    return paho.mqtt.__version__
