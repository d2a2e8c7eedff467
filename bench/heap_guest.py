"""Guest side of bench/heap_budget.py: runs INSIDE the MicroPython VM, against the compiled bundle.

SECTIONS maps a path's name to (setup, steps). Each step is (name, function, keeps):
the function takes the shared state dict and stores what the path keeps alive back
into it; keeps=True marks a step whose result is long-lived (an OTA job being
downloaded), so the harness also measures the heap after it, collected.
CODE lists the modules a section needs beyond what boot imports (the harness imports
them first, so their code is counted as code, not as the section's data).

This module is imported before the heap baseline is read, so its own bytecode is not
counted; it therefore imports app modules inside functions, never at the top.

Small frames on purpose, in every function that runs while the VM collects garbage
(the P-256 verify steps): this VM frees the frame of a running function whose frame
is over about 11 words (locals + stack slots + 3 per try), because the only pointer
to it is in a WebAssembly local the collector cannot see (see soundbox/p256.py and
tools/soundbox_tools/mpvm.py). Long-lived objects live in the state dict or in
module globals; a coroutine's frame lives in the coroutine object, which is safe.

Inputs made on the host (heap_budget.py) and read from /input: payment.key, the
signed OTA job for a firmware image, 1 MiB by default, as the cloud sends it (ota_job.msg:
one line of JSON {"campaign", "envelope"}, then b"\n" and the binary chunk table), the
same table as the updater keeps it on flash (ota_table.bin: /input stands for the box's
flash, see FlashStorage), the release keys the box trusts (ota_keys.json), chunk 0 of
the image as its MQTT message (ota_chunk.bin: 4-byte index + the chunk), and the
envelope's signed bytes and signature alone (ota_body.json, ota_sig.der).
"""

import gc

DEVICE = "sb-0001"
KEY = bytes(range(32))
NOW = 1767225600000  # 2026-01-01, ms
LEDGER_CAPACITY = 256
INPUT = "/input/"

CODE = {
    "payment": [],
    # A box that takes updates (release keys deployed): esp32boot gives the HAL its OTA
    # slots (soundbox_fw.esp32slots), so app.py imports the updater. p256 is not code the
    # path keeps: otamanifest imports it for each manifest and forgets it after, so it is
    # counted in the steps that verify (reset() imports it, to put the meter in place).
    # The harness skips a module the bundle does not have.
    "ota": ["soundbox_fw.esp32slots", "soundbox.otaslots", "soundbox_fw.updater"],
}


class FlashStorage:
    """Storage whose bytes are not in RAM, as on the board (flash); the VM has no writable disk.
    Files the box reads back by path (the updater's chunk table) are the host's, in /input."""

    root = INPUT[:-1]

    def read(self, name):
        return None

    def write(self, name, data):
        pass

    def append(self, name, data):
        pass

    def blocks(self, name, count):
        return FlashPartition(count)


class FlashPartition:
    """The ledger ring's raw partition (esp32.Partition's block protocol): on flash, so
    nothing of it is in the heap; reads as erased, programs and erases go nowhere."""

    def __init__(self, count):
        self.count = count

    def readblocks(self, block, buf, offset=0):
        for i in range(len(buf)):
            buf[i] = 0xFF

    def writeblocks(self, block, buf, offset=None):
        pass

    def ioctl(self, op, arg):
        return {4: self.count, 5: 4096}.get(op, 0)


class FlashSlots:
    """Stand-in for the ESP32's OTA slots: chunks go to flash (esp32.Partition), not RAM,
    so writing them here keeps nothing. Just the calls the updater makes while downloading."""

    model = "soundbox-esp32"

    def capacity(self, kind):
        return 1536 * 1024  # an ESP32 OTA app partition

    def begin(self, manifest, resume):
        pass

    def write(self, offset, data):
        pass

    def running(self, kind, name):
        return "1.0.0"


class BenchClock:
    """NTP has set the clock (the updater checks the manifest's expiry against it)."""

    def monotonic_ms(self):
        return 1000

    def wall_ms(self):
        return NOW

    def trusted(self):
        return True


class BenchHal:
    """Just enough HAL for Soundbox(hal, config) to be built (nothing runs: no event loop here)."""

    def __init__(self, ota):
        self.storage = FlashStorage()
        self.clock = BenchClock()
        self.audio = self.led = self.buttons = self.battery = None
        self.open_connection = None
        if ota:
            self.ota = FlashSlots()
            self.ota_rollbacks = {}

    def log(self, message):
        pass


