"""Scenario runs of the fleet simulator with real parts: `soundbox_sim.runner.Runner`
starts a private mosquitto (mutual TLS), the cloud handler as its own process and the
real firmware in a worker process, sends payments through the cloud's HTTP API, applies
the scenario's faults and reads the cloud's records and the devices' journals.

Small fleets and announcements sped up (speedup) so the set stays fast; the counts
asserted are the report's own (summary.json), checked against the journals here too.
"""

import json
import os

import pytest

from soundbox.ledger import Ledger
from soundbox.storage import FileStorage
from soundbox_cloud.auth import PREFIX
from soundbox_sim import runner, scenario

FAST = {"speedup": 20, "keepalive": 3, "languages": {"en-IN": 1.0}}


@pytest.fixture(scope="module")
def sim_certs(tmp_path_factory):
    return str(tmp_path_factory.mktemp("sim-certs"))


def run(tmp_path, certs, voice_dir, data, **options):
    data.setdefault("fleet", {})
    for k, v in FAST.items():
        data["fleet"].setdefault(k, v)
    s = scenario.parse(data, "test")
    opts = runner.Options(certs=certs, state=str(tmp_path / "state"), voice=voice_dir, live=False, floor=False,
                          quiet=True, workers=1, **options)
    summary = runner.Runner(s, opts).run()
    with open(tmp_path / "state" / "report" / "summary.json") as f:
        assert json.load(f)["payments"] == summary["payments"]
    return summary


@pytest.fixture(scope="module")
def voice_dir(voice_pack):
    return voice_pack


def test_smoke_scenario_counts(tmp_path, sim_certs, voice_dir):
    shipped = scenario.load("smoke")
    assert shipped["fleet"]["devices"] == 20 and shipped["payments"]["bursts"]
    summary = run(tmp_path, sim_certs, voice_dir, {
        "fleet": {"devices": 4}, "run": {"duration": 2, "settle": 20},
        "payments": {"rate": 4, "duration": 2, "target": "round_robin", "bursts": [{"at": 1, "count": 6, "over": 0.3}]}},
        flash_dir=str(tmp_path / "flash"), keep_flash=True)
    p = summary["payments"]
    assert summary["connected_at_end"] == 4 and summary["ramp_s"] is not None
    assert p["accepted"] == p["scheduled"] >= 6
    assert p["played"] == p["accepted"], p
    assert summary["zero_counts"] == {"lost": 0, "duplicated": 0, "invalid_acks": 0}
    assert summary["healthy"]
    # every accepted payment is in some journal exactly once, with its own device
    plays = {}
    for name in os.listdir(tmp_path / "state" / "journals"):
        for line in open(tmp_path / "state" / "journals" / name):
            r = json.loads(line)
            plays[r["txn"]] = plays.get(r["txn"], 0) + 1
    assert sum(plays.values()) == p["accepted"] and set(plays.values()) == {1}
    # Device flash was where it was asked (kept here): each box's dedup ledger holds what it played.
    [flash] = os.listdir(tmp_path / "flash")
    assert summary["device_flash"] == {"dir": str(tmp_path / "flash" / flash), "kept": True}
    heard = {}
    for name in os.listdir(tmp_path / "state" / "journals"):
        for line in open(tmp_path / "state" / "journals" / name):
            r = json.loads(line)
            heard.setdefault(r["device"], set()).add(r["txn"])
    assert set(heard) == {"sb-0001", "sb-0002", "sb-0003", "sb-0004"}
    for device, txns in heard.items():
        assert set(Ledger(FileStorage(str(tmp_path / "flash" / flash / device))).order) == txns
    assert not (tmp_path / "state" / "devices").exists()
    assert "sb-0001" in (tmp_path / "state" / "devices.log").read_text()   # the devices' log stays with the run
    # The run made its own API keys: its fleet was registered to the run's tenant (a psp key
    # of that tenant paid every payment above), and no key was written to a log or report.
    assert summary["register_s"] is not None
    for folder, _, files in os.walk(tmp_path / "state"):
        for name in files:
            with open(os.path.join(folder, name), "rb") as f:
                assert PREFIX.encode() not in f.read(), os.path.join(folder, name)
    c = summary["connects"]
    assert c["attempted"] == c["succeeded"] == 4 and c.get("failed", 0) == 0
    lat = summary["latency_ms"]
    for name in ("tcp_connect", "tls_handshake", "connect_to_connack"):
        assert lat[name]["n"] == 4
    assert summary["latency_exact_ms"]["notify_to_ack"]["n"] == p["accepted"]
    env = summary["environment"]
    assert env["broker"].startswith("mosquitto") and "OpenSSL" in env["openssl"] and env["broker_config"]
    metrics = [json.loads(line) for line in open(tmp_path / "state" / "report" / "metrics.jsonl")]
    assert {"t", "counter", "total", "rate"} <= set(metrics[0])
    assert max(r["total"] for r in metrics if r["counter"] == "devices.connected") == 4
    assert "<svg" in (tmp_path / "state" / "report" / "report.html").read_text()


