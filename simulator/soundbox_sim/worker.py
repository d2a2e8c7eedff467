"""One simulator worker: a process with one asyncio loop running its share of the fleet.

The parent (runner.py) sends commands over a pipe (faults by kind, see faults.py; stop); the worker answers
once a second with its counters and gauges and, at the end, its histograms.
"""

import asyncio
import gc
import os
import resource
import signal
from multiprocessing.connection import wait

from soundbox_sim import faults
from soundbox_sim.fleet import Fleet
from soundbox_sim.netfaults import FaultProxy

TICK_S = 1.0
TRIM_EVERY_TICKS = 10  # once the ramp is over: RSS is settled, a trim of a big heap is not free
FREEZE_EVERY = 500  # devices started between two gc.freeze() calls (HeldHeap)


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _find_malloc_trim():
    try:
        import ctypes

        trim = ctypes.CDLL(None).malloc_trim  # glibc; absent elsewhere (musl, macOS)
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    return trim


_malloc_trim = _find_malloc_trim()


def release_free_memory():
    """Hand the heap's free pages back to the OS (glibc's malloc_trim).

    Thousands of TLS handshakes interleave short-lived buffers (OpenSSL's 16 KiB record
    buffers, handshake state) with the long-lived state of each connection; what they
    free lies between live blocks, where glibc does not return it by itself. Measured at
    2,000 mTLS devices: 8-15 MiB free inside the heap after a ramp, 4-15 KiB of RSS per
    device that no device uses. malloc_trim(0) gives those pages back in ~1 ms.
    """
    if _malloc_trim is not None:
        _malloc_trim(0)


class HeldHeap:
    """Keeps the worker's memory bookkeeping out of the devices' way.

    The boxes' state is long-lived: without help, the cyclic collector's full collections
    walk all of it again and again as the fleet grows (100-140 ms pauses at 1,500 boxes a
    worker, with the payments' latency behind them). gc.freeze() after every FREEZE_EVERY
    started devices moves what exists to the permanent generation, so a collection walks
    only what is new. The price: a cycle among frozen objects (a restarted box's old app)
    is not collected; refcounting still frees the rest of it.

    The heap is trimmed (release_free_memory) every tick while devices start, then every
    TRIM_EVERY_TICKS ticks."""

    def __init__(self):
        self.frozen_at = 0
        self.started = -1
        self.ticks = 0

    def tick(self, started):
        if started - self.frozen_at >= FREEZE_EVERY or (started > self.frozen_at and started == self.started):
            gc.freeze()  # every FREEZE_EVERY, and once more when the starting is over
            self.frozen_at = started
        self.ticks += 1
        if started != self.started or self.ticks % TRIM_EVERY_TICKS == 0:
            release_free_memory()
        self.started = started


def cpu_s():
    t = os.times()
    return t.user + t.system


