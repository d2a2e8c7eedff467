"""The device side of OTA: signed manifests, chunked resumable download, install,
self-test, confirm, rollback and the attacks of issue #5, on the real updater and
the real file-backed slots (tests/otarig.py serves chunks in process; the broker
path is in test_ota_end_to_end.py)."""

import asyncio
import hashlib
import json
import os
import struct
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from soundbox import otamanifest, otatransfer
from soundbox_tools import ota
from otarig import Flash, boot_and_run, job_message

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


def test_a_chunk_table_that_is_not_the_manifests_is_refused(tmp_path, keys):
    """The table travels outside the signed manifest, which names it by its SHA-256: a table
    swapped for another artifact's (mix-and-match), cut short, or left out is refused before
    one chunk is asked for."""
    data, job, _ = app_release(tmp_path, "1.1.0", 3, keys[:1])
    other = os.urandom(len(data))  # same size, so the same number of chunks
    swapped = ota.job_message(job["campaign"], job["envelope"], ota.chunk_table(other))
    assert refused_reason(tmp_path, keys, swapped, data) == \
        "chunk table does not match the manifest: its sha256 differs"
    whole = job_message(job, data)
    chunks = otamanifest.chunk_count(json.loads(job["envelope"]["manifest"]))
    assert refused_reason(tmp_path, keys, whole[:-32], data) == \
        "chunk table does not match the manifest: %d bytes for %d chunks" % (32 * (chunks - 1), chunks)
    head = whole[:whole.index(b"\n")]
    assert refused_reason(tmp_path, keys, head, data) == "job has no chunk table"


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


def test_one_key_alone_cannot_change_the_key_set(tmp_path, keys):
    """The trust rule (otamanifest): a key-set change needs more than half of the trusted keys,
    2 of 2 here. One stolen key can sign updates, but not hand the fleet to its own key set."""
    thief = ec.generate_private_key(ec.SECP256R1())
    data, job, _ = app_release(tmp_path, "2.0.0", 1, keys[:1], trust=[ota.public_bytes(thief)])
    assert refused_reason(tmp_path, keys, job, data) == \
        "key change needs signatures by 2 of the 2 trusted keys, 1 verified"
    _, twice, _ = app_release(tmp_path, "2.0.1", 1, [keys[1], keys[1]], trust=[ota.public_bytes(thief)])
    assert refused_reason(tmp_path, keys, twice, data).endswith("1 verified")  # one key counts once
    _, by_thief, _ = app_release(tmp_path, "2.0.2", 1, [thief])
    assert refused_reason(tmp_path, keys, by_thief).startswith("untrusted key")  # both keys still rule


def test_key_rotation_signed_by_both_keys_retires_the_old_one(tmp_path, keys):
    data, job, _ = app_release(tmp_path, "2.0.0", 1, keys, trust=[ota.public_bytes(keys[1])])
    lives, _ = update(tmp_path / "dev", keys, data, job)
    assert final_status(lives)["state"] == "confirmed"
    _, by_old_key, _ = app_release(tmp_path, "2.1.0", 2, keys[:1])
    assert refused_reason(tmp_path, keys, by_old_key).startswith("untrusted key")
    new_data, by_new_key, _ = app_release(tmp_path, "2.1.1", 2, keys[1:])
    lives, _ = update(tmp_path / "dev", keys, new_data, by_new_key)
    assert final_status(lives)["state"] == "confirmed"


def signed_with_keys(tmp_path, keys, key_list, version="2.0.0"):
    """A release whose manifest hands trust to `key_list` (hex strings, taken as they are)."""
    data, _, _ = app_release(tmp_path, version, 1, keys)
    manifest = ota.manifest_for(data, kind="app", name="app", version=version, counter=1, model="soundbox-sim",
                                files=ota.app_bundle(tmp_path / ("src-" + version))[1])
    manifest["keys"] = key_list
    return data, {"campaign": "c-keys", "envelope": ota.sign(manifest, keys)}


@pytest.mark.parametrize("key_list, reason", [
    (["zz" * 65], "malformed manifest: key zzzzzzzzzzzzzzzz... is not hex"),
    (["04ab"], "malformed manifest: a key must be 130 hex digits (a 65-byte public key)"),
    (["04" + "00" * 64], "malformed manifest: key 0400000000000000... is not a P-256 public key"),
    ([], "malformed manifest: keys must be a list of 1 to 8 hex public keys"),
])
def test_bad_key_material_is_refused_with_a_status_and_the_next_job_still_works(tmp_path, keys, key_list,
                                                                                 reason):
    data, job = signed_with_keys(tmp_path, keys, key_list)
    assert refused_reason(tmp_path, keys, job, data) == reason
    good_data, good, _ = app_release(tmp_path, "2.0.1", 1, keys[:1])
    lives, _ = update(tmp_path / "dev", keys, good_data, good)
    assert final_status(lives)["state"] == "confirmed" and final_status(lives)["version"] == "2.0.1"


