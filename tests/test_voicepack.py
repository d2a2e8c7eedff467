"""The real en-IN voice pack (pyttsx3 + espeak-ng) and the simulator's audio sinks built on it."""

import array
import asyncio
import json
import os
import sys
import time
import wave

import pytest

from soundbox.voice import TOKENS, amount_tokens
from soundbox_sim.audio import TimingSink, WavSink
from soundbox_tools.voicepack import VoicePackError, build_pack, load_index


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    """One real build shared by the module: (pack_dir, index, progress calls)."""
    pack_dir = tmp_path_factory.mktemp("pack") / "en-IN"
    calls = []
    index = build_pack("en-IN", pack_dir, progress=lambda done, total: calls.append((done, total)))
    return pack_dir, index, calls


def wav_shape(path):
    with wave.open(str(path), "rb") as w:
        return w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()


def test_every_token_has_a_valid_clip(pack):
    pack_dir, index, _ = pack
    assert index["lang"] == "en-IN"
    assert (index["rate"], index["channels"], index["width"]) == (22050, 1, 2)
    assert set(index["clips"]) == set(TOKENS["en-IN"])
    for token, clip in index["clips"].items():
        assert clip["file"] == token + ".wav"
        rate, channels, width, frames = wav_shape(pack_dir / clip["file"])
        assert (rate, channels, width) == (22050, 1, 2), token
        # A spoken word lasts at least ~0.15 s; trimming keeps it under ~1.5 s.
        assert 0.15 * rate < frames < 1.5 * rate, (token, frames)
        assert abs(clip["ms"] - frames * 1000 / rate) <= 1, token


def test_clips_are_trimmed(pack):
    pack_dir, index, _ = pack
    pad = 22050 * 31 // 1000  # the 30 ms kept at each end, plus rounding
    for token, clip in index["clips"].items():
        with wave.open(str(pack_dir / clip["file"]), "rb") as w:
            samples = array.array("h", w.readframes(w.getnframes()))
        if sys.byteorder == "big":
            samples.byteswap()
        loud = [i for i, s in enumerate(samples) if abs(s) > 500]
        # espeak ends each utterance with ~0.3 s of silence: only the pad may remain.
        assert loud[0] <= pad and len(samples) - 1 - loud[-1] <= pad, token


def test_progress_was_reported(pack):
    _, index, calls = pack
    total = len(TOKENS["en-IN"])
    assert calls[0] == (1, total) and calls[-1] == (total, total)
    assert len(calls) == total


def test_second_build_is_cached(pack):
    pack_dir, index, _ = pack
    before = {p.name: p.stat().st_mtime_ns for p in pack_dir.iterdir()}
    start = time.monotonic()
    again = build_pack("en-IN", pack_dir)
    assert time.monotonic() - start < 0.5
    assert again == index
    assert {p.name: p.stat().st_mtime_ns for p in pack_dir.iterdir()} == before


def test_incomplete_pack_is_rebuilt(pack, tmp_path):
    pack_dir, index, _ = pack
    partial = tmp_path / "partial"
    partial.mkdir()
    clips = dict(index["clips"])
    del clips["crore"]
    (partial / "index.json").write_text(json.dumps(dict(index, clips=clips)))
    rebuilt = build_pack("en-IN", partial)
    assert "crore" in rebuilt["clips"] and (partial / "crore.wav").is_file()


def test_load_index(pack, tmp_path):
    pack_dir, index, _ = pack
    assert load_index(pack_dir) == index
    with pytest.raises(VoicePackError, match="no voice pack"):
        load_index(tmp_path)
    (tmp_path / "index.json").write_text("{not json")
    with pytest.raises(VoicePackError, match="unreadable"):
        load_index(tmp_path)


def test_unknown_language_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unsupported language"):
        build_pack("xx-YY", tmp_path)
    assert not any(tmp_path.iterdir())


def test_wav_sink_concatenates_clips_exactly(pack, tmp_path):
    pack_dir, index, _ = pack
    tokens = amount_tokens(25000)
    assert tokens == ["two", "hundred", "fifty", "rupees"]
    sink = WavSink(pack_dir, tmp_path / "out")
    start = time.monotonic()
    asyncio.run(sink.play(tokens, "txn/1 two fifty"))
    took = time.monotonic() - start

    expected = sum(wav_shape(pack_dir / index["clips"][t]["file"])[3] for t in tokens)
    files = os.listdir(tmp_path / "out")
    assert files == ["001-txn_1_two_fifty.wav"]
    assert wav_shape(tmp_path / "out" / files[0]) == (22050, 1, 2, expected)
    assert took >= expected / 22050 - 0.05  # it took the audio's real time


def test_wav_sink_numbers_files_and_names_missing_tokens(pack, tmp_path):
    pack_dir, _, _ = pack
    sink = WavSink(pack_dir, tmp_path)
    asyncio.run(sink.play(["one", "rupee"]))
    asyncio.run(sink.play(["on"], "replay"))
    assert sorted(os.listdir(tmp_path)) == ["001-announcement.wav", "002-replay.wav"]
    with pytest.raises(ValueError, match="'paytm'"):
        asyncio.run(sink.play(["received", "one", "rupee", "on", "paytm"], "x"))
    assert len(os.listdir(tmp_path)) == 2


def test_timing_sink_takes_the_clips_duration(pack):
    _, index, _ = pack
    tokens = ["received"] + amount_tokens(100)
    total_ms = sum(index["clips"][t]["ms"] for t in tokens)
    sink = TimingSink(index)
    start = time.monotonic()
    asyncio.run(sink.play(tokens, "t"))
    assert time.monotonic() - start >= total_ms / 1000 - 0.05
    with pytest.raises(ValueError, match="'gpay'"):
        asyncio.run(sink.play(["gpay"]))


def test_missing_pyttsx3_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pyttsx3", None)  # makes `import pyttsx3` fail
    with pytest.raises(VoicePackError, match="pyttsx3 is not installed"):
        build_pack("en-IN", tmp_path / "pack")
