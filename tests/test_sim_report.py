"""The simulator's measurements and scenario checks, on known input (no network)."""

import math

import pytest

from soundbox_sim import report, scenario
from soundbox_sim.metrics import BOUNDS, Counters, LogHistogram, exact_percentiles


def test_exact_percentiles_nearest_rank():
    values = list(range(1, 1001))  # 1..1000 ms
    p = exact_percentiles(values)
    assert (p["n"], p["p50"], p["p90"], p["p99"], p["p99_9"]) == (1000, 500, 900, 990, 999)
    assert exact_percentiles([])["p50"] is None
    assert exact_percentiles([7])["p99_9"] == 7


def test_histogram_percentiles_are_bucket_upper_bounds():
    h = LogHistogram()
    for v in range(1, 1001):
        h.add(v)
    for p, exact in ((50, 500), (90, 900), (99, 990)):
        got = h.percentile(p)
        assert exact <= got <= exact * 10 ** (1 / 20) + 1e-9, (p, got)  # never optimistic, one bucket high at most
    assert h.percentile(100) == pytest.approx(1000, rel=0.13)
    h.add(40000)
    assert h.percentile(100) == math.inf and h.summary()["n"] == 1001
    assert BOUNDS[0] == 1 and BOUNDS[-1] == 30000


def test_histograms_merge_by_adding_counts():
    a, b = LogHistogram(), LogHistogram()
    for v in (1, 2, 3):
        a.add(v)
    for v in (100, 200):
        b.add(v)
    m = LogHistogram.from_json(a.to_json()).merge(b)
    assert m.n == 5 and m.percentile(100) >= 200 and m.cdf()[-1][1] == 1.0


def test_counters_give_totals_and_rates_per_second():
    c = Counters()
    c.add("connect.attempted", 10)
    assert c.sample(1.0)[0] == {"t": 1.0, "counter": "connect.attempted", "total": 10, "rate": 0.0}
    c.add("connect.attempted", 30)
    assert c.sample(3.0)[0]["rate"] == 15.0


def test_outcomes_count_lost_duplicated_invalid():
    accepted = [("T1", "sb-0001", 100), ("T2", "sb-0001", 200), ("T3", "sb-0002", 300), ("T4", "sb-0002", 400)]
    payments = {t: {"txn": t, "device": d, "sent_ms": 1000} for t, d, _ in accepted}
    acks = [{"txn": "T1", "device": "sb-0001", "status": "announced", "rx": 1010, "received_ms": 1500},
            {"txn": "T2", "device": "sb-0001", "status": "announced", "rx": 1020, "received_ms": 1600},
            {"txn": "T2", "device": "sb-0001", "status": "duplicate", "rx": 1030, "received_ms": 1700},
            {"txn": "T3", "device": "sb-0002", "status": "invalid", "rx": 1040, "received_ms": 1800}]
    plays = {"T1": [("sb-0001", 1100)], "T2": [("sb-0001", 1200), ("sb-0001", 1300)],
             "T4": [("sb-0001", 1400)]}  # T4 played by the wrong device: still lost for sb-0002
    c, lat = report.payment_outcomes(accepted, payments, acks, plays)
    assert (c["played"], c["duplicated"], c["invalid_acks"], c["lost"]) == (2, 1, 1, 1)
    assert c["lost_txns"] == [["T4", "sb-0002"]] and c["duplicated_txns"] == [["T2", "sb-0001"]]
    assert sorted(lat["notify_to_announce"]) == [100, 200]
    assert sorted(lat["notify_to_ack"]) == [500, 600, 800]
    assert report.per_second([1000, 1500, 2100, 4000], 1000) == [2, 1, 0, 1]


