"""`soundbox` command line: one script, one subcommand per job."""

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from urllib.parse import quote

from soundbox.voice import LANGUAGES, PROVIDERS
from soundbox_cloud.auth import KeyStore, check_key_request, is_tenant
from soundbox_cloud.chunkserver import DEFAULT_BURST, DEFAULT_RATE
from soundbox_cloud.client import ApiError, PayError, call, pay
from soundbox_cloud.cloud import ACK_DEADLINE_S, NOTIFY_EXPIRY_S
from soundbox_cloud.db import is_postgres
from soundbox_cloud.errors import BrokerUnavailable, CloudError
from soundbox_cloud.logsetup import LOG_LEVELS
from soundbox_cloud.mqttlink import parse_broker_url
from soundbox_sim.slots import ota_config
from soundbox_tools import broker, device, mqttversion, otacli, pkicli
from soundbox_tools.broker import BrokerError
from soundbox_tools.cliargs import (DB_HELP, DEFAULT_CLOUD, DEFAULT_PACK, CliError, add_api_key, chunk_burst_arg,
                                    chunk_rate_arg, parse_hostport, positive_seconds)
from soundbox_tools.ota import OtaError
from soundbox_tools.pki import Pki, PkiError, check_identity


# ---- subcommands ------------------------------------------------------------

def cmd_demo(args):
    from soundbox_tools.demo import run_demo  # off CLI startup
    return run_demo(devices=args.devices, payments=args.payments, rate=args.rate,
                    out_dir=args.out, state_dir=args.state, tls=not args.plain)


def cmd_sim(args):
    """Attached to an outside broker (--broker, one worker): just the devices, until Ctrl-C.
    Otherwise a whole scenario run: broker, cloud, fleet in worker processes, payments,
    faults, and a report (soundbox_sim.runner)."""
    if args.freshness is not None and args.freshness <= 0:
        raise CliError("--freshness must be a positive number of seconds, got %s" % args.freshness)
    if args.devices is not None and args.devices < 1:
        raise CliError("--devices must be at least 1, got %d" % args.devices)
    if args.workers is not None and args.workers < 1:
        raise CliError("--workers must be at least 1, got %d" % args.workers)
    if args.connect_rate is not None:
        from soundbox_sim.schema import parse_connect_rate  # off CLI startup
        try:
            args.connect_rate = parse_connect_rate(args.connect_rate)  # a number, or "auto"
        except ValueError as e:
            raise CliError(str(e)) from None
    if args.micropython is not None and args.micropython < 0:
        raise CliError("--micropython must be 0 or more devices, got %d" % args.micropython)
    if args.broker and not args.scenario and (args.workers or 1) == 1:
        if args.micropython:
            raise CliError("--micropython is for scenario runs (add --scenario, or --workers 2 or more)")
        if args.flash_dir or args.keep_flash:
            raise CliError("--flash-dir and --keep-flash are for scenario runs; devices attached to --broker "
                           "keep their flash in --state (%s)" % args.state)
        return _sim_attached(args)
    return _sim_run(args)