def ensure_fd_limit(needed):
    """Raise RLIMIT_NOFILE's soft limit to `needed` if the hard limit (or root) allows;
    returns None, or a sentence saying what to do."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return None
    if hard != resource.RLIM_INFINITY and hard < needed:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))  # works as root
            return None
        except (ValueError, OSError):
            return ("needs %d open files but the hard limit is %d: raise it (as root: "
                    "`ulimit -Hn %d`, or LimitNOFILE= / limits.conf), or use more --workers"
                    % (needed, hard, needed))
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    return None


def receive(conns, timeout):
    """The parent's side: the messages its workers' pipes hold within `timeout` s, in the
    order they came; a pipe whose worker is gone is taken out of `conns`."""
    messages = []
    for c in wait(conns, timeout):
        try:
            messages.append(c.recv())
        except (EOFError, OSError):
            conns.remove(c)
    return messages


def main(conn, spec):
    """Entry point of a worker process (multiprocessing target)."""
    problem = ensure_fd_limit(spec["fd_needed"])
    if problem:
        conn.send({"type": "error", "w": spec["index"], "error": problem})
        return
    try:
        asyncio.run(_run(conn, spec))
    except KeyboardInterrupt:
        pass


class SteadyProfile:
    """cProfile of the steady state: from the first tick with every device connected to
    the end. SOUNDBOX_SIM_PROFILE=DIR turns it on; each worker writes DIR/worker-N.prof.
    It counts this process's CPU time, not wall time: a send on loopback wakes the broker,
    which may run before the send returns, and wall time would bill its CPU to the send."""

    def __init__(self, index):
        self.dir = os.environ.get("SOUNDBOX_SIM_PROFILE")
        self.path = self.dir and os.path.join(self.dir, "worker-%d.prof" % index)
        self.profiler = None

    def tick(self, all_connected):
        if self.dir and all_connected and self.profiler is None:
            import cProfile
            import time

            self.profiler = cProfile.Profile(time.process_time)
            self.profiler.enable()

    def save(self):
        if self.profiler is not None:
            self.profiler.disable()
            self.profiler.dump_stats(self.path)


class FaultTarget:
    """What a fault's worker side acts on (faults.py): the fleet, its proxy (None when the
    run has no network fault) and `spawn` for what takes a while (a reboot)."""

    __slots__ = ("fleet", "proxy", "spawn")

    def __init__(self, fleet, proxy, spawn):
        self.fleet, self.proxy, self.spawn = fleet, proxy, spawn


async def _run(conn, spec):
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    proxy = None
    if spec["proxy"]:
        proxy = await FaultProxy(spec["host"], spec["port"], seed=spec["seed"]).start()
    fleet = Fleet(len(spec["ids"]), spec["host"], spec["port"], spec["state_dir"], spec["pack_dir"],
                  wav_device=spec.get("wav_device"), out_dir=spec.get("out_dir", "out"),
                  journal_path=spec["journal"], connect_rate=spec["connect_rate"],
                  keepalive=spec["keepalive"], identity_root=spec["identity_root"], tls=spec["tls"],
                  freshness_s=spec.get("freshness_s"), lang=spec.get("lang", "en-IN"), ids=spec["ids"],
                  langs=spec.get("langs"), extra_config=spec.get("extra_config"),
                  speedup=spec.get("speedup", 1.0),
                  proxy=("127.0.0.1", proxy.port) if proxy else None, seed=spec["seed"])
    # Open every language's pack before measuring: it is shared, not per device.
    from soundbox_sim.audio import PackShelf
    fleet._shelf = PackShelf(spec["pack_dir"])
    for lang in set(fleet.langs.values()) | {fleet.lang}:
        fleet._shelf(lang)
    release_free_memory()
    base = {"rss_kib": rss_kib(), "cpu_s": cpu_s()}
    background = set()

    def spawn(coro):
        t = asyncio.ensure_future(coro)
        background.add(t)
        t.add_done_callback(background.discard)

    here = FaultTarget(fleet, proxy, spawn)

    def on_command():
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            stop.set()
            return
        if msg["op"] == "stop":
            stop.set()
            return
        kind = faults.KINDS.get(msg["op"])  # a fault's begin or end, by its kind's name
        if kind is not None and kind.worker is not None:
            kind.worker(here, [d for d in msg.get("ids", ()) if d in fleet.slots], msg)

    loop.add_reader(conn.fileno(), on_command)
    starter = asyncio.ensure_future(fleet.start_all(stop))

    heap = HeldHeap()

    def tick():
        heap.tick(fleet.started)  # RSS then counts what the devices hold
        return {"type": "tick", "w": spec["index"], "counters": dict(fleet.stats.counters.totals),
                "started": fleet.started, "connected": fleet.connected(), "refused": fleet.refused(),
                "announced": fleet.journal.count, "rss_kib": rss_kib(), "cpu_s": cpu_s(), "base": base}

    profile = SteadyProfile(spec["index"])
    try:
        while not stop.is_set():
            conn.send(tick())
            profile.tick(fleet.connected() == len(spec["ids"]))
            try:
                await asyncio.wait_for(stop.wait(), TICK_S)
            except asyncio.TimeoutError:
                pass
    finally:
        loop.remove_reader(conn.fileno())
        starter.cancel()
        for t in list(background):
            t.cancel()
        await asyncio.gather(starter, *background, return_exceptions=True)
        profile.save()
        final = tick()
        await fleet.stop_all()
        if proxy:
            await proxy.close()
        final["type"] = "final"
        final["announced"] = fleet.journal.count
        final["histograms"] = {k: h.to_json() for k, h in fleet.stats.histograms().items()}
        final["connect_ms"] = [d.mqtt.connect_ms for d in fleet.devices if d.mqtt.connect_ms is not None]
        try:
            conn.send(final)
        except (BrokenPipeError, OSError):
            pass
