"""The environment block of a run's summary: what machine and software produced the figures."""

import os
import platform
import ssl
import subprocess
import sys


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_revision(repo):
    try:
        rev = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (rev + ("-dirty" if dirty else "")) if rev else None


def _mem_total_kib():
    try:
        with open("/proc/meminfo") as f:
            return int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        return None


def describe(broker=None):
    """broker: a soundbox_tools.broker.Mosquitto (its version and config go in), or None."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {
        "cpu": _cpu_model(), "cores": os.cpu_count(), "memory_kib": _mem_total_kib(),
        "kernel": platform.release(), "python": sys.version.split()[0],
        "python_impl": platform.python_implementation(), "openssl": ssl.OPENSSL_VERSION,
        "git": _git_revision(repo),
    }
    if broker is not None:
        env["broker"] = broker.version()
        try:
            with open(os.path.join(broker.workdir, "mosquitto.conf")) as f:
                env["broker_config"] = [line for line in f.read().splitlines()
                                        if line and not line.startswith("#")]
        except OSError:
            env["broker_config"] = None
    return env
