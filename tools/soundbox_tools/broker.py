"""Run a private mosquitto on a free loopback port with a config we generate.

Used by `soundbox broker`, the demo and the test suite, so all three exercise the
same broker settings. Never touches the machine's shared port 1883.

Given a `Pki`, the listener is mutual TLS: every client shows a certificate from our CA,
its CN becomes its username *and* its client id, and mosquitto's dynamic-security plugin
confines each device to sb/<its id>/# for subscribe, publish and delivery alike. Without
one it is plain MQTT with anonymous access (development only). The generated config
carries comments on what was measured on mosquitto 2.0.11.

Why the plugin and not an acl_file (measured on 2.0.11): an acl_file is checked when a
message is delivered, never when a SUBSCRIBE is accepted, so a device that subscribed
`$share/cloud/sb/+/ack` joined the cloud's share group and was handed every second ack,
which the ACL then dropped: acks lost for good. The plugin checks the filter at SUBSCRIBE
(a refused one gets SUBACK 0x80 and is never added), so the group stays the cloud's.
It has no %u patterns: each device is a plugin client with a role of its own, written
from the PKI's index at every start and kept in step live by `sync()` (on reload), which
also ends the session of a device whose certificate was revoked.
"""
import base64
import getpass
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading

from soundbox import wire
from soundbox_tools import procs
from soundbox_tools.pki import SERVICE_IDS

DYNSEC_PLUGINS = ("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
                  "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
                  "/usr/lib/mosquitto_dynamic_security.so",
                  "/usr/local/lib/mosquitto_dynamic_security.so")
# The plugin client that edits the others, over a unix socket only. '_' cannot appear in a
# device id or any CN our PKI issues, so no certificate can log in as it.
ADMIN = "broker_admin"
CONTROL = "$CONTROL/dynamic-security/v1"
ADMIN_TIMEOUT_S = 10.0
WATCH_S = 0.5       # how often a running broker looks whether the PKI's index.json changed

# What each identity may do; a device gets its own topics only. The cloud handler takes
# acks and OTA statuses through $share/<group>/ (so several handlers can split them) and
# status through a plain subscription (shared ones get no retained messages). Its bulk
# connection takes telemetry and chunk requests and sends chunks, nothing else.
CLOUD_SENDS = tuple(wire.any_device(k) for k in (wire.NOTIFY, wire.CMD, wire.OTA_JOB))
CLOUD_READS = tuple(wire.any_device(k) for k in (wire.ACK, wire.STATUS, wire.CMDACK, wire.OTA_STATUS))
BULK_SENDS = (wire.any_device(wire.OTA_CHUNK),)
BULK_READS = tuple(wire.any_device(k) for k in (wire.TELEMETRY, wire.OTA_REQ))


class BrokerError(Exception):
    pass


def dynsec_plugin():
    """Path of mosquitto's dynamic-security plugin, or BrokerError saying how to get it."""
    for path in DYNSEC_PLUGINS:
        if os.path.exists(path):
            return path
    raise BrokerError("mosquitto's dynamic-security plugin (mosquitto_dynamic_security.so) is "
                      "missing: install mosquitto 2.0 or later (apt-get install mosquitto)")


def _acls(sends=(), reads=(), subscribes=()):
    return ([{"acltype": "publishClientSend", "topic": t, "allow": True} for t in sends]
            + [{"acltype": "publishClientReceive", "topic": t, "allow": True} for t in reads]
            + [{"acltype": "subscribePattern", "topic": t, "allow": True} for t in subscribes])


def device_role(device_id):
    own = wire.topic(device_id, "#")
    return {"rolename": "device:" + device_id, "acls": _acls([own], [own], [own])}


def service_role(name, sends, reads):
    subscribes = [f for t in reads for f in (t, "$share/+/" + t)]
    return {"rolename": name, "acls": _acls(sends, reads, subscribes)}


def admin_role():
    return {"rolename": "admin", "acls": _acls([CONTROL], [CONTROL + "/#"], [CONTROL + "/#"])}


def password_fields(password):
    """The plugin's stored form: PBKDF2-HMAC-SHA512, 12-byte salt, 64-byte hash, base64."""
    salt = secrets.token_bytes(12)
    iterations = 101      # the plugin's own default; the secret is 32 random bytes anyway
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return {"password": base64.b64encode(digest).decode(), "salt": base64.b64encode(salt).decode(),
            "iterations": iterations}


