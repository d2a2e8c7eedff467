"""A whole app update of the real firmware on the real MicroPython unix port (mpdevice).

Every part is real and its own process: mosquitto (mutual TLS, ACL, from the session PKI),
the cloud (chunk server, campaigns, `--chunk-rate` so the download takes a few seconds)
and one MicroPython device with the release keys. The update is an `app` bundle, a copy
of the factory code (sdk/soundbox, firmware/soundbox_fw) whose only change is VERSION,
signed with `soundbox ota sign --kind app --model soundbox-unix` and uploaded with
`soundbox ota campaign create --upload`. The power is cut (SIGKILL) mid-download; the
restarted box resumes from its progress bitmap on flash, installs, exits with
unixhal.REBOOT_EXIT, is started again by the launcher, runs the new bundle's code (its boot
line and its telemetry say the new VERSION), passes its self-test and confirms; then a
payment is said and acked by the updated box.
"""

import json
import os
import re
import shutil
import time

from soundbox_tools.mpdevice import REBOOT_EXIT, code_dirs
from test_end_to_end import eventually
from test_micropython_e2e import Box, Cloud
from test_ota_end_to_end import cli

NEW_VERSION = "0.1.1-mp"
CHUNK = 4096
CHUNK_RATE = 256 * 1024  # bytes/s per device, after the burst (see the test)
RESUMED = re.compile(r"ota: resuming (\S+) at (\d+)/(\d+) chunks")


def app_bundle(out):
    """The factory code as an update bundle: soundbox/ and soundbox_fw/ side by side (what
    firmware/unix_main.py puts on sys.path), sources only, VERSION changed."""
    for directory in code_dirs():
        for package in ("soundbox", "soundbox_fw"):
            src = os.path.join(directory, package)
            if os.path.isdir(src):
                shutil.copytree(src, os.path.join(out, package),
                                ignore=lambda d, names: [n for n in names if not n.endswith(".py")])
    init = os.path.join(out, "soundbox", "__init__.py")
    with open(init) as f:
        text = f.read()
    changed = re.sub(r'^VERSION = "[^"]*"', 'VERSION = "%s"' % NEW_VERSION, text, count=1, flags=re.M)
    assert changed != text, "no VERSION line in soundbox/__init__.py"
    with open(init, "w") as f:
        f.write(changed)
    return out


def bits(path):
    try:
        with open(path, "rb") as f:
            return sum(bin(b).count("1") for b in f.read())
    except OSError:
        return 0


