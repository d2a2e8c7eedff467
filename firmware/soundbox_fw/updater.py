"""The box's OTA driver: signed jobs in, chunk requests out, install, self-test,
confirm or roll back. Runs inside the app on the device's one MQTT connection.

Topics (device side): sb/<id>/ota/job (in: one line of JSON {"campaign", "envelope"},
then b"\n" and the binary chunk table, 32 bytes of SHA-256 per chunk; a cancel is the
JSON alone), sb/<id>/ota/chunk (in, binary: 4-byte index + bytes, or a refusal notice,
see otatransfer), sb/<id>/ota/req (out, JSON ranges), sb/<id>/ota/status (out).

On flash (hal.storage): ota.json (security counters, trusted keys, the update
waiting for its self-test), ota_job.json (the job's JSON head), ota_table.bin (its
chunk table, written once; each chunk's digest is read from it as the chunk arrives,
so the table is never in RAM) and ota_bitmap.bin (which chunks are written). A chunk
is written before its bit, so a power cut at any point costs at most that chunk; the
download resumes after a reboot from the persisted job, table and bitmap.

The voice has priority: no chunk is requested while the speaker is busy (on an
ESP32 a flash write stalls the CPU, which would starve the I2S DMA).

soundbox.otamanifest (and the P-256 verifier it loads) is imported only to judge a job
or a saved one, and on MicroPython forgotten after: a download then runs on otatransfer
and the few numbers taken from the manifest here (about 2 KiB less heap while a job
downloads, when the code runs from ROMFS).
"""

import asyncio
import binascii
import hashlib
import json

import soundbox
from soundbox import clock, otatransfer, wire
from soundbox.otatransfer import ChunkRefused, Transfer

STATE_FILE = "ota.json"
JOB_FILE = "ota_job.json"
TABLE_FILE = "ota_table.bin"
BITMAP_FILE = "ota_bitmap.bin"
SELFTEST_S = 120  # the new version must prove itself within this
PROGRESS_STEPS = 10  # "downloading" status about every 10 % of the chunks
DIGEST_SIZE = 32  # a chunk's SHA-256 in the chunk table (otamanifest.DIGEST_SIZE)
# What the download, the install and the status reports read from a checked manifest; the
# rest (format, model, expiry, the chunk table's digest) is not kept while a job downloads.
KEPT_FIELDS = ("kind", "name", "version", "counter", "keys", "size", "chunk_size", "sha256", "files")


def _manifests():
    """soundbox.otamanifest, imported for the moment (see _forget_manifests)."""
    from soundbox import otamanifest

    return otamanifest


def _forget_manifests():
    """On MicroPython, forget soundbox.otamanifest; the next job imports it again."""
    soundbox.forget("otamanifest")


def _kept(manifest):
    return {k: manifest[k] for k in KEPT_FIELDS if k in manifest}


class ChunkTable:
    """The chunk table on flash: digest(i) reads chunk i's 32 bytes, nothing more."""

    def __init__(self, path):
        self.path = path

    def digest(self, index):
        with open(self.path, "rb") as f:
            f.seek(DIGEST_SIZE * index)
            return f.read(DIGEST_SIZE)

    def check(self, manifest, otamanifest):
        """Refused unless the file is the table the manifest names (read in small pieces)."""
        h = hashlib.sha256()
        size = 0
        try:
            with open(self.path, "rb") as f:
                while True:
                    piece = f.read(512)
                    if not piece:
                        break
                    h.update(piece)
                    size += len(piece)
        except OSError:
            pass  # missing: refused below, as an empty table
        otamanifest.check_table(manifest, size, h.digest())


