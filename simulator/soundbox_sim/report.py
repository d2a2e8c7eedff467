"""What a run found: the summary JSON, the terminal table, the HTML report, live progress.

Counts come from two independent records: the cloud's (every payment it accepted and
every ack it received, in its SQLite file) and the devices' (every announcement the
speakers played, in the workers' journals). Latencies are on one clock, the host's:
the cloud stamps the notification, the journal stamps the announcement's start.
A fleet with devices on MicroPython (RunRecord.runtimes: device id -> runtime) gets the same
counts and latencies once per runtime as well (summary["runtimes"]).
"""

import html
import json
import math
import os
import sqlite3
import time

from soundbox import wire
from soundbox_sim.metrics import BOUNDS, LogHistogram, cpu_figures, exact_percentiles, window_cpu

FINAL_ACKS = frozenset(wire.FINAL_ACK_STATUSES)  # an ack that settles a payment
ZERO_COUNTS = ("lost", "duplicated", "invalid_acks")
RUNTIMES = ("cpython", "micropython")
RUNTIME_LATENCIES = (("notify_to_receive", "notify->receive"), ("notify_to_announce", "notify->announce"),
                     ("notify_to_ack", "notify->ack"))


# ---- reading the records ------------------------------------------------------------

def read_cloud(db_path):
    """(payments {txn: row}, acks [row]) from the cloud handler's SQLite file."""
    if not db_path or not os.path.exists(db_path):
        return {}, []
    db = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True)
    db.row_factory = sqlite3.Row
    try:
        payments = {r["txn"]: dict(r) for r in db.execute("SELECT * FROM payments")}
        acks = [dict(r) for r in db.execute("SELECT * FROM acks ORDER BY id")]
    finally:
        db.close()
    return payments, acks


def read_journals(paths):
    """{txn: [(device, start ms), ...]} of every announcement played."""
    plays = {}
    for path in paths:
        if not os.path.exists(path):
            continue
        with open(path) as f:
            for line in f:
                try:
                    r = json.loads(line)
                except ValueError:
                    continue  # a worker killed mid-line
                plays.setdefault(r["txn"], []).append((r["device"], r["start"]))
    return plays


def journal_runtimes(paths):
    """{device: {runtime: records}}: which runtime wrote each device's journal lines (the
    unix HAL writes "runtime": "micropython"; the CPython fleet writes no runtime)."""
    out = {}
    for path in paths:
        if not os.path.exists(path):
            continue
        with open(path) as f:
            for line in f:
                try:
                    r = json.loads(line)
                except ValueError:
                    continue
                per = out.setdefault(r["device"], {})
                rt = r.get("runtime", "cpython")
                per[rt] = per.get(rt, 0) + 1
    return out


def payment_rows(accepted, acks, plays):
    """One row per accepted payment: where it went, how often it played, every ack status."""
    statuses = {}
    for a in acks:
        statuses.setdefault((a["txn"], a["device"]), []).append(a["status"])
    return [{"txn": txn, "device": device, "amount": amount,
             "played": sum(1 for d, _ in plays.get(txn, ()) if d == device),
             "acks": statuses.get((txn, device), [])} for txn, device, amount in accepted]


