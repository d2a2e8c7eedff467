"""`soundbox demo`: a private mosquitto, the cloud handler and a simulated fleet,
100 payments through the HTTP API, and a table of what the devices did.

The demo makes its own API keys in the cloud's database: an admin key registers the
devices to tenant "demo" (a shop name and UPI address each) and reads; a psp key of that
tenant pays, as a payment provider would. The keys are never printed.

Each part runs as its own process, as it would in the field; Ctrl-C stops them all.
"""

import json
import os
import random
import shutil
import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from soundbox_cloud.client import ApiError, call, pay
from soundbox_sim.cloudkeys import CloudKeyError, create_keys, register_devices
from soundbox_tools import procs
from soundbox_tools.broker import Mosquitto
from soundbox_tools.pki import Pki
from soundbox_tools.voicepack import build_pack

SETTLE_TIMEOUT_S = 120
TENANT = "demo"


def demo_amounts(n, seed=2):
    """Varied paise amounts: tea-stall change to lakh-rupee bills, with and without paise."""
    rng = random.Random(seed)
    fixed = [100, 1, 50, 101, 25000, 25050, 12500050, 1000000000, 999, 1000000]
    out = fixed[:n]
    while len(out) < n:
        rupees = int(10 ** rng.uniform(0, 5.5))
        out.append(rupees * 100 + rng.choice([0, 0, 0, 50, rng.randrange(1, 100)]))
    return out


def merchant(device):
    """The demo's merchant profile for a device: sb-0007 is "Shop 7", shop7@upi."""
    n = int(device.rsplit("-", 1)[1])
    return {"name": "Shop %d" % n, "vpa": "shop%d@upi" % n}


def _progress(console):
    return Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=False)


def _wait(progress, label, total, count, timeout):
    """Show count() climbing to total; False if it did not get there within timeout."""
    task = progress.add_task(label, total=total)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = count()
        progress.update(task, completed=min(done, total))
        if done >= total:
            return True
        time.sleep(0.2)
    return False


def _journal_counts(path):
    counts = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                txn = json.loads(line)["txn"]
                counts[txn] = counts.get(txn, 0) + 1
    return counts


def _table(stats, played, sent, wav_dir):
    lost = sent - stats["announced"]
    dup = max(stats["duplicated"], sum(1 for c in played.values() if c > 1))
    t = Table(title="soundbox demo")
    t.add_column("measure")
    t.add_column("value", justify="right")
    t.add_row("payments sent", str(sent))
    t.add_row("announced (acked by devices)", str(stats["announced"]))
    t.add_row("acked (any status)", str(stats["acked"]))
    t.add_row("played (device journal)", str(sum(played.values())))
    t.add_row("lost", ("[bold red]%d[/]" if lost else "[green]%d[/]") % lost)
    t.add_row("duplicated", ("[bold red]%d[/]" if dup else "[green]%d[/]") % dup)
    t.add_row("refused as invalid / stale", "%d / %d" % (stats["invalid"], stats.get("stale", 0)))
    for name, key in (("notify -> received", "notify_to_receive"),
                      ("notify -> announce", "notify_to_announce"), ("notify -> ack", "notify_to_ack")):
        lat = stats["latency_ms"][key]
        for p in ("p50", "p90", "p99"):
            value = lat.get(p)
            t.add_row("%s %s" % (name, p), "-" if value is None else "%d ms" % value)
    t.caption = ("announce includes waiting behind earlier announcements on the same speaker\n"
                 "WAV files of one device: %s" % wav_dir)
    return t, lost, dup


def run_demo(devices=20, payments=100, rate=10.0, out_dir="out", state_dir=".state/demo", tls=True):
    console = Console()
    shutil.rmtree(state_dir, ignore_errors=True)
    os.makedirs(state_dir)
    # Voice pack and PKI outlive a run: both are slow-ish to make and safe to reuse.
    keep = os.path.dirname(os.path.abspath(state_dir))
    pack_dir = os.path.join(keep, "voice")
    certs = os.path.join(keep, "certs")
    wav_device = "sb-0001"
    wav_dir = os.path.join(out_dir, wav_device)
    shutil.rmtree(wav_dir, ignore_errors=True)
    journal = os.path.join(state_dir, "announcements.jsonl")
    me = [sys.executable, "-m", "soundbox_tools.cli"]
    broker = cloud = sim = None
    try:
        with _progress(console) as progress:
            task = progress.add_task("building en-IN voice pack", total=None)
            build_pack("en-IN", pack_dir,
                       progress=lambda done, total: progress.update(task, completed=done, total=total))
            progress.update(task, completed=1, total=1)

            # Identities even over plain MQTT: each device's payment key comes with its bundle.
            task = progress.add_task("device identities", total=devices)
            pki = Pki(certs)
            pki.init()
            ids = ["sb-%04d" % (i + 1) for i in range(devices)]
            pki.issue_devices([d for d in ids if not os.path.exists(os.path.join(pki.device_dir(d), "device.der"))])
            progress.update(task, completed=devices)
            broker = Mosquitto(os.path.join(state_dir, "broker"), pki=pki if tls else None).start()
            api_port = procs.free_port()
            api = "http://127.0.0.1:%d" % api_port
            cloud = procs.spawn(me + ["cloud", "--broker", broker.url, "--http", "127.0.0.1:%d" % api_port,
                                      "--db", os.path.join(state_dir, "cloud.db"), "--certs", certs],
                                log_path=os.path.join(state_dir, "cloud.log"))
            if not procs.wait_port("127.0.0.1", api_port, 15, cloud):
                raise RuntimeError("cloud handler did not start; see %s/cloud.log" % state_dir)
            keys = create_keys(os.path.join(state_dir, "cloud.db"), TENANT, name="demo")
            get = lambda path: call(api, "GET", path, timeout=5, api_key=keys.admin)
            task = progress.add_task("devices registered", total=devices)
            register_devices(api, keys.admin, TENANT, ids, profile=merchant)
            progress.update(task, completed=devices)
            sim = procs.spawn(me + ["sim", "--devices", str(devices), "--broker", broker.url,
                                    "--state", os.path.join(state_dir, "devices"), "--voice", pack_dir,
                                    "--wav-device", wav_device, "--out", out_dir, "--journal", journal,
                                    "--certs", certs],
                              log_path=os.path.join(state_dir, "sim.log"))
            online = lambda: sum(1 for d in get("/devices") if d["state"] == "online")
            if not _wait(progress, "devices online", devices, online, 60):
                raise RuntimeError("devices did not come online; see %s/sim.log" % state_dir)

            task = progress.add_task("payments sent", total=payments)
            run_id = time.strftime("%H%M%S")
            for i, amount in enumerate(demo_amounts(payments)):
                pay(api, ids[i % devices], amount, "demo-%s-%03d" % (run_id, i + 1), api_key=keys.psp)
                progress.update(task, advance=1)
                time.sleep(1 / rate)
            _wait(progress, "payments acked", payments, lambda: get("/stats")["acked"],
                  SETTLE_TIMEOUT_S)

        table, lost, dup = _table(get("/stats"), _journal_counts(journal), payments, wav_dir)
        console.print(table)
        return 0 if lost == 0 and dup == 0 else 1
    except KeyboardInterrupt:
        console.print("interrupted: stopping everything the demo started")
        return 130
    except (ApiError, CloudKeyError, RuntimeError) as e:  # one line for people, no traceback
        console.print("demo: %s" % e, highlight=False)
        return 1
    finally:
        procs.stop(sim)
        procs.stop(cloud)
        if broker:
            broker.stop()