def test_outcomes_count_a_payment_settled_by_a_duplicates_was():
    """Its first ack lost, a payment's only ack is the re-send's duplicate; the cloud settled
    the payment by the duplicate's was: played and announced, or stale and never played."""
    accepted = [("W1", "sb-0001", 100), ("W2", "sb-0001", 200), ("W3", "sb-0001", 300)]
    payments = {"W1": {"sent_ms": 1000, "status": "announced"}, "W2": {"sent_ms": 1000, "status": "stale"},
                "W3": {"sent_ms": 1000, "status": "duplicate"}}
    acks = [{"txn": t, "device": "sb-0001", "status": "duplicate", "rx": 1100, "received_ms": 1500}
            for t in ("W1", "W2", "W3")]
    c, _ = report.payment_outcomes(accepted, payments, acks, {"W1": [("sb-0001", 1200)]})
    assert (c["played"], c["unacked"], c["stale"], c["lost"], c["lost_txns"]) == (1, 0, 1, 1, [["W3", "sb-0001"]])


def test_svg_report_renders_with_and_without_data():
    svg = report.svg_lines("t", [("a", [(1, 0.5), (100, 1.0)])], "ms", "f", log_x=True, y_max=1)
    assert svg.startswith("<svg") and "polyline" in svg
    assert "no data" in report.svg_lines("t", [("a", [])], "x", "y")


def write(tmp_path, text):
    path = tmp_path / "s.toml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("text, message", [
    ("[fleet]\ndevices = 10\ncolour = 'red'\n", ":3: fleet.colour is not a known key"),
    ("[fleet]\n\ndevices = 'many'\n", ":3: fleet.devices must be an integer"),
    ("[fleet]\ndevices = 0\n", ":2: fleet.devices must be >= 1"),
    ("[fleet]\ntls = 1\n", ":2: fleet.tls must be true or false"),
    ("[payments]\nrate = -5\n", ":2: payments.rate must be >= 0"),
    ("[fleet]\nlanguages = { xx = 1.0 }\n", ":2: fleet.languages has unknown language 'xx'"),
    ("[fleet]\nlanguages = { en-IN = 0.5 }\n", ":2: fleet.languages shares must add up to 1"),
    ("[[faults]]\nat = 1\nkind = 'meteor'\n", ":3: faults[1].kind must be one of"),
    ("[[faults]]\nat = 1\nkind = 'partition'\n\n[[faults]]\nat = 2\nkind = 'latency'\nduration = 1\n",
     ":1: faults[1] of kind partition needs duration"),
    ("[[faults]]\nat = 1\nkind = 'reboot'\nduration = 3\n\n", ":4: faults[1].duration does not apply to a reboot"),
    ("[[faults]]\nat = 1\nkind = 'latency'\nduration = 5\n", ":1: faults[1] of kind latency needs delay_ms"),
    ("[[faults]]\nat = 1\nkind = 'latency'\nduration = 5\ndelay_ms = 'slow'\n",
     ":5: faults[1].delay_ms must be a number, not 'slow'"),
    ("[[faults]]\nat = 1\nkind = 'loss'\nduration = 5\nloss = 2\n", ":5: faults[1].loss must be <= 0.9, not 2"),
    ("[[faults]]\nat = 1\nkind = 'partition'\nduration = 5\nskew_s = 3\n",
     ":5: faults[1].skew_s does not apply to a partition fault"),
    ("[[faults]]\nat = 1\nkind = 'latency'\nduration = 5\ndelay_ms = 9\nruntime = 'micropython'\n",
     ":6: faults[1].runtime does not apply to a latency fault"),
    ("[[faults]]\nat = 1\nkind = 'broker_restart'\nidle_s = 2\n",
     ":4: faults[1].idle_s does not apply to a broker_restart fault"),
    ("[[faults]]\nat = 1\nkind = 'broker_restart'\ndown_s = -1\n", ":4: faults[1].down_s must be >= 0"),
    ("[[faults]]\nat = 1\nkind = 'clock_skew'\nskew_s = 1\n\n[[faults]]\nat = 2\nkind = 'clock_skew'\nskew_s = 1\n"
     "flavour = 1\n", ":10: faults[2].flavour is not a known key"),
    ("[fleet]\ndevices = 5\n[[faults]]\nat = 1\nkind = 'reboot'\ndevices = 9\n",
     ":6: faults[1].devices is 9 but the fleet has only 5"),
    ("[ota]\nat = 1\nartifact = 'firmware-2.0.0'\nwaves = [0.5, 0.2]\n", ":4: ota.waves must be increasing"),
    ("[ota]\nat = 1\nartifact = 'app-1.1.0'\n", ":3: ota.artifact must be firmware-<version>"),
    ("[ota]\nat = 1\nartifact = 'firmware-2.0.0'\nsize = 10\n", ":4: ota.size must be >= 64"),
    ("[ota]\nat = 1\n", ":1: ota needs artifact"),
    ("[mystery]\nx = 1\n", "mystery is not a known section"),
    ("[fleet\ndevices = 3\n", "not valid TOML"),
    ("[payments.daily_curve]\nhours = [1, 2]\n", ":2: payments.daily_curve.hours must list 24 factors"),
])
def test_bad_scenarios_are_refused_naming_key_and_line(tmp_path, text, message):
    with pytest.raises(scenario.ScenarioError) as e:
        scenario.load(write(tmp_path, text))
    assert message in str(e.value), str(e.value)