def payment_outcomes(accepted, payments, acks, plays):
    """Counts and latency lists for the payments the cloud accepted.

    accepted: [(txn, device, amount)] from the sender (what the PSP was told went out).
    lost: accepted, never played, and never settled: by a final ack, or by the final status
    a duplicate's "was" gave the payment (its first ack lost; the ack row stays "duplicate");
    duplicated: played more than once; invalid_acks: any ack saying "invalid".
    """
    first_ack, first_rx, statuses = {}, {}, {}
    for a in acks:
        key = (a["txn"], a["device"])
        statuses.setdefault(key, set()).add(a["status"])
        if key not in first_ack:
            first_ack[key] = a["received_ms"]
            first_rx[key] = a["rx"]
    c = {"accepted": len(accepted), "played": 0, "lost": 0, "duplicated": 0, "invalid_acks": 0,
         "stale": 0, "failed_acks": 0, "unacked": 0, "duplicate_acks": 0, "lost_txns": [],
         "duplicated_txns": []}
    lat = {"notify_to_receive": [], "notify_to_announce": [], "notify_to_ack": []}
    for a in acks:
        if a["status"] == "invalid":
            c["invalid_acks"] += 1
        elif a["status"] == "failed":
            c["failed_acks"] += 1
        elif a["status"] == "duplicate":
            c["duplicate_acks"] += 1
    for txn, device, _amount in accepted:
        p = payments.get(txn)
        own = [start for d, start in plays.get(txn, ()) if d == device]
        st = statuses.get((txn, device), set())
        settled = bool(st & FINAL_ACKS) or (p is not None and p.get("status") in FINAL_ACKS)
        if own:
            c["played"] += 1
            if len(own) > 1:
                c["duplicated"] += 1
                c["duplicated_txns"].append([txn, device])
        if "stale" in st or (p is not None and p.get("status") == "stale"):
            c["stale"] += 1
        if not own and not settled:
            c["lost"] += 1
            c["lost_txns"].append([txn, device])
        if own and not settled:
            c["unacked"] += 1
        if p is None:
            continue
        sent = p["sent_ms"]
        if own:
            lat["notify_to_announce"].append(min(own) - sent)
        if (txn, device) in first_ack:
            lat["notify_to_ack"].append(first_ack[(txn, device)] - sent)
            if first_rx[(txn, device)] is not None:
                lat["notify_to_receive"].append(first_rx[(txn, device)] - sent)
    return c, lat


def per_second(times_ms, t0_ms):
    """[count per second] from epoch-ms times, second 0 at t0_ms."""
    counts = {}
    for t in times_ms:
        s = int((t - t0_ms) // 1000)
        if s >= 0:
            counts[s] = counts.get(s, 0) + 1
    return [counts.get(s, 0) for s in range(max(counts) + 1)] if counts else []


# ---- the summary -------------------------------------------------------------------------

def build_summary(rec, floor, environment):
    """(summary, payment rows) of a finished run's RunRecord (record.py)."""
    accepted, rejected = rec.accepted, rec.rejected
    payments, acks = read_cloud(rec.db_path)
    plays = read_journals(rec.journals)
    companion_ids = set(rec.companion_ids)
    if companion_ids:  # the companion fleet's payments are counted apart: ours stay ours
        theirs = [a for a in accepted if a[1] in companion_ids]
        accepted = [a for a in accepted if a[1] not in companion_ids]
    counts, lat = payment_outcomes(accepted, payments, acks, plays)
    counts["scheduled"] = rec.scheduled
    rows = payment_rows(accepted, acks, plays)
    counts["rejected"] = len(rejected)
    hist = {}
    for final in rec.worker_finals.values():
        for name, c in final["histograms"].items():
            hist.setdefault(name, LogHistogram()).merge(LogHistogram.from_json(c))
    for name, values in lat.items():
        h = hist[name] = LogHistogram()
        for v in values:
            h.add(max(v, 0))
    g, totals = rec.end_gauges, rec.end_totals
    ramp = rec.ramp_gauges or g  # none: stopped before the ramp ended
    n = rec.devices
    mp = len(rec.runtimes)
    started_ms = (time.time() - (time.monotonic() - rec.t0)) * 1000
    series = {"payments_sent": per_second([p["sent_ms"] for p in payments.values()], started_ms),
              "announcements": per_second([s for v in plays.values() for _, s in v], started_ms),
              "acks": per_second([a["received_ms"] for a in acks], started_ms)}
    summary = {
        "scenario": rec.scenario, "scenario_file": rec.scenario_file,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started_ms / 1000)),
        "devices": n, "workers": rec.workers, "tls": rec.tls, "connect_rate": rec.connect_rate,
        "ramp_s": None if rec.ramp_s is None else round(rec.ramp_s, 2),
        "connected_at_end": g["connected"], "refused": g["refused"],
        "provision_s": round(rec.provision_s, 2),
        # POST /devices of the whole fleet to the run's tenant, during the ramp (None: not ours / not done)
        "register_s": None if rec.register_s is None else round(rec.register_s, 2),
        "connects": {k.split(".", 1)[1]: v for k, v in totals.items() if k.startswith("connect.")},
        "micropython": mp,
        # the workers' RSS over the devices they hold (the MicroPython ones are not theirs)
        "memory": {"workers_rss_kib": ramp["rss_kib"], "workers_base_kib": ramp["base_rss_kib"],
                   "kib_per_device": round((ramp["rss_kib"] - ramp["base_rss_kib"]) / max(1, n - mp), 1)},
        "cpu": {"workers_cpu_s": round(g["cpu_s"] - g["base_cpu_s"], 2),
                "ramp_cpu_s": round(ramp["cpu_s"] - ramp["base_cpu_s"], 2)},
        "payments": counts,
        "zero_counts": {k: counts[k] for k in ZERO_COUNTS},
        "healthy": all(counts[k] == 0 for k in ZERO_COUNTS) and not rejected,
        "latency_ms": {name: h.summary() for name, h in hist.items()},
        "latency_exact_ms": {name: exact_percentiles(v) for name, v in lat.items()},
        "histograms": {"bounds_ms": [round(b, 3) for b in BOUNDS],
                       "counts": {name: h.to_json() for name, h in hist.items()}},
        "series": series,
        "floor_ping_pong_ms": floor,
        "events": rec.events,
        "faults": rec.faults,
        "phases_s": rec.phases_s(),
        "environment": environment,
        "rejected_examples": rejected[:5],
        "ota": rec.ota,
    }
    summary["runtimes"] = runtime_rows(rec, accepted, payments, acks, plays)
    if companion_ids:
        summary["side_by_side"] = side_by_side(rec, counts, lat, *payment_outcomes(theirs, payments, acks, {}))
    if accepted and summary["cpu"]["workers_cpu_s"]:
        # after the ramp: the payments' share, not the connects' (idle time after the ramp included)
        after = summary["cpu"]["workers_cpu_s"] - summary["cpu"]["ramp_cpu_s"]
        summary["cpu"]["ms_per_payment"] = round(after * 1000 / len(accepted), 3)
    # Over the windows the workers' own ticks bound: idle (when the run had one) and payments.
    summary["cpu"]["windows"] = window_cpu_figures(rec.snapshots, "ours", n - mp, len(accepted))
    summary["cpu"]["marks"] = {name: snap["marks"] for name, snap in rec.snapshots.items() if "marks" in snap}
    return summary, rows


