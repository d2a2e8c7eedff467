"""OTA campaigns: who gets an artifact, in which waves, and when a rollout stops itself.

A campaign snapshots its target devices at creation (model, current version, tags, or an
explicit list), orders them by a hash of campaign id + device id (so wave 1 is a spread
sample, not the first ids) and cuts that order into cumulative waves (1, 10, 50, 100 %).
`tick(now_ms)` does all the work from what the database says, so it is deterministic for
a given clock: time out stalled devices, flag updated devices that stopped acking
payments, pause on failures, advance a wave whose success rate reached the threshold, and
send jobs (inside the maintenance window, under the concurrency cap). Device reports
arrive through `on_status`. Every public method takes one lock: paho's thread (statuses),
the ticker and the HTTP threads all call in.
"""
import datetime
import hashlib
import json
import logging
import re
import secrets
import threading
import time
import zoneinfo

from soundbox import otakinds, wire
from soundbox_cloud.artifacts import ArtifactError
from soundbox_cloud.errors import Rejected
from soundbox_cloud.validation import is_device_id

log = logging.getLogger("soundbox_cloud")

DEVICE_REPORTS = ("downloading", "installing", "rebooting", "confirmed", "refused", "failed", "rolled_back")
ACTIVE = ("sent", "downloading", "installing", "rebooting")      # holds a download slot
FAILURES = ("refused", "failed", "rolled_back", "stopped_acking", "timed_out")
FINAL = FAILURES + ("confirmed", "cancelled")
CAMPAIGN_STATES = ("running", "paused", "aborted", "completed")

DEFAULTS = {
    "waves": [1, 10, 50, 100],     # cumulative percent of the target devices
    "success_rate": 95,            # percent of a wave confirmed before the next one starts
    "max_failures": None,          # pause at this many failures (count), if set
    "max_failure_rate": 10,        # pause when this percent of finished devices failed ...
    "min_sample": 5,               # ... once at least this many have finished
    "max_concurrent": 50,          # devices downloading at once
    "window": None,                # "HH:MM-HH:MM": jobs start only then (may wrap midnight)
    "tz": None,                    # IANA zone of the window; None = the cloud's local time
    "ack_timeout_s": 60,           # a payment unacked this long after confirmation = failure
    "soak_s": 0,                   # a confirmation counts as success only after this long
    "stall_timeout_s": 1800,       # no status from an active device this long = failure
}
WINDOW = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)")
TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,31}")
MAX_LIST = 10_000


def _number(body, field, low, high, integer=False, nullable=False):
    value = body.get(field, DEFAULTS[field])
    if value is None and nullable:
        return None
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not low <= value <= high:
        raise Rejected(400, field, "%s must be %s from %s to %s%s" % (
            field, "an integer" if integer else "a number", low, high, " or null" if nullable else ""))
    return value


def _strings(value, field, pattern=None, what="strings"):
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_LIST or not all(isinstance(v, str) for v in value):
        raise Rejected(400, field, "%s must be a list of %s" % (field, what))
    bad = [v for v in value if pattern is not None and not pattern(v)]
    if bad:
        raise Rejected(400, field, "%s: %r is not valid %s" % (field, bad[0], what))
    return list(dict.fromkeys(value))


def is_tag(value):
    return isinstance(value, str) and TAG.fullmatch(value) is not None


