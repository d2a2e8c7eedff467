"""`soundbox ota keygen|sign|verify|sim-image` and the `ota campaign` group: the command line
over soundbox_tools.ota (keys, artifacts, checks), which the simulator uses without it."""

import os
import time
from pathlib import Path

from soundbox import otakinds, otamanifest
from soundbox_tools.cliargs import parse_size
from soundbox_tools.ota import (CHUNK_SIZE, EXPIRES_DAYS, MODELS, OtaError, app_bundle, check_job_size, key_dir,
                                keygen, load_key, manifest_for, public_bytes, sign, sim_image, verify,
                                write_release)
from soundbox_tools.otacampaign import register_campaign


def image_size(text):
    """--size of a simulator image: bytes, or a size like 1MiB / 512KiB / 1.5 MiB."""
    try:
        return parse_size(text)
    except ValueError as e:
        raise OtaError(str(e)) from None


def cmd_keygen(args):
    keys = keygen(args.certs, args.count)
    print("ota: %d release keys in %s; devices trust %s" % (len(keys), key_dir(args.certs),
                                                           key_dir(args.certs) / "trusted.json"))
    return 0


def cmd_sign(args):
    kind = otakinds.of(args.kind)
    if kind.lands == otakinds.BUNDLE:
        data, files = app_bundle(args.input)
    else:
        try:
            data = Path(args.input).read_bytes()
        except OSError as e:
            raise OtaError("cannot read %s: %s" % (args.input, e.strerror))
        files = None
    name = args.name or (Path(args.input).name.split(".")[0] if kind.per_language else args.kind)
    keys = [load_key(p) for p in (args.key or [key_dir(args.certs) / "release-1.key"])]
    trust = None
    if args.trust:
        trust = [public_bytes(load_key(p)) for p in args.trust]
    manifest = manifest_for(data, kind=args.kind, name=name, version=args.version, counter=args.counter,
                            model=args.model, chunk_size=args.chunk_size,
                            expires=time.time() + args.expires_days * 86400, files=files, trust=trust)
    envelope = sign(manifest, keys)
    check_job_size(envelope)  # before anything is written
    path = write_release(args.out, data, envelope)
    print("ota: %s %s %s, %d bytes in %d chunks, counter %d -> %s (+ .manifest.json)"
          % (args.kind, name, args.version, len(data), otamanifest.chunk_count(manifest), args.counter, path))
    return 0


def cmd_verify(args):
    trusted = args.trusted or key_dir(args.certs) / "trusted.json"
    m = verify(args.manifest, trusted, args.bin, args.model)
    print("ota: OK: %s %s %s for %s, counter %d, %d bytes, expires %s"
          % (m["kind"], m["name"], m["version"], m["model"], m["counter"], m["size"],
             time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(m["expires"]))))
    return 0


def cmd_sim_image(args):
    size = image_size(args.size)
    Path(args.out).write_bytes(sim_image(args.version, size, args.boot, args.audio))
    print("ota: simulator image %s (%s bytes, boot %s, audio %s)" % (args.out, size, args.boot, args.audio))
    return 0


def register(sub):
    """Add `soundbox ota ...` to the CLI's subparsers."""
    p = sub.add_parser("ota", help="release keys, signed updates, campaigns")
    ota_sub = p.add_subparsers(dest="ota_command", required=True, metavar="ACTION")

    k = ota_sub.add_parser("keygen", help="create release keys (2 by default) and the trusted list")
    k.add_argument("--certs", default="certs")
    k.add_argument("--count", type=int, default=2)
    k.set_defaults(func=cmd_keygen)

    s = ota_sub.add_parser("sign", help="make a signed artifact + manifest")
    s.add_argument("input", help="app: a bundle directory; firmware: an image; voice: a .pack file")
    s.add_argument("--kind", required=True, choices=otakinds.NAMES)
    s.add_argument("--version", required=True)
    s.add_argument("--counter", required=True, type=int, help="security counter: above every earlier release")
    s.add_argument("--model", default="soundbox-esp32", choices=MODELS)
    s.add_argument("--name", help="default: the kind, or the pack's language for voice")
    s.add_argument("--key", action="append", help="release key(s) to sign with (default certs/ota/release-1.key)")
    s.add_argument("--trust", action="append", metavar="KEY",
                   help="after this update, trust only these keys' public halves (key rotation)")
    s.add_argument("--chunk-size", type=int, default=CHUNK_SIZE)
    s.add_argument("--expires-days", type=float, default=EXPIRES_DAYS)
    s.add_argument("--certs", default="certs")
    s.add_argument("--out", default=os.path.join(".state", "ota"))
    s.set_defaults(func=cmd_sign)

    v = ota_sub.add_parser("verify", help="check a signed manifest and its artifact offline")
    v.add_argument("manifest")
    v.add_argument("--bin", help="the artifact (default: next to the manifest)")
    v.add_argument("--trusted", help="trusted key list (default certs/ota/trusted.json)")
    v.add_argument("--model", help="check it is for this model")
    v.add_argument("--certs", default="certs")
    v.set_defaults(func=cmd_verify)

    i = ota_sub.add_parser("sim-image", help="a firmware image for simulated devices")
    i.add_argument("out")
    i.add_argument("--version", required=True)
    i.add_argument("--size", default="1MiB")
    i.add_argument("--boot", choices=["ok", "crash"], default="ok")
    i.add_argument("--audio", choices=["ok", "broken"], default="ok")
    i.set_defaults(func=cmd_sim_image)

    register_campaign(ota_sub)