def runtime_rows(rec, accepted, payments, acks, plays):
    """{runtime: row} for each runtime the fleet has: devices, connected at the end, connects,
    payments, announced, lost, duplicated, latencies (exact p50/p99), journal lines by writer."""
    runtimes = rec.runtimes
    of = lambda device: runtimes.get(device, "cpython")
    gauges = rec.runtime_gauges
    said = journal_runtimes(rec.journals) if runtimes else {}
    rows = {}
    for rt in RUNTIMES:
        g = gauges.get(rt)
        if g is None:
            if rt != "cpython" or runtimes:
                continue
            g = {"devices": rec.devices, "connected": rec.end_gauges["connected"],
                 "connects": rec.end_totals.get("connect.succeeded", 0), "rss_kib_per_device": None}
        mine = [a for a in accepted if of(a[1]) == rt]
        c, lat = payment_outcomes(mine, payments, [a for a in acks if of(a["device"]) == rt], plays)
        writers = {}
        for device, per in said.items():
            if of(device) == rt:
                for writer, count in per.items():
                    writers[writer] = writers.get(writer, 0) + count
        row = {"devices": g["devices"], "connected_at_end": g["connected"], "connects": g["connects"],
               "accepted": c["accepted"], "announced": c["played"], "lost": c["lost"], "duplicated": c["duplicated"],
               "invalid_acks": c["invalid_acks"], "stale": c["stale"], "unacked": c["unacked"],
               "journal_by_runtime": writers, "rss_kib_per_device": g.get("rss_kib_per_device"),
               "rss_in_cpython_wrapper": g.get("rss_in_cpython_wrapper", False),
               "latency_ms": {name: exact_percentiles(lat[name], (50, 99)) for name, _ in RUNTIME_LATENCIES}}
        if c["lost_txns"] or c["duplicated_txns"]:
            row["lost_txns"], row["duplicated_txns"] = c["lost_txns"][:20], c["duplicated_txns"][:20]
        rows[rt] = row
    return rows


