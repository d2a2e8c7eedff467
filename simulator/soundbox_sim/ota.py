"""A scenario's [ota] section: a signed simulator firmware image rolled out to the fleet
through the run's own cloud, as an operator would with `soundbox ota` and `soundbox ota
campaign`, and followed once a second.

Before the fleet starts (`prepare`): release keys in <certs>/ota (kept when they exist),
which every device then trusts (slots.ota_config); the devices start from factory state
(the run's flash directory is emptied: a fleet an earlier run left on the new version
would have nothing to update); the image is built (tools' sim_image) and signed with the
first release key into <state>/ota-release.
At [ota].at (`start`): the envelope and the binary go to PUT /ota/artifacts, then
POST /ota/campaigns targets this run's devices with the scenario's waves and thresholds.
While it runs (`poll`, from a thread, once a second): GET /ota/campaigns/<id>; its
totals are the run's per-second counters ota.updated, ota.downloading, ota.failed and
ota.pending (metrics.jsonl, the report's OTA plot). Power cuts during OTA hit devices
the cloud lists as downloading at that moment.
At the end (`summary`): the campaign's last state and what each device's own slots say
it runs, so "all devices updated" is checked on the devices, not only the cloud's word.
"""

import math
import os
import random
import re
import shutil
import threading

from soundbox import VERSION, otakinds
from soundbox.otaslots import FileSlots
from soundbox_sim.slots import CAPACITIES, MODEL, ota_config

ARTIFACT = re.compile(r"firmware-(\d+(?:\.\d+){0,3})")
POLL_S = 1.0
CUT_POLL_S = 0.1  # while power cuts are owed: a download of a few hundred KiB takes about a second
CUT_DOWN_S = 1.0  # seconds a box stays without power in a power cut during OTA
FINISHED = ("completed", "aborted", "paused")  # paused: the rollout stopped itself


class OtaError(Exception):
    """The rollout could not be set up (one line)."""


def parse_artifact(text):
    """(name, version) of "firmware-<version>", or None."""
    m = ARTIFACT.fullmatch(text)
    return (otakinds.FIRMWARE, m.group(1)) if m else None


def campaign_body(spec, name, devices):
    """The POST /ota/campaigns body for a scenario's [ota] spec (shares become percents)."""
    return {"artifact": name,
            "target": {"model": MODEL, "devices": list(devices)},
            "waves": [round(w * 100, 3) for w in spec["waves"]],
            "success_rate": max(1, round(spec["success_threshold"] * 100, 3)),
            "max_failure_rate": max(1, round(spec["error_threshold"] * 100, 3)),
            "max_concurrent": spec["max_concurrent"]}


