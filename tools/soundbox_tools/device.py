"""`soundbox device build|flash|deploy|provision|monitor`: from this repository to a real board.

The jobs live in devicebuild (bundle), deviceflash (esptool), devicefs (deploy,
provision over mpremote's transport), deviceromfs (deploy --romfs: the code's ROMFS
image through mpremote), devicemonitor (pyserial) and deviceport (port checks and the
board connection); this module is only the command line.
docs/esp32.md walks through them in order.
"""

import argparse
import getpass
import json
import os
import sys

from soundbox.voice import LANGUAGES
from soundbox_tools import deviceromfs, devicerun, mqttversion
from soundbox_tools.cliargs import DEFAULT_PACK
from soundbox_tools.devicebuild import DeviceError, _sha256, board_names, build, load_board, size_report
from soundbox_tools.devicefs import (CONFIG_PATH, deploy_targets, identity_targets, provisioned_config,
                                    read_device_config, sync)
from soundbox_tools.pki import Pki, check_device_id

DEFAULT_BUNDLE = os.path.join(".state", "device", "bundle")
DEFAULT_BOARD = "esp32-wrover"
PASSWORD_ENV = "SOUNDBOX_WIFI_PASSWORD"


def cmd_build(args):
    langs = [] if args.no_voice else args.lang or ["en-IN"]
    manifest = build(args.board, args.out, langs=langs, voice_dir=args.voice)
    for line in size_report(manifest):
        print(line)
    print("bundle for %s in %s (%d files, manifest.json lists their sha256)"
          % (manifest["board"], args.out, manifest["parts"]["total"]["files"]))
    return 0


def cmd_flash(args):
    from soundbox_tools.deviceflash import flash  # optional board extra
    board = load_board(args.board)
    flash(args.port, args.firmware, board, baud=args.baud)
    print("MicroPython written to the %s on %s; next: soundbox device provision --port %s ID"
          % (board["chip"], args.port, args.port))
    return 0


def cmd_deploy(args):
    from soundbox_tools.deviceport import Board  # optional board extra
    manifest, targets, lib = deploy_targets(args.bundle, certs=args.certs, config_file=args.config,
                                            romfs=args.romfs)
    image = _romfs_image(args.bundle, manifest) if args.romfs else None
    with Board(args.port, probe_timeout_s=args.probe_timeout) as board:
        rom_written = None
        if image is not None:
            print("ROMFS image %s (%s): checking the board's romfs partition, writing it if it differs"
                  % (manifest["romfs"]["path"], _kib(manifest["romfs"]["size"])))
            rom_written = deviceromfs.deploy(board, image)
        result = sync(board, targets, lib_keep=lib)
        has_config = args.config is not None or _exists(board, CONFIG_PATH)
        if not args.no_reset:
            board.reset()
    free = "" if result["free"] is None else ", %s free before" % _kib(result["free"])
    print("deployed the %s bundle to %s: %d files written (%s), %d unchanged, %d stale removed%s"
          % (manifest["board"], args.port, result["written"], _kib(result["bytes"]), result["unchanged"],
             result["removed"], free))
    if rom_written is not None:
        print("the code is in the board's ROMFS image (/rom/lib, run in place from flash): %s; /lib holds no code"
              % ("written" if rom_written else "unchanged, not written"))
    elif result["rom_app"]:
        print("the board's ROMFS image also holds an app: the one just deployed to /lib runs (main.py prefers "
              "/lib); `deploy --romfs` runs the code from ROMFS again")
    if result["ota_app_reset"]:
        print("an app bundle installed over the air was running; the deployed one runs now")
    if not has_config:
        print("the board has no %s yet: run `soundbox device provision --port %s ID`" % (CONFIG_PATH, args.port))
    return 0


def _romfs_image(bundle, manifest):
    """The bundle's ROMFS image file, checked against its manifest."""
    rom = manifest.get("romfs")
    if rom is None:
        raise DeviceError("the bundle in %s has no ROMFS image: run `soundbox device build` again" % bundle)
    path = os.path.join(bundle, rom["path"])
    if not os.path.isfile(path) or _sha256(path) != rom["sha256"]:
        raise DeviceError("%s does not match the bundle's manifest: run `soundbox device build` again" % path)
    return path


def cmd_provision(args):
    from soundbox_tools.deviceport import Board  # optional board extra
    check_device_id(args.id)
    pki = Pki(args.certs)
    targets, issued = identity_targets(pki, args.id, args.certs)
    password = None
    if args.wifi_ssid is not None:
        password = _wifi_password(args.wifi_ssid)
    with Board(args.port, probe_timeout_s=args.probe_timeout) as board:
        existing = read_device_config(board)
        config = provisioned_config(existing, args.id, broker=args.broker, server_name=args.server_name,
                                    wifi_ssid=args.wifi_ssid, wifi_password=password, network=args.network,
                                    apn=args.apn, lang=args.lang, mqtt=mqttversion.config(args).get("mqtt"))
        targets[CONFIG_PATH] = (json.dumps(config, indent=1, sort_keys=True) + "\n").encode()
        result = sync(board, targets, keep_last=CONFIG_PATH)
        if not args.no_reset:
            board.reset()
    scheme = "mqtts" if config.get("tls") else "mqtt"
    link = ("4G modem (PPP, APN %r)" % config.get("apn", "") if config.get("network") == "ppp"
            else "WiFi %r (password not shown)" % config.get("wifi_ssid"))
    print("provisioned %s on %s: identity %s (device.der, device.key.der, payment.key, ca.der), broker %s://%s:%s, %s; "
          "%d files written, %d unchanged"
          % (args.id, args.port, "issued now" if issued else "from " + pki.device_dir(args.id), scheme,
             config["broker_host"], config["broker_port"], link, result["written"], result["unchanged"]))
    return 0