RUNTIME_COLUMNS = ("devices", "connected_at_end", "connects", "accepted", "announced", "lost", "duplicated")


def runtime_table(summary):
    """A rich table, a column per runtime, or None when the fleet ran on CPython alone."""
    from rich.table import Table

    rows = summary.get("runtimes") or {}
    if not summary.get("micropython"):
        return None
    t = Table(title="per runtime: %d of %d devices on MicroPython" % (summary["micropython"], summary["devices"]))
    t.add_column("measure")
    for rt in rows:
        t.add_column(rt, justify="right")
    for col in RUNTIME_COLUMNS:
        cells = []
        for r in rows.values():
            v = r[col]
            cells.append(("[bold red]%d[/]" if v else "[bold green]%d[/]") % v if col in ("lost", "duplicated")
                         else "%d" % v)
        label = col.replace("_", " ")
        t.add_row("[bold]%s[/]" % label if col in ("lost", "duplicated") else label, *cells)
    for name, label in RUNTIME_LATENCIES:
        cells = []
        for r in rows.values():
            lat = r["latency_ms"][name]
            cells.append("%s / %s ms" % (_fmt(lat["p50"]), _fmt(lat["p99"])) if lat["n"] else "-")
        t.add_row("%s p50 / p99" % label, *cells)
    t.add_row("RSS per device", *("-" if r.get("rss_kib_per_device") is None else "%.1f KiB%s" % (
        r["rss_kib_per_device"], " *" if r.get("rss_in_cpython_wrapper") else "") for r in rows.values()))
    if any(r.get("rss_in_cpython_wrapper") for r in rows.values()):
        t.caption = ("* the whole process: this micropython (the PyPI wheel) runs the unix port inside a "
                     "CPython process, whose interpreter is counted too")
    return t


def runtime_html(summary):
    rows = summary.get("runtimes") or {}
    if not summary.get("micropython") or not rows:
        return ""
    head = "".join("<th>%s</th>" % html.escape(c.replace("_", " ")) for c in RUNTIME_COLUMNS) + "".join(
        "<th>%s p50</th><th>%s p99</th>" % (html.escape(label), html.escape(label)) for _, label in RUNTIME_LATENCIES)
    body = ""
    for rt, r in rows.items():
        cells = "".join("<td class='%s'>%d</td>" % ("bad" if c in ("lost", "duplicated") and r[c] else "", r[c])
                        for c in RUNTIME_COLUMNS)
        cells += "".join("<td>%s</td><td>%s</td>" % (_fmt(r["latency_ms"][n]["p50"]), _fmt(r["latency_ms"][n]["p99"]))
                         for n, _ in RUNTIME_LATENCIES)
        body += "<tr><td>%s</td>%s</tr>" % (html.escape(rt), cells)
    return ("<h2>Per runtime</h2><p>%d of %d devices ran the firmware on MicroPython's unix port, each its own "
            "process; latencies in ms (exact, from the cloud's records and the journals).</p>"
            "<table><tr><th>runtime</th>%s</tr>%s</table>" % (summary["micropython"], summary["devices"], head, body))


SIDE_BY_SIDE = (("rss_kib_per_device", "RSS per device (KiB)"),
                ("idle_cpu_us_per_device_s", "idle CPU per device-second (µs)"),
                ("marginal_cpu_ms_per_payment", "CPU per payment, marginal (ms)"),
                ("cpu_ms_per_payment", "CPU per payment, all-in (ms)"),
                ("notify_to_ack_p99_ms", "notify->ack p99 (ms)"), ("notify_to_ack_p50_ms", "notify->ack p50 (ms)"),
                ("notify_to_receive_p99_ms", "notify->receive p99 (ms)"))
# ours/peer ratios issue #19 aims at (at most)
TARGET_RATIOS = {"idle_cpu_us_per_device_s": 1.5, "marginal_cpu_ms_per_payment": 2.0}


def window_cpu_figures(snaps, side, devices, payments):
    """cpu_figures (metrics.py) of one fleet ("ours" or "peer") from the run's snapshots: the idle
    window is idle_start -> start (none without one), the payment window start -> end."""
    marks = lambda name: (snaps.get(name) or {}).get("marks", {}).get(side)
    if marks("start") is None or marks("end") is None:
        return None
    idle = window_cpu(marks("idle_start"), marks("start")) if marks("idle_start") is not None else {}
    return cpu_figures(idle, window_cpu(marks("start"), marks("end")), devices, payments)