class Rollout:
    """One run's OTA campaign: prepare before the fleet starts, start at [ota].at, poll
    from a thread (once a second; ten times while power cuts are owed), summary at the
    end. `send(msg)` reaches the workers, `event(text)` writes the run's event log."""

    def __init__(self, spec, api, certs, state, ids, send, event):
        self.spec = spec
        self.api = api
        self.api_key = None  # an admin key of the run's cloud (set with api, before start)
        self.certs = certs
        self.state = state
        self.ids = list(ids)
        self.send = send
        self.event = event
        self.name, self.version = parse_artifact(spec["artifact"])
        self.artifact = None  # the registered name, "<name>-<version>"
        self.release = None  # path of the signed .bin
        self.campaign = None
        self.latest = None  # last GET /ota/campaigns/<id>
        self.counts = {}
        self.cut = set()
        self.cut_goal = math.ceil(spec["power_cut_share"] * len(self.ids)) if spec["power_cut_share"] else 0
        self._stop = threading.Event()
        self._thread = None
        self._rng = random.Random(len(self.ids))

    # ---- before the fleet starts -----------------------------------------------------------

    def prepare(self, devices_dir):
        """Release keys, factory-fresh devices, the signed image. Returns the device config
        that makes the boxes take updates signed by those keys. devices_dir: the fleet's
        flash (one directory per device), wherever the run keeps it (runner --flash-dir)."""
        from soundbox_tools import ota as tools

        try:
            tools.keygen(self.certs)  # keeps the keys there are: devices trust the same set
            image = tools.sim_image(self.version, self.spec["size"])
            manifest = tools.manifest_for(image, kind=otakinds.FIRMWARE, name=self.name, version=self.version,
                                          counter=1, model=MODEL)
            key = tools.load_key(os.path.join(tools.key_dir(self.certs), "release-1.key"))
            release_dir = os.path.join(self.state, "ota-release")
            shutil.rmtree(release_dir, ignore_errors=True)
            self.release = str(tools.write_release(release_dir, image, tools.sign(manifest, [key])))
        except (tools.OtaError, OSError) as e:
            raise OtaError("OTA release in %s: %s" % (self.state, e)) from None
        self.artifact = os.path.basename(self.release)[:-len(".bin")]
        # The counter 1 release must find boxes on the factory version and counter 0.
        shutil.rmtree(devices_dir, ignore_errors=True)
        return ota_config(self.certs)

    # ---- at [ota].at ---------------------------------------------------------------------------

    def start(self):
        """Upload the release and create the campaign; a line for the run's event log."""
        from soundbox_cloud.client import ApiError, call

        stem = self.release[:-len(".bin")]
        try:
            with open(stem + ".manifest.json", "rb") as f:
                call(self.api, "PUT", "/ota/artifacts/%s.manifest.json" % self.artifact, data=f.read(),
                     api_key=self.api_key)
            with open(self.release, "rb") as f:
                call(self.api, "PUT", "/ota/artifacts/%s.bin" % self.artifact, data=f.read(), timeout=60,
                     api_key=self.api_key)
            status = call(self.api, "POST", "/ota/campaigns", campaign_body(self.spec, self.artifact, self.ids),
                          timeout=60, api_key=self.api_key)
        except (ApiError, OSError) as e:
            return "OTA campaign %s not started: %s" % (self.artifact, e)
        self.campaign = status["id"]
        self._take(status)
        self._thread = threading.Thread(target=self._follow, name="ota-poll", daemon=True)
        self._thread.start()
        return "OTA campaign %s: %s %s (%d bytes) to %d devices in %d waves" % (
            self.campaign, self.name, self.version, self.spec["size"], status["totals"]["devices"],
            len(status["waves"]))

    def _follow(self):
        from soundbox_cloud.client import ApiError, call

        while not self._stop.wait(CUT_POLL_S if len(self.cut) < self.cut_goal else POLL_S):
            try:
                status = call(self.api, "GET", "/ota/campaigns/" + self.campaign, timeout=10, api_key=self.api_key)
            except ApiError:
                continue  # the cloud is busy or restarting: the next second asks again
            self._take(status)
            self._power_cuts(status)
            if status["state"] in FINISHED:
                self.event("OTA campaign %s %s: %d/%d updated, %d failed%s" % (
                    self.campaign, status["state"], status["totals"]["succeeded"], status["totals"]["devices"],
                    status["totals"]["failed"], " (%s)" % status["reason"] if status["reason"] else ""))
                return

    def _take(self, status):
        totals = status["totals"]
        self.latest = status
        self.counts = {"updated": totals["succeeded"], "downloading": totals["active"],
                       "failed": totals["failed"], "pending": totals["pending"], "wave": status["wave"]}

    def _power_cuts(self, status):
        """Cut the power of boxes the cloud says are in the first half of their download,
        until the scenario's share is reached. (A cut after the new version booted on trial
        would roll it back: a failure the campaign counts, not what this fault is about.)"""
        want = self.cut_goal - len(self.cut)
        if want <= 0:
            return
        downloading = sorted(d["device"] for d in status["devices"]
                             if d["state"] == "downloading" and d["device"] not in self.cut
                             and d["total"] and d["have"] is not None and d["have"] * 2 < d["total"])
        ids = sorted(self._rng.sample(downloading, min(want, len(downloading))))
        if ids:
            self.cut.update(ids)
            self.send({"op": "power_cut", "ids": ids, "down_s": CUT_DOWN_S})  # faults.py's power_cut
            self.event("power cut during OTA download on %d devices (%d/%d)" % (len(ids), len(self.cut), self.cut_goal))

    # ---- the end ---------------------------------------------------------------------------------

    def finished(self):
        return self.campaign is None or (self.latest is not None and self.latest["state"] in FINISHED)

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(15)

    def summary(self, devices_dir):
        """The campaign's last word and the versions the devices' own slots run (read after they stopped)."""
        out = {"artifact": self.artifact, "version": self.version, "size": self.spec["size"],
               "campaign": self.campaign, "power_cut": len(self.cut),
               "running": running_versions(devices_dir, self.ids, self.name)}
        if self.latest is not None:
            out.update(state=self.latest["state"], reason=self.latest["reason"], totals=self.latest["totals"],
                       device_states=_tally(d["state"] for d in self.latest["devices"]))
        return out


def running_versions(devices_dir, ids, name=otakinds.FIRMWARE):
    """{version: devices} as each device's slots report it (factory version when never updated)."""
    counts = {}
    for d in ids:
        slots = FileSlots(os.path.join(devices_dir, d), MODEL, {otakinds.APP: VERSION, otakinds.FIRMWARE: VERSION},
                          CAPACITIES)
        v = slots.running(otakinds.FIRMWARE, name)
        if slots.on_trial(otakinds.FIRMWARE, name):
            v = "%s (on trial)" % v
        counts[v] = counts.get(v, 0) + 1
    return counts


def _tally(states):
    out = {}
    for s in states:
        out[s] = out.get(s, 0) + 1
    return out
