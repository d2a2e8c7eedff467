"""The device side of OTA: signed manifests, chunked resumable download, install,
self-test, confirm, rollback and the attacks of issue #5, on the real updater and
the real file-backed slots (tests/otarig.py serves chunks in process; the broker
path is in test_ota_end_to_end.py)."""

import asyncio
import json
import os
import struct
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from soundbox import otatransfer
from soundbox_tools import ota
from otarig import Flash, boot_and_run

V1 = {"app": "1.0.0", "firmware": "1.0.0"}
NOW_MS = int(time.time() * 1000)


@pytest.fixture(scope="module")
def keys():
    return [ec.generate_private_key(ec.SECP256R1()) for _ in range(2)]


def trusted(keys):
    return [ota.public_bytes(k) for k in keys]


def app_release(tmp_path, version, counter, signers, files=None, **kw):
    src = tmp_path / ("src-" + version)
    files = files or {"main.py": b"print('v%s')\n" % version.encode(),
                      "lib/soundbox_fw/app.mpy": os.urandom(9000),
                      "lib/soundbox/voice.mpy": os.urandom(5000)}
    for name, body in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(body)
    data, listing = ota.app_bundle(src)
    manifest = ota.manifest_for(data, kind="app", name="app", version=version, counter=counter,
                                model=kw.pop("model", "soundbox-sim"), files=listing, **kw)
    return data, {"campaign": "c-" + version, "envelope": ota.sign(manifest, signers)}, files


def run(coro):
    return asyncio.run(coro)


def update(root, keys, data, job, versions=V1, **kw):
    """Deliver `job`, then reboot as asked until a final status; the last life's app."""
    flash = Flash()
    app, outcome = run(boot_and_run(str(root), trusted(keys), flash, versions, NOW_MS, data, job, **kw))
    lives = [app]
    while outcome == "reboot":
        app, outcome = run(boot_and_run(str(root), trusted(keys), flash, versions, NOW_MS, data, **kw))
        lives.append(app)
    return lives, outcome


def final_status(lives):
    return [s for app in lives for s in app.statuses() if s["state"] in ("confirmed", "refused", "failed",
                                                                          "rolled_back")][-1]


def test_app_bundle_downloads_installs_on_trial_and_confirms(tmp_path, keys):
    data, job, files = app_release(tmp_path, "1.1.0", 1, keys[:1])
    lives, outcome = update(tmp_path / "dev", keys, data, job)
    assert outcome == "final" and len(lives) == 2  # one reboot into the new bundle
    first = lives[0].statuses()
    assert [s["state"] for s in first][0] == "downloading" and first[-1]["state"] == "rebooting"
    done = final_status(lives)
    assert done["state"] == "confirmed" and done["version"] == "1.1.0" and done["running"] == "1.1.0"
    active = lives[-1].hal.ota.active_app_dir()
    for name, body in files.items():
        assert open(os.path.join(active, name), "rb").read() == body
    assert lives[-1].updater.state["counters"] == {"app": 1}
    asked = [json.loads(p) for t, p in lives[0].mqtt.published if t.endswith("/ota/req")]
    assert asked and all(sum(last - first + 1 for first, last in r["chunks"]) <= otatransfer.WINDOW for r in asked)


def test_firmware_image_and_voice_pack_kinds(tmp_path, keys):
    image = ota.sim_image("2.0.0", 300000)
    manifest = ota.manifest_for(image, kind="firmware", name="firmware", version="2.0.0", counter=5,
                                model="soundbox-sim")
    lives, _ = update(tmp_path / "dev", keys, image, {"campaign": "fw", "envelope": ota.sign(manifest, keys[:1])})
    assert final_status(lives)["state"] == "confirmed"
    assert lives[-1].hal.ota.running("firmware", "firmware") == "2.0.0"

    pack = os.urandom(50000)
    manifest = ota.manifest_for(pack, kind="voice", name="hi", version="3", counter=1, model="soundbox-sim")
    lives, outcome = update(tmp_path / "dev", keys, pack, {"campaign": "v", "envelope": ota.sign(manifest, keys[:1])})
    assert len(lives) == 1 and final_status(lives)["state"] == "confirmed"  # no reboot for a pack
    assert open(tmp_path / "dev" / "voice" / "hi.pack", "rb").read() == pack
    assert lives[-1].updater.state["counters"] == {"firmware": 5, "voice/hi": 1}


def refused_reason(tmp_path, keys, job, data=b"", versions=V1):
    lives, outcome = update(tmp_path / "dev", keys, data, job, versions)
    status = final_status(lives)
    assert status["state"] == "refused", status
    assert not [t for t, _ in lives[0].mqtt.published if t.endswith("/ota/req")]  # not one chunk asked for
    return status["reason"]