def test_a_damaged_trusted_key_list_on_flash_refuses_jobs_with_a_status(tmp_path, keys):
    root = tmp_path / "dev"
    root.mkdir()
    (root / "ota.json").write_text(json.dumps({"counters": {}, "keys": ["zz" * 65]}))
    data, job, _ = app_release(tmp_path, "2.0.0", 1, keys[:1])
    assert refused_reason(tmp_path, keys, job, data) == "the trusted key list in ota.json is damaged"


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


def test_a_damaged_chunk_table_on_flash_drops_the_saved_job(tmp_path, keys):
    data, job, _ = app_release(tmp_path, "1.1.0", 1, keys[:1], files={"big.bin": os.urandom(40 * 4096)})
    root = tmp_path / "dev"
    _, outcome = run(boot_and_run(str(root), trusted(keys), Flash(cut_at=30), V1, NOW_MS, data, job))
    assert outcome == "cut" and (root / "ota_table.bin").stat().st_size == 32 * 40
    table = bytearray((root / "ota_table.bin").read_bytes())
    table[5] ^= 1
    (root / "ota_table.bin").write_bytes(bytes(table))
    app, outcome = run(boot_and_run(str(root), trusted(keys), Flash(), V1, NOW_MS, data))
    assert outcome == "idle" and app.updater.job is None
    assert "ota: saved job dropped: chunk table does not match the manifest: its sha256 differs" in app.hal.logs
    assert not [t for t, _ in app.mqtt.published if t.endswith("/ota/req")]


def test_a_rate_limit_notice_is_waited_out_and_not_counted_as_a_retry(tmp_path, keys, monkeypatch):
    """The cloud's chunk server refuses a request with a notice (index 0xFFFFFFFF + JSON): the
    device logs why and asks again after retry_ms. The request timeout is set far beyond the
    rig's 10 s and no fruitless retry is allowed, so only a device that understood the
    notices gets to the end."""
    data, job, files = app_release(tmp_path, "1.1.0", 1, keys[:1])
    mid = otamanifest.manifest_id(job["envelope"]["manifest"].encode())
    monkeypatch.setattr(otatransfer, "REQUEST_TIMEOUT_MS", 600000)
    monkeypatch.setattr(otatransfer, "MAX_RETRIES", 0)
    reason = "rate limit: 16 chunks refused; this device may take 1048576 bytes/s (burst 4194304), retry in 30 ms"
    notice = struct.pack(">I", otatransfer.NOTICE_INDEX) + json.dumps(
        {"manifest": mid, "reason": reason, "retry_ms": 30}).encode()
    stranger = struct.pack(">I", otatransfer.NOTICE_INDEX) + json.dumps(
        {"manifest": "0123456789abcdef", "reason": "not yours", "retry_ms": 1}).encode()
    notices = []
    refusing = [False]

    def tamper(i, payload):
        if i == 0:
            refusing[0] = len(notices) < 3  # the first three requests are refused as a whole
            if refusing[0]:
                notices.append(i)
                return notice
        if i == 1 and len(notices) == 1:
            return stranger  # a notice about another manifest changes nothing
        return None if refusing[0] else payload

    lives, outcome = update(tmp_path / "dev", keys, data, job, tamper=tamper)
    assert final_status(lives)["state"] == "confirmed" and len(notices) == 3
    logs = lives[0].hal.logs
    assert "ota: refusal notice for manifest 0123456789abcdef ignored (downloading %s)" % mid in logs
    assert logs.count("ota: the cloud refused chunks, asking again in 30 ms: " + reason) == 3
    asked = [json.loads(p)["chunks"] for t, p in lives[0].mqtt.published if t.endswith("/ota/req")]
    assert [r[0][0] for r in asked[:4]] == [0, 0, 0, 0]  # the refused window, asked for again
    active = lives[-1].hal.ota.active_app_dir()
    for name, body in files.items():
        assert open(os.path.join(active, name), "rb").read() == body


def test_a_chunk_server_that_only_refuses_is_given_up_on_with_a_status(tmp_path, keys):
    """Endless rate-limit notices and not one chunk: after MAX_REFUSALS requests the device
    stops asking, reports why, and drops the job (the next campaign may try again)."""
    data, job, _ = app_release(tmp_path, "1.1.0", 1, keys[:1])
    mid = otamanifest.manifest_id(job["envelope"]["manifest"].encode())
    notice = struct.pack(">I", otatransfer.NOTICE_INDEX) + json.dumps(
        {"manifest": mid, "reason": "rate limit: slow down", "retry_ms": 1}).encode()
    lives, outcome = update(tmp_path / "dev", keys, data, job, tamper=lambda i, p: notice if i == 0 else None)
    status = final_status(lives)
    assert outcome == "final" and status["state"] == "failed", status
    assert status["reason"].startswith("gave up: the chunk server refused %d requests in a row"
                                       % otatransfer.MAX_REFUSALS)
    assert status["reason"].endswith("(last: rate limit: slow down)")
    asked = [t for t, _ in lives[0].mqtt.published if t.endswith("/ota/req")]
    assert len(asked) == otatransfer.MAX_REFUSALS and lives[0].updater.job is None
    assert lives[0].hal.ota.running("app", "app") == "1.0.0"