def _wifi_password(ssid):
    """From $SOUNDBOX_WIFI_PASSWORD, else a prompt: never a command-line argument (shell history, ps)."""
    password = os.environ.get(PASSWORD_ENV)
    if password is None:
        if not sys.stdin.isatty():
            raise DeviceError("set %s to the WiFi password of %r (it is not taken on the command line)"
                              % (PASSWORD_ENV, ssid))
        password = getpass.getpass("WiFi password for %r: " % ssid)
    return password


def cmd_monitor(args):
    from soundbox_tools.devicemonitor import monitor  # optional board extra
    monitor(args.port, baud=args.baud, as_json=args.json)
    return 0


def _exists(board, path):
    return board.exec("import os\ntry:\n os.stat(%r)\n print(1)\nexcept OSError:\n print(0)" % path).strip() == b"1"


def _kib(n):
    return "%.1f KiB" % (n / 1024)


def register(sub):
    """Add `soundbox device ...` to the CLI's subparsers."""
    p = sub.add_parser("device", help="a real ESP32 board: build, flash, deploy, provision, monitor; "
                                      "or a desktop one: run --micropython")
    dsub = p.add_subparsers(dest="device_command", required=True, metavar="ACTION")
    boards = "reference board (%s) or a board JSON file" % ", ".join(board_names())

    b = dsub.add_parser("build", help="compile sdk/ and firmware/ with mpy-cross into a bundle; check its size")
    b.add_argument("--board", default=DEFAULT_BOARD, help=boards + " (default %s)" % DEFAULT_BOARD)
    b.add_argument("--lang", action="append", choices=LANGUAGES, help="voice pack to include (repeat; default en-IN)")
    b.add_argument("--voice", default=DEFAULT_PACK, help="voice pack directory")
    b.add_argument("--no-voice", action="store_true", help="no voice packs (deploy them another way)")
    b.add_argument("--out", default=DEFAULT_BUNDLE)
    b.set_defaults(func=cmd_build)

    f = dsub.add_parser("flash", help="erase the board and write MicroPython with esptool")
    f.add_argument("--port", required=True)
    f.add_argument("--firmware", required=True, metavar="MICROPYTHON.bin")
    f.add_argument("--board", default=DEFAULT_BOARD, help=boards)
    f.add_argument("--baud", type=int, default=460800)
    f.set_defaults(func=cmd_flash)

    def board_args(a):
        a.add_argument("--port", required=True)
        a.add_argument("--certs", default="certs", help="PKI directory (default certs/)")
        a.add_argument("--no-reset", action="store_true", help="leave the board at the REPL afterwards")
        a.add_argument("--probe-timeout", type=float, default=5.0, help=argparse.SUPPRESS)  # tests: a stand-in that is not MicroPython

    d = dsub.add_parser("deploy", help="copy the bundle, CA and OTA keys (and --config) to the board; "
                                       "unchanged files are skipped")
    board_args(d)
    d.add_argument("--bundle", default=DEFAULT_BUNDLE)
    d.add_argument("--config", help="a config.json to write too (provision writes one for you)")
    d.add_argument("--romfs", action="store_true",
                   help="put the code in the board's romfs partition (run in place from flash, not loaded into "
                        "the heap) instead of /lib; needs a MicroPython built with ROMFS (docs/esp32.md)")
    d.set_defaults(func=cmd_deploy)

    v = dsub.add_parser("provision", help="write a device's identity (issued if missing) and config to the board")
    board_args(v)
    v.add_argument("id", metavar="ID", help="device id, e.g. sb-0001")
    v.add_argument("--broker", help="mqtts://HOST:PORT the box connects to (HOST must be in the broker's certificate)")
    v.add_argument("--server-name", help="TLS server name, when it differs from HOST")
    v.add_argument("--wifi-ssid", help="WiFi network; its password comes from $%s or a prompt" % PASSWORD_ENV)
    v.add_argument("--network", choices=["wifi", "ppp"], help="link: WiFi (default) or a 4G modem over PPP")
    v.add_argument("--apn", help="the SIM's APN, for --network ppp")
    v.add_argument("--lang", choices=LANGUAGES, help="announcement language (default en-IN)")
    mqttversion.add_argument(v)
    v.set_defaults(func=cmd_provision)

    m = dsub.add_parser("monitor", help="show the board's serial log; waits for the board when unplugged")
    m.add_argument("--port", required=True)
    m.add_argument("--baud", type=int, default=115200)
    m.add_argument("--json", action="store_true", help="show JSON log lines as LEVEL message key=value")
    m.set_defaults(func=cmd_monitor)

    devicerun.register(dsub)