def _sim_run(args):
    from rich.console import Console  # off CLI startup

    from soundbox_sim import report, runner, scenario  # off CLI startup

    try:
        s = scenario.load(args.scenario) if args.scenario else scenario.parse({}, "default")
    except scenario.ScenarioError as e:
        raise CliError(str(e))
    fleet = s["fleet"]
    if args.devices is not None:
        fleet["devices"] = args.devices
    if args.plain:
        fleet["tls"] = False
    if args.connect_rate is not None:
        fleet["connect_rate"] = args.connect_rate
    if args.keepalive is not None:
        fleet["keepalive"] = args.keepalive
    if args.freshness is not None:
        fleet["freshness_s"] = args.freshness
    if args.lang is not None:
        fleet["languages"] = {args.lang: 1.0}
    if args.duration is not None:
        s["run"]["duration"] = args.duration
    if args.micropython is not None:
        fleet["micropython"] = args.micropython
    if fleet["micropython"] > fleet["devices"]:
        raise CliError("%d devices on MicroPython (%s) but the fleet has only %d"
                       % (fleet["micropython"], "--micropython" if args.micropython is not None
                          else "the scenario's [fleet] micropython", fleet["devices"]))
    console = Console()
    opts = runner.Options(workers=args.workers, certs=args.certs or os.path.join(".state", "certs"),
                          state=args.state, voice=args.voice, report_dir=args.report, broker_url=args.broker,
                          journal=args.journal, wav_device=args.wav_device, out=args.out,
                          live=not args.no_live and console.is_terminal, prometheus=args.prometheus,
                          flash_dir=args.flash_dir, keep_flash=args.keep_flash,
                          extra_config=dict(ota_config(args.certs or os.path.join(".state", "certs")),
                                            **mqttversion.config(args)))
    try:
        summary = runner.Runner(s, opts, console).run()
    except runner.RunError as e:
        raise CliError(str(e))
    console.print(report.summary_table(summary))
    per_runtime = report.runtime_table(summary)
    if per_runtime is not None:
        console.print(per_runtime)
    out = opts.report_dir or os.path.join(args.state, "report")
    print("sim: report in %s (summary.json, metrics.jsonl, report.html)" % out)
    return 0 if summary["healthy"] and summary["connected_at_end"] == summary["devices"] else 1


def _sim_attached(args):
    from soundbox_sim.fleet import Fleet  # off CLI startup
    from soundbox_tools.voicepack import build_pack  # off CLI startup

    try:
        host, port, tls = parse_broker_url(args.broker)
    except BrokerUnavailable as e:
        raise CliError(str(e)) from None
    devices = args.devices or 10
    lang = args.lang or "en-IN"
    build_pack(lang, args.voice)
    # Every device needs its payment key, whatever the link; TLS files matter only for mqtts.
    identity_root = device_identities(args.certs or "certs", devices, tls)
    fleet = Fleet(devices, host, port, args.state, args.voice, wav_device=args.wav_device,
                  out_dir=args.out, journal_path=args.journal, connect_rate=args.connect_rate or 200.0,
                  keepalive=args.keepalive or 60, identity_root=identity_root, tls=tls,
                  freshness_s=args.freshness, lang=lang,
                  extra_config=dict(ota_config(args.certs or "certs"), **mqttversion.config(args)))
    started = time.monotonic()
    last = [0.0]

    def progress(f):
        now = time.monotonic()
        if now - last[0] >= 5 or f.connected() == len(f.ids) and last[0] == 0:
            last[0] = now
            note = ""
            if f.refused():
                note = " (%d refused by the broker: see %s/devices.log)" % (f.refused(), args.state)
            elif f.connected() == 0 and now - started > 10:
                note = " (broker %s not reachable yet; devices retry with backoff)" % args.broker
            print("sim: %d/%d connected, %d announced%s"
                  % (f.connected(), len(f.ids), f.journal.count, note), flush=True)

    async def main():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await fleet.run(stop, progress)

    print("sim: %d devices -> %s (state in %s)" % (devices, args.broker, args.state), flush=True)
    asyncio.run(main())
    print("sim: stopped; %d announcements played" % fleet.journal.count)
    return 0


def device_identities(certs, n, tls=False):
    """The directory of per-device identities (payment key, TLS files), issuing any the fleet lacks.

    With TLS every bundle is checked first (0.3 ms each): an expired, not-yet-valid or
    mismatched identity is reported here, before any network traffic.
    """
    from soundbox_sim.fleet import device_ids  # off CLI startup

    pki = Pki(certs)
    if not os.path.exists(os.path.join(certs, "ca.pem")):
        raise CliError("no CA in %s: run `soundbox pki init --dir %s` first" % (certs, certs))
    missing = [d for d in device_ids(n)
               if not all(os.path.exists(os.path.join(certs, "devices", d, f)) for f in ("device.der", "payment.key"))]
    if missing:
        started = time.monotonic()
        pki.issue_devices(missing)
        print("sim: issued %d device identities in %.1f s" % (len(missing), time.monotonic() - started),
              flush=True)
    if tls:
        bad = {d: p for d in device_ids(n) for p in check_identity(pki.device_dir(d))[:1]}
        if bad:
            first = sorted(bad)[0]
            print("sim: %d device identities are unusable and will be refused (%s: %s)"
                  % (len(bad), first, bad[first]), flush=True)
    return os.path.join(certs, "devices")