def allowed_devices(pki):
    """Device ids whose current certificate is not revoked, from the PKI's index.json."""
    with open(pki.path("index.json")) as f:
        index = json.load(f)
    return sorted(d for d in index.get("issued", {})
                  if d not in SERVICE_IDS and not pki.is_revoked(d, index))


def dynsec_config(devices, admin_password):
    """The plugin's JSON: nothing is allowed unless a role says so."""
    clients = [{"username": d, "roles": [{"rolename": "device:" + d}]} for d in devices]
    clients.append({"username": "cloud", "roles": [{"rolename": "cloud"}]})
    clients.append({"username": "cloud-bulk", "roles": [{"rolename": "cloud-bulk"}]})
    clients.append(dict({"username": ADMIN, "roles": [{"rolename": "admin"}]},
                        **password_fields(admin_password)))
    return {"defaultACLAccess": {"publishClientSend": False, "publishClientReceive": False,
                                 "subscribe": False, "unsubscribe": True},
            "clients": clients, "groups": [],
            "roles": [device_role(d) for d in devices] + [
                service_role("cloud", CLOUD_SENDS, CLOUD_READS),
                service_role("cloud-bulk", BULK_SENDS, BULK_READS), admin_role()]}


def mosquitto_config(port, workdir, host=procs.LOOPBACK, pki=None, admin_socket=None):
    """The config text; its comments say why each setting has its value."""
    workdir = os.path.abspath(str(workdir))
    lines = [
        "# Generated by soundbox_tools.broker (mosquitto 2.0.11); regenerated at every start.",
        "# One set of security settings for both listeners: the plugin below holds every",
        "# identity's rights (2.0.11 loads a plugin once per broker, not per listener).",
        "per_listener_settings false",
        "# Sessions and their queued QoS 1 messages are written to disk on a clean stop",
        "# (SIGTERM) and every autosave_interval seconds, so a restart keeps them. A kill -9",
        "# loses what arrived since the last save: the cloud re-sends a notification still",
        "# unacked after a while, and the box answers a repeat from its ledger.",
        "persistence true",
        "persistence_location " + workdir + os.sep,
        "autosave_interval 2",
        "user " + getpass.getuser(),
        "set_tcp_nodelay true",
        "# max_queued_messages (per client, beyond the in-flight window; one value for",
        "# all clients): past it mosquitto silently drops QoS 1 messages. The default of",
        "# 1000 is too small for the cloud handler, one client taking the acks of the",
        "# whole fleet after an outage; a device gets nowhere near it (a week offline at",
        "# a counter taking a few hundred payments a day). Cost measured on 2.0.11: about",
        "# 0.4 KiB per queued notification, so at worst ~40 MiB for one client.",
        "max_queued_messages 100000",
        "# max_inflight_messages: QoS 1 messages sent to a client and not yet PUBACKed.",
        "# A device PUBACKs once its app has queued the payment (16 deep) and stops",
        "# reading while that queue is full, so TCP flow control, not this number, bounds",
        "# what reaches it; 64 lets a reconnecting device's backlog flow without waiting",
        "# a round trip per payment. For the cloud (paho PUBACKs at once) it caps",
        "# throughput at 64 per round trip: ~1,300 acks/s even over a 50 ms link.",
        "max_inflight_messages 64",
        "log_dest file " + os.path.join(workdir, "mosquitto.log"),
        "log_type error",
        "log_type warning",
        "log_type notice",
        "connection_messages false",
    ]
    if not pki:
        return "\n".join(lines + ["", "listener %d %s" % (port, host),
                                  "# Plain MQTT, anyone may connect: development only.",
                                  "allow_anonymous true", ""])
    lines += [
        "allow_anonymous false",
        "# Every identity's rights; nothing is allowed unless its role says so. Written",
        "# from the PKI at every start; edited live over the admin socket (see sync()).",
        "plugin " + dynsec_plugin(),
        "plugin_opt_config_file " + os.path.join(workdir, "dynamic-security.json"),
        "",
        "listener %d %s" % (port, host),
    ]
    lines += _tls_listener(pki)
    lines += ["", "# The admin socket: a unix socket in a 0700 directory, for the plugin's",
              "# %s only (password in %s)." % (ADMIN, os.path.join(workdir, "admin.secret")),
              "listener 0 " + (admin_socket or os.path.join(workdir, "admin.sock"))]
    return "\n".join(lines + [""])