def test_an_app_update_resumes_after_a_power_cut_reboots_into_the_new_code_and_confirms(
        micropython, tls_broker, pki, voice_pack, tmp_path, monkeypatch):
    started = time.monotonic()
    cli("ota", "keygen", "--certs", str(pki.root))  # keeps the keys that exist
    trusted = os.path.join(str(pki.root), "ota", "trusted.json")
    bundle = app_bundle(str(tmp_path / "bundle"))
    release = tmp_path / "release"
    out = cli("ota", "sign", bundle, "--kind", "app", "--version", NEW_VERSION, "--counter", "1",
              "--model", "soundbox-unix", "--certs", str(pki.root), "--out", str(release))
    artifact = release / ("app-%s.bin" % NEW_VERSION)
    count = -(-artifact.stat().st_size // CHUNK)
    assert "%d chunks" % count in out, out

    # The chunk limit: a burst of half the bundle, then CHUNK_RATE. The box takes the burst in
    # well under a second and is then refused, told to ask again when the next chunk is due;
    # the chunk server sends at most one such notice a second, so the ask after it gets one
    # chunk, no notice for the rest, and the box waits out its request timeout
    # (otatransfer.REQUEST_TIMEOUT_MS, 5 s) with half the bundle on flash: where the power
    # is cut. Its next start, a second or so later, finds the bucket refilled.
    cloud = Cloud(tls_broker, pki.root, tmp_path / "cloud", "cloud", "--chunk-rate", str(CHUNK_RATE),
                  "--chunk-burst", str(max(16 * 1024, count // 2 * CHUNK)))
    soundbox = Box(tmp_path, tls_broker, "sb-0001", pki.device_dir("sb-0001"), voice_pack, ota_keys=trusted)
    box = soundbox.device  # the process: start, kill, log
    flash = box.flash
    try:
        box.start()
        cloud.wait_online("sb-0001")
        monkeypatch.setenv("SOUNDBOX_API_KEY", cloud.key)  # the CLI's key, kept off its command line
        factory = cloud.devices()["sb-0001"]["fw"]  # the app VERSION, from the box's status and telemetry
        assert factory and factory != NEW_VERSION, cloud.devices()

        created = cli("ota", "campaign", "create", "--upload", str(artifact), "--devices", "sb-0001",
                      "--waves", "100", "--cloud", cloud.api)
        cid = re.search(r"campaign (\S+) created", created).group(1)

        # Mid-download: some chunks on flash, most still to come. Then the power goes.
        bitmap = os.path.join(flash, "ota_bitmap.bin")
        assert eventually(lambda: bits(bitmap) >= count // 4, 20), box.log_text()
        time.sleep(0.3)  # past the burst, on the plateau
        box.kill()
        had = bits(bitmap)
        sent_before = cloud.get("/stats")["ota_chunks"]["chunks_sent"]
        assert 0 < had <= sent_before < count, (had, sent_before, count)  # cut mid-download, for real
        since = len(box.log_text())
        box.start()

        # The new start resumes where the bitmap says, not from chunk 0 ...
        resumed = eventually(lambda: RESUMED.search(box.log_text()[since:]), 20)
        assert resumed, box.log_text()[since:]
        assert (resumed.group(1), int(resumed.group(3))) == (cid, count), resumed.group(0)
        assert int(resumed.group(2)) == had, (resumed.group(0), had)

        # ... installs, restarts itself (exit 3, started again), and the new code runs.
        assert eventually(lambda: REBOOT_EXIT in box.exits and box.running(), 40), (box.exits, box.log_text())
        assert eventually(lambda: "boot: soundbox %s on micropython" % NEW_VERSION in box.log_text(), 20), \
            box.log_text()
        assert eventually(lambda: (cloud.get("/ota/campaigns/" + cid)["state"] == "completed"), 40), \
            cloud.get("/ota/campaigns/" + cid)
        campaign = cloud.get("/ota/campaigns/" + cid)
        (device,) = campaign["devices"]
        assert device["state"] == "confirmed" and campaign["totals"]["succeeded"] == 1, campaign
        assert "ota: app %s confirmed" % NEW_VERSION in box.log_text()
        with open(os.path.join(flash, "ota", "app.json")) as f:
            pointer = json.load(f)
        assert pointer["trial"] is False and pointer["active"] in ("app_a", "app_b"), pointer
        assert pointer["versions"][pointer["active"]] == NEW_VERSION, pointer
        assert eventually(lambda: cloud.devices()["sb-0001"]["fw"] == NEW_VERSION, 20), cloud.devices()

        # Only the chunks it lacked were sent again (at most a request's worth in flight when cut).
        sent_after = cloud.get("/stats")["ota_chunks"]["chunks_sent"] - sent_before
        assert sent_after <= count - had + 16 and sent_after < count, (sent_after, count, had)

        # The updated box takes payments: said once, acked announced.
        cloud.pay("sb-0001", 25050, "MPOTA-1")
        (ack,) = cloud.acks("MPOTA-1")
        assert (ack["status"], ack["reason"]) == ("announced", ""), ack
        spoken = soundbox.said("MPOTA-1")
        assert len(spoken) == 1 and spoken[0]["words"] == "received two hundred fifty rupees and fifty paise"
        assert box.exits == [-9, REBOOT_EXIT] and box.boots == 3, (box.exits, box.boots)  # the cut, the update
        assert "Traceback" not in box.log_text(), box.log_text()
        print("mp ota: %d chunks, %d on flash at the cut, %d sent after it; %.1f s" %
              (count, had, sent_after, time.monotonic() - started))
    finally:
        box.stop()
        cloud.close()