def cmd_cloud(args):
    if args.broker is None:   # required to serve, not for `cloud key ...` / `cloud device ...`
        args.cloud_parser.error("the following arguments are required: --broker")
    from soundbox_cloud.service import serve  # off CLI startup
    host, port = parse_hostport(args.http)
    serve(args.broker, host, port, args.db, group=args.group, certs=args.certs, instance=args.instance,
          ota_dir=args.ota_dir, chunk_rate=args.chunk_rate, chunk_burst=args.chunk_burst,
          ack_deadline_s=args.ack_deadline, private_webhooks=args.private_webhooks,
          notify_expiry_s=args.notify_expiry, log_level=args.log_level)
    return 0


def cmd_pay(args):
    try:
        amount = int(args.amount)
    except ValueError:
        raise CliError("AMOUNT must be integer paise (e.g. 25000 for 250 rupees), got %r" % args.amount)
    try:
        result = pay(args.cloud, args.device, amount, args.txn, provider=args.provider, api_key=args.api_key)
    except PayError as e:
        raise CliError(str(e))
    print("payment %s: %s paise to %s%s, status %s"
          % (result["txn"], result["amount"], result["device"],
             " via " + result["provider"] if result.get("provider") else "", result["status"]))
    return 0


# ---- soundbox cloud key ... / cloud device ... -------------------------------

def _key_store(path, must_exist=True):
    if must_exist and not is_postgres(path) and not os.path.isfile(path):
        raise CliError("no database at %s (give the cloud's --db)" % path)
    return KeyStore(path)


def _when(ms):
    return "-" if ms is None else time.strftime("%Y-%m-%d %H:%M", time.gmtime(ms / 1000))


def cmd_key_create(args):
    if args.expires_days is not None and not args.expires_days > 0:
        raise CliError("--expires-days must be a positive number of days, got %s" % args.expires_days)
    expires_s = None if args.expires_days is None else args.expires_days * 86400
    check_key_request(args.role, args.tenant, args.name, expires_s, args.rate)   # before touching the file
    parent = None if is_postgres(args.db) else os.path.dirname(os.path.abspath(args.db))
    if parent is not None and not os.path.isdir(parent):
        raise CliError("no directory %s for the database %s" % (parent, args.db))
    store = _key_store(args.db, must_exist=False)
    try:
        token, record = store.create(args.role, args.tenant, args.name, expires_s, args.rate)
    finally:
        store.close()
    print(token, flush=True)   # alone on the first line: scripts read it
    print("key %s (%s, tenant %s) created; shown once, store it now"
          % (record["id"], record["role"], record["tenant"] or "- (platform)"), file=sys.stderr)
    return 0


def cmd_key_list(args):
    store = _key_store(args.db)
    try:
        keys = store.list()
    finally:
        store.close()
    header = ("id", "name", "role", "tenant", "created", "expires", "last used", "revoked")
    rows = [header] + [(k["id"], k["name"] or "-", k["role"], k["tenant"] or "-", _when(k["created_ms"]),
                        _when(k["expires_ms"]), _when(k["last_used_ms"]), _when(k["revoked_ms"]))
                       for k in keys]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
    return 0


def cmd_key_revoke(args):
    store = _key_store(args.db)
    try:
        record = store.revoke(args.key_id)
    finally:
        store.close()
    print("key %s (%s, tenant %s) revoked at %s UTC" % (record["id"], record["role"], record["tenant"] or "-",
                                                         _when(record["revoked_ms"])))
    return 0


def _check_tenant(tenant):
    if tenant is not None and not is_tenant(tenant):
        raise CliError("tenant %r is not valid: 1 to 32 of a-z, 0-9 and '-', not starting with '-'" % tenant)


def _device_call(args, path, body):
    try:
        answer = call(args.cloud, "POST", path, body=body, api_key=args.api_key)
    except ApiError as e:
        raise CliError(str(e)) from None
    print(json.dumps(answer, sort_keys=True))
    return 0


