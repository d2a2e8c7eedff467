"""OTA with every real part: mosquitto (mTLS, ACL), the cloud (chunk server and
campaigns) and the simulator running the real firmware, each its own process.
Release keys and artifacts come from `soundbox ota keygen|sign|sim-image`; the API is
called with the stack's admin key (artifacts are the platform's to publish)."""

import json
import subprocess
import time

import pytest

from soundbox_cloud.campaign_store import CampaignStore
from test_end_to_end import SOUNDBOX, Stack, eventually, journal


def cli(*args):
    done = subprocess.run(SOUNDBOX + list(args), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def release_keys(pki):
    cli("ota", "keygen", "--certs", str(pki.root))  # keeps keys that exist: every test trusts the same ones
    return pki.root


def publish_firmware(stack, version, counter, **image):
    ota_dir = stack.tmp / "ota"  # the cloud's default: ota/ next to its database
    image_path = stack.tmp / ("fw-%s.img" % version)
    cli("ota", "sim-image", str(image_path), "--version", version, "--size", "1MiB",
        *sum((["--" + k, v] for k, v in image.items()), []))
    cli("ota", "sign", str(image_path), "--kind", "firmware", "--name", "firmware", "--version", version,
        "--counter", str(counter), "--model", "soundbox-sim", "--certs", str(stack.certs[1]), "--out", str(ota_dir))
    status, body = stack.post("/ota/artifacts", {"name": "firmware-%s" % version})
    assert status == 201, body
    return "firmware-%s" % version


def campaign(stack, artifact, **spec):
    status, body = stack.post("/ota/campaigns", dict({"artifact": artifact}, **spec))
    assert status == 201, body
    return body["id"]


def campaign_status(stack, cid):
    status, body = stack.get("/ota/campaigns/" + cid)
    assert status == 200, body
    return body


class RegistryUnseen(AssertionError):
    """The cloud's device registry, read from its database by another process, lacks the boxes."""


def models_reported(stack, model="soundbox-sim"):
    """Wait until every box's telemetry (model, versions) is in the cloud's registry, read from
    its database: campaigns choose their devices from it, and GET /devices does not show it."""
    store = CampaignStore(stack.db)
    try:
        known = lambda: sum(p["model"] == model and bool(p["versions"]) for p in store.profiles().values())
        if not eventually(lambda: known() == stack.devices, 20):
            raise RegistryUnseen("%d of %d boxes reported their model" % (known(), stack.devices))
    finally:
        store.close()


def test_fifty_devices_update_a_1mib_firmware_while_payments_are_announced(tls_broker, tmp_path, voice_pack,
                                                                          release_keys, pki):
    stack = Stack(tls_broker, tmp_path, voice_pack, devices=50, pki=pki)
    try:
        artifact = publish_firmware(stack, "2.0.0", 1)
        models_reported(stack)
        cid = campaign(stack, artifact, target={"model": "soundbox-sim"}, waves=[10, 100], success_rate=90,
                       max_concurrent=50)
        sent = []
        started = time.monotonic()
        while campaign_status(stack, cid)["state"] == "running" and time.monotonic() - started < 150:
            txn = "OTA-%d" % len(sent)
            device = "sb-%04d" % (len(sent) % 50 + 1)
            if stack.post("/payments", {"device": device, "amount": 100 + len(sent), "txn": txn})[0] == 202:
                sent.append(txn)
            time.sleep(0.5)
        final = campaign_status(stack, cid)
        assert final["state"] == "completed", json.dumps(final)[:2000]
        assert final["totals"]["succeeded"] == 50 and final["totals"]["failed"] == 0, final["totals"]
        assert {d["state"] for d in final["devices"]} == {"confirmed"}
        assert len(sent) >= 10
        for txn in sent:  # every payment made during the rollout was said, once
            stack.acks(txn, 1, timeout=60)
        played = [j["txn"] for j in journal(stack.journal) if j["txn"].startswith("OTA-")]
        assert sorted(played) == sorted(sent)
    finally:
        stack.close()


def test_a_broken_build_rolls_back_and_pauses_the_campaign_before_the_next_wave(tls_broker, tmp_path, voice_pack,
                                                                                release_keys, pki):
    stack = Stack(tls_broker, tmp_path, voice_pack, devices=10, pki=pki)
    try:
        artifact = publish_firmware(stack, "3.0.0-broken", 2, audio="broken")
        models_reported(stack)
        cid = campaign(stack, artifact, target={"model": "soundbox-sim"}, waves=[10, 50, 100], success_rate=100,
                       min_sample=1, max_failures=1)
        paused = eventually(lambda: campaign_status(stack, cid)["state"] == "paused", 90)
        status = campaign_status(stack, cid)
        assert paused, json.dumps(status)[:2000]
        states = [d["state"] for d in status["devices"]]
        assert states.count("rolled_back") == 1, states
        rolled = [d for d in status["devices"] if d["state"] == "rolled_back"][0]
        assert "self-test failed" in rolled["reason"]
        later_waves = [d for d in status["devices"] if d["wave"] > rolled["wave"]]
        assert later_waves and all(d["state"] == "pending" for d in later_waves), later_waves
    finally:
        stack.close()
