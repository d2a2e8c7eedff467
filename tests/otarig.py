"""A bench for the real OTA updater (soundbox_fw.updater) without a broker.

The updater runs as it does in the app, but its app is `RigApp`: it records what the
updater publishes and answers chunk requests straight from the artifact, in
process, like the cloud's chunk server would. The broker path is covered by
test_ota_end_to_end; this rig exists so a power cut can be tried at every flash
write in seconds. Storage and slots are the real file-backed ones, with a counter
that can cut the power (raise PowerCut, which nothing in the firmware catches) at
the n-th write.
"""

import asyncio
import json
import struct

from soundbox.otaslots import FileSlots
from soundbox.storage import FileStorage
from soundbox_fw.updater import Updater
from soundbox_tools import ota

MODEL = "soundbox-sim"
CAPACITIES = {"app": 1 << 20, "firmware": 4 << 20, "voice": 4 << 20}
FINAL = ("confirmed", "refused", "failed", "rolled_back")


class PowerCut(BaseException):
    """The power went: raised from the n-th flash write."""


class Flash:
    """Counts writes across storage and slots; cuts the power at write `cut_at` (1-based)."""

    def __init__(self, cut_at=None):
        self.writes = 0
        self.cut_at = cut_at

    def tick(self):
        self.writes += 1
        if self.cut_at is not None and self.writes == self.cut_at:
            self.cut_at = None  # one cut per run; the next lives write freely
            raise PowerCut()


class CuttableStorage(FileStorage):
    def __init__(self, root, flash):
        super().__init__(root)
        self.flash = flash

    def write(self, name, data):
        self.flash.tick()
        super().write(name, data)


class CuttableSlots(FileSlots):
    def __init__(self, root, flash, versions):
        super().__init__(root, MODEL, versions, CAPACITIES)
        self.flash = flash

    def _write_file(self, path, data):
        self.flash.tick()
        super()._write_file(path, data)

    def _write_at(self, path, offset, data):
        if self.flash.cut_at is not None and self.flash.cut_at == self.flash.writes + 1:
            # A cut mid-chunk leaves half of it: the bitmap still says "missing".
            super()._write_at(path, offset, bytes(data)[:len(data) // 2])
        self.flash.tick()
        super()._write_at(path, offset, data)

    def _rename(self, src, dst):
        self.flash.tick()
        super()._rename(src, dst)


class Clock:
    def __init__(self, now_ms):
        self.now = now_ms

    def wall_ms(self):
        return self.now

    def trusted(self):
        return self.now is not None


class Hal:
    def __init__(self, root, flash, versions, now_ms, slots=None):
        """slots: None for the file-backed CuttableSlots, or a function (root, flash, versions)
        -> slots object (the ESP32 tests pass one that builds Esp32Slots over the fake esp32)."""
        self.storage = CuttableStorage(root, flash)
        self.ota = (slots or CuttableSlots)(root, flash, versions)
        self.ota_rollbacks = dict(self.ota.boot())
        self.clock = Clock(now_ms)
        self.logs = []
        self.rebooted = asyncio.Event()

    def log(self, msg):
        self.logs.append(msg)

    def reboot(self):
        self.rebooted.set()


class RigMqtt:
    def __init__(self, app):
        self.app = app
        self.connected = True
        self.published = []  # (topic, payload)

    async def publish(self, topic, payload, qos=0, retain=False):
        self.published.append((topic, payload))
        if topic.endswith("/ota/req"):
            self.app.requests.append(json.loads(payload))


class RigApp:
    """What the updater needs of the app, with chunk requests served from `artifact`."""

    def __init__(self, hal, keys, artifact=None, selftest_error=None, tamper=None):
        self.hal = hal
        self.device_id = "sb-0001"
        self.lang = "en-IN"
        self.mqtt = RigMqtt(self)
        self.artifact = artifact
        self.chunk_size = 4096
        self.selftest_error = selftest_error
        self.tamper = tamper  # (index, payload) -> payload the "cloud" sends instead
        self.requests = []
        self.installing = False
        self.updater = Updater(self, keys)

    def speaker_idle(self):
        return True

    def update_installing(self):
        self.installing = True  # the rig has no LED or speaker to tell

    async def restart_when_quiet(self):
        self.hal.reboot()  # the rig has no speaker queue or outgoing acks to wait for

    async def selftest(self):
        if self.selftest_error:
            raise OSError(self.selftest_error)

    def statuses(self):
        return [json.loads(p) for t, p in self.mqtt.published if t.endswith("/ota/status")]

    async def serve(self):
        """Answer each request with its chunks, in process."""
        while True:
            while not self.requests:
                await asyncio.sleep(0.001)
            req = self.requests.pop(0)
            for first, last in req["chunks"]:
                for i in range(first, last + 1):
                    data = self.artifact[i * self.chunk_size:(i + 1) * self.chunk_size]
                    payload = struct.pack(">I", i) + data
                    if self.tamper:
                        payload = self.tamper(i, payload)
                    if payload is not None:
                        await self.updater.on_chunk(payload)


def job_message(job, artifact):
    """The job as it travels: bytes as they are; a {"campaign", "envelope"} dict as the cloud
    sends it, with the chunk table computed from `artifact` at the manifest's chunk size."""
    if isinstance(job, (bytes, bytearray)):
        return bytes(job)
    try:
        chunk_size = json.loads(job["envelope"]["manifest"])["chunk_size"]
    except (TypeError, ValueError, KeyError):
        chunk_size = ota.CHUNK_SIZE  # a malformed envelope: the device refuses it before the table
    return ota.job_message(job["campaign"], job["envelope"], ota.chunk_table(artifact or b"", chunk_size))


async def boot_and_run(root, keys, flash, versions, now_ms, artifact, job=None, timeout=10, slots=None, **kw):
    """One life of the box: boot, connect, maybe get `job`, run until a final status, a
    reboot, a power cut, nothing left to do, or the timeout. Returns (app, outcome) with
    outcome one of "final", "reboot", "cut", "idle", "timeout". slots: see Hal. job: see job_message."""
    try:
        hal = Hal(root, flash, versions, now_ms, slots)
        app = RigApp(hal, keys, artifact, **kw)
    except PowerCut:
        return None, "cut"
    tasks = [asyncio.create_task(app.updater.run()), asyncio.create_task(app.serve())]
    outcome = "timeout"
    try:
        await app.updater.on_connect()
        if job is not None:
            await app.updater.on_job(job_message(job, artifact))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if any(t.done() for t in tasks):
                for t in tasks:
                    if t.done() and isinstance(t.exception(), PowerCut):
                        return app, "cut"
                    if t.done():
                        t.result()
            if hal.rebooted.is_set():
                outcome = "reboot"
                break
            if app.updater.job is None and not app.updater.state.get("pending"):
                # Nothing downloading, nothing waiting for a self-test: this life is done.
                outcome = "final" if any(s["state"] in FINAL for s in app.statuses()) else "idle"
                break
            await asyncio.sleep(0.002)
    except PowerCut:
        outcome = "cut"
    finally:
        # The box stops: every task of this life, including ones the updater started.
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return app, outcome