def test_ota_rollout_updates_every_device_while_payments_are_announced(tmp_path, sim_certs, voice_dir):
    """The [ota] section for real: a signed simulator image built, uploaded to the run's
    cloud and rolled out in two waves, with a power cut in the middle of a download."""
    shipped = scenario.load("ota-rollout")
    assert shipped["ota"]["artifact"] == "firmware-2.0.0" and shipped["ota"]["power_cut_share"] > 0
    n = 6
    summary = run(tmp_path, sim_certs, voice_dir, {
        "fleet": {"devices": n}, "run": {"duration": 4, "settle": 60},
        "payments": {"rate": 2, "duration": 10, "target": "round_robin"},
        "ota": {"at": 1, "artifact": "firmware-2.0.0", "size": 256 * 1024, "waves": [0.5, 1.0],
                "power_cut_share": 0.2, "timeout": 120,
                # about 2 s per download: the power cut finds one in its first half on a busy machine
                "chunk_rate": 128 * 1024, "chunk_burst": 64 * 1024}}, flash_dir=str(tmp_path / "flash"))
    # The devices' flash lived under --flash-dir (the slots read below were there) and is gone now.
    flash = summary["device_flash"]
    assert os.path.dirname(flash["dir"]) == str(tmp_path / "flash") and not flash["kept"]
    assert os.listdir(tmp_path / "flash") == [] and not (tmp_path / "state" / "devices").exists()
    ota = summary["ota"]
    assert ota["state"] == "completed", ota
    assert ota["totals"]["succeeded"] == n and ota["totals"]["failed"] == 0, ota
    assert ota["running"] == {"2.0.0": n}, ota  # each device's own slots, read after the run
    assert ota["power_cut"] >= 1, ota  # cut mid-download, resumed after the reboot
    p = summary["payments"]
    assert p["accepted"] == p["scheduled"] >= 10 and p["played"] == p["accepted"], p
    assert summary["zero_counts"] == {"lost": 0, "duplicated": 0, "invalid_acks": 0}
    # progress over time went into the per-second metrics and the report's plot
    report_dir = tmp_path / "state" / "report"
    updated = [json.loads(line) for line in open(report_dir / "metrics.jsonl")]
    updated = [r["total"] for r in updated if r["counter"] == "ota.updated"]
    assert updated and updated[0] < n and updated[-1] == n and updated == sorted(updated)
    assert "OTA progress over time" in (report_dir / "report.html").read_text()


def test_device_flash_defaults_to_tmpfs_when_it_has_room(tmp_path):
    """The choice only (no run): tmpfs when it is there with room, else the state directory."""
    shm = tmp_path / "shm"
    shm.mkdir()
    assert runner.fast_dir(1, "state", where=str(shm)) == str(shm)
    assert runner.fast_dir(runner.free_bytes(str(shm)) + 1, "state", where=str(shm)) == "state"
    assert runner.fast_dir(1, "state", where=str(tmp_path / "none")) == "state"
    s = scenario.parse({"fleet": {"devices": 10}, "ota": {"at": 1, "artifact": "firmware-2.0.0", "size": 65536}},
                       "t")
    assert runner.flash_need(s) == 10 * (runner.FLASH_PER_DEVICE + 65536 + 1024)


def test_flash_options_are_refused_for_an_attached_fleet(tmp_path, capsys):
    from soundbox_tools import cli
    assert cli.main(["sim", "--broker", "mqtt://127.0.0.1:1", "--flash-dir", str(tmp_path)]) == 1
    assert "--flash-dir and --keep-flash are for scenario runs" in capsys.readouterr().err


def test_a_bad_broker_url_is_a_one_line_run_error(tmp_path):
    """--broker for a scenario run: mqttlink.parse_broker_url's rule (the port defaults by
    scheme), its refusal a RunError with the same message; nothing starts."""
    s = scenario.load("smoke")

    def opts(url):
        return runner.Options(state=str(tmp_path / "state"), quiet=True, broker_url=url)
    with pytest.raises(runner.RunError, match=r"broker URL must look like mqtt\(s\)://HOST:PORT, got 'http://x:1'"):
        runner.Runner(s, opts("http://x:1")).start_services()
    r = runner.Runner(s, opts("mqtts://127.0.0.1"))
    r.start_services()
    assert (r.host, r.port, r.tls, r.record.tls) == ("127.0.0.1", 8883, True, True) and r.broker is None
