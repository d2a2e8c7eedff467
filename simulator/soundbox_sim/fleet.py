"""Run N copies of the real firmware app in one asyncio loop against a broker."""

import asyncio
import asyncio.sslproto
import json
import os
import time

from soundbox import clock
from soundbox_fw.app import MERGED_NAME, Soundbox
from soundbox_sim.audio import PackShelf, TimingSink, WavSink
from soundbox_sim.hal import SimHal


def cap_tls_read_buffers(size=16 * 1024):
    """Shrink asyncio's per-connection TLS read buffer (CPython 3.11+ allocates 256 KiB).

    A TLS record carries at most 16 KiB, so a 16 KiB buffer loses nothing; with
    thousands of simulated devices in one process the default costs ~300 KiB each.
    """
    asyncio.sslproto.SSLProtocol.max_size = size


def device_ids(n):
    return ["sb-%04d" % (i + 1) for i in range(n)]


class Journal:
    """Append-only JSON Lines record of every announcement the fleet actually played."""

    def __init__(self, path):
        self.path = path
        self.count = 0
        self._file = open(path, "a") if path else None

    def write(self, record):
        self.count += 1
        if self._file:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()

    def close(self):
        if self._file:
            self._file.close()


class JournalingSink:
    """Wraps a device's audio sink to note what was played, when."""

    def __init__(self, inner, device_id, journal):
        self.inner = inner
        self.device_id = device_id
        self.journal = journal

    def __getattr__(self, name):
        # set_volume, set_language: whatever the wrapped sink offers, the app may call
        return getattr(self.inner, name)

    async def play(self, tokens, name=None):
        start = clock.wall_ms()
        await self.inner.play(tokens, name)
        end, words = clock.wall_ms(), " ".join(tokens)
        # A merged announcement ("merged <txn> <txn> ...", see soundbox_fw.app) played each
        # of its payments: one record per txn keeps the journal's per-txn counts right.
        parts = name.split(" ") if isinstance(name, str) else [name]
        merged = len(parts) > 1 and parts[0] == MERGED_NAME
        for txn in (parts[1:] if merged else [name]):
            record = {"device": self.device_id, "txn": txn, "start": start, "end": end, "words": words}
            if merged:
                record["merged"] = len(parts) - 1
            self.journal.write(record)


class Fleet:
    def __init__(self, n, host, port, state_dir, pack_dir, wav_device=None, out_dir="out",
                 journal_path=None, connect_rate=200.0, keepalive=60, identity_root=None, tls=False,
                 freshness_s=None, lang="en-IN"):
        self.ids = device_ids(n)
        self.host, self.port = host, port
        self.state_dir = state_dir
        self.pack_dir = pack_dir  # holds <lang>.pack
        self.lang = lang
        self.wav_device = wav_device
        self.out_dir = out_dir
        self.connect_rate = connect_rate
        self.keepalive = keepalive
        # <root>/<device id>/ holds each device's identity: payment.key always, TLS files for mqtts.
        self.identity_root = identity_root
        self.tls = tls
        self.freshness_s = freshness_s  # None: the firmware's default
        if tls:
            cap_tls_read_buffers()
        self.journal = Journal(journal_path)
        self.devices = []
        os.makedirs(state_dir, exist_ok=True)
        self._log = open(os.path.join(state_dir, "devices.log"), "a", buffering=1)  # line: readable live

    def connected(self):
        return sum(1 for d in self.devices if d.mqtt.connected)

    def refused(self):
        """Devices whose last connect was refused by the broker (bad or revoked identity)."""
        return sum(1 for d in self.devices if d.mqtt.refused is not None)

    def _device(self, device_id, shelf):
        # A sink per device: each box can be switched to its own language by command.
        if device_id == self.wav_device:
            sink = WavSink(shelf(self.lang), os.path.join(self.out_dir, device_id), shelf)
        else:
            sink = TimingSink(shelf(self.lang), shelf)
        hal = SimHal(os.path.join(self.state_dir, device_id),
                     JournalingSink(sink, device_id, self.journal),
                     lambda msg, d=device_id: self._log.write("%.3f %s %s\n" % (time.time(), d, msg)))
        config = {"device_id": device_id, "broker_host": self.host, "broker_port": self.port,
                  "keepalive": self.keepalive, "lang": self.lang}
        if self.identity_root:
            config["identity"] = os.path.join(self.identity_root, device_id)
            if self.tls:
                config["tls"] = {"identity": config["identity"]}
        if self.freshness_s is not None:
            config["freshness_s"] = self.freshness_s
        return Soundbox(hal, config)

    async def run(self, stop_event, progress=None):
        """Start devices at connect_rate per second, run until stop_event, then stop them all."""
        shelf = PackShelf(self.pack_dir)
        tasks = []
        for i, device_id in enumerate(self.ids):
            device = self._device(device_id, shelf)
            self.devices.append(device)
            tasks.append(asyncio.create_task(device.run()))
            if stop_event.is_set():
                break
            await asyncio.sleep(1 / self.connect_rate)
        while not stop_event.is_set():
            if progress:
                progress(self)
            try:
                await asyncio.wait_for(stop_event.wait(), 1)
            except asyncio.TimeoutError:
                pass
        await asyncio.gather(*(d.stop() for d in self.devices), return_exceptions=True)
        await asyncio.gather(*tasks, return_exceptions=True)
        self.journal.close()
        self._log.close()