def cmd_device_register(args):
    _check_tenant(args.tenant)
    body = {"id": args.device}
    for field in ("tenant", "name", "vpa", "language"):
        if getattr(args, field) is not None:
            body[field] = getattr(args, field)
    if args.tag:
        body["tags"] = args.tag
    return _device_call(args, "/devices", body)


def cmd_device_move(args):
    _check_tenant(args.tenant)
    return _device_call(args, "/devices/%s/move" % quote(args.device, safe=""), {"tenant": args.tenant})


def register_cloud_commands(c):
    """`soundbox cloud key ...` and `soundbox cloud device ...` under the `cloud` parser."""
    cloud_sub = c.add_subparsers(dest="cloud_command", metavar="ACTION",
                                 help="key: API keys in the cloud's database; device: register or move a box")
    k = cloud_sub.add_parser("key", help="create, list and revoke API keys in the cloud's --db "
                                         "(while it runs, too)")
    key_sub = k.add_subparsers(dest="key_command", required=True, metavar="ACTION")
    kc = key_sub.add_parser("create", help="a new key: the token alone on stdout's first line, shown once")
    kc.add_argument("--db", required=True, help="the cloud's database: %s" % DB_HELP)
    kc.add_argument("--role", required=True, help="admin, operator, psp or viewer")
    kc.add_argument("--tenant", help="the tenant a non-admin key belongs to")
    kc.add_argument("--name", default="", help="what the key is for (shown by `key list`)")
    kc.add_argument("--expires-days", type=float, metavar="D", help="the key stops working after D days")
    kc.add_argument("--rate", type=float, metavar="R",
                    help="requests a second (default by role: admin 2000, operator 100, psp 2000, viewer 50)")
    kc.set_defaults(func=cmd_key_create)
    kl = key_sub.add_parser("list", help="every key (never a secret)")
    kl.add_argument("--db", required=True, help="the cloud's database: %s" % DB_HELP)
    kl.set_defaults(func=cmd_key_list)
    kr = key_sub.add_parser("revoke", help="revoke a key; a running cloud refuses it at once")
    kr.add_argument("key_id", metavar="ID")
    kr.add_argument("--db", required=True, help="the cloud's database: %s" % DB_HELP)
    kr.set_defaults(func=cmd_key_revoke)

    d = cloud_sub.add_parser("device", help="register a device in a tenant, or move it to another")
    device_sub = d.add_subparsers(dest="device_command", required=True, metavar="ACTION")
    dr = device_sub.add_parser("register", help="POST /devices")
    dr.add_argument("device", metavar="ID")
    dr.add_argument("--tenant")
    dr.add_argument("--name", help="the merchant's name")
    dr.add_argument("--vpa", help="the merchant's UPI address")
    dr.add_argument("--language")
    dr.add_argument("--tag", action="append", metavar="X", help="repeatable")
    dm = device_sub.add_parser("move", help="POST /devices/ID/move (admin keys only)")
    dm.add_argument("device", metavar="ID")
    dm.add_argument("--tenant", required=True)
    for q, func in ((dr, cmd_device_register), (dm, cmd_device_move)):
        q.add_argument("--cloud", default=DEFAULT_CLOUD, help="the cloud's HTTP API (default %s)" % DEFAULT_CLOUD)
        add_api_key(q)
        q.set_defaults(func=func)


def cmd_voicepack(args):
    from soundbox_tools.voicepack import build_pack  # off CLI startup
    info = build_pack(args.lang, args.out, rate=args.rate, codec=args.codec)
    print("voice pack %s: %d clips, %.1f s of speech, %d KB at %d Hz %s in %s (%s in %.1f s)"
          % (args.lang, len(info["clips"]), info["speech_ms"] / 1000, info["size"] // 1024, args.rate,
             info["format"]["encoding"], info["path"], "cached" if info["cached"] else "built",
             info["build_s"]))
    return 0


# ---- parser -----------------------------------------------------------------