def _tls_listener(pki):
    files = pki.files("broker")
    return [
        "cafile " + files["ca"],
        "certfile " + files["cert"],
        "keyfile " + files["key"],
        "# mosquitto 2.0.11 re-reads the CRL on SIGHUP: new handshakes with a revoked",
        "# certificate fail from then on; a connection made earlier is ended by sync(),",
        "# which deletes the device from the plugin (the plugin disconnects it).",
        "crlfile " + pki.current_crl(),
        "# The minimum: TLS 1.3 is negotiated when both ends have it.",
        "tls_version tlsv1.2",
        "require_certificate true",
        "use_identity_as_username true",
        "# The client id is replaced by the certificate's CN, whatever the client sent:",
        "# a device cannot take over (and disconnect) another device's session by",
        "# claiming its client id. One connection per identity: a second connection",
        "# with the same certificate replaces the first, and a clean-session connect",
        "# with it ends that identity's persistent session.",
        "use_username_as_clientid true",
    ]


def _write_private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def write_config(workdir, port, host=procs.LOOPBACK, pki=None, admin_socket=None, admin_password=None):
    """Write mosquitto.conf (and, for TLS, the plugin's rights and the admin secret) into
    workdir; returns the config's path. admin_password None: keep the plugin file as it is
    (the running broker owns it), else write it afresh from the PKI."""
    workdir = os.path.abspath(str(workdir))
    os.makedirs(workdir, exist_ok=True)
    if pki and admin_password is not None:
        _write_private(os.path.join(workdir, "dynamic-security.json"),
                       json.dumps(dynsec_config(allowed_devices(pki), admin_password), indent=1))
        _write_private(os.path.join(workdir, "admin.secret"), admin_password + "\n")
    conf = os.path.join(workdir, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write(mosquitto_config(port, workdir, host, pki, admin_socket))
    return conf


def _size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _last_error(marks):
    """The reason mosquitto gave for dying: the last Error line it wrote to its log or its
    stderr since the offsets in `marks` (path -> size before it started), else its last line."""
    lines = []
    for path, offset in marks.items():
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                lines += f.read().decode(errors="replace").splitlines()
        except OSError:
            continue
    # Each line starts "<unix time>: "; the reason is what follows.
    lines = [line.split(": ", 1)[-1].strip() for line in lines if line.strip()]
    errors = [line for line in lines if line.startswith("Error")]
    return (errors or lines or ["no reason given"])[-1]


class Mosquitto:
    """A mosquitto child process. Use as a context manager, or start()/stop().

    After the first start the port is fixed, so stop(); start() comes back on the same
    port with the sessions and queued messages persisted at stop.
    """

    def __init__(self, workdir, port=0, host=procs.LOOPBACK, pki=None, binary=None):
        self.workdir = os.path.abspath(str(workdir))
        self.host = host
        self.port = port
        self.pki = pki
        self.binary = binary or shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = None
        self.devices = set()        # the device ids the plugin lets in now
        self._admin_dir = None
        self._admin_password = None
        self._sync_lock = threading.Lock()
        self._watch_stop = threading.Event()
        self._watcher = None

    @property
    def url(self):
        return "%s://%s:%d" % ("mqtts" if self.pki else "mqtt", self.host, self.port)

    @property
    def log_path(self):
        return os.path.join(self.workdir, "mosquitto.log")

    @property
    def admin_socket(self):
        # A short path of its own: a unix socket path has room for 107 bytes only, and a
        # test's workdir can be longer than that.
        return os.path.join(self._admin_dir, "admin.sock") if self._admin_dir else None

    @property
    def out_path(self):
        return os.path.join(self.workdir, "mosquitto.out")   # its stdout and stderr

    def start(self, timeout=10.0, attempts=3):
        if not os.path.exists(self.binary):
            raise BrokerError("mosquitto is not installed (apt-get install mosquitto)")
        fixed = self.port != 0
        if fixed and procs.port_in_use(self.host, self.port):
            raise BrokerError("port %d on %s is already in use by another process: pick another "
                              "--port, or 0 for a free one" % (self.port, self.host))
        if self.pki:
            self._admin_dir = self._admin_dir or tempfile.mkdtemp(prefix="sb-mqadm-")
            self._admin_password = secrets.token_urlsafe(32)
        for _ in range(1 if fixed else attempts):
            if not fixed:
                self.port = procs.free_port(self.host)
            conf = write_config(self.workdir, self.port, self.host, self.pki, self.admin_socket,
                                self._admin_password)
            marks = {path: _size(path) for path in (self.log_path, self.out_path)}
            self.proc = procs.spawn([self.binary, "-c", conf], log_path=self.out_path)
            if procs.wait_port(self.host, self.port, timeout, self.proc):
                self.devices = set(allowed_devices(self.pki)) if self.pki else set()
                self._start_watching()
                return self
            code = self.proc.poll()
            procs.stop(self.proc)  # port clash or bad config: try another port
            self.proc = None
            if code is None:
                failure = "mosquitto did not listen on %s:%d within %.0f s" % (self.host, self.port, timeout)
            else:
                failure = "mosquitto exited (code %d): %s" % (code, _last_error(marks))
        raise BrokerError("%s; see %s" % (failure, self.log_path))

    def _start_watching(self):
        """Sync the plugin whenever the PKI's index changes (a device issued or revoked while
        the broker runs), so `soundbox pki device` needs no reload to let a box in."""
        if not self.pki or self._watcher is not None:
            return
        self._watch_stop.clear()
        self._watcher = threading.Thread(target=self._watch_index, name="broker-pki-watch", daemon=True)
        self._watcher.start()

    def _watch_index(self):
        seen = self._index_stamp()
        while not self._watch_stop.wait(WATCH_S):
            stamp = self._index_stamp()
            if stamp == seen:
                continue
            try:
                self.sync()
                seen = stamp
            except (BrokerError, OSError, ValueError):
                pass   # half-written index or broker restarting: try again next round

    def _index_stamp(self):
        try:
            st = os.stat(self.pki.path("index.json"))
            return st.st_mtime_ns, st.st_size
        except OSError:
            return None

    def _stop_watching(self):
        if self._watcher is not None:
            self._watch_stop.set()
            self._watcher.join()
            self._watcher = None

    def stop(self):
        self._stop_watching()
        procs.stop(self.proc)  # SIGTERM: mosquitto saves its persistence file on the way out
        self.proc = None
        if self._admin_dir:
            shutil.rmtree(self._admin_dir, ignore_errors=True)
            self._admin_dir = None

    def kill(self):
        """kill -9: no persistence save on the way out (what a crash or power cut does)."""
        self._stop_watching()
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def restart(self):
        """Stop and start on the same port: persisted sessions survive; every client
        reconnects, so a revoked one is cut off for good."""
        self.stop()
        return self.start()

    def reload(self):
        """SIGHUP (mosquitto re-reads its config and CRL: a revoked certificate can no longer
        connect), then sync() the plugin with the PKI: a device issued since start is let
        in, and a revoked one still connected is disconnected and has no rights left.
        Returns sync()'s (added, removed)."""
        if self.proc is None or self.proc.poll() is not None:
            raise BrokerError("mosquitto is not running")
        write_config(self.workdir, self.port, self.host, self.pki, self.admin_socket)
        self.proc.send_signal(signal.SIGHUP)
        return self.sync()

    def sync(self):
        """Bring the plugin's devices in line with the PKI's index: add the newly issued,
        delete the revoked (the plugin then disconnects any session of theirs at once).
        Returns (added, removed), sorted."""
        if not self.pki:
            return [], []
        with self._sync_lock:
            return self._sync()

    def _sync(self):
        wanted = set(allowed_devices(self.pki))
        added, removed = sorted(wanted - self.devices), sorted(self.devices - wanted)
        commands = []
        for d in added:
            commands.append(dict(device_role(d), command="createRole"))
            commands.append({"command": "createClient", "username": d,
                             "roles": [{"rolename": "device:" + d}]})
            # A box that connected before it had rights had its subscriptions refused:
            # disabling kicks it, so it comes back and subscribes with them.
            commands.append({"command": "disableClient", "username": d})
            commands.append({"command": "enableClient", "username": d})
        for d in removed:
            commands.append({"command": "deleteClient", "username": d})
            commands.append({"command": "deleteRole", "rolename": "device:" + d})
        if commands:
            self.control(commands)
        self.devices = wanted
        return added, removed

    def control(self, commands):
        """Send dynamic-security commands over the admin socket; their responses, or
        BrokerError naming the first one refused."""
        responses = AdminLink(self.admin_socket, self._admin_password).ask(commands)
        failed = [r for r in responses if r.get("error")]
        if failed:
            raise BrokerError("broker refused %s: %s" % (failed[0].get("command"), failed[0]["error"]))
        return responses

    def version(self):
        out = subprocess.run([self.binary, "-h"], capture_output=True, text=True).stdout
        return out.splitlines()[0].strip() if out else "unknown"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class AdminLink:
    """One short MQTT session over the admin socket: subscribe to the plugin's responses,
    publish one batch of commands, wait for the answer."""

    def __init__(self, socket_path, password):
        if not socket_path or not password:
            raise BrokerError("no admin socket: the broker runs without TLS or is not started")
        self.socket_path, self.password = socket_path, password

    def ask(self, commands):
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        subscribed, answered, replies = threading.Event(), threading.Event(), []
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=ADMIN, transport="unix",
                             protocol=mqtt.MQTTv311)
        client.username_pw_set(ADMIN, self.password)
        client.on_connect = lambda c, u, f, rc, p: (not rc.is_failure) and c.subscribe(CONTROL + "/response", 1)
        client.on_subscribe = lambda c, u, mid, codes, p: subscribed.set()
        client.on_message = lambda c, u, m: (replies.append(m.payload), answered.set())
        try:
            client.connect(self.socket_path, 1)   # paho wants a port; a unix socket has none
        except OSError as e:
            raise BrokerError("cannot reach the broker's admin socket %s: %s" % (self.socket_path, e)) from None
        client.loop_start()
        try:
            if not subscribed.wait(ADMIN_TIMEOUT_S):
                raise BrokerError("the broker's admin socket did not answer within %.0f s" % ADMIN_TIMEOUT_S)
            client.publish(CONTROL, json.dumps({"commands": commands}), qos=1)
            if not answered.wait(ADMIN_TIMEOUT_S):
                raise BrokerError("the broker did not answer %d admin commands within %.0f s"
                                  % (len(commands), ADMIN_TIMEOUT_S))
        finally:
            client.disconnect()
            client.loop_stop()
        return json.loads(replies[0]).get("responses", [])