def side_by_side(rec, ours, ours_lat, theirs, their_lat):
    """Our fleet and the companion fleet over the same payment window: RSS per device at its
    end (above each fleet's own base), process CPU per payment, latencies, and our/their ratios."""
    snaps = rec.snapshots
    out = {"peer_fleet": rec.companion_name, "devices": rec.devices, "workers": rec.workers}
    if "start" not in snaps or "end" not in snaps:
        return dict(out, error="the payments never started")
    window = snaps["end"]["t"] - snaps["start"]["t"]
    idle = snaps["start"]["t"] - snaps["idle_start"]["t"] if "idle_start" in snaps else 0
    devices = {"ours": rec.devices - len(rec.runtimes), "peer": len(rec.companion_ids)}
    sides = {}
    for side, counts, lat in (("ours", ours, ours_lat), ("peer", theirs, their_lat)):
        end = snaps["end"][side]  # the companion is the peer
        ack, rx = exact_percentiles(lat["notify_to_ack"]), exact_percentiles(lat["notify_to_receive"])
        cpu = window_cpu_figures(snaps, side, devices[side], counts["accepted"]) or {}
        sides[side] = dict({"payments": counts["accepted"], "acked": len(lat["notify_to_ack"]),
                            "lost": counts["lost"], "devices": devices[side],
                            "rss_kib_per_device": round((end["rss_kib"] - end["base_rss_kib"]) / max(1, devices[side]),
                                                        1),
                            "notify_to_ack_p50_ms": ack["p50"], "notify_to_ack_p99_ms": ack["p99"],
                            "notify_to_receive_p99_ms": rx["p99"]}, **cpu)
    ratios = {}
    for key, _ in SIDE_BY_SIDE:
        a, b = sides["ours"].get(key), sides["peer"].get(key)
        ratios[key] = round(a / b, 2) if a is not None and b else None
    targets = {key: {"max_ratio": most, "met": None if ratios[key] is None else ratios[key] <= most}
               for key, most in TARGET_RATIOS.items()}
    return dict(out, window_s=round(window, 1), idle_s=round(idle, 1), ours=sides["ours"], peer=sides["peer"],
                ratio=ratios, targets=targets)


def side_by_side_table(sbs, floor=None):
    from rich.table import Table

    t = Table(title="ours (real firmware) vs %s: %d devices each, %d workers each, %.0f s idle, %.0f s of payments"
              % (sbs["peer_fleet"], sbs["devices"], sbs["workers"], sbs.get("idle_s", 0), sbs.get("window_s", 0)))
    for col in ("measure", "ours", "peer", "ours/peer", "target"):
        t.add_column(col, justify="left" if col == "measure" else "right")
    targets = sbs.get("targets", {})
    for key, label in SIDE_BY_SIDE:
        goal = targets.get(key)
        mark = "" if goal is None else "<= %g %s" % (goal["max_ratio"], {True: "met", False: "MISSED", None: "-"}[
            goal["met"]])
        t.add_row(label, *(_num(v) for v in (sbs["ours"].get(key), sbs["peer"].get(key), sbs["ratio"][key])), mark)
    t.add_row("payments / acked / lost", *("%d / %d / %d" % (sbs[s]["payments"], sbs[s]["acked"], sbs[s]["lost"])
                                             for s in ("ours", "peer")), "", "")
    if floor:
        t.add_row("machine floor: ping-pong p50 / p99 (ms)", "%.3f / %.3f" % (floor["p50"], floor["p99"]), "", "", "")
    return t


def _num(v):
    if v is None:
        return "-"
    return "%.2f" % v if isinstance(v, float) and abs(v) < 100 else "%d" % round(v)