def build_parser():
    p = argparse.ArgumentParser(prog="soundbox", description="Open payment soundbox tools.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    d = sub.add_parser("demo", help="broker + cloud + simulated soundboxes + payments, end to end")
    d.add_argument("--devices", type=int, default=20)
    d.add_argument("--payments", type=int, default=100)
    d.add_argument("--rate", type=float, default=10.0, help="payments per second (default 10)")
    d.add_argument("--out", default="out", help="where one device's announcements go as WAV")
    d.add_argument("--state", default=os.path.join(".state", "demo"))
    d.add_argument("--plain", action="store_true", help="plain MQTT instead of mutual TLS")
    d.set_defaults(func=cmd_demo)

    s = sub.add_parser("sim", help="run a fleet of simulated soundboxes (real firmware): a scenario "
                                   "with broker, cloud, payments, faults and a report, or attached to a broker")
    s.add_argument("--devices", type=int, help="how many (overrides the scenario; default 10)")
    s.add_argument("--scenario", metavar="FILE",
                   help="TOML scenario, or the name of one in simulator/scenarios/ (smoke, peak-hour, ...)")
    s.add_argument("--workers", type=int,
                   help="worker processes, one asyncio loop each (default: one per core; 1 with --broker)")
    s.add_argument("--broker", help="attach to this broker (mqtts://HOST:PORT or mqtt://HOST:PORT): devices "
                                    "only, no cloud or payments; default: start a private mosquitto")
    s.add_argument("--plain", action="store_true", help="plain MQTT instead of mutual TLS")
    s.add_argument("--certs", help="PKI directory; missing device identities are issued "
                                   "(default certs with --broker, else .state/certs)")
    s.add_argument("--state", default=os.path.join(".state", "sim"),
                   help="the run's files: broker, cloud log, journals, report (default .state/sim); "
                        "with --broker, one directory per device")
    s.add_argument("--flash-dir", metavar="DIR",
                   help="where device flash lives: a directory for this run is made under DIR (default "
                        "/dev/shm when it has room, else --state), removed at the end")
    s.add_argument("--keep-flash", action="store_true", help="keep the run's device flash directory")
    s.add_argument("--voice", default=DEFAULT_PACK, help="voice pack directory (built if missing)")
    s.add_argument("--lang", choices=LANGUAGES, help="announcement language (overrides the scenario's mix)")
    s.add_argument("--wav-device", help="device id whose announcements are written as WAV files")
    s.add_argument("--out", default="out", help="where WAV files go")
    s.add_argument("--journal", help="JSON Lines file of every announcement played")
    s.add_argument("--connect-rate", metavar="RATE|auto",
                   help="connects per second, open loop with jitter (default 200 with mTLS, 1000 plain), "
                        'or "auto": each worker ramps as fast as connects keep succeeding (closed loop)')
    s.add_argument("--keepalive", type=int)
    mqttversion.add_argument(s)
    s.add_argument("--freshness", type=float, metavar="SECONDS",
                   help="older payments go to the offline summary instead (firmware default 120)")
    s.add_argument("--duration", type=float, help="seconds to run after the ramp (overrides the scenario)")
    s.add_argument("--report", metavar="DIR", help="where summary.json, metrics.jsonl and report.html go "
                                                   "(default STATE/report)")
    s.add_argument("--prometheus", type=int, metavar="PORT", help="serve live counters at /metrics on PORT")
    s.add_argument("--no-live", action="store_true", help="no live progress display")
    s.add_argument("--micropython", type=int, metavar="K",
                   help="run K of the devices as real MicroPython unix-port processes (the firmware "
                        "unmodified) beside the CPython ones, same broker, cloud and report: every "
                        "(N/K)-th id, ending with the last (overrides the scenario's [fleet] micropython)")
    s.set_defaults(func=cmd_sim)

    c = sub.add_parser("cloud", help="run the reference cloud handler (HTTP API + MQTT); "
                                     "manage its API keys and devices")
    c.add_argument("--broker", help="mqtts://HOST:PORT (mutual TLS) or mqtt://HOST:PORT (required to serve)")
    c.add_argument("--http", default="127.0.0.1:8080", help="HOST:PORT for the API")
    c.add_argument("--db", default=os.path.join(".state", "cloud.db"),
                   help="the cloud's database: %s (default .state/cloud.db); several handlers may "
                        "share one" % DB_HELP)
    c.add_argument("--group", default="cloud", help="shared-subscription group")
    c.add_argument("--instance", default="0", help="this handler's id within the group (stable across restarts)")
    c.add_argument("--certs", default="certs",
                   help="PKI directory: payment-master.key (signs notifications), and for mqtts:// ca.pem "
                        "and the identities of the cloud's two connections, cloud.pem/.key and "
                        "cloud-bulk.pem/.key")
    c.add_argument("--ota-dir", help="signed OTA artifacts served to devices: <name>.bin + <name>.manifest.json "
                                     "(default: ota/ next to a SQLite --db, i.e. .state/ota; .state/ota "
                                     "with a postgresql:// --db)")
    c.add_argument("--chunk-rate", type=chunk_rate_arg, default=DEFAULT_RATE, metavar="SIZE",
                   help="OTA chunk bytes a second each device may take, e.g. 1MiB, 512KiB, 65536; "
                        "off (or 0) for no limit (default 1MiB)")
    c.add_argument("--chunk-burst", type=chunk_burst_arg, default=DEFAULT_BURST, metavar="SIZE",
                   help="bytes a device may take at once before --chunk-rate applies, at least 16KiB "
                        "(default 4MiB: a whole image of the largest slot)")
    c.add_argument("--ack-deadline", type=positive_seconds, default=ACK_DEADLINE_S, metavar="SECONDS",
                   help="a payment no box has acknowledged this long is marked timed_out and its PSP told "
                        "(default %g; a late ack still settles it)" % ACK_DEADLINE_S)
    c.add_argument("--notify-expiry", type=positive_seconds, default=NOTIFY_EXPIRY_S, metavar="SECONDS",
                   help="how long the broker keeps a notification for a box that is offline, counted from "
                        "the payment (default %d: a day; older ones would only add to an offline summary)"
                        % NOTIFY_EXPIRY_S)
    c.add_argument("--private-webhooks", action="store_true",
                   help="let webhooks point at loopback and private addresses (a lab; refused by default)")
    c.add_argument("--log-level", choices=LOG_LEVELS, default="info",
                   help="the cloud's log lines on stderr from this level up (default info: artifacts, "
                        "campaign waves, device moves)")
    c.set_defaults(func=cmd_cloud, cloud_parser=c)
    register_cloud_commands(c)

    y = sub.add_parser("pay", help="send a payment through the cloud handler")
    y.add_argument("device")
    y.add_argument("amount", help="integer paise (25000 = 250 rupees)")
    y.add_argument("--txn", help="transaction id (generated if omitted)")
    y.add_argument("--provider", help="the app the customer paid with, said by the box: %s"
                   % ", ".join(PROVIDERS))
    y.add_argument("--cloud", default=DEFAULT_CLOUD)
    add_api_key(y)
    y.set_defaults(func=cmd_pay)

    broker.register(sub)
    pkicli.register(sub)
    device.register(sub)
    otacli.register(sub)

    v = sub.add_parser("voicepack", help="build a language's voice pack (<lang>.pack) with espeak-ng")
    v.add_argument("action", nargs="?", choices=["build"], default="build")
    v.add_argument("--lang", default="en-IN", choices=LANGUAGES)
    v.add_argument("--rate", type=int, choices=[16000, 8000], default=16000, help="sample rate (Hz)")
    v.add_argument("--codec", choices=["pcm", "adpcm"], default="pcm",
                   help="pcm: 16-bit samples; adpcm: IMA-ADPCM, 4 bits a sample (a quarter of the flash)")
    v.add_argument("--out", default=DEFAULT_PACK)
    v.set_defaults(func=cmd_voicepack)
    return p


def user_errors():
    """Failures a user can act on; each carries a one-line message, never a traceback."""
    from soundbox_tools.voicepack import VoicePackError  # off CLI startup
    return (CliError, CloudError, BrokerError, OtaError, PkiError, VoicePackError)


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except user_errors() as e:
        print("soundbox %s: %s" % (args.command, e), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
