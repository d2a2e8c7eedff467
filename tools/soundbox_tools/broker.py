"""Run a private mosquitto on a free loopback port with a config we generate.

Used by `soundbox broker`, the demo and the test suite, so all three exercise the
same broker settings. Never touches the machine's shared port 1883.
"""
import getpass
import os
import shutil
import subprocess

from soundbox_tools import procs


class BrokerError(Exception):
    pass


def mosquitto_config(port, workdir, host=procs.LOOPBACK):
    # max_queued_messages: mosquitto's default (1000) silently drops QoS 1 messages
    # to a slow subscriber; the cloud handler must never lose an ack that way.
    return "\n".join([
        "per_listener_settings true",
        "persistence false",
        "user " + getpass.getuser(),
        "set_tcp_nodelay true",
        "max_queued_messages 100000",
        "max_inflight_messages 64",
        "log_dest file " + os.path.join(workdir, "mosquitto.log"),
        "log_type error",
        "log_type warning",
        "log_type notice",
        "connection_messages false",
        "listener %d %s" % (port, host),
        "allow_anonymous true",
        "",
    ])


class Mosquitto:
    """A mosquitto child process. Use as a context manager, or start()/stop()."""

    def __init__(self, workdir, port=0, host=procs.LOOPBACK, binary=None):
        self.workdir = os.path.abspath(workdir)
        self.host = host
        self.port = port
        self.binary = binary or shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = None

    @property
    def url(self):
        return "mqtt://%s:%d" % (self.host, self.port)

    def start(self, timeout=10.0, attempts=3):
        if not os.path.exists(self.binary):
            raise BrokerError("mosquitto is not installed (apt-get install mosquitto)")
        os.makedirs(self.workdir, exist_ok=True)
        fixed = self.port != 0
        for _ in range(1 if fixed else attempts):
            if not fixed:
                self.port = procs.free_port(self.host)
            conf = os.path.join(self.workdir, "mosquitto.conf")
            with open(conf, "w") as f:
                f.write(mosquitto_config(self.port, self.workdir, self.host))
            self.proc = procs.spawn([self.binary, "-c", conf],
                                    log_path=os.path.join(self.workdir, "mosquitto.out"))
            if procs.wait_port(self.host, self.port, timeout, self.proc):
                return self
            procs.stop(self.proc)  # port clash or bad config: try another port
        raise BrokerError("mosquitto did not start on %s:%d; see %s"
                          % (self.host, self.port, os.path.join(self.workdir, "mosquitto.log")))

    def stop(self):
        procs.stop(self.proc)
        self.proc = None

    def version(self):
        out = subprocess.run([self.binary, "-h"], capture_output=True, text=True).stdout
        return out.splitlines()[0].strip() if out else "unknown"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