def check_spec(body):
    """The campaign parameters from a create request, defaults filled in; Rejected on bad input."""
    if not isinstance(body, dict):
        raise Rejected(400, "body", "request body must be a JSON object")
    unknown = sorted(set(body) - set(DEFAULTS) - {"artifact", "target"})
    if unknown:
        raise Rejected(400, unknown[0], "unknown field '%s'" % unknown[0])
    if not isinstance(body.get("artifact"), str) or not body["artifact"]:
        raise Rejected(400, "artifact", "artifact must name a registered artifact (name or manifest id)")
    target = body.get("target") or {}
    if not isinstance(target, dict) or set(target) - {"model", "versions", "tags", "devices"}:
        raise Rejected(400, "target", "target must be an object with model, versions, tags, devices")
    if target.get("model") is not None and not isinstance(target["model"], str):
        raise Rejected(400, "target.model", "target.model must be a string")
    waves = body.get("waves", DEFAULTS["waves"])
    if (not isinstance(waves, list) or not 1 <= len(waves) <= 20
            or not all(isinstance(w, (int, float)) and not isinstance(w, bool) and 0 < w <= 100 for w in waves)
            or any(a >= b for a, b in zip(waves, waves[1:])) or waves[-1] != 100):
        raise Rejected(400, "waves", "waves must be increasing percentages in (0, 100] ending at 100, e.g. [1, 10, 50, 100]")
    window = body.get("window")
    if window is not None and (not isinstance(window, str) or not WINDOW.fullmatch(window)
                               or window[:5] == window[6:]):
        raise Rejected(400, "window", "window must look like HH:MM-HH:MM with two different times, e.g. 01:00-05:00")
    tz = body.get("tz")
    if tz is not None:
        try:
            zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
            raise Rejected(400, "tz", "tz must be an IANA time zone such as Asia/Kolkata, got %r" % (tz,)) from None
    return {
        "artifact": body["artifact"],
        "target": {"model": target.get("model"),
                   "versions": _strings(target.get("versions"), "target.versions"),
                   "tags": _strings(target.get("tags"), "target.tags", is_tag, "tags"),
                   "devices": _strings(target.get("devices"), "target.devices", is_device_id, "device ids")},
        "waves": waves,
        "success_rate": _number(body, "success_rate", 1, 100),
        "max_failures": _number(body, "max_failures", 1, 10 ** 9, integer=True, nullable=True),
        "max_failure_rate": _number(body, "max_failure_rate", 1, 100, nullable=True),
        "min_sample": _number(body, "min_sample", 1, 10 ** 9, integer=True),
        "max_concurrent": _number(body, "max_concurrent", 1, 10 ** 6, integer=True),
        "window": window, "tz": tz,
        "ack_timeout_s": _number(body, "ack_timeout_s", 1, 86400),
        "soak_s": _number(body, "soak_s", 0, 30 * 86400),
        "stall_timeout_s": _number(body, "stall_timeout_s", 10, 30 * 86400),
    }


def parse_version(text):
    try:
        return tuple(int(part) for part in text.split("."))
    except (AttributeError, ValueError):
        return None


def needs_update(current, target, allowed):
    """Whether a device running `current` is a target for `target` (allowed: explicit from-versions)."""
    if allowed:
        return current in allowed
    if current is None:
        return True    # version unknown: the device itself refuses a downgrade (security counter)
    a, b = parse_version(current), parse_version(target)
    return a < b if a is not None and b is not None else current != target


def in_window(window, tz, now_ms):
    if window is None:
        return True
    zone = zoneinfo.ZoneInfo(tz) if tz else None
    local = datetime.datetime.fromtimestamp(now_ms / 1000, zone or datetime.timezone.utc)
    if zone is None:
        local = local.astimezone()   # the cloud's local time
    minute = local.hour * 60 + local.minute
    start = int(window[0:2]) * 60 + int(window[3:5])
    end = int(window[6:8]) * 60 + int(window[9:11])
    return start <= minute < end if start < end else minute >= start or minute < end


