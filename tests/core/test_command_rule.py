"""The command rule (soundbox.commands) the cloud and the box share. Plain asserts: also
run under a real MicroPython VM (tests/test_device_gates.py), where the box runs it."""

from check import raises

from soundbox import commands
from soundbox.commands import CommandError, parse
from soundbox.voice import LANGUAGES


def _refusal(body, id_required=False):
    """(field, reason, message) of the CommandError parse(body) raises; fails if it returns."""
    try:
        parse(body, id_required)
    except CommandError as e:
        return e.field, e.reason, str(e)
    raise AssertionError("parse accepted %r" % (body,))


def test_every_command_keeps_only_its_own_fields():
    assert parse({"cmd": "volume", "level": 3, "id": "c-1", "extra": 1}) == {"cmd": "volume", "level": 3, "id": "c-1"}
    assert parse({"cmd": "language", "lang": "hi", "id": "c.2", "level": 3}) == {"cmd": "language", "lang": "hi",
                                                                                  "id": "c.2"}
    for cmd in ("replay", "reboot", "telemetry"):
        assert parse({"cmd": cmd, "id": "A_9", "level": 2, "lang": "hi"}) == {"cmd": cmd, "id": "A_9"}


def test_the_result_is_a_new_dict():
    body = {"cmd": "replay", "id": "x"}
    out = parse(body)
    out["cmd"] = "reboot"
    assert body == {"cmd": "replay", "id": "x"}


def test_every_volume_level_and_every_language_is_taken():
    for level in range(1, commands.VOLUME_LEVELS + 1):
        assert parse({"cmd": "volume", "level": level})["level"] == level
    for lang in LANGUAGES:
        assert parse({"cmd": "language", "lang": lang})["lang"] == lang


def test_a_bad_level_is_refused_and_a_bool_is_not_an_integer():
    for bad in (0, 6, -1, True, False, 2.0, "3", None, [3]):
        assert _refusal({"cmd": "volume", "level": bad}) == ("level", "level must be an integer 1-5",
                                                             "level must be an integer 1-5"), bad
    assert _refusal({"cmd": "volume"}) == ("level", "missing field 'level'", "missing field 'level'")


def test_a_bad_language_is_refused():
    expected = "lang must be one of " + ", ".join(LANGUAGES)
    for bad in ("fr", "HI", "", None, 1, ["hi"]):
        assert _refusal({"cmd": "language", "lang": bad})[:2] == ("lang", expected), bad
    assert _refusal({"cmd": "language"})[:2] == ("lang", "missing field 'lang'")


def test_a_missing_or_unknown_cmd_is_refused():
    assert _refusal({})[:2] == ("cmd", "missing field 'cmd'")
    assert _refusal({"level": 3, "id": "c-1"})[:2] == ("cmd", "missing field 'cmd'")
    expected = "cmd must be one of language, reboot, replay, telemetry, volume"
    for bad in ("config", "REPLAY", "", None, 1, True, ["replay"], {"cmd": "replay"}):
        assert _refusal({"cmd": bad})[:2] == ("cmd", expected), bad


def test_a_body_that_is_not_an_object_is_refused():
    for bad in (None, [], [{"cmd": "replay"}], "replay", 1, b"{}"):
        assert _refusal(bad)[:2] == ("body", "command must be a JSON object"), bad


def test_id_rules():
    longest = "a" * commands.ID_MAX
    for good in ("a", "Z", "0", longest, "cmd-2026.12.03_x", "._-"):
        assert parse({"cmd": "replay", "id": good})["id"] == good
    expected = ("id", "id must be 1-40 characters [A-Za-z0-9._-]")
    for bad in ("", longest + "a", "a b", "a/b", "a+b", "é", "a\n", 7, True, ["a"]):
        assert _refusal({"cmd": "replay", "id": bad})[:2] == expected, bad
    assert _refusal({"cmd": "volume", "level": 9, "id": "a b"})[0] == "id"  # the id is looked at first


def test_the_id_is_optional_unless_required():
    assert parse({"cmd": "replay"}) == {"cmd": "replay", "id": None}
    assert parse({"cmd": "replay", "id": None}) == {"cmd": "replay", "id": None}
    assert _refusal({"cmd": "replay"}, True)[:2] == ("id", "missing field 'id'")
    assert parse({"cmd": "replay", "id": "c-1"}, True) == {"cmd": "replay", "id": "c-1"}


def test_id_of_gives_a_valid_id_even_from_a_refused_command():
    assert commands.id_of({"cmd": "volume", "level": 9, "id": "c-7"}) == "c-7"
    for body in ({"cmd": "replay"}, {"id": "a b"}, {"id": 3}, None, ["c-7"], "c-7"):
        assert commands.id_of(body) is None, body


def test_command_error_is_a_value_error_with_field_and_reason():
    e = CommandError("level", "level must be an integer 1-5")
    assert isinstance(e, ValueError) and e.field == "level" and e.reason == str(e)
    assert raises(ValueError, parse, {"cmd": "nope"})


def test_ack():
    assert commands.ack("c-1", "volume", True, None) == {"id": "c-1", "cmd": "volume", "ok": True, "reason": ""}
    assert commands.ack(None, "replay", False, "replay already pending") == {
        "id": None, "cmd": "replay", "ok": False, "reason": "replay already pending"}