def test_every_fault_kind_is_one_entry_acting_somewhere():
    """faults.py: a kind's keys are in the [[faults]] schema, it acts in at least one place,
    and what the runner sends is named after the kind (no second name on the worker side)."""
    from soundbox_sim import faults

    schema = scenario.FAULT
    assert scenario.FAULT["kind"][1]("meteor") == "must be one of " + ", ".join(faults.KINDS)
    for name, kind in faults.KINDS.items():
        assert kind.name == name
        assert set(kind.needs) | set(kind.may) <= set(schema), name
        assert kind.broker or kind.worker or kind.micropython, name
        f = dict({key: default for key, (_, _, default) in schema.items()}, kind=name, at=10.0, duration=4.0,
                 delay_ms=50, loss=0.1, skew_s=-30)
        steps = kind.steps(f, "3 devices")
        assert steps[0][0] == 10.0 and all(isinstance(text, str) and text for _, _, text in steps)
        assert len(steps) == (2 if kind.end else 1) and (len(steps) == 1 or steps[1][0] == 14.0)
    assert set(faults.PROXIED) == {"partition", "latency", "loss"}
    assert set(faults.ON_MICROPYTHON) == {"reboot", "power_cut", "silent"}


@pytest.mark.parametrize("name", ["smoke", "peak-hour", "broker-restart", "flaky-network", "ota-rollout"])
def test_shipped_scenarios_are_valid(name):
    s = scenario.load(name)
    assert s["fleet"]["devices"] >= 1
    if name == "peak-hour":
        assert s["fleet"]["devices"] == 10000 and s["payments"]["rate"] == 500
    if name == "ota-rollout":
        assert s["ota"]["waves"][-1] == 1.0 and s["ota"]["power_cut_share"] > 0


def test_cli_refuses_a_bad_scenario_before_starting_anything(tmp_path, capsys):
    from soundbox_tools.cli import main
    path = write(tmp_path, "[fleet]\ndevices = 10\nspeed = 3\n")
    assert main(["sim", "--scenario", path, "--state", str(tmp_path / "st")]) == 1
    err = capsys.readouterr().err
    assert "s.toml:3: fleet.speed is not a known key" in err and "Traceback" not in err
    assert not (tmp_path / "st").exists()


def minimal_summary(ota=None):
    """The fields html_report reads, for a run with no traffic (and optionally an OTA rollout)."""
    return {"scenario": "t", "devices": 4, "tls": True, "workers": 1, "ramp_s": 1.0, "started": "now",
            "memory": {"kib_per_device": 50.0}, "zero_counts": {"lost": 0, "duplicated": 0, "invalid_acks": 0},
            "payments": {"accepted": 0}, "latency_ms": {}, "latency_exact_ms": {},
            "histograms": {"bounds_ms": [], "counts": {}}, "series": {}, "floor_ping_pong_ms": None,
            "events": [], "environment": {}, "ota": ota}


