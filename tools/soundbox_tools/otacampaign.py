"""`soundbox ota campaign ...`: create, watch and steer OTA campaigns through the cloud's HTTP API.

`soundbox_tools.otacli.register` creates the `ota` group and calls `register_campaign` here.
"""
import os
import time

from soundbox_cloud.client import ApiError, call
from soundbox_tools.cliargs import DEFAULT_CLOUD, CliError, add_api_key

FINISHED = ("completed", "aborted")


def api(args, method, path, body=None, data=None):
    try:
        return call(args.cloud, method, path, body=body, data=data, api_key=args.api_key)
    except ApiError as e:
        raise CliError(str(e)) from None


def csv_numbers(text, what):
    try:
        return [float(v) if "." in v else int(v) for v in text.split(",")]
    except ValueError:
        raise CliError("%s must be comma-separated numbers, got %r" % (what, text)) from None


def upload(args, path):
    """PUT <name>.manifest.json then <name>.bin (unless already registered); returns the name."""
    stem = path[:-len(".bin")] if path.endswith(".bin") else path[:-len(".manifest.json")] \
        if path.endswith(".manifest.json") else None
    if stem is None:
        raise CliError("--upload takes the artifact's .bin (its .manifest.json must sit next to it), got %s" % path)
    name = os.path.basename(stem)
    try:
        call(args.cloud, "GET", "/ota/artifacts/" + name, api_key=args.api_key)
        return name   # already registered
    except ApiError as e:
        if e.status != 404:
            raise CliError(str(e)) from None
    try:
        with open(stem + ".manifest.json", "rb") as f:
            envelope = f.read()
        with open(stem + ".bin", "rb") as f:
            binary = f.read()
    except OSError as e:
        raise CliError("cannot read %s: %s" % (e.filename, e.strerror)) from None
    api(args, "PUT", "/ota/artifacts/%s.manifest.json" % name, data=envelope)
    api(args, "PUT", "/ota/artifacts/%s.bin" % name, data=binary)
    return name


def cmd_create(args):
    if bool(args.artifact) == bool(args.upload):
        raise CliError("give exactly one of --artifact NAME and --upload FILE.bin")
    artifact = upload(args, args.upload) if args.upload else args.artifact
    body = {"artifact": artifact,
            "target": {"model": args.model, "versions": args.from_version or [], "tags": args.tag or [],
                       "devices": [d for d in (args.devices or "").split(",") if d]}}
    options = {"waves": csv_numbers(args.waves, "--waves") if args.waves else None,
               "success_rate": args.success, "max_failures": args.max_failures,
               "max_failure_rate": args.max_failure_rate, "min_sample": args.min_sample,
               "max_concurrent": args.max_concurrent, "window": args.window, "tz": args.tz,
               "ack_timeout_s": args.ack_timeout, "soak_s": args.soak, "stall_timeout_s": args.stall_timeout}
    body.update({k: v for k, v in options.items() if v is not None})
    status = api(args, "POST", "/ota/campaigns", body)
    a = status["artifact"]
    print("campaign %s created: %s %s %s to %d devices in %d waves (wave 1: %d devices)"
          % (status["id"], a.get("model"), a.get("kind"), a.get("version"), status["totals"]["devices"],
             len(status["waves"]), status["waves"][0]["devices"]))
    return 0


def summary_line(s):
    t = s["totals"]
    line = "%s %s, wave %d/%d: %d/%d succeeded, %d failed, %d downloading, %d pending" % (
        s["id"], s["state"], s["wave"], len(s["waves"]), t["succeeded"], t["devices"], t["failed"],
        t["active"], t["pending"])
    return line + (" (%s)" % s["reason"] if s["reason"] else "")


def wave_line(w):
    states = ", ".join("%s %d" % kv for kv in sorted(w["states"].items()))
    return "  wave %d (%g%%): %d devices: %s" % (w["wave"], w["percent"], w["devices"], states or "-")


def device_line(d):
    progress = "%s/%s" % (d["have"], d["total"]) if d["total"] else ""
    return "  %-12s wave %d  %-14s %-9s %s" % (d["device"], d["wave"], d["state"], progress, d["reason"])


def plain_report(s, devices):
    lines = [summary_line(s)] + [wave_line(w) for w in s["waves"]]
    if devices:
        lines += [device_line(d) for d in s["devices"]]
    return "\n".join(lines)


def rich_report(s, devices):
    from rich.console import Group  # off CLI startup
    from rich.table import Table
    waves = Table(title=summary_line(s), title_justify="left")
    for column in ("wave", "%", "devices", "succeeded", "failed", "downloading", "pending", "states"):
        waves.add_column(column, justify="left" if column == "states" else "right")
    for w in s["waves"]:
        mark = "> " if w["wave"] == s["wave"] and s["state"] == "running" else ""
        waves.add_row(mark + str(w["wave"]), "%g" % w["percent"], str(w["devices"]), str(w["succeeded"]),
                      str(w["failed"]), str(w["active"]), str(w["pending"]),
                      ", ".join("%s %d" % kv for kv in sorted(w["states"].items())))
    if not devices:
        return waves
    table = Table()
    for column in ("device", "wave", "state", "chunks", "reason"):
        table.add_column(column)
    for d in s["devices"]:
        table.add_row(d["device"], str(d["wave"]), d["state"],
                      "%s/%s" % (d["have"], d["total"]) if d["total"] else "", d["reason"])
    return Group(waves, table)


