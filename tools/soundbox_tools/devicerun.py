"""`soundbox device run --micropython`: a desktop soundbox for firmware engineers.

The same firmware as the board, on MicroPython's unix port (soundbox_tools.mpdevice):
its identity from the PKI (issued if missing), the voice pack built if missing, flash
in --state. With --broker it attaches to that broker; without, it starts a private
mutual-TLS mosquitto and the cloud handler on free loopback ports, and prints the
command that makes it speak. Its log is shown as it runs; Ctrl-C stops everything.
"""

import os
import sys
import time

from soundbox.voice import LANGUAGES
from soundbox_cloud.errors import BrokerUnavailable
from soundbox_cloud.mqttlink import parse_broker_url
from soundbox_tools import mqttversion, procs
from soundbox_tools.broker import Mosquitto
from soundbox_tools.cliargs import DEFAULT_PACK, CliError
from soundbox_tools.mpdevice import MicroPythonDevice, MicroPythonError, device_config
from soundbox_tools.pki import Pki, PkiError, check_device_id, check_identity


def _identity(certs, device_id):
    try:
        check_device_id(device_id)
        pki = Pki(certs)
        if not pki.exists():
            pki.init()
        if not os.path.exists(os.path.join(pki.device_dir(device_id), "device.der")):
            pki.issue_device(device_id)
    except (PkiError, ValueError) as e:
        raise CliError(str(e))
    problems = check_identity(pki.device_dir(device_id))
    if problems:
        raise CliError("identity of %s is unusable: %s" % (device_id, "; ".join(problems)))
    return pki


def _services(pki, state):
    """A private mTLS broker and the cloud handler: (broker, cloud process, API URL)."""
    broker = Mosquitto(os.path.join(state, "broker"), pki=pki).start()
    port = procs.free_port()
    cloud = procs.spawn([sys.executable, "-m", "soundbox_tools.cli", "cloud", "--broker", broker.url,
                         "--http", "127.0.0.1:%d" % port, "--db", os.path.join(state, "cloud.db"),
                         "--certs", pki.root], log_path=os.path.join(state, "cloud.log"))
    if not procs.wait_port("127.0.0.1", port, 15, cloud):
        procs.stop(cloud)
        broker.stop()
        raise CliError("the cloud handler did not start; see %s" % os.path.join(state, "cloud.log"))
    return broker, cloud, "http://127.0.0.1:%d" % port


def cmd_run(args):
    if not args.micropython:
        raise CliError("say which runtime: --micropython (the unix port); `soundbox sim` runs the firmware on CPython")
    from soundbox_tools.voicepack import build_pack  # off CLI startup

    state = os.path.abspath(args.state)
    os.makedirs(state, exist_ok=True)
    pki = _identity(args.certs, args.id)
    build_pack(args.lang, args.voice)
    broker = cloud = None
    if args.broker:
        try:
            host, port, tls = parse_broker_url(args.broker)
        except BrokerUnavailable as e:
            raise CliError(str(e)) from None
    else:
        broker, cloud, api = _services(pki, state)
        host, port, tls = broker.host, broker.port, True
    config = device_config(args.id, host, port, os.path.abspath(pki.device_dir(args.id)), None,
                           os.path.abspath(args.voice), tls=tls, lang=args.lang,
                           wav_dir=os.path.abspath(args.wav) if args.wav else None,
                           journal=os.path.join(state, "announcements.jsonl"), **mqttversion.config(args))
    if args.server_name:
        config["tls"]["server_hostname"] = args.server_name
    try:
        device = MicroPythonDevice(os.path.join(state, args.id), config, heapsize=args.heap)
    except MicroPythonError as e:
        raise CliError(str(e))
    device.start()
    print("device: %s on MicroPython (%s), %s://%s:%d; log %s" % (args.id, device.binary, "mqtts" if tls else "mqtt",
                                                                   host, port, device.log_path), flush=True)
    if cloud is not None:
        print("pay:    soundbox pay %s 25000 --cloud %s" % (args.id, api), flush=True)
    print("keys:   echo replay > %s   (replay, today, volume_up, volume_down)" % device.keys, flush=True)
    shown = 0
    try:
        while device.alive():
            text = device.log_text()
            sys.stdout.write(text[shown:])
            sys.stdout.flush()
            shown = len(text)
            time.sleep(0.2)
        sys.stdout.write(device.log_text()[shown:])
        print("device: exited with status %s" % device.proc.returncode)
        return 1
    except KeyboardInterrupt:
        print("\nstopping")
        return 0
    finally:
        device.stop()
        procs.stop(cloud)
        if broker is not None:
            broker.stop()


def register(dsub):
    """Add `soundbox device run` to the `soundbox device` subparsers."""
    r = dsub.add_parser("run", help="a desktop soundbox: the real firmware on MicroPython's unix port, no board")
    r.add_argument("--micropython", action="store_true", help="run on MicroPython's unix port (`micropython`)")
    r.add_argument("--id", default="sb-0001", help="device id (default sb-0001)")
    r.add_argument("--broker", help="mqtts://HOST:PORT or mqtt://HOST:PORT; default: start a private broker "
                                    "and the cloud handler")
    r.add_argument("--server-name", help="TLS server name, when it differs from HOST")
    r.add_argument("--certs", default="certs", help="PKI directory (default certs/); the identity is issued if missing")
    r.add_argument("--lang", default="en-IN", choices=LANGUAGES)
    r.add_argument("--voice", default=DEFAULT_PACK, help="voice pack directory (built if missing)")
    r.add_argument("--state", default=os.path.join(".state", "desktop"), help="flash, config and logs")
    r.add_argument("--wav", help="also write each announcement as a WAV file in this directory")
    r.add_argument("--heap", help="MicroPython GC heap, e.g. 110k (an ESP32 without PSRAM)")
    mqttversion.add_argument(r)
    r.set_defaults(func=cmd_run)