def test_attacks_on_the_manifest_are_refused_with_the_reason(tmp_path, keys):
    data, job, _ = app_release(tmp_path, "1.1.0", 3, keys[:1])

    forged = json.loads(json.dumps(job))
    forged["envelope"]["manifest"] = forged["envelope"]["manifest"].replace('"counter":3', '"counter":9')
    assert refused_reason(tmp_path, keys, forged) == "bad signature"

    stranger = ec.generate_private_key(ec.SECP256R1())
    _, untrusted, _ = app_release(tmp_path, "1.1.1", 3, [stranger])
    assert refused_reason(tmp_path, keys, untrusted).startswith("untrusted key")

    _, wrong_model, _ = app_release(tmp_path, "1.1.2", 3, keys[:1], model="soundbox-esp32")
    assert refused_reason(tmp_path, keys, wrong_model) == "wrong model: built for soundbox-esp32, this is soundbox-sim"

    _, expired, _ = app_release(tmp_path, "1.1.3", 3, keys[:1], expires=NOW_MS // 1000 - 60)  # by the device clock
    assert refused_reason(tmp_path, keys, expired).startswith("expired manifest")

    with pytest.raises(ota.OtaError):  # the tool will not even sign counter 0 (every device is at 0 or above)
        app_release(tmp_path, "0.9.0", 0, keys[:1])

    big = ota.sim_image("9", (4 << 20) + 1)
    m = ota.manifest_for(big, kind="firmware", name="firmware", version="9", counter=1, model="soundbox-sim")
    assert refused_reason(tmp_path, keys, {"campaign": "big", "envelope": ota.sign(m, keys[:1])}).startswith("too big")

    assert refused_reason(tmp_path, keys, {"campaign": "x", "envelope": {"manifest": 3}}).startswith("malformed")


def test_downgrade_and_a_replayed_manifest_from_an_older_campaign_are_refused(tmp_path, keys):
    data, job, _ = app_release(tmp_path, "1.2.0", 7, keys[:1])
    lives, _ = update(tmp_path / "dev", keys, data, job)
    assert final_status(lives)["state"] == "confirmed"
    assert "security counter 7 is not above the installed 7" in refused_reason(tmp_path, keys, job, data)
    older_data, older, _ = app_release(tmp_path, "1.1.0", 6, keys[:1])
    assert "security counter 6 is not above the installed 7" in refused_reason(tmp_path, keys, older, older_data)


@pytest.mark.parametrize("attack", ["endless", "mix-and-match", "truncated", "padded"])
def test_bad_chunks_are_never_written_and_are_asked_for_again(tmp_path, keys, attack):
    data, job, files = app_release(tmp_path, "1.1.0", 1, keys[:1])
    other = os.urandom(len(data))
    sent = set()

    def tamper(i, payload):
        if i in sent:
            return payload  # the second time, the real chunk
        sent.add(i)
        body = payload[4:]
        if attack == "endless":
            return struct.pack(">I", 1000 + i) + body
        if attack == "mix-and-match":
            return payload[:4] + other[i * 4096:i * 4096 + len(body)]
        if attack == "truncated":
            return payload[:4 + len(body) // 2]
        return payload + b"\0" * 100  # bytes beyond the chunk's size

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(otatransfer, "REQUEST_TIMEOUT_MS", 50)
        lives, outcome = update(tmp_path / "dev", keys, data, job, tamper=tamper)
    assert final_status(lives)["state"] == "confirmed"
    refusals = [line for line in lives[0].hal.logs if "chunk refused" in line]
    expected = {"endless": "beyond the manifest", "mix-and-match": "does not match the manifest's hash",
                "truncated": "the manifest says", "padded": "the manifest says"}[attack]
    assert refusals and all(expected in line for line in refusals)
    active = lives[-1].hal.ota.active_app_dir()
    for name, body in files.items():
        assert open(os.path.join(active, name), "rb").read() == body


def test_key_rotation_retires_the_old_key(tmp_path, keys):
    data, job, _ = app_release(tmp_path, "2.0.0", 1, keys[:1], trust=[ota.public_bytes(keys[1])])
    lives, _ = update(tmp_path / "dev", keys, data, job)
    assert final_status(lives)["state"] == "confirmed"
    _, by_old_key, _ = app_release(tmp_path, "2.1.0", 2, keys[:1])
    assert refused_reason(tmp_path, keys, by_old_key).startswith("untrusted key")
    new_data, by_new_key, _ = app_release(tmp_path, "2.1.1", 2, keys[1:])
    lives, _ = update(tmp_path / "dev", keys, new_data, by_new_key)
    assert final_status(lives)["state"] == "confirmed"


def test_failed_self_test_rolls_back_and_keeps_the_counter(tmp_path, keys):
    data, job, _ = app_release(tmp_path, "1.1.0", 4, keys[:1])
    lives, _ = update(tmp_path / "dev", keys, data, job, selftest_error="speaker silent")
    status = final_status(lives)
    assert status["state"] == "rolled_back" and "self-test failed: speaker silent" in status["reason"]
    assert lives[-1].hal.ota.running("app", "app") == "1.0.0"
    assert lives[-1].updater.state["counters"] == {}
    lives, _ = update(tmp_path / "dev", keys, data, job)  # the same release may be tried again
    assert final_status(lives)["state"] == "confirmed"


def test_an_image_that_crashes_at_boot_is_rolled_back_by_the_boot_step(tmp_path, keys):
    image = ota.sim_image("2.0.0", 20000, boot="crash")
    m = ota.manifest_for(image, kind="firmware", name="firmware", version="2.0.0", counter=1, model="soundbox-sim")
    lives, _ = update(tmp_path / "dev", keys, image, {"campaign": "c", "envelope": ota.sign(m, keys[:1])})
    status = final_status(lives)
    assert status["state"] == "rolled_back" and "crashed at boot" in status["reason"]
    assert status["running"] == "1.0.0"


def test_a_stalled_download_times_out_and_reports(tmp_path, keys, monkeypatch):
    data, job, _ = app_release(tmp_path, "1.1.0", 1, keys[:1])
    monkeypatch.setattr(otatransfer, "REQUEST_TIMEOUT_MS", 5)
    monkeypatch.setattr(otatransfer, "MAX_BACKOFF_MS", 10)
    lives, _ = update(tmp_path / "dev", keys, data, job, tamper=lambda i, p: None)  # the cloud never answers
    status = final_status(lives)
    assert status["state"] == "failed" and status["reason"].startswith("stalled")
    asked = [t for t, _ in lives[0].mqtt.published if t.endswith("/ota/req")]
    assert len(asked) == otatransfer.MAX_RETRIES + 1  # the first request and its retries, then it gave up


def test_power_cut_mid_download_resumes_where_it_stopped(tmp_path, keys):
    data, job, _ = app_release(tmp_path, "1.1.0", 1, keys[:1], files={"big.bin": os.urandom(40 * 4096)})
    root = str(tmp_path / "dev")
    flash = Flash(cut_at=30)  # about 15 chunks in
    app, outcome = run(boot_and_run(root, trusted(keys), flash, V1, NOW_MS, data, job))
    assert outcome == "cut"
    app, outcome = run(boot_and_run(root, trusted(keys), flash, V1, NOW_MS, data))
    asked = [json.loads(p)["chunks"] for t, p in app.mqtt.published if t.endswith("/ota/req")]
    first = asked[0] if asked else None
    assert first and first[0][0] >= 10, first  # not from zero
    while outcome == "reboot":
        app, outcome = run(boot_and_run(root, trusted(keys), flash, V1, NOW_MS, data))
    assert [s for s in app.statuses() if s["state"] == "confirmed"]


def test_power_cut_at_every_flash_write_still_ends_on_a_valid_version(tmp_path, keys):
    """The MCUboot simulator's method: count the flash writes of a whole update, then cut
    the power at each one in turn; every boot must run v1 or v2 intact, and the update
    must complete."""
    files = {"a.py": os.urandom(10000), "b/c.mpy": os.urandom(7000)}
    data, job, _ = app_release(tmp_path, "2.0.0", 1, keys[:1], files=files)
    flash = Flash()  # an uncut run first, to count the writes
    root = str(tmp_path / "count2")
    app, outcome = run(boot_and_run(root, trusted(keys), flash, V1, NOW_MS, data, job))
    while outcome == "reboot":
        app, outcome = run(boot_and_run(root, trusted(keys), flash, V1, NOW_MS, data))
    writes = flash.writes
    assert writes > 10
    for cut in range(1, writes + 1):
        root = str(tmp_path / ("cut%d" % cut))
        flash = Flash(cut_at=cut)
        app, outcome = run(boot_and_run(root, trusted(keys), flash, V1, NOW_MS, data, job))
        lives = 0
        while True:
            lives += 1
            assert lives < 8, "cut at write %d: no end" % cut
            app, outcome = run(boot_and_run(root, trusted(keys), flash, V1, NOW_MS, data))
            if app is None:
                continue  # cut during the boot step itself
            slots = app.hal.ota
            running = slots.running("app", "app")
            assert running in ("1.0.0", "2.0.0"), (cut, running)
            if running == "2.0.0":
                for name, body in files.items():
                    assert open(os.path.join(slots.active_app_dir(), name), "rb").read() == body, (cut, name)
            if outcome in ("final", "idle"):
                break
        if running != "2.0.0":
            # The cut landed before the job was saved: the cloud sends the job again.
            app, outcome = run(boot_and_run(root, trusted(keys), flash, V1, NOW_MS, data, job))
            while outcome == "reboot":
                app, outcome = run(boot_and_run(root, trusted(keys), flash, V1, NOW_MS, data))
        assert flash.cut_at is None, "the power was never cut at write %d" % cut
        assert app.hal.ota.running("app", "app") == "2.0.0", "cut at write %d" % cut
        assert app.updater.state["counters"] == {"app": 1}, "cut at write %d" % cut
