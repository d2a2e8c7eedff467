"""The one rule for commands to a box, on sb/<id>/cmd (QoS 1, JSON) and answered on
sb/<id>/cmdack. The cloud checks an HTTP request with it before publishing; the box
checks what arrives with it again before acting. Runs on MicroPython and CPython.

    {"cmd": "volume", "level": 1..VOLUME_LEVELS}   speaker volume (kept on flash)
    {"cmd": "language", "lang": voice.LANGUAGES}   spoken language (kept on flash)
    {"cmd": "replay"}                              say the last announcement again
    {"cmd": "reboot"}                              restart once the speaker is quiet
    {"cmd": "telemetry"}                           publish telemetry now

Every command carries an "id" (ID_MAX characters at most of [A-Za-z0-9._-]) that the
box's cmdack echoes, so the cloud can tell which command an answer is for. The box
takes a command without one (from an older cloud) and answers with id null.

No "config" command: the box has no other setting it can change while running. Its
telemetry goes out on each connect (no interval to set), and the rest of its config
(freshness, time zone, broker) is read once at start and not kept on flash.
"""

from soundbox.voice import LANGUAGES

VOLUME_LEVELS = 5  # the speaker's steps, 1 (quietest) .. 5
ID_MAX = 40
COMMANDS = ("language", "reboot", "replay", "telemetry", "volume")  # sorted: reasons list them
_ID_PUNCTUATION = "._-"


class CommandError(ValueError):
    """A command refused: `field` names what is wrong ("body", "cmd", "id", or a
    command's own field), `reason` says why in one line (also the message)."""

    def __init__(self, field, reason):
        super().__init__(reason)
        self.field = field
        self.reason = reason


def valid_id(value):
    """True for a command id: a str of 1..ID_MAX characters of [A-Za-z0-9._-]."""
    if not isinstance(value, str) or not 1 <= len(value) <= ID_MAX:
        return False
    for ch in value:
        if not ("a" <= ch <= "z" or "A" <= ch <= "Z" or "0" <= ch <= "9" or ch in _ID_PUNCTUATION):
            return False
    return True


def id_of(body):
    """The body's id when it is a valid one, else None: what an ack echoes even when the
    command itself was refused."""
    if isinstance(body, dict) and valid_id(body.get("id")):
        return body["id"]
    return None


def parse(body, id_required=False):
    """A new dict with only the known fields of `body`'s command, plus "id" (None when
    absent and not id_required), or raise CommandError(field, reason)."""
    if not isinstance(body, dict):
        raise CommandError("body", "command must be a JSON object")
    if "cmd" not in body:
        raise CommandError("cmd", "missing field 'cmd'")
    cmd = body["cmd"]
    if not isinstance(cmd, str) or cmd not in COMMANDS:
        raise CommandError("cmd", "cmd must be one of " + ", ".join(COMMANDS))
    ident = body.get("id")
    if ident is None:
        if id_required:
            raise CommandError("id", "missing field 'id'")
    elif not valid_id(ident):
        raise CommandError("id", "id must be 1-%d characters [A-Za-z0-9._-]" % ID_MAX)
    out = {"cmd": cmd, "id": ident}
    if cmd == "volume":
        level = _field(body, "level")
        if type(level) is not int or not 1 <= level <= VOLUME_LEVELS:  # type(): True is no level
            raise CommandError("level", "level must be an integer 1-%d" % VOLUME_LEVELS)
        out["level"] = level
    elif cmd == "language":
        lang = _field(body, "lang")
        if not isinstance(lang, str) or lang not in LANGUAGES:
            raise CommandError("lang", "lang must be one of " + ", ".join(LANGUAGES))
        out["lang"] = lang
    return out


def ack(command_id, cmd, ok, reason):
    """The cmdack a box publishes for a command: {"id", "cmd", "ok", "reason"}."""
    return {"id": command_id, "cmd": cmd, "ok": bool(ok), "reason": reason or ""}


def _field(body, name):
    if name not in body:
        raise CommandError(name, "missing field '%s'" % name)
    return body[name]