def wave_sizes(percents, n):
    """Cumulative device counts per wave: at least one device in the first wave, all in the last."""
    counts = [min(n, max(1, -(-int(p * n * 1000) // 100000))) for p in percents]
    counts[-1] = n
    return counts


class Campaigns:
    """The campaign engine. publish(topic, payload_bytes) -> bool sends one QoS 1 message
    (False: not sent now, try again next tick); clock() -> Unix seconds (injected in tests)."""

    def __init__(self, store, artifacts, publish, clock=time.time):
        self.store = store
        self.artifacts = artifacts
        self.publish = publish
        self.clock = clock
        self._lock = threading.RLock()

    def _now(self, now_ms):
        return int(self.clock() * 1000) if now_ms is None else now_ms

    # operator actions

    def create(self, body, now_ms=None, tenant=None, allowed=None):
        """Create a campaign from a request body. tenant: the operator's tenant (None: the
        platform's); allowed: the device ids that tenant may target (None: every device)."""
        spec = check_spec(body)
        spec["tenant"] = tenant
        now_ms = self._now(now_ms)
        artifact = self.artifacts.get(spec["artifact"])
        if artifact is None:
            raise Rejected(404, "artifact", "no registered artifact %r (name or manifest id)" % spec["artifact"])
        m = artifact.manifest
        target = spec["target"]
        if target["model"] not in (None, m["model"]):
            raise Rejected(422, "target.model", "artifact %s is built for %s, not %s"
                           % (artifact.name, m["model"], target["model"]))
        target["model"] = m["model"]
        key = otakinds.version_key(m["kind"], m["name"])
        with self._lock:
            for other in self.store.campaigns(("running", "paused")):
                o = other["spec"]
                # Tenants' fleets are disjoint: one tenant's rollout never blocks another's.
                overlaps = None in (tenant, o.get("tenant")) or tenant == o.get("tenant")
                if (o["model"], o["version_key"]) == (m["model"], key) and overlaps:
                    raise Rejected(409, "artifact", "campaign %s is still %s for %s on %s; abort it first"
                                   % (other["id"], other["state"], key, m["model"]))
            profiles = self.store.profiles()
            if allowed is not None:
                profiles = {d: p for d, p in profiles.items() if d in allowed}
            unknown = [d for d in target["devices"] if d not in profiles]
            if unknown:
                raise Rejected(422, "target.devices", "unknown device %s (it has never reported its status)" % unknown[0])
            chosen = []
            for device, p in profiles.items():
                current = p["versions"].get(key) or (p["fw"] if key == otakinds.FIRMWARE else None)
                if (p["model"] == m["model"] and needs_update(current, m["version"], target["versions"])
                        and set(target["tags"]) <= p["tags"]
                        and (not target["devices"] or device in target["devices"])):
                    chosen.append(device)
            if not chosen:
                raise Rejected(422, "target", "no device matches: model %s, %s below %s%s%s" % (
                    m["model"], key, m["version"],
                    ", versions " + ",".join(target["versions"]) if target["versions"] else "",
                    ", tags " + ",".join(target["tags"]) if target["tags"] else ""))
            campaign_id = "c-" + secrets.token_hex(4)
            self._check_deliverable(artifact, campaign_id, chosen, now_ms)
            chosen.sort(key=lambda d: hashlib.sha256(("%s:%s" % (campaign_id, d)).encode()).digest())
            sizes = wave_sizes(spec["waves"], len(chosen))
            rows = [(d, next(w for w, size in enumerate(sizes, 1) if i < size), i) for i, d in enumerate(chosen)]
            spec.update(model=m["model"], version_key=key, version=m["version"])
            self.store.add_campaign({"id": campaign_id, "created_ms": now_ms, "manifest": artifact.id,
                                     "artifact": artifact.name, "spec": json.dumps(spec), "state": "running",
                                     "wave": 1, "updated_ms": now_ms}, rows)
            log.info("campaign %s created: %s %s to %d devices in %d waves", campaign_id, key, m["version"],
                     len(chosen), len(sizes))
            self._tick_one(self.store.campaign(campaign_id), now_ms)
            return self.status(campaign_id)

    def _check_deliverable(self, artifact, campaign_id, devices, now_ms):
        """Rejected unless the chosen devices can take this campaign's job now: signed as their
        trusted keys ask, not expired, and within their MQTT packet limit (artifacts.check_campaign)."""
        try:
            self.artifacts.check_campaign(artifact, campaign_id, devices, now_ms // 1000)
        except ArtifactError as e:
            raise Rejected(e.http_status, e.field, "artifact %s: %s" % (artifact.name, e)) from None

    def _existing(self, campaign_id):
        campaign = self.store.campaign(campaign_id) if isinstance(campaign_id, str) else None
        if campaign is None:
            raise Rejected(404, "campaign", "unknown campaign %s" % campaign_id)
        return campaign

    def pause(self, campaign_id, now_ms=None):
        with self._lock:
            c = self._existing(campaign_id)
            if c["state"] in ("aborted", "completed"):
                raise Rejected(409, "campaign", "campaign %s is %s" % (campaign_id, c["state"]))
            if c["state"] == "running":
                self.store.update_campaign(campaign_id, self._now(now_ms), state="paused", reason="paused by operator")
            return self.status(campaign_id)

    def resume(self, campaign_id, now_ms=None):
        """Resume; failures so far are taken as seen: the thresholds count only new ones, and the
        current wave may advance once all its devices have finished, whatever its success rate."""
        with self._lock:
            c = self._existing(campaign_id)
            if c["state"] in ("aborted", "completed"):
                raise Rejected(409, "campaign", "campaign %s is %s" % (campaign_id, c["state"]))
            if c["state"] == "paused":
                now_ms = self._now(now_ms)
                tally = self._tally(c, self.store.devices_of(campaign_id), now_ms)
                self.store.update_campaign(campaign_id, now_ms, state="running", reason="",
                                           override_wave=c["wave"], base_failures=tally["failures"],
                                           base_finished=tally["finished"])
                self._tick_one(self.store.campaign(campaign_id), now_ms)
            return self.status(campaign_id)

    def abort(self, campaign_id, now_ms=None):
        """Stop the campaign: devices still downloading get a cancel; no more jobs go out."""
        with self._lock:
            c = self._existing(campaign_id)
            if c["state"] in ("aborted", "completed"):
                raise Rejected(409, "campaign", "campaign %s is already %s" % (campaign_id, c["state"]))
            now_ms = self._now(now_ms)
            self.store.update_campaign(campaign_id, now_ms, state="aborted", reason="aborted by operator")
            cancel = json.dumps({"campaign": campaign_id, "cancel": True}).encode()
            for row in self.store.devices_of(campaign_id):
                if row["state"] in ACTIVE:
                    # QoS 1: the broker keeps it for a device that is offline right now.
                    self.publish(wire.topic(row["device"], wire.OTA_JOB), cancel)
                    self.store.update_device(campaign_id, row["device"], state="cancelled",
                                             reason="campaign aborted during download")
                elif row["state"] == "pending":
                    self.store.update_device(campaign_id, row["device"], state="cancelled",
                                             reason="campaign aborted before its job was sent")
            return self.status(campaign_id)

    # device reports

    def on_status(self, device, msg, now_ms=None):
        """Record one sb/<device>/ota/status message (decoded JSON object). ValueError if malformed."""
        state = msg.get("state")
        if state not in DEVICE_REPORTS:
            raise ValueError("unknown OTA state %r" % (state,))
        campaign_id, manifest = msg.get("campaign"), msg.get("manifest")
        now_ms = self._now(now_ms)
        with self._lock:
            kind, name, running = msg.get("kind"), msg.get("name"), msg.get("running")
            if otakinds.get(kind) is not None and isinstance(name, str) and isinstance(running, str) and running:
                self.store.set_profile(device, None, {otakinds.version_key(kind, name): running[:64]}, now_ms)
            rows = self.store.jobs_of_device(device)
            if isinstance(campaign_id, str):
                rows = [r for r in rows if r["campaign"] == campaign_id]
            else:   # no campaign named (e.g. after a rollback reboot): the newest job for this manifest
                rows = [r for r in rows if r["state"] not in FINAL
                        and (self.store.campaign(r["campaign"]) or {}).get("manifest") == manifest]
            if not rows:
                return False
            row = rows[0]
            if row["state"] == "stopped_acking" or (row["state"] in FINAL and state not in FINAL):
                return False   # a late progress report, or the cloud's own verdict: keep what we have
            fields = {"state": state, "reason": str(msg.get("reason") or "")[:200], "status_ms": now_ms}
            for field in ("have", "total"):
                value = msg.get(field)
                if isinstance(value, int) and not isinstance(value, bool):
                    fields[field] = value
            if state == "confirmed" and row["confirmed_ms"] is None:
                fields["confirmed_ms"] = now_ms
            self.store.update_device(row["campaign"], device, **fields)
            return True

    def on_telemetry(self, device, msg, now_ms=None):
        model, versions = msg.get("model"), msg.get("versions")
        model = model[:64] if isinstance(model, str) else None
        if isinstance(versions, dict):
            versions = {k[:64]: v[:64] for k, v in list(versions.items())[:32]
                        if isinstance(k, str) and isinstance(v, str)}
        else:
            versions = None
        if model is not None or versions:
            self.store.set_profile(device, model, versions, self._now(now_ms))

    # the engine

    def tick(self, now_ms=None):
        now_ms = self._now(now_ms)
        with self._lock:
            for campaign in self.store.campaigns(("running", "paused")):
                self._tick_one(campaign, now_ms)

    def _tally(self, campaign, rows, now_ms):
        soak_ms = campaign["spec"]["soak_s"] * 1000
        succeeded = [r for r in rows if r["state"] == "confirmed" and now_ms - r["confirmed_ms"] >= soak_ms]
        failed = [r for r in rows if r["state"] in FAILURES]
        return {"succeeded": len(succeeded), "failures": len(failed), "finished": len(succeeded) + len(failed),
                "active": sum(r["state"] in ACTIVE for r in rows),
                "soaking": sum(r["state"] == "confirmed" for r in rows) - len(succeeded)}

    def _tick_one(self, c, now_ms):
        cid, spec = c["id"], c["spec"]
        for row in self.store.devices_of(cid):
            last = row["status_ms"] or row["job_ms"]
            if row["state"] in ACTIVE and now_ms - last >= spec["stall_timeout_s"] * 1000:
                self.store.update_device(cid, row["device"], state="timed_out",
                                         reason="no OTA status for %d s" % spec["stall_timeout_s"])
        for device, txn in self.store.silent_after_update(cid, now_ms - int(spec["ack_timeout_s"] * 1000)).items():
            self.store.update_device(cid, device, state="stopped_acking",
                                     reason="payment %s not acked within %g s after the update" % (txn, spec["ack_timeout_s"]))
        if c["state"] != "running":
            return
        rows = self.store.devices_of(cid)
        reason = self._pause_reason(c, rows, now_ms)
        if reason:
            log.warning("campaign %s paused: %s", cid, reason)
            self.store.update_campaign(cid, now_ms, state="paused", reason=reason)
            return
        wave = c["wave"]
        while wave < len(spec["waves"]) and self._wave_done(c, wave, rows, now_ms):
            wave += 1
            log.info("campaign %s: wave %d starts", cid, wave)
        if wave != c["wave"]:
            self.store.update_campaign(cid, now_ms, wave=wave)
            c["wave"] = wave
        if wave == len(spec["waves"]) and all(r["state"] in FINAL for r in rows) \
                and self._tally(c, rows, now_ms)["soaking"] == 0:
            self.store.update_campaign(cid, now_ms, state="completed", reason="")
            log.info("campaign %s completed", cid)
            return
        if in_window(spec["window"], spec["tz"], now_ms):
            self._send_jobs(c, rows, now_ms)

    def _pause_reason(self, c, rows, now_ms):
        spec = c["spec"]
        tally = self._tally(c, rows, now_ms)
        failures = tally["failures"] - c["base_failures"]
        finished = tally["finished"] - c["base_finished"]
        if spec["max_failures"] is not None and failures >= spec["max_failures"]:
            return "%d devices failed (limit %d)" % (failures, spec["max_failures"])
        if (spec["max_failure_rate"] is not None and finished >= spec["min_sample"]
                and failures * 100 >= spec["max_failure_rate"] * finished):
            return "%d of %d finished devices failed (%.0f%%, limit %g%%)" % (
                failures, finished, 100.0 * failures / finished, spec["max_failure_rate"])
        wave = [r for r in rows if r["wave"] == c["wave"]]
        failed = sum(r["state"] in FAILURES for r in wave)
        if c["override_wave"] != c["wave"] and wave and (len(wave) - failed) * 100 < spec["success_rate"] * len(wave):
            return "wave %d cannot reach %g%% success: %d of %d devices failed" % (
                c["wave"], spec["success_rate"], failed, len(wave))
        return None

    def _wave_done(self, c, wave, rows, now_ms):
        members = [r for r in rows if r["wave"] == wave]
        if c["override_wave"] == wave and all(r["state"] in FINAL for r in members):
            return True
        succeeded = self._tally(c, members, now_ms)["succeeded"]
        return succeeded * 100 >= c["spec"]["success_rate"] * len(members)

    def _send_jobs(self, c, rows, now_ms):
        free = c["spec"]["max_concurrent"] - sum(r["state"] in ACTIVE for r in rows)
        waiting = [r for r in rows if r["state"] == "pending" and r["wave"] <= c["wave"]]
        if free <= 0 or not waiting:
            return
        artifact = self.artifacts.get(c["manifest"])
        if artifact is None:
            self.store.update_campaign(c["id"], now_ms, state="paused",
                                       reason="artifact %s is no longer registered" % c["artifact"])
            return
        payload = artifact.job(c["id"])
        for row in waiting[:free]:
            if not self.publish(wire.topic(row["device"], wire.OTA_JOB), payload):
                break   # not connected: the next tick tries again
            self.store.update_device(c["id"], row["device"], state="sent", job_ms=now_ms)

    # reports

    def status(self, campaign_id):
        with self._lock:
            c = self._existing(campaign_id)
            rows = self.store.devices_of(campaign_id)
            now_ms = self._now(None)
            spec = c["spec"]
            waves = []
            for number, percent in enumerate(spec["waves"], 1):
                members = [r for r in rows if r["wave"] == number]
                states = {}
                for r in members:
                    states[r["state"]] = states.get(r["state"], 0) + 1
                t = self._tally(c, members, now_ms)
                waves.append({"wave": number, "percent": percent, "devices": len(members), "states": states,
                              "succeeded": t["succeeded"], "failed": t["failures"], "active": t["active"],
                              "pending": states.get("pending", 0)})
            total = self._tally(c, rows, now_ms)
            artifact = self.artifacts.get(c["manifest"])
            return {"id": c["id"], "state": c["state"], "reason": c["reason"], "wave": c["wave"],
                    "artifact": artifact.summary() if artifact else {"name": c["artifact"], "manifest": c["manifest"]},
                    "created_ms": c["created_ms"], "updated_ms": c["updated_ms"], "spec": spec,
                    "totals": {"devices": len(rows), "succeeded": total["succeeded"], "failed": total["failures"],
                               "active": total["active"], "pending": sum(r["state"] == "pending" for r in rows)},
                    "waves": waves,
                    "devices": [{k: r[k] for k in ("device", "wave", "state", "reason", "have", "total", "status_ms")}
                                for r in rows]}

    def list(self):
        with self._lock:
            return [{"id": c["id"], "state": c["state"], "reason": c["reason"], "wave": c["wave"],
                     "artifact": c["artifact"], "manifest": c["manifest"], "created_ms": c["created_ms"]}
                    for c in self.store.campaigns()]