class Updater:
    def __init__(self, app, default_keys):
        """app: the Soundbox (hal, mqtt, device_id, lang, speaker_idle(), selftest()).
        default_keys: the release keys trusted until an update changes them."""
        self.app = app
        self.hal = app.hal
        self.slots = app.hal.ota
        self.log = app.hal.log
        self.state = self._load_state()
        if not self.state.get("keys"):
            self.state["keys"] = [binascii.hexlify(k).decode() for k in default_keys]
        self.job = None  # {"campaign", "manifest", "id", "transfer"} while downloading
        self._wake = asyncio.Event()
        self._checked = False  # the pending update was judged after this start
        self._next_progress = 0
        self._resume_job()

    # ---- state on flash ------------------------------------------------------------

    def _load_state(self):
        raw = self.hal.storage.read(STATE_FILE)
        try:
            state = json.loads(raw) if raw else {}
        except (ValueError, UnicodeError):
            state = None
        if type(state) is not dict:
            self.log("ota: %s unreadable, starting from defaults" % STATE_FILE)
            state = {}
        if type(state.get("counters")) is not dict:
            state["counters"] = {}
        return state

    def _save_state(self):
        self.hal.storage.write(STATE_FILE, json.dumps(self.state).encode())

    def trusted_keys(self):
        return [binascii.unhexlify(k) for k in self.state["keys"]]

    def _trusted(self, otamanifest):
        """trusted_keys(), or Refused with the reason when the list on flash is damaged (a job
        then gets a status, and the updater keeps running)."""
        try:
            return self.trusted_keys()
        except (ValueError, TypeError):
            raise otamanifest.Refused("the trusted key list in %s is damaged" % STATE_FILE)

    # ---- status ----------------------------------------------------------------------

    async def _status(self, state, reason="", campaign=None, manifest=None, mid=None, have=0, total=0):
        m = manifest or {}
        kind = m.get("kind")
        await self.app.mqtt.publish(wire.topic(self.app.device_id, wire.OTA_STATUS), json.dumps({
            "campaign": campaign, "manifest": mid, "kind": kind, "name": m.get("name"),
            "version": m.get("version"), "state": state, "reason": reason, "have": have, "total": total,
            "running": self.slots.running(kind, m.get("name")) if kind else None}), 1)

    async def _job_status(self, j, state, reason=""):
        t = j["transfer"]
        await self._status(state, reason, j["campaign"], j["manifest"], j["id"], t.have, t.count)

    # ---- jobs --------------------------------------------------------------------------

    async def on_job(self, payload):
        try:
            await self._on_job(payload, _manifests())
        finally:
            _forget_manifests()

    async def _on_job(self, payload, otamanifest):
        head, table = otamanifest.split_job(payload)
        try:
            job = json.loads(head)
        except (ValueError, UnicodeError):
            job = None
        if type(job) is not dict or not isinstance(job.get("campaign"), str):
            await self._status("refused", "job must be a JSON object with a string \"campaign\"")
            return
        campaign = job["campaign"]
        if job.get("cancel"):
            job = self.job
            if job and job["campaign"] == campaign:
                await self._job_status(job, "failed", "cancelled by the cloud")
                self._drop_job()
            return
        try:
            manifest, mid = otamanifest.open_envelope(job.get("envelope"), self._trusted(otamanifest))
            self._check(manifest, otamanifest)
            if table is None:
                raise otamanifest.Refused("job has no chunk table")
            otamanifest.check_table(manifest, len(table), hashlib.sha256(table).digest())
        except otamanifest.Refused as e:
            self.log("ota: refused %s: %s" % (campaign, e))
            await self._status("refused", str(e), campaign, None, None)
            return
        current = self.job
        if current and current["id"] == mid:
            current["transfer"].ask_again()  # the cloud resent the job: maybe our requests were lost
            self._wake.set()
            return
        pending = self.state.get("pending")
        if pending and pending["manifest"] == mid:
            return  # installed already, waiting for its self-test
        old = self.job
        if old:
            await self._job_status(old, "failed", "replaced by campaign %s" % campaign)
            self._drop_job()
        # The head goes last: a saved head means its table and a fresh bitmap are there.
        self.hal.storage.write(BITMAP_FILE, b"")
        self.hal.storage.write(TABLE_FILE, table)
        table = None
        self.hal.storage.write(JOB_FILE, head)
        self.slots.begin(manifest, False)
        new = self._start(campaign, _kept(manifest), mid, None, otamanifest.chunk_count(manifest))
        self.log("ota: %s: downloading %s %s (%d chunks)" % (campaign, manifest["kind"], manifest["version"],
                                                             new["transfer"].count))
        await self._job_status(new, "downloading")

    def _check(self, manifest, otamanifest):
        now_ms = self.hal.clock.wall_ms() if self.hal.clock.trusted() else None
        otamanifest.check(manifest, self.slots.model, self.state["counters"],
                          None if now_ms is None else now_ms // 1000, self.slots.capacity)

    def _table(self):
        return ChunkTable(self.hal.storage.root + "/" + TABLE_FILE)

    def _start(self, campaign, manifest, mid, bitmap, count):
        """count: the manifest's chunks. Nothing here refers to otamanifest (see _forget_manifests)."""
        chunk_size, size = manifest["chunk_size"], manifest["size"]

        def sizes(i):  # otamanifest.chunk_length: the last chunk may be shorter
            return chunk_size if i < count - 1 else size - i * chunk_size

        transfer = Transfer(sizes, count, self._table().digest, bitmap)
        job = {"campaign": campaign, "manifest": manifest, "id": mid, "transfer": transfer}
        self.job = job
        self._next_progress = 0
        self._wake.set()
        return job

    def _resume_job(self):
        """After a reboot: carry on with the download the persisted job describes."""
        raw = self.hal.storage.read(JOB_FILE)
        if not raw:
            return
        try:
            self._resume(raw, _manifests())
        finally:
            _forget_manifests()

    def _resume(self, raw, otamanifest):
        try:
            job = json.loads(raw)
            manifest, mid = otamanifest.open_envelope(job["envelope"], self._trusted(otamanifest))
            self._check(manifest, otamanifest)
            self._table().check(manifest, otamanifest)
        except (ValueError, KeyError, TypeError, otamanifest.Refused) as e:
            self.log("ota: saved job dropped: %s" % e)
            self._drop_job()
            return
        pending = self.state.get("pending")
        if pending and pending["manifest"] == mid and \
                self.slots.running(pending["kind"], pending["name"]) == pending["version"]:
            self._drop_job()  # the power went after the install, before the job was put away
            return
        self.slots.begin(manifest, True)
        t = self._start(job["campaign"], _kept(manifest), mid, self.hal.storage.read(BITMAP_FILE),
                        otamanifest.chunk_count(manifest))["transfer"]
        self.log("ota: resuming %s at %d/%d chunks" % (job["campaign"], t.have, t.count))

    def _drop_job(self):
        self.job = None
        self.hal.storage.write(JOB_FILE, b"")
        self.hal.storage.write(BITMAP_FILE, b"")
        self.hal.storage.write(TABLE_FILE, b"")  # up to 32 KiB of flash for a 4 MiB image

    # ---- chunks ---------------------------------------------------------------------------

    async def on_chunk(self, payload):
        job = self.job
        if job is None:
            return
        t = job["transfer"]
        try:
            refusal = otatransfer.notice(payload)
            if refusal is not None:
                self._held_off(job, refusal)
                return
            index, data = t.accept(payload)
        except ChunkRefused as e:
            self.log("ota: chunk refused: %s" % e)  # not written; it is asked for again
            return
        if t.holds(index):
            return
        self.slots.write(index * job["manifest"]["chunk_size"], data)
        t.mark(index)
        self.hal.storage.write(BITMAP_FILE, bytes(t.bitmap))  # after the data: a cut loses one chunk at most
        if t.have * PROGRESS_STEPS >= self._next_progress * t.count and not t.done:
            self._next_progress = t.have * PROGRESS_STEPS // t.count + 1
            await self._job_status(job, "downloading")
        self._wake.set()

    def _held_off(self, job, refusal):
        mid, reason, retry_ms = refusal
        if mid != job["id"]:
            self.log("ota: refusal notice for manifest %s ignored (downloading %s)" % (mid, job["id"]))
            return
        self.log("ota: the cloud refused chunks, asking again in %d ms: %s" % (retry_ms, reason))
        job["transfer"].hold_off(clock.monotonic_ms(), retry_ms, reason)
        self._wake.set()  # the run loop sleeps until the new deadline

    # ---- the task ----------------------------------------------------------------------------

    async def run(self):
        while True:
            job = self.job
            if job is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            t = job["transfer"]
            if t.done:
                await self._install(job)
                continue
            if t.stalled:
                await self._job_status(job, "failed", t.stall_reason())
                self._drop_job()
                continue
            now = clock.monotonic_ms()
            if self.app.mqtt.connected and self.app.speaker_idle():
                ranges = t.request(now)
                if ranges:
                    await self.app.mqtt.publish(wire.topic(self.app.device_id, wire.OTA_REQ), json.dumps(
                        {"campaign": job["campaign"], "manifest": job["id"], "chunks": ranges}), 0)
                wait_ms = t.next_deadline(now) - now
            else:
                wait_ms = 200  # offline or speaking: look again soon
            await self._sleep_or_wake(max(wait_ms, 10))

    async def _sleep_or_wake(self, ms):
        # Not asyncio.wait_for: on CPython 3.11 it can swallow a cancel that races the
        # event, and a cancelled updater would then run on forever.
        self._wake.clear()
        alarm = asyncio.create_task(self._ring(ms))
        try:
            await self._wake.wait()
        finally:
            alarm.cancel()

    async def _ring(self, ms):
        await asyncio.sleep(ms / 1000)
        self._wake.set()

    async def on_connect(self):
        """Each (re)connect: ask for chunks at once; after a reboot, judge the pending update."""
        job = self.job
        if job:
            job["transfer"].ask_again()
            self._wake.set()
        if not self._checked:
            self._checked = True
            await self._judge_pending()

    # ---- install, self-test, confirm, roll back ------------------------------------------------

    async def _install(self, job):
        m = job["manifest"]
        await self._job_status(job, "installing")
        if self.slots.digest(m) != m["sha256"]:
            await self._job_status(job, "failed", "artifact does not match the manifest's sha256 after download")
            self._drop_job()
            return
        pending = {"campaign": job["campaign"], "manifest": job["id"], "kind": m["kind"], "name": m["name"],
                   "version": m["version"], "counter": m["counter"], "keys": m.get("keys"), "stage": "installing"}
        self.state["pending"] = pending
        self._save_state()
        try:
            reboot = self.slots.install(m)
        except OSError as e:
            await self._job_status(job, "failed", "install failed: %s" % e)
            self.state["pending"] = None
            self._save_state()
            self._drop_job()
            return
        self._drop_job()
        if not reboot:
            await self._selftest_then_confirm(pending)
            return
        pending["stage"] = "rebooting"
        self._save_state()
        self.app.update_installing()
        await self._status("rebooting", "", pending["campaign"], pending, pending["manifest"])
        await self.app.restart_when_quiet()

    async def _judge_pending(self):
        """First connect after a start: confirm, finish, or report what became of the pending update."""
        pending = self.state.get("pending")
        if not pending:
            return
        kind, name = pending["kind"], pending["name"]
        running = self.slots.running(kind, name)
        if running == pending["version"]:
            if self.slots.on_trial(kind, name):
                asyncio.create_task(self._selftest_then_confirm(pending))
            else:
                await self._confirmed(pending)  # confirmed before a power cut, state not saved yet
            return
        if pending["stage"] == "installing" and self.job:
            self.state["pending"] = None  # cut before the switch: the download's job installs it again
            self._save_state()
            return
        reason = self.hal.ota_rollbacks.get(kind) if hasattr(self.hal, "ota_rollbacks") else None
        await self._rolled_back(pending, reason or "version %s did not start; %s runs" % (pending["version"], running))

    async def _selftest_then_confirm(self, pending):
        try:
            await asyncio.wait_for(self.app.selftest(), SELFTEST_S)
        except Exception as e:  # anything: a timeout, a dead speaker, a broken pack
            reason = "self-test failed: %s" % (e if str(e) else repr(e))
            self.log("ota: %s" % reason)
            reboot = self.slots.rollback(pending["kind"], pending["name"])
            await self._rolled_back(pending, reason)
            if reboot:
                await self.app.restart_when_quiet()
            return
        self.slots.confirm(pending["kind"], pending["name"])
        await self._confirmed(pending)

    async def _confirmed(self, pending):
        # Only now may the counter rise: a version that never confirmed can be retried.
        key = _manifests().counter_key(pending)
        _forget_manifests()
        self.state["counters"][key] = max(pending["counter"], self.state["counters"].get(key, 0))
        if pending.get("keys"):
            self.state["keys"] = pending["keys"]  # key rotation takes effect with the update
        self.state["pending"] = None
        self._save_state()
        self.log("ota: %s %s confirmed" % (pending["kind"], pending["version"]))
        await self._status("confirmed", "", pending["campaign"], pending, pending["manifest"])

    async def _rolled_back(self, pending, reason):
        self.state["pending"] = None
        self._save_state()
        self.log("ota: %s %s rolled back: %s" % (pending["kind"], pending["version"], reason))
        await self._status("rolled_back", reason, pending["campaign"], pending, pending["manifest"])
