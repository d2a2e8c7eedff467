"""Benchmark: fleet OTA throughput through the broker, with the real firmware.

    .venv/bin/python bench/ota_fleet.py [--devices 200] [--size-mib 1] [--workers 1]

Starts a private mosquitto (the project's mTLS config and ACL), the cloud handler
(`soundbox cloud`, its own process) and N simulated soundboxes running the real
firmware (soundbox_sim.fleet in worker processes), signs a firmware image of
--size-mib with the release keys, and rolls it out as one campaign: one wave of
100 %, concurrency cap N. Prints a line a second while it runs, then: bytes, wall
time from campaign creation to the last confirmation, MB/s through the broker,
per-device download time p50/p99, chunk re-requests, CPU time of the broker, the
cloud and the fleet over the campaign, and the machine.

The per-device figures come from the firmware's own transfer bookkeeping
(soundbox.otatransfer.Transfer), wrapped in the worker processes to time it and count
what it asks for; nothing it does is changed.
"""

import argparse
import asyncio
import multiprocessing
import os
import shutil
import sys
import tempfile
import time

from soundbox_sim.worker import cpu_s, ensure_fd_limit, receive, rss_kib

SOUNDBOX = [sys.executable, "-m", "soundbox_tools.cli"]
MODEL = "soundbox-sim"
VERSION = "2.0.0"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def pct(values, p):
    ordered = sorted(values)
    return ordered[max(0, -(-p * len(ordered) // 100) - 1)] if ordered else None


def proc_cpu_s(pid):
    """utime + stime of a process from /proc (children it waited for included)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return sum(int(v) for v in fields[11:15]) / CLK_TCK   # utime stime cutime cstime


# ---- the worker side: part of the fleet in one process ------------------------------------

class TransferProbe:
    """Times every Transfer (one per download) and counts what it asks for and gets."""

    def __init__(self):
        from soundbox.otatransfer import Transfer

        self.transfers = []
        self.notices = 0  # chunk-topic messages that were refusal notices from the cloud
        init, request, accept, mark = Transfer.__init__, Transfer.request, Transfer.accept, Transfer.mark
        hold_off = Transfer.hold_off
        probe = self

        def wrapped_init(t, *a, **kw):
            init(t, *a, **kw)
            t.probe = {"start": time.time(), "done": None, "count": t.count, "asked": 0, "requests": 0,
                       "timeouts": 0, "bytes": 0, "duplicates": 0}
            probe.transfers.append(t.probe)

        def wrapped_request(t, now_ms):
            timed_out = t._asked_at is not None  # still waiting on the last request: a re-ask
            ranges = request(t, now_ms)
            if ranges:
                t.probe["requests"] += 1
                t.probe["timeouts"] += timed_out
                t.probe["asked"] += sum(last - first + 1 for first, last in ranges)
            return ranges

        def wrapped_accept(t, payload):
            t.probe["bytes"] += len(payload)
            index, data = accept(t, payload)
            t.probe["duplicates"] += t.holds(index)
            return index, data

        def wrapped_mark(t, index):
            new = mark(t, index)
            if t.done and t.probe["done"] is None:
                t.probe["done"] = time.time()
            return new

        def wrapped_hold_off(t, now_ms, retry_ms):  # the updater got a refusal notice for this download
            probe.notices += 1
            return hold_off(t, now_ms, retry_ms)

        Transfer.__init__, Transfer.request, Transfer.accept, Transfer.mark = (
            wrapped_init, wrapped_request, wrapped_accept, wrapped_mark)
        Transfer.hold_off = wrapped_hold_off

    def tick(self):
        ts = self.transfers
        return {"downloading": sum(1 for t in ts if t["done"] is None), "downloaded": sum(1 for t in ts if t["done"]),
                "bytes": sum(t["bytes"] for t in ts), "notices": self.notices}


def fleet_worker(conn, spec):
    """multiprocessing target: run spec["ids"] until the parent sends anything."""
    problem = ensure_fd_limit(len(spec["ids"]) * 3 + 256)
    if problem:
        conn.send({"type": "error", "error": problem})
        return
    asyncio.run(_fleet_main(conn, spec))


async def _fleet_main(conn, spec):
    from soundbox_sim.fleet import Fleet

    probe = TransferProbe()
    fleet = Fleet(len(spec["ids"]), spec["host"], spec["port"], spec["state_dir"], spec["voice"],
                  connect_rate=spec["connect_rate"], identity_root=spec["identity_root"], tls=True,
                  ids=spec["ids"], extra_config=spec["extra_config"], seed=spec["index"])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_parent():  # any message (or the pipe closing) means stop
        loop.remove_reader(conn.fileno())
        stop.set()

    loop.add_reader(conn.fileno(), on_parent)

    def tick(f):
        conn.send(dict(probe.tick(), type="tick", w=spec["index"], connected=f.connected(), cpu_s=cpu_s(),
                       connects=f.stats.counters.totals.get("connect.succeeded", 0)))

    await fleet.run(stop, progress=tick)
    conn.send({"type": "final", "w": spec["index"], "transfers": probe.transfers, "cpu_s": cpu_s(),
               "rss_kib": rss_kib(), "notices": probe.notices})


# ---- the parent: services, campaign, figures -------------------------------------------------

def http(api, method, path, body=None, key=None):
    from soundbox_cloud.client import call
    return call(api, method, path, body, api_key=key)


def make_release(certs, ota_dir, size):
    """Sign a simulator firmware image of `size` bytes with release key 1; returns its name."""
    from soundbox_tools import ota

    ota.keygen(certs)  # keeps keys that exist
    data = ota.sim_image(VERSION, size)
    manifest = ota.manifest_for(data, kind="firmware", name="firmware", version=VERSION, counter=1, model=MODEL)
    ota.write_release(ota_dir, data, ota.sign(manifest, [ota.load_key(ota.key_dir(certs) / "release-1.key")]))
    return "firmware-%s" % VERSION, len(data), manifest["chunk_size"]


class Bench:
    def __init__(self, a):
        self.a = a
        self.ids = ["sb-%04d" % (i + 1) for i in range(a.devices)]
        self.work = a.state or tempfile.mkdtemp(prefix="bench-ota-")
        self.broker = self.cloud = None
        self.procs, self.conns = [], []
        self.ticks, self.finals = {}, {}

    def http(self, method, path, body=None):
        return http(self.api, method, path, body, key=self.key)

    def run(self):
        try:
            self.start()
            return self.campaign()
        finally:
            self.stop()

    def start(self):
        from soundbox_sim.cloudkeys import create_keys
        from soundbox_sim.runner import provision
        from soundbox_sim.slots import ota_config
        from soundbox_tools import procs
        from soundbox_tools.broker import Mosquitto
        from soundbox_tools.voicepack import build_pack

        a = self.a
        build_pack("en-IN", a.voice)
        self.pki, _ = provision(a.certs, a.devices, lambda text: print("bench: " + text, flush=True))
        self.artifact, self.size, self.chunk_size = make_release(self.pki.root, os.path.join(self.work, "ota"),
                                                                 int(a.size_mib * (1 << 20)))
        self.broker = Mosquitto(os.path.join(self.work, "broker"), pki=self.pki).start()
        port = procs.free_port()
        self.api = "http://127.0.0.1:%d" % port
        db = os.path.join(self.work, "cloud.db")
        self.cloud = procs.spawn(SOUNDBOX + ["cloud", "--broker", self.broker.url, "--http", "127.0.0.1:%d" % port,
                                             "--db", db, "--certs", self.pki.root],
                                 log_path=os.path.join(self.work, "cloud.log"))
        if not procs.wait_port("127.0.0.1", port, 20, self.cloud):
            raise SystemExit("bench: the cloud did not start; see %s/cloud.log" % self.work)
        # An admin key of our own, made in the cloud's database (never printed).
        self.key = create_keys(db, "bench", name="ota-fleet").admin
        self.http("POST", "/ota/artifacts", {"name": self.artifact})
        ctx = multiprocessing.get_context("spawn")
        for i in range(a.workers):
            spec = {"index": i, "ids": self.ids[i::a.workers], "host": self.broker.host, "port": self.broker.port,
                    "state_dir": os.path.join(self.work, "devices"), "voice": a.voice,
                    "identity_root": os.path.join(self.pki.root, "devices"),
                    "extra_config": ota_config(self.pki.root), "connect_rate": a.connect_rate / a.workers}
            parent, child = ctx.Pipe()
            p = ctx.Process(target=fleet_worker, args=(child, spec), name="ota-fleet-%d" % i)
            p.start()
            child.close()
            self.procs.append(p)
            self.conns.append(parent)

    def poll(self, timeout):
        for msg in receive(self.conns, timeout):
            if msg["type"] == "error":
                raise SystemExit("bench: " + msg["error"])
            (self.finals if msg["type"] == "final" else self.ticks)[msg["w"]] = msg

    def total(self, key):
        return sum(t[key] for t in self.ticks.values())

    def wait_for(self, what, check, timeout):
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise SystemExit("bench: %s did not happen within %g s (see %s)" % (what, timeout, self.work))
            if len(self.conns) < len(self.procs):
                raise SystemExit("bench: a fleet worker died; see %s/devices/devices.log" % self.work)
            self.poll(0.2)

    def online(self):
        return sum(1 for d in self.http("GET", "/devices") if d["state"] == "online")

    def campaign(self):
        a, n = self.a, self.a.devices
        started = time.monotonic()
        self.wait_for("all devices connected", lambda: len(self.ticks) == a.workers and self.total("connected") == n,
                      120)
        self.wait_for("the cloud seeing every device online", lambda: self.online() == n, 60)
        time.sleep(1)  # each device's telemetry (model, versions: what a campaign targets) follows its status
        print("bench: %d devices connected over mTLS in %.1f s; starting the campaign" % (n, time.monotonic() - started),
              flush=True)
        cpu0, load0 = self.cpu(), os.getloadavg()[0]
        connects0 = self.total("connects")
        created = self.http("POST", "/ota/campaigns", {
            "artifact": self.artifact, "target": {"model": MODEL}, "waves": [100], "max_concurrent": n})
        cid, t0 = created["id"], created["created_ms"] / 1000
        if created["totals"]["devices"] != n:
            raise SystemExit("bench: the campaign targets %d devices, not %d" % (created["totals"]["devices"], n))
        last_bytes, last_t, deadline = self.total("bytes"), time.time(), time.monotonic() + a.timeout
        while True:
            next_line = time.monotonic() + 1.0
            while time.monotonic() < next_line:
                self.poll(max(0.0, next_line - time.monotonic()))
            status = self.http("GET", "/ota/campaigns/" + cid)
            states = {}
            for d in status["devices"]:
                states[d["state"]] = states.get(d["state"], 0) + 1
            now, got = time.time(), self.total("bytes")
            print("%6.1f s  confirmed %3d/%d  %-40s devices downloading %3d, downloaded %3d  %6.2f MB/s in"
                  % (now - t0, states.get("confirmed", 0), n,
                     " ".join("%s %d" % kv for kv in sorted(states.items()) if kv[0] != "confirmed"),
                     self.total("downloading"), self.total("downloaded"), (got - last_bytes) / (now - last_t) / 1e6),
                  flush=True)
            last_bytes, last_t = got, now
            if states.get("confirmed", 0) + status["totals"]["failed"] >= n or status["state"] != "running":
                break
            if time.monotonic() > deadline:
                print("bench: timeout after %g s" % a.timeout, flush=True)
                break
        self.reconnects = self.total("connects") - connects0 - n  # each device reconnects once after its reboot
        return status, t0, (cpu0, self.cpu()), (load0, os.getloadavg()[0])

    def cpu(self):
        return {"broker": proc_cpu_s(self.broker.proc.pid), "cloud": proc_cpu_s(self.cloud.pid),
                "fleet": self.total("cpu_s"), "bench": cpu_s()}

    def stop(self):
        from soundbox_tools import procs

        for c in self.conns:
            try:
                c.send("stop")
            except (BrokenPipeError, OSError):
                pass
        deadline = time.monotonic() + 30
        while len(self.finals) < len(self.conns) and time.monotonic() < deadline:
            self.poll(1.0)
        for p in self.procs:
            p.join(5)
            if p.is_alive():
                p.terminate()
        procs.stop(self.cloud)
        if self.broker:
            self.broker.stop()


def report(bench, status, t0, cpus, loads):
    from soundbox_sim.environment import describe

    a, n = bench.a, bench.a.devices
    transfers = [t for f in bench.finals.values() for t in f["transfers"]]
    confirmed = [d for d in status["devices"] if d["state"] == "confirmed"]
    last = max(d["status_ms"] for d in confirmed) / 1000 if confirmed else None
    wall = last - t0 if last else None
    done = [t for t in transfers if t["done"]]
    dl = [t["done"] - t["start"] for t in done]
    received = sum(t["bytes"] for t in transfers)
    phase = (max(t["done"] for t in done) - min(t["start"] for t in done)) if done else None
    asked = sum(t["asked"] for t in transfers)
    needed = sum(t["count"] for t in transfers)
    env = describe(bench.broker)
    print()
    print("devices %d (mTLS, %d worker process%s), firmware %.2f MiB in %d chunks of %d B, campaign: 1 wave 100 %%, "
          "cap %d" % (n, a.workers, "" if a.workers == 1 else "es", bench.size / (1 << 20),
                      -(-bench.size // bench.chunk_size), bench.chunk_size, n))
    print("confirmed %d/%d, failed %d (campaign %s%s)" % (len(confirmed), n, status["totals"]["failed"],
                                                        status["state"], ": " + status["reason"] if status["reason"]
                                                        else ""))
    print("bytes: firmware to devices %d (%.1f MB); chunk payloads received by devices %d (%.1f MB)"
          % (bench.size * len(confirmed), bench.size * len(confirmed) / 1e6, received, received / 1e6))
    if wall:
        print("wall time campaign created -> last confirmed: %.1f s; download phase (first request -> last chunk): "
              "%.1f s" % (wall, phase))
        print("throughput through the broker: %.2f MB/s over the whole campaign, %.2f MB/s over the download phase"
              % (bench.size * len(confirmed) / wall / 1e6, received / phase / 1e6))
    if dl:
        print("per-device download time (job accepted -> last chunk): p50 %.2f s  p99 %.2f s  max %.2f s  (n=%d)"
              % (pct(dl, 50), pct(dl, 99), max(dl), len(dl)))
    print("chunk requests %d (%d after a %d s timeout); chunks asked %d for %d needed: %d re-requested; "
          "duplicate chunks received %d; refusal notices from the cloud %d"
          % (sum(t["requests"] for t in transfers), sum(t["timeouts"] for t in transfers), 5, asked, needed,
             asked - needed, sum(t["duplicates"] for t in transfers), sum(f["notices"] for f in bench.finals.values())))
    print("device connects beyond the one reboot each: %d" % bench.reconnects)
    cpu0, cpu1 = cpus
    cpu = {k: (cpu1[k] - cpu0[k]) if cpu1[k] is not None and cpu0[k] is not None else None for k in cpu0}
    mb = received / 1e6 or 1
    print("CPU during the campaign (s, and ms per MB delivered): " + ", ".join(
        "%s %.1f (%.0f)" % (k, cpu[k], cpu[k] * 1000 / mb) for k in ("broker", "cloud", "fleet", "bench")
        if cpu[k] is not None) + "; wall %.1f s on %d cores" % (wall or 0, env["cores"]))
    print("machine load average (1 min) at start %.2f, at end %.2f: other work on the machine shares the cores"
          % loads)
    print("fleet RSS at the end: %d MiB over %d worker(s)" % (sum(f["rss_kib"] for f in bench.finals.values()) // 1024,
                                                              len(bench.finals)))
    print("machine: %s, %d cores, %.1f GiB, Linux %s, Python %s, %s, %s"
          % (env["cpu"], env["cores"], (env["memory_kib"] or 0) / (1 << 20), env["kernel"], env["python"],
             env["openssl"], env.get("broker")))
    ok = len(confirmed) == n
    if not ok or a.keep or a.state:
        print("state (logs, databases): %s" % bench.work)
    return ok


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=200)
    p.add_argument("--size-mib", type=float, default=1.0)
    p.add_argument("--workers", type=int, default=1, help="fleet processes (devices are spread over them)")
    p.add_argument("--connect-rate", type=float, default=200.0, help="mTLS connects per second")
    p.add_argument("--timeout", type=float, default=900, help="give up on the campaign after this many seconds")
    p.add_argument("--certs", default=os.path.join(".state", "certs"), help="PKI (device identities are cached)")
    p.add_argument("--voice", default=os.path.join(".state", "voice"))
    p.add_argument("--state", help="working directory (default: a new temporary one, removed on success)")
    p.add_argument("--keep", action="store_true", help="keep the working directory")
    a = p.parse_args()
    if a.devices < 1 or a.workers < 1 or a.size_mib <= 0:
        p.error("--devices, --workers and --size-mib must be positive")
    a.workers = min(a.workers, a.devices)
    bench = Bench(a)
    ok = report(bench, *bench.run())
    if ok and not a.keep and not a.state:
        shutil.rmtree(bench.work, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