def write_all(summary, report_dir, rows=()):
    with open(os.path.join(report_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    with open(os.path.join(report_dir, "payments.jsonl"), "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    metrics = _read_metrics(os.path.join(report_dir, "metrics.jsonl"))
    with open(os.path.join(report_dir, "report.html"), "w") as f:
        f.write(html_report(summary, metrics))


def _read_metrics(path):
    """{counter: [(t, total, rate)]} from the per-second JSON Lines."""
    out = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                r = json.loads(line)
                out.setdefault(r["counter"], []).append((r["t"], r["total"], r["rate"]))
    return out


# ---- terminal -----------------------------------------------------------------------------

def summary_table(summary):
    from rich.table import Table

    t = Table(title="soundbox sim: %s" % summary["scenario"])
    t.add_column("measure")
    t.add_column("value", justify="right")
    p = summary["payments"]
    for k in ZERO_COUNTS:
        v = summary["zero_counts"][k]
        t.add_row("[bold]%s[/]" % k.replace("_", " "), ("[bold red]%d[/]" if v else "[bold green]%d[/]") % v)
    t.add_row("devices connected / total", "%d / %d" % (summary["connected_at_end"], summary["devices"]))
    t.add_row("ramp", "-" if summary["ramp_s"] is None else "%.1f s" % summary["ramp_s"])
    c = summary["connects"]
    t.add_row("connects attempted / succeeded / failed / retried",
              "%d / %d / %d / %d" % tuple(c.get(k, 0) for k in ("attempted", "succeeded", "failed", "retried")))
    t.add_row("RSS per device", "%.1f KiB" % summary["memory"]["kib_per_device"])
    t.add_row("payments scheduled / accepted / rejected",
              "%d / %d / %d" % (p["scheduled"], p["accepted"], p["rejected"]))
    t.add_row("played / stale / unacked", "%d / %d / %d" % (p["played"], p["stale"], p["unacked"]))
    floor = summary.get("floor_ping_pong_ms") or {}
    for name, s in summary["latency_ms"].items():
        if s["n"]:
            exact = summary["latency_exact_ms"].get(name)
            src = exact if exact and exact["n"] else s
            t.add_row("%s p50 / p99 / p99.9 (n=%d)" % (name.replace("_", " "), s["n"]),
                      "%s / %s / %s ms" % tuple(_fmt(src.get(k)) for k in ("p50", "p99", "p99_9")))
    if floor:
        t.add_row("machine floor: ping-pong p50 / p99", "%.3f / %.3f ms" % (floor["p50"], floor["p99"]))
    ota = summary.get("ota")
    if ota:
        totals = ota.get("totals") or {}
        t.add_row("OTA %s: campaign %s" % (ota["artifact"], ota.get("campaign") or "not started"),
                  "%s, %d/%d updated, %d failed" % (ota.get("state", "-"), totals.get("succeeded", 0),
                                                    totals.get("devices", 0), totals.get("failed", 0)))
        t.add_row("OTA: versions the devices run", ", ".join("%s: %d" % kv for kv in sorted(ota["running"].items())))
    t.caption = "healthy" if summary["healthy"] else "NOT healthy: see zero counts and events"
    return t


def _fmt(v):
    if v is None:
        return "-"
    return "%d" % v if isinstance(v, (int, float)) and v == v and v != math.inf and v >= 10 else str(v)


class LiveView:
    """A rich live panel of a running RunRecord: connects, devices, payments, announcements, CPU and memory."""

    def __init__(self, rec, console):
        self.rec, self.console = rec, console
        self._live = None

    def _render(self, g):
        from rich.table import Table
        r = self.rec
        latest = r.latest
        t = Table.grid(padding=(0, 2))
        elapsed = time.monotonic() - r.t0
        rate = lambda k: latest.get(k, {}).get("rate", 0)
        total = lambda k: latest.get(k, {}).get("total", 0)
        t.add_row("[bold]%s[/] %5.0f s" % (r.scenario, elapsed),
                  "devices %d/%d connected (%d started)" % (g["connected"], r.devices, g["started"]))
        t.add_row("connects/s", "attempted %.0f  succeeded %.0f  failed %.0f  retried %.0f"
                  % tuple(rate("connect." + k) for k in ("attempted", "succeeded", "failed", "retried")))
        t.add_row("payments", "accepted %d (%.0f/s)  rejected %d  announced %d (%.0f/s)"
                  % (total("payments.accepted"), rate("payments.accepted"), total("payments.rejected"),
                     total("announcements"), rate("announcements")))
        t.add_row("workers", "CPU %.0f%%  RSS %.0f MiB" % (rate("workers.cpu_s") * 100, g["rss_kib"] / 1024))
        if r.events:
            t.add_row("last event", "%.1f s %s" % r.events[-1])
        return t

    def start(self):
        from rich.live import Live
        self._live = Live(console=self.console, refresh_per_second=2, transient=True)
        self._live.start()

    def update(self, g):
        if self._live:
            self._live.update(self._render(g))

    def stop(self):
        if self._live:
            self._live.stop()


def prometheus_text(latest):
    lines = []
    for name, r in sorted(latest.items()):
        metric = "soundbox_sim_" + name.replace(".", "_")
        lines.append("# TYPE %s gauge" % metric)
        lines.append("%s %s" % (metric, r["total"]))
    return "\n".join(lines) + "\n"


# ---- HTML with inline SVG ------------------------------------------------------------------

W, H, PAD = 640, 240, 44
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")


def svg_lines(title, series, x_label, y_label, log_x=False, y_max=None):
    """series: [(name, [(x, y), ...])] -> an SVG line chart (log x optional)."""
    pts = [p for _, s in series for p in s]
    if not pts:
        return "<p><em>%s: no data</em></p>" % html.escape(title)
    fx = (lambda x: math.log10(max(x, 1e-3))) if log_x else (lambda x: x)
    xs = [fx(x) for x, _ in pts]
    x0, x1 = min(xs), max(xs)
    y1 = y_max if y_max is not None else max(y for _, y in pts) or 1
    x1 = x1 if x1 > x0 else x0 + 1
    sx = lambda x: PAD + (fx(x) - x0) / (x1 - x0) * (W - 2 * PAD)
    sy = lambda y: H - PAD + 10 - y / y1 * (H - 2 * PAD)
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">'
           % (W, H), '<text x="%d" y="14" font-weight="bold">%s</text>' % (PAD, html.escape(title)),
           '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#888"/>' % (PAD, H - PAD + 10, W - PAD, H - PAD + 10),
           '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#888"/>' % (PAD, 24, PAD, H - PAD + 10)]
    for k in range(5):  # ticks
        xv = x0 + (x1 - x0) * k / 4
        label = ("%g" % round(10 ** xv, 1)) if log_x else "%g" % round(xv, 1)
        px = PAD + (W - 2 * PAD) * k / 4
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>' % (px, H - PAD + 24, label))
        yv = y1 * k / 4
        out.append('<text x="%d" y="%.1f" text-anchor="end">%s</text>' % (PAD - 4, sy(yv) + 4, "%g" % round(yv, 2)))
    out.append('<text x="%d" y="%d" text-anchor="middle">%s</text>' % (W // 2, H - 4, html.escape(x_label)))
    out.append('<text x="10" y="%d" transform="rotate(-90 10 %d)" text-anchor="middle">%s</text>'
               % (H // 2, H // 2, html.escape(y_label)))
    for i, (name, s) in enumerate(series):
        if not s:
            continue
        color = COLORS[i % len(COLORS)]
        path = " ".join("%.1f,%.1f" % (sx(x), sy(y)) for x, y in s)
        out.append('<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>' % (color, path))
        out.append('<text x="%d" y="%d" fill="%s">%s</text>' % (W - PAD - 150, 30 + 14 * i, color, html.escape(name)))
    out.append("</svg>")
    return "\n".join(out)


OTA_LINES = ("updated", "downloading", "failed", "pending")


def ota_series(metrics):
    """[(name, [(t, devices)])] of the rollout's per-second counters (ota.updated ...), in a fixed order."""
    return [(name, [(t, total) for t, total, _ in metrics["ota." + name]])
            for name in OTA_LINES if metrics.get("ota." + name)]


def ota_section(ota, series):
    if not series:
        return "<h2>OTA progress</h2><p><em>No OTA data in this run.</em></p>"
    y_max = max([y for _, s in series for _, y in s] + [1])
    text = ""
    if ota:
        totals = ota.get("totals") or {}
        text = "<p>%s (%s bytes), campaign %s %s: %d/%d updated, %d failed; devices run: %s</p>" % (
            html.escape(ota["artifact"]), ota["size"], html.escape(str(ota.get("campaign"))),
            html.escape(str(ota.get("state", "-"))), totals.get("succeeded", 0), totals.get("devices", 0),
            totals.get("failed", 0), html.escape(", ".join("%s: %d" % kv for kv in sorted(ota["running"].items()))))
    return "<h2>OTA progress</h2>" + text + svg_lines("OTA progress over time", series, "s since start",
                                                       "devices", y_max=y_max)


def html_report(summary, metrics):
    cdfs = []
    for name, counts in summary["histograms"]["counts"].items():
        h = LogHistogram.from_json(counts)
        if h.n:
            cdfs.append((name.replace("_", " "), h.cdf()))
    connect = [(k.split(".")[1], [(t, rate) for t, _, rate in metrics.get(k, [])])
               for k in ("connect.attempted", "connect.succeeded", "connect.failed", "connect.retried")]
    devices = [("connected", [(t, total) for t, total, _ in metrics.get("devices.connected", [])])]
    flows = [(name.replace("_", " "), list(enumerate(values))) for name, values in summary["series"].items()]
    ota = ota_series(metrics)
    z = summary["zero_counts"]
    zero_html = " ".join('<span class="%s">%s: <b>%d</b></span>' % ("bad" if v else "good", k.replace("_", " "), v)
                         for k, v in z.items())
    rows = "".join("<tr><td>%s</td><td>%s</td></tr>" % (html.escape(str(k)), html.escape(json.dumps(v)))
                   for k, v in summary["payments"].items() if not k.endswith("_txns"))
    lat_rows = "".join("<tr><td>%s</td>%s</tr>" % (html.escape(k), "".join(
        "<td>%s</td>" % _fmt(summary["latency_exact_ms"].get(k, v).get(p) if summary["latency_exact_ms"].get(k, {}).get("n")
                             else v.get(p)) for p in ("n", "p50", "p90", "p99", "p99_9")))
        for k, v in summary["latency_ms"].items())
    floor = summary.get("floor_ping_pong_ms") or {}
    events = "".join("<li>%.1f s: %s</li>" % (t, html.escape(e)) for t, e in summary["events"])
    env = html.escape(json.dumps(summary["environment"], indent=1))
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>soundbox sim: %s</title>" % html.escape(summary["scenario"]),
        "<style>body{font-family:sans-serif;max-width:1000px;margin:auto} .good{color:#080;margin-right:2em;font-size:1.4em}"
        " .bad{color:#c00;margin-right:2em;font-size:1.4em} td{padding:2px 10px} table{border-collapse:collapse}"
        " tr:nth-child(even){background:#f4f4f4}</style></head><body>",
        "<h1>soundbox sim: %s</h1><p>%d devices%s, %s, %d workers, ramp %s s, %.1f KiB RSS per device, started %s</p>"
        % (html.escape(summary["scenario"]), summary["devices"],
           " (%d on MicroPython)" % summary["micropython"] if summary.get("micropython") else "",
           "mTLS" if summary["tls"] else "plain MQTT",
           summary["workers"], summary["ramp_s"], summary["memory"]["kib_per_device"], summary["started"]),
        "<h2>Must be zero</h2><p>%s</p>" % zero_html,
        runtime_html(summary),
        "<h2>Payments</h2><table>%s</table>" % rows,
        "<h2>Latency (ms)</h2><table><tr><th></th><th>n</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th></tr>%s</table>"
        % lat_rows,
        "<p>Machine floor (loopback TCP ping-pong between two processes): p50 %s ms, p99 %s ms</p>"
        % (floor.get("p50", "-"), floor.get("p99", "-")),
        svg_lines("Latency CDFs", cdfs, "ms (log scale)", "fraction", log_x=True, y_max=1.0),
        svg_lines("Connects per second", connect, "s since start", "per second"),
        svg_lines("Devices connected", devices, "s since start", "devices"),
        svg_lines("Payments, announcements and acks per second", flows, "s since start", "per second"),
        ota_section(summary.get("ota"), ota),
        "<h2>Events</h2><ul>%s</ul>" % events,
        "<h2>Environment</h2><pre>%s</pre></body></html>" % env,
    ]
    return "\n".join(parts)