def test_transfer_holds_off_for_the_time_a_notice_asks():
    t = otatransfer.Transfer(lambda i: 4096, 40, lambda i: bytes(32))
    assert t.request(1000) == [[0, 15]]
    t.hold_off(1200, 700)
    assert t.next_deadline(1200) == 1900 and t.request(1899) is None
    assert t.request(1900) == [[0, 15]] and t.retries == 0  # asked again, not a fruitless retry
    t.hold_off(2000, 10 ** 9)  # a wait past the longest backoff is cut to it
    assert t.next_deadline(2000) == 2000 + otatransfer.MAX_BACKOFF_MS
    mark = struct.pack(">I", otatransfer.NOTICE_INDEX)
    assert otatransfer.notice(mark + b'{"manifest": "ab", "reason": "slow down", "retry_ms": 5}') == \
        ("ab", "slow down", 5)
    assert otatransfer.notice(struct.pack(">I", 3) + bytes(4096)) is None  # a chunk
    for bad in (b"{", b'{"manifest": "ab"}', b'{"manifest": "ab", "retry_ms": "5"}', b"[]"):
        with pytest.raises(otatransfer.ChunkRefused, match="malformed refusal notice"):
            otatransfer.notice(mark + bad)


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


def test_ota_verify_checks_the_chunk_table_the_manifest_names(tmp_path, keys):
    """`soundbox ota verify`: the device's checks, then the artifact against size, sha256 and chunk table."""
    image = ota.sim_image("2.0.0", 3 * 4096 + 10)
    (tmp_path / "trusted.json").write_text(json.dumps({"keys": [k.hex() for k in trusted(keys)]}))
    manifest = ota.manifest_for(image, kind="firmware", name="firmware", version="2.0.0", counter=1,
                                model="soundbox-sim")
    assert len(ota.chunk_table(image)) == 4 * 32
    assert manifest["chunk_table"] == hashlib.sha256(ota.chunk_table(image)).hexdigest() and "chunks" not in manifest
    good = ota.write_release(tmp_path / "good", image, ota.sign(manifest, keys[:1]))
    assert ota.verify(str(good).replace(".bin", ".manifest.json"), tmp_path / "trusted.json")["version"] == "2.0.0"
    manifest["chunk_table"] = hashlib.sha256(ota.chunk_table(image, 1024)).hexdigest()  # a signer's slip
    bad = ota.write_release(tmp_path / "bad", image, ota.sign(manifest, keys[:1]))
    with pytest.raises(ota.OtaError, match="chunk table does not match the manifest: its sha256 differs"):
        ota.verify(str(bad).replace(".bin", ".manifest.json"), tmp_path / "trusted.json")


def test_ota_sign_refuses_a_chunk_size_whose_job_a_device_cannot_take(tmp_path, capsys):
    """A 512 KiB image at --chunk-size 256 has 2048 chunks: a 64 KiB chunk table, over the
    device's 64 KiB MQTT packet with the job's head. `ota sign` says so and what to use instead,
    exits 1 and writes nothing; `ota verify` calls such a job (signed by other means) not OK."""
    from soundbox_tools import cli

    certs, out = tmp_path / "certs", tmp_path / "out"
    ota.keygen(certs)
    image = tmp_path / "fw.img"
    image.write_bytes(ota.sim_image("2.0.0", 512 * 1024))
    sign = ["ota", "sign", str(image), "--kind", "firmware", "--version", "2.0.0", "--counter", "1",
            "--model", "soundbox-sim", "--certs", str(certs), "--out", str(out)]
    assert cli.main(sign + ["--chunk-size", "256"]) == 1
    err = capsys.readouterr().err
    room = otamanifest.job_room(otamanifest.longest_job_topic())
    assert err.startswith("soundbox ota: the job message would be ") and err.count("\n") == 1
    assert ("over the %d a device takes in one MQTT packet (65536 bytes): 2048 chunks of 256 bytes make a "
            "65536-byte chunk table; use --chunk-size 1024 or more" % room) in err
    assert not out.exists()
    assert cli.main(sign + ["--chunk-size", "1024"]) == 0 and "in 512 chunks" in capsys.readouterr().out
    assert cli.main(["ota", "verify", str(out / "firmware-2.0.0.manifest.json"), "--certs", str(certs)]) == 0
    assert capsys.readouterr().out.startswith("ota: OK: firmware firmware 2.0.0")

    data = image.read_bytes()
    manifest = ota.manifest_for(data, kind="firmware", name="firmware", version="2.0.1", counter=1,
                                model="soundbox-sim", chunk_size=256)
    ota.write_release(out, data, ota.sign(manifest, [ota.load_key(certs / "ota" / "release-1.key")]))
    assert cli.main(["ota", "verify", str(out / "firmware-2.0.1.manifest.json"), "--certs", str(certs)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("soundbox ota: refused: the job message would be ")