def test_html_report_plots_ota_progress_from_the_per_second_metrics(tmp_path):
    from soundbox_sim.metrics import JsonLines

    out = JsonLines(str(tmp_path / "metrics.jsonl"))
    c = Counters()
    for t, (updated, downloading, pending) in enumerate([(0, 0, 4), (0, 2, 2), (1, 2, 1), (3, 1, 0), (4, 0, 0)]):
        c.set("devices.connected", 4)
        c.set("ota.updated", updated)
        c.set("ota.downloading", downloading)
        c.set("ota.pending", pending)
        c.set("ota.failed", 0)
        out.write_all(c.sample(float(t)))
    out.close()
    ota = {"artifact": "firmware-2.0.0", "size": 65536, "campaign": "c-1", "state": "completed",
           "totals": {"devices": 4, "succeeded": 4, "failed": 0}, "running": {"2.0.0": 4}}
    report.write_all(minimal_summary(ota), str(tmp_path))
    page = (tmp_path / "report.html").read_text()
    section = page[page.index("<h2>OTA progress</h2>"):]
    section = section[:section.index("</svg>")]
    assert "OTA progress over time" in section and "c-1 completed: 4/4 updated" in section
    assert section.count("<polyline") == 4  # updated, downloading, failed, pending
    for name in ("updated", "downloading", "failed", "pending"):
        assert ">%s</text>" % name in section
    assert report.ota_series(report._read_metrics(str(tmp_path / "metrics.jsonl")))[0] == \
        ("updated", [(0.0, 0), (1.0, 0), (2.0, 1), (3.0, 3), (4.0, 4)])


def test_html_report_says_when_a_run_had_no_ota(tmp_path):
    (tmp_path / "metrics.jsonl").write_text("")
    report.write_all(minimal_summary(), str(tmp_path))
    page = (tmp_path / "report.html").read_text()
    assert "No OTA data in this run" in page and "OTA progress over time" not in page


def test_summary_is_built_from_a_run_record_alone(tmp_path):
    """report.build_summary reads only the RunRecord (record.py): here one made by hand, with
    a journal of two announcements, one payment lost and no cloud database."""
    import json as _json
    import time as _time

    from soundbox_sim.record import Phase, RunRecord

    journal = tmp_path / "w0.jsonl"
    journal.write_text(_json.dumps({"txn": "T1", "device": "sb-0001", "start": 1000}) + "\n"
                       + _json.dumps({"txn": "T1", "device": "sb-0001", "start": 1100}) + "\n")
    g = {"started": 2, "connected": 2, "refused": 0, "announced": 2, "rss_kib": 3000, "cpu_s": 2.0,
         "base_rss_kib": 1000, "base_cpu_s": 0.5}
    rec = RunRecord(scenario="hand", scenario_file="hand.toml", devices=2, workers=1, tls=False, connect_rate=10.0,
                    runtimes={}, journals=[str(journal)], scheduled=3,
                    accepted=[("T1", "sb-0001", 100), ("T2", "sb-0002", 200)], rejected=[("T3", "sb-0001", 5)],
                    end_gauges=g, end_totals={"connect.succeeded": 2}, ramp_gauges=dict(g, cpu_s=1.0), ramp_s=1.5,
                    runtime_gauges={"cpython": {"devices": 2, "connected": 2, "connects": 2, "rss_kib_per_device": 1000.0}})
    now = _time.monotonic()
    for i, phase in enumerate(Phase.ORDER):
        rec.enter(phase, now + i)
    summary, rows = report.build_summary(rec, None, {})
    assert summary["payments"]["scheduled"] == 3 and summary["payments"]["rejected"] == 1
    assert summary["zero_counts"] == {"lost": 1, "duplicated": 1, "invalid_acks": 0} and not summary["healthy"]
    assert summary["memory"]["kib_per_device"] == 1000.0 and summary["ramp_s"] == 1.5
    assert summary["phases_s"]["connecting"] == 0 and summary["phases_s"]["running"] == 2
    assert summary["runtimes"]["cpython"]["lost"] == 1
    assert [(r["txn"], r["played"]) for r in rows] == [("T1", 2), ("T2", 0)]
    assert rec.phase == Phase.STOPPED
