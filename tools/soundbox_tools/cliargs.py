"""What every `soundbox` command shares: the user-error type, the defaults, argument parsers.

The bottom floor of soundbox_tools: it imports nothing from the rest of the tools or from
the simulator, so any tools module (a library part or a command line) may import it.
"""

import argparse
import os
import re

from soundbox.otamanifest import MAX_CHUNK_SIZE

DEFAULT_CLOUD = "http://127.0.0.1:8080"
DEFAULT_PACK = os.path.join(".state", "voice")  # holds <lang>.pack
DB_HELP = "a SQLite file path, or postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE"


class CliError(Exception):
    """A problem the user can fix; printed as one line, exit status 1."""


def parse_hostport(text):
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise CliError("expected HOST:PORT, got %r" % text)
    return host, int(port)


SIZE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)")
SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20, "g": 1 << 30,
              "gib": 1 << 30, "kb": 1000, "mb": 1000 ** 2, "gb": 1000 ** 3}
NO_LIMIT = ("off", "none", "0")


def parse_size(text):
    """Bytes from "1048576", "512KiB", "1.5 MiB", "2MB" (KiB/MiB/GiB or K/M/G: powers of 1024;
    kB/MB/GB: of 1000); ValueError saying what is accepted."""
    m = SIZE.fullmatch(text.strip().lower())
    if not m or m.group(2) not in SIZE_UNITS:
        raise ValueError("%r is not a size: give bytes, or a number with KiB, MiB or GiB (e.g. 512KiB)" % text)
    return int(float(m.group(1)) * SIZE_UNITS[m.group(2)])


def size_arg(text):
    """parse_size as an argparse type: a bad size is argparse's one-line usage error."""
    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def positive_seconds(text):
    """A duration in seconds, more than 0."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a number of seconds" % text) from None
    if not seconds > 0 or seconds == float("inf"):
        raise argparse.ArgumentTypeError("%r: give a number of seconds above 0" % text)
    return seconds


def chunk_rate_arg(text):
    """--chunk-rate: bytes a second per device ("1MiB", "1MiB/s"), or None for off/0."""
    if text.strip().lower() in NO_LIMIT:
        return None
    body = text.strip()
    body = body[:-2] if body.lower().endswith("/s") else body
    try:
        rate = parse_size(body)
    except ValueError as e:
        raise argparse.ArgumentTypeError("%s, or off for no limit" % e) from None
    if rate < 1:
        raise argparse.ArgumentTypeError("%r is less than 1 byte a second; use off for no limit" % text)
    return rate


def chunk_burst_arg(text):
    """--chunk-burst: bytes, at least one chunk of the largest size a manifest may have."""
    if text.strip().lower() in ("off", "none"):
        raise argparse.ArgumentTypeError("a burst cannot be off; use --chunk-rate off for no limit")
    try:
        burst = parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if burst < MAX_CHUNK_SIZE:   # below one chunk a device would never get that chunk
        raise argparse.ArgumentTypeError("%r is less than one chunk (%d KiB at most); turn the limit off "
                                         "with --chunk-rate off instead" % (text, MAX_CHUNK_SIZE >> 10))
    return burst


def add_api_key(parser):
    """--api-key for every command that calls the cloud's HTTP API."""
    parser.add_argument("--api-key", default=os.environ.get("SOUNDBOX_API_KEY"), metavar="KEY",
                        help="sent as Authorization: Bearer KEY (default: $SOUNDBOX_API_KEY)")