def read_input(name):
    with open(INPUT + name, "rb") as f:
        return f.read()


def run_coroutine(coro):
    """Run a coroutine that never waits (nothing here makes it wait) to its end."""
    try:
        coro.send(None)
    except StopIteration:
        return
    raise AssertionError("the coroutine waited: this VM has no event loop")


class GcMeter:
    """Put in place of the gc module that soundbox.p256 sees: notes the heap around each
    collection verify() makes (one as it starts, one after each of its steps)."""

    def __init__(self):
        self.count = 0
        self.first = 0  # the heap just before verify's first collection: what its caller built
        self.start = 0  # the heap just after it: verify's inputs and all else that is live
        self.last = 0  # the heap after the latest collection
        self.live = 0  # the most verify itself kept alive across a collection, above start
        self.burst = 0  # the most allocated between two of its collections (garbage, mostly)

    def collect(self):
        now = gc.mem_alloc()
        if not self.count:
            self.first = now
        elif now - self.last > self.burst:
            self.burst = now - self.last
        gc.collect()
        self.last = gc.mem_alloc()
        if not self.count:
            self.start = self.last
        if self.last - self.start > self.live:
            self.live = self.last - self.start
        self.count += 1


def reset(state):
    """Called just before the measured step: its collections alone are reported."""
    if "opened" in state:
        state["opened"] = [0, 0]
    if "meter" in state:
        from soundbox import p256

        state["meter"] = GcMeter()
        p256.gc = state["meter"]  # p256's collections now report the heap around them


def report(state):
    """What the measured step noted itself, or None: the collections inside P-256 verify,
    and the heap when the updater had the manifest open (see watch_open_envelope)."""
    out = {}
    meter = state.get("meter")
    if meter is not None and meter.count:
        out.update({"collections": meter.count, "first": meter.first, "start": meter.start,
                    "live": meter.live, "burst": meter.burst})
    opened = state.get("opened")
    if opened is not None and opened[0]:
        out.update({"opened": opened[0], "opened_live": opened[1]})
    return out or None


def watch_open_envelope(state):
    """Wrap otamanifest.open_envelope (the updater calls it through the module) to read the
    heap as it returns, when the job message (head and table), the parsed head and the manifest
    are all live:
    first as it is, then collected (the live data alone). The collection is inside the
    updater's coroutine, whose frame is safe (see the module docstring).

    The updater imports otamanifest for each job and forgets it after (updater._manifests),
    so the wrapper is put on each module it gets, and nothing here refers to the module:
    it is not kept alive between jobs by the bench."""
    from soundbox_fw import updater

    load = updater._manifests
    state["opened"] = [0, 0]

    def manifests():
        otamanifest = load()
        if not hasattr(otamanifest, "bench_watched"):
            real = otamanifest.open_envelope

            def open_envelope(envelope, trusted_keys):
                opened = real(envelope, trusted_keys)
                note_opened(state["opened"])
                return opened

            otamanifest.open_envelope = open_envelope
            otamanifest.bench_watched = True
        return otamanifest

    updater._manifests = manifests


def note_opened(marks):
    marks[0] = gc.mem_alloc()
    gc.collect()
    marks[1] = gc.mem_alloc()


def make_notification(n, amount):
    import json
    from soundbox import payment

    return json.dumps(payment.sign(KEY, DEVICE, "T%08d" % n, amount, NOW - 1000)).encode()


# ---- the payment path: what the app does for each notification ----------------------------

def setup_app(state, ota):
    """Long-lived state at its largest: the app object, a full ledger, a language's word table
    (en-IN said first, then hi: on MicroPython soundbox.voice keeps the last one used)."""
    from soundbox import voice
    from soundbox.ledger import Ledger
    from soundbox_fw.app import Soundbox

    state["app"] = Soundbox(BenchHal(ota), {"device_id": DEVICE, "broker_host": "broker", "broker_port": 8883,
                                            "identity": "/input", "lang": "hi"})
    assert state["app"].desk.key is not None
    ledger = Ledger(FlashStorage(), capacity=LEDGER_CAPACITY)
    for n in range(LEDGER_CAPACITY):
        ledger.add("OLD%08d" % n)
    state["ledger"] = ledger
    voice.announcement_tokens(100, "en-IN")
    voice.announcement_tokens(100, "hi")  # loads voice_hi's table, and voice_en's is forgotten