def cmd_status(args):
    if args.campaign is None:
        campaigns = api(args, "GET", "/ota/campaigns")
        for c in campaigns:
            print("%s %-9s wave %d  %s (manifest %s)%s" % (c["id"], c["state"], c["wave"], c["artifact"],
                                                          c["manifest"], "  " + c["reason"] if c["reason"] else ""))
        if not campaigns:
            print("no campaigns")
        return 0
    path = "/ota/campaigns/" + args.campaign
    status = api(args, "GET", path)
    if not args.watch:
        print(plain_report(status, args.devices))
        return 0
    from rich.console import Console  # off CLI startup
    console = Console()
    if console.is_terminal:
        from rich.live import Live  # off CLI startup
        with Live(rich_report(status, args.devices), console=console, refresh_per_second=4) as live:
            while status["state"] not in FINISHED:
                time.sleep(args.interval)
                status = api(args, "GET", path)
                live.update(rich_report(status, args.devices))
        return 0
    last = None
    while True:   # not a terminal: one line per change
        line = summary_line(status)
        if line != last:
            print(line, flush=True)
            last = line
        if status["state"] in FINISHED:
            print(plain_report(status, args.devices))
            return 0
        time.sleep(args.interval)
        status = api(args, "GET", path)


def cmd_action(args):
    status = api(args, "POST", "/ota/campaigns/%s/%s" % (args.campaign, args.action))
    print(summary_line(status))
    return 0


def cmd_tag(args):
    body = {"remove": args.tags} if args.remove else {"add": args.tags}
    answer = api(args, "POST", "/devices/%s/tags" % args.device, body)
    print("%s tags: %s" % (answer["device"], ", ".join(answer["tags"]) or "-"))
    return 0


def register_campaign(subparsers):
    """Add `campaign` (with its own actions) to the `ota` group's subparsers."""
    p = subparsers.add_parser("campaign", help="roll an artifact out to the fleet in waves (cloud HTTP API)")
    sub = p.add_subparsers(dest="campaign_command", required=True, metavar="ACTION")

    def common(q):
        q.add_argument("--cloud", default=DEFAULT_CLOUD, help="the cloud's HTTP API (default %s)" % DEFAULT_CLOUD)
        add_api_key(q)

    c = sub.add_parser("create", help="start a campaign")
    c.add_argument("--artifact", help="a registered artifact: its name or manifest id")
    c.add_argument("--upload", metavar="FILE.bin", help="upload FILE.bin + FILE.manifest.json first")
    c.add_argument("--model", help="only this model (default: the artifact's)")
    c.add_argument("--from-version", action="append", metavar="V",
                   help="only devices running V (repeatable; default: any older version)")
    c.add_argument("--tag", action="append", help="only devices with this tag (repeatable: all of them)")
    c.add_argument("--devices", help="only these devices: comma-separated ids")
    c.add_argument("--waves", help="cumulative percentages, default 1,10,50,100")
    c.add_argument("--success", type=float, metavar="PCT", help="success rate that opens the next wave (95)")
    c.add_argument("--max-failures", type=int, metavar="N", help="pause at N failures")
    c.add_argument("--max-failure-rate", type=float, metavar="PCT", help="pause at this failure percentage (10)")
    c.add_argument("--min-sample", type=int, metavar="N", help="finished devices before the rate applies (5)")
    c.add_argument("--max-concurrent", type=int, metavar="N", help="downloads at once (50)")
    c.add_argument("--window", metavar="HH:MM-HH:MM", help="start jobs only in this local time range")
    c.add_argument("--tz", help="time zone of --window, e.g. Asia/Kolkata (default: the cloud's)")
    c.add_argument("--ack-timeout", type=float, metavar="S",
                   help="an updated device that leaves a payment unacked this long has failed (60)")
    c.add_argument("--soak", type=float, metavar="S", help="a confirmation counts as success after S seconds (0)")
    c.add_argument("--stall-timeout", type=float, metavar="S", help="no status for S seconds = failed (1800)")
    common(c)
    c.set_defaults(func=cmd_create)

    s = sub.add_parser("status", help="per-wave counts (and per-device states); no ID lists campaigns")
    s.add_argument("campaign", nargs="?")
    s.add_argument("--watch", action="store_true", help="follow live until the campaign ends")
    s.add_argument("--devices", action="store_true", help="one line per device")
    s.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes with --watch")
    common(s)
    s.set_defaults(func=cmd_status)

    for action, text in (("pause", "stop sending new jobs"), ("resume", "go on (failures so far are accepted)"),
                         ("abort", "stop for good; devices still downloading get a cancel")):
        a = sub.add_parser(action, help=text)
        a.add_argument("campaign")
        common(a)
        a.set_defaults(func=cmd_action, action=action)

    t = sub.add_parser("tag", help="tag a device for targeting (or --remove tags)")
    t.add_argument("device")
    t.add_argument("tags", nargs="+")
    t.add_argument("--remove", action="store_true")
    common(t)
    t.set_defaults(func=cmd_tag)
    return p


register = register_campaign