# ---- CLI ------------------------------------------------------------------------

def _pki_for(args):
    """The Pki to use: --plain -> None; --certs DIR must hold a CA; default certs/ if present."""
    from soundbox_tools.pki import Pki

    if args.plain:
        return None
    pki = Pki(args.certs or "certs")
    if pki.exists():
        return pki
    if args.certs:
        raise BrokerError("no CA in %s: run `soundbox pki init --dir %s` or pass --plain"
                          % (pki.root, args.certs))
    print("note: no certs/ here, so plain MQTT without TLS (`soundbox pki init` turns TLS on)")
    return None


def cmd_config(args):
    pki = _pki_for(args)
    print(write_config(args.dir, args.port or (8883 if pki else 1883), pki=pki,
                       admin_password=secrets.token_urlsafe(32) if pki else None))
    return 0


def cmd_run(args):
    handled = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    with Mosquitto(args.dir, port=args.port, pki=_pki_for(args)) as broker:
        # Blocked only now: mosquitto must not inherit the mask, or SIGTERM could not stop it.
        signal.pthread_sigmask(signal.SIG_BLOCK, handled)
        print("mosquitto listening on %s (config %s/mosquitto.conf); Ctrl-C stops it, "
              "SIGHUP to pid %d reloads the CRL and the devices from the PKI (a revoked "
              "device still connected is disconnected)" % (broker.url, broker.workdir, os.getpid()),
              flush=True)
        while signal.sigwait(handled) == signal.SIGHUP:
            added, removed = broker.reload()
            print("reloaded: %d devices added, %d removed%s" % (
                len(added), len(removed), (" (" + ", ".join(removed) + " disconnected)") if removed else ""),
                flush=True)
    return 0


def register(sub):
    """Add `soundbox broker config|run` to the CLI's subparsers."""
    p = sub.add_parser("broker", help="a private mosquitto with the project's config (mTLS with certs/)")
    broker_sub = p.add_subparsers(dest="broker_command", required=True, metavar="ACTION")
    for name, func, help_text, port_help in (
            ("run", cmd_run, "run mosquitto on loopback", "0 picks a free port"),
            ("config", cmd_config, "write mosquitto.conf (and the ACL) and print its path",
             "default 8883 with TLS, 1883 without")):
        a = broker_sub.add_parser(name, help=help_text)
        a.add_argument("--port", type=int, default=0, help=port_help)
        a.add_argument("--dir", default=os.path.join(".state", "broker"), help="config, ACL, log, persistence")
        tls = a.add_mutually_exclusive_group()
        tls.add_argument("--certs", help="PKI workspace (default certs/ when it exists)")
        tls.add_argument("--plain", action="store_true", help="plain MQTT, anonymous, no TLS")
        a.set_defaults(func=func)