def setup_payment(state):
    setup_app(state, False)
    state["payload"] = make_notification(1, 12345678)  # 1,23,456.78 rupees: a long announcement


def step_parse(state):
    from soundbox import payment

    state["note"] = payment.parse_notification(state["payload"])


def step_verify_mac(state):
    from soundbox import payment

    assert payment.authentic(state["note"], KEY, DEVICE)


def step_dedup(state):
    note = state["note"]
    assert note.txn not in state["ledger"]
    state["ledger"].add(note.txn)


def step_plan_words(state):
    from soundbox import voice

    state["tokens"] = voice.announcement_tokens(state["note"].amount, "hi")


def step_ack(state):
    from soundbox import payment

    state["ack"] = payment.ack_payload(state["note"].txn, payment.ANNOUNCED, "", NOW, NOW + 10, NOW + 5000)


def step_one_payment(state):
    """A whole payment, parse to ack, with no collection in between: the path's peak."""
    from soundbox import payment, voice

    note = payment.parse_notification(make_notification(2, 9999999))
    assert payment.authentic(note, KEY, DEVICE)
    assert note.txn not in state["ledger"]
    state["ledger"].add(note.txn)
    tokens = voice.announcement_tokens(note.amount, "hi")
    state["ack2"] = (tokens, payment.ack_payload(note.txn, payment.ANNOUNCED, "", NOW, NOW + 10, NOW + 5000))


def step_burst_of_20(state):
    """20 payments back to back without a collection: the garbage a burst leaves for the GC."""
    from soundbox import payment, voice

    for n in range(20):
        note = payment.parse_notification(make_notification(100 + n, 1000 + n * 37))
        assert payment.authentic(note, KEY, DEVICE)
        state["ledger"].add(note.txn)
        voice.announcement_tokens(note.amount, "hi")
        payment.ack_payload(note.txn, payment.ANNOUNCED, "", NOW, NOW, NOW)


# ---- the OTA path: a job for a 1 MiB firmware image arrives, then its chunks ------------------
# Payments go on being announced during a download, so the payment path's long-lived
# state stays; the app builds its Updater because the HAL has OTA slots.

def setup_ota(state):
    setup_app(state, True)
    if state["app"].updater is None:
        state["app"]._load_updater()  # what the app does when the first job arrives
    assert state["app"].updater is not None
    state["meter"] = None  # reset() puts one in place before the measured step
    watch_open_envelope(state)


def step_p256_verify(state):
    """One ECDSA P-256 verify of the signed manifest bytes, nothing else around it."""
    state["verified"] = verify_envelope_signature()


def verify_envelope_signature():
    from soundbox import crypto

    return crypto.verify_p256(release_key(), read_input("ota_body.json"), read_input("ota_sig.der"))


def release_key():
    import binascii
    import json

    return binascii.unhexlify(json.loads(read_input("ota_keys.json"))["keys"][0])


def step_job(state):
    """The job message: split it, parse its head, open the envelope (P-256 verify), check the
    manifest and the chunk table against it, write the table to flash, build the transfer
    (progress bitmap; digests read from flash), report "downloading"."""
    run_coroutine(state["app"].updater.on_job(read_input("ota_job.msg")))
    assert state["app"].updater.job is not None, last_status(state)


def step_chunk(state):
    """One chunk message: check index, length and SHA-256 against its digest (read from the
    table on flash), write it (to flash), mark it in the bitmap, persist the bitmap, report progress."""
    run_coroutine(state["app"].updater.on_chunk(read_input("ota_chunk.bin")))
    assert state["app"].updater.job["transfer"].have == 1, last_status(state)


def last_status(state):
    """The last OTA status the box queued for the cloud (it says why a job was refused)."""
    return state["app"].mqtt.session.queued[-1].payload


SECTIONS = {
    "payment": (setup_payment, [("parse", step_parse, False), ("verify MAC", step_verify_mac, False),
                                ("dedup", step_dedup, False), ("plan words", step_plan_words, False),
                                ("ack", step_ack, False), ("one payment", step_one_payment, False),
                                ("burst of 20", step_burst_of_20, False)]),
    "ota": (setup_ota, [("P-256 verify", step_p256_verify, False), ("job + verify", step_job, True),
                        ("chunk + mark", step_chunk, False)]),
}

