"""Each fault type of the simulator's scenarios, at small scale, against real parts (a
private mosquitto with mutual TLS, the cloud handler process, the real firmware in a
worker process, the worker's loopback fault proxy): payments keep being sent through
the fault and every one is announced exactly once.

All device-level and network faults run in one scenario, each on its own devices (the
runner gives faults distinct devices while there are enough), so each test checks its
own fault's devices. Reboots, power cuts and wedges hit devices with nothing on their
speaker (idle_s): what such a restart does to payments sent while the box is down.
A cut mid-announcement is the last test, and is a known firmware loss (see its reason).
"""

import json

import pytest

from soundbox_sim import runner, scenario

KINDS = ("reboot", "power_cut", "silent", "clock_skew", "partition", "latency", "loss")


def _run(tmp_path, certs, voice, data):
    fleet = data.setdefault("fleet", {})
    fleet.update({"speedup": 20, "keepalive": 2, "languages": {"en-IN": 1.0}})
    s = scenario.parse(data, "faults")
    opts = runner.Options(certs=certs, state=str(tmp_path / "state"), voice=voice, live=False, floor=False,
                          quiet=True, workers=1)
    summary = runner.Runner(s, opts).run()
    rows = [json.loads(line) for line in open(tmp_path / "state" / "report" / "payments.jsonl")]
    return summary, rows


@pytest.fixture(scope="module")
def sim_certs(tmp_path_factory):
    return str(tmp_path_factory.mktemp("sim-certs"))


@pytest.fixture(scope="module")
def fault_run(tmp_path_factory, sim_certs, voice_pack):
    at = 2.0
    faults = [{"at": at, "kind": "reboot", "devices": 2, "idle_s": 1.0},
              {"at": at, "kind": "power_cut", "devices": 2, "duration": 1.0, "idle_s": 1.0},
              {"at": at, "kind": "silent", "devices": 2, "duration": 4.0, "idle_s": 1.0},
              {"at": at, "kind": "clock_skew", "devices": 2, "skew_s": 30, "duration": 4.0},
              {"at": at, "kind": "partition", "devices": 2, "duration": 4.0},
              {"at": at, "kind": "latency", "devices": 2, "delay_ms": 300, "duration": 4.0},
              {"at": at, "kind": "loss", "devices": 2, "loss": 0.2, "duration": 4.0}]
    return _run(tmp_path_factory.mktemp("faults"), sim_certs, voice_pack, {
        "fleet": {"devices": 24}, "run": {"duration": 6, "settle": 40},
        "payments": {"rate": 8, "duration": 6, "target": "round_robin"}, "faults": faults})


@pytest.mark.parametrize("kind", KINDS)
def test_fault_loses_and_repeats_nothing(fault_run, kind):
    summary, rows = fault_run
    fault = next(f for f in summary["faults"] if f["kind"] == kind)
    hit = set(fault["devices"])
    assert len(hit) == 2
    mine = [r for r in rows if r["device"] in hit]
    during = fault["at"], fault["at"] + (fault["duration"] or 1)
    assert len(mine) >= 3, "the fault's devices got too few payments to tell anything"
    lost = [r for r in mine if r["played"] == 0 and not set(r["acks"]) & {"stale", "invalid", "failed", "announced"}]
    assert lost == [], "lost under %s: %s" % (kind, lost)
    assert [r for r in mine if r["played"] > 1] == []
    assert all(r["played"] == 1 for r in mine), [r for r in mine if r["played"] != 1]
    assert "invalid" not in {s for r in mine for s in r["acks"]}
    assert during  # the window is in the summary for the report


def test_faults_were_felt(fault_run):
    """The faults really happened: devices reconnected, and a skewed clock shows in rx."""
    summary, _ = fault_run
    c = summary["connects"]
    # reboot, power cut and wedge: 6 devices connect again at least once; a partition's
    # devices also give up their links (keepalive 2 s) and retry
    assert c["attempted"] >= 24 + 6, c
    assert summary["zero_counts"] == {"lost": 0, "duplicated": 0, "invalid_acks": 0}
    assert summary["latency_exact_ms"]["notify_to_receive"]["p99_9"] >= 25000  # the +30 s clock


def test_broker_restart_loses_and_repeats_nothing(tmp_path, sim_certs, voice_pack):
    summary, rows = _run(tmp_path, sim_certs, voice_pack, {
        "fleet": {"devices": 6}, "run": {"duration": 4, "settle": 20},
        "payments": {"rate": 6, "duration": 4}, "faults": [{"at": 2, "kind": "broker_restart", "down_s": 1}]})
    assert any("broker back" in e for _, e in summary["events"])
    # the cloud answers 503 while it has no broker; the sender retries as a PSP would
    assert summary["payments"]["rejected"] == 0, summary["rejected_examples"]
    assert summary["connects"]["attempted"] >= 12  # everyone came back
    assert summary["zero_counts"] == {"lost": 0, "duplicated": 0, "invalid_acks": 0}
    assert rows and all(r["played"] == 1 for r in rows)


def test_power_cut_mid_announcement_loses_nothing(tmp_path, sim_certs, voice_pack):
    # 1 device, a payment every 0.25 s, speech slowed (speedup 2): always something queued.
    data = {"fleet": {"devices": 1}, "run": {"duration": 3, "settle": 8},
            "payments": {"rate": 4, "duration": 3, "target": "round_robin"},
            "faults": [{"at": 2, "kind": "power_cut", "devices": 1, "duration": 0.5}]}
    fleet = data["fleet"]
    s = scenario.parse(dict(data, fleet=dict(fleet, speedup=2, keepalive=2, languages={"en-IN": 1.0})), "cut")
    opts = runner.Options(certs=sim_certs, state=str(tmp_path / "state"), voice=voice_pack, live=False,
                          floor=False, quiet=True, workers=1)
    summary = runner.Runner(s, opts).run()
    assert summary["zero_counts"] == {"lost": 0, "duplicated": 0, "invalid_acks": 0}
