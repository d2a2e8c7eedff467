"""The device's voice pack reader (soundbox.voicepack). Plain asserts: also run under a MicroPython VM.

tiny.pack next to this file comes from the real builder (see tinypack.py); the other packs
here are made in memory by pack_bytes, a second, independent writer of the documented layout.
"""

import io
import json
import struct

import tinypack
from check import error_message, raises

from soundbox.voicepack import Pack, PackError

TINY = (__file__.rsplit("/", 1)[0] if "/" in __file__ else ".") + "/tiny.pack"
FORMAT = {"rate": 16000, "bits": 16, "channels": 1, "encoding": "pcm16"}
ALL = [token for token, _ in tinypack.CLIPS]
ALL_PCM = b"".join(pcm for _, pcm in tinypack.CLIPS)


def pack_bytes(clips=tinypack.CLIPS, index=None, fmt=None, version=1, magic=b"SBVP", cut=0):
    """A pack file's bytes; `index` replaces the whole index, `cut` drops bytes off the end."""
    entries, data = {}, b""
    for token, pcm in clips:
        entries[token] = [len(data), len(pcm)]
        data += pcm
    if index is None:
        index = {"lang": "hi", "format": fmt or FORMAT, "clips": entries}
    raw = json.dumps(index).encode("utf-8") if not isinstance(index, bytes) else index
    blob = magic + struct.pack("<HI", version, len(raw)) + raw + data
    return blob[:len(blob) - cut]


def memory_pack(**kw):
    return Pack(io.BytesIO(pack_bytes(**kw)), "mem.pack")


def played(pack, tokens, size):
    blocks = [bytes(b) for b in pack.stream(tokens, bytearray(size))]
    return b"".join(blocks), [len(b) for b in blocks]


def test_reads_the_pack_the_builder_wrote():
    with Pack(TINY) as pack:
        assert (pack.lang, pack.rate, pack.bits, pack.channels) == ("hi", 16000, 16, 1)
        assert sorted(pack.clips) == sorted(ALL)
        for token, pcm in tinypack.CLIPS:
            start, length = pack.clip_range(token)
            assert length == len(pcm) and start >= pack.data_start, token
            assert played(pack, [token], 2048)[0] == pcm, token
        assert played(pack, ALL, 2048)[0] == ALL_PCM


def test_blocks_never_exceed_the_buffer_and_hold_whole_samples():
    pack = memory_pack()
    tokens = ["प्राप्त हुए", "one", "प्राप्त हुए"]
    expected = tinypack.CLIPS[2][1] + tinypack.CLIPS[0][1] + tinypack.CLIPS[2][1]
    for size in (2, 3, 64, 599, 600, 602, 2048):
        data, sizes = played(pack, tokens, size)
        assert data == expected, size
        assert max(sizes) <= size and all(n % 2 == 0 for n in sizes), (size, sizes)
    # 802 bytes + 600 + 802 in 600-byte blocks: each clip starts a new block
    assert played(pack, tokens, 600)[1] == [600, 202, 600, 600, 202]


def test_blocks_are_views_of_the_callers_buffer():
    pack = memory_pack()
    buf = bytearray(100)
    gen = pack.stream(["one"], buf)
    block = next(gen)
    assert len(block) == 100 and bytes(block) == bytes(buf) == tinypack.ramp(1000, 50)


def test_an_unknown_token_fails_before_any_audio():
    pack = memory_pack()
    gen = pack.stream(["one", "रुपये", "crore"], bytearray(64))
    message = error_message(ValueError, next, gen)
    assert message is not None and "'crore'" in message and "hi" in message, message
    assert raises(ValueError, pack.clip_range, "crore")
    assert raises(ValueError, pack.duration_ms, ["one", "crore"])


def test_nothing_to_play_or_no_room():
    pack = memory_pack()
    assert raises(ValueError, next, pack.stream([], bytearray(64)))
    assert raises(ValueError, next, pack.stream(["one"], bytearray(1)))


def test_duration():
    pack = memory_pack()
    assert pack.duration_ms(["one"]) == 300 * 1000 // 16000
    assert pack.duration_ms(ALL) == (300 + 500 + 401) * 1000 // 16000
    assert pack.duration_ms(["one"] * 3) == 900 * 1000 // 16000
    eight = memory_pack(fmt={"rate": 8000, "bits": 16, "channels": 1, "encoding": "pcm16"})
    assert eight.rate == 8000 and eight.duration_ms(["one"]) == 300 * 1000 // 8000


def test_contains_and_close():
    pack = memory_pack()
    assert "one" in pack and "crore" not in pack
    pack.close()
    assert raises(ValueError, next, pack.stream(["one"], bytearray(64)))


def test_missing_file_is_an_os_error():
    assert raises(OSError, Pack, TINY + ".missing")


def _bad(reason, **kw):
    message = error_message(PackError, lambda: memory_pack(**kw))
    assert message is not None, "accepted: %s" % reason
    assert "mem.pack" in message and reason in message, (reason, message)


def test_damaged_packs_are_refused_with_a_reason():
    _bad("bad magic", magic=b"RIFF")
    _bad("format version 2", version=2)
    _bad("bad magic", index=b"", cut=len(pack_bytes(index=b"")) - 6)  # shorter than a header
    _bad("truncated index", cut=len(pack_bytes()) - 20)
    _bad("not valid JSON", index=b"{not json")
    _bad("not valid JSON", index=b'{"clips": "\xff"}')  # bad UTF-8
    _bad("no clips", index=[1, 2])
    _bad("no clips", index={"lang": "hi", "format": FORMAT})
    _bad("unsupported format", fmt={"rate": 16000, "bits": 4, "channels": 1, "encoding": "mp3"})
    _bad("mono 4-bit ima-adpcm", fmt={"rate": 16000, "bits": 16, "channels": 1, "encoding": "ima-adpcm"})
    _bad("mono 16-bit", fmt={"rate": 16000, "bits": 16, "channels": 2, "encoding": "pcm16"})
    _bad("mono 16-bit", fmt={"rate": 16000, "bits": 8, "channels": 1, "encoding": "pcm16"})
    _bad("sample rate", fmt={"rate": 0, "bits": 16, "channels": 1, "encoding": "pcm16"})
    _bad("sample rate", fmt={"rate": 16000.0, "bits": 16, "channels": 1, "encoding": "pcm16"})
    _bad("outside the data", cut=2)  # the last clip is cut short
    for entry in ([0, 3], [1, 2], [-2, 2], [0, 0], [0], "0,2", [0, 2.0], [0, True]):
        _bad("'one'", index={"lang": "hi", "format": FORMAT, "clips": {"one": entry}})


def test_index_too_large_is_refused_before_reading_it():
    blob = b"SBVP" + struct.pack("<HI", 1, 1 << 30)
    message = error_message(PackError, Pack, io.BytesIO(blob), "big.pack")
    assert message is not None and "too large" in message, message
