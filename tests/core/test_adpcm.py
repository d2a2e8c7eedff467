"""IMA-ADPCM decoding (soundbox.adpcm) and ADPCM voice packs (soundbox.voicepack) on known
answers. Plain asserts: also run under a real MicroPython VM (the WASI VM has no native
code and runs the plain decoder; the unix port compiles and runs the viper one as well).

The vectors were made once with Python's audioop (an independent IMA-ADPCM codec): a
64-sample chirp encoded by soundbox_tools.adpcm (which the CPython tests check against
audioop.lin2adpcm), and its decoding by audioop.adpcm2lin; the second one starts from a
non-zero state and clips at both ends of the 16-bit range.
"""

import json
import struct
from binascii import unhexlify

from check import raises

from soundbox import adpcm
from soundbox.voicepack import HEADER, MAGIC, VERSION, Pack, PackError

CHIRP = unhexlify("00000000077777777748acbcb825430aeb83529da142ad833bc050c830c049b32e04b84a")
CHIRP_PCM = unhexlify(
    "00000b0029006800f00015028c04d9093715932dea4cb4488e353716b9f840d6cfb599b1bfc40debf0181e44b9493b"
    "30faf37fba08b388e264268e53ec3acee828b2f6cf4221e8573a26ddc2a4b5cb094d56c01074bf62caae373a4633cf"
    "34bf092542320ec69ad4a14ba31bceb561127d4e66c065d0535356e3cad4d14bd3fb")
CHIRP_END = [-1069, 87]
LOUD = unhexlify("d3fb2800077777777748acbcb825430aeb83529d")
LOUD_PCM = unhexlify(
    "fdfb3bfe0c03600d86230353ff7fff7fff7fff7fff7f007043273cb0008000800080008020c25f46ff7fff7fff7f"
    "df3d94a10080008093dcd260ff7f5b54e1c2")
LOUD_END = [-15647, 88]


def _decoded(clip, native):
    out = bytearray(4 * (len(clip) - adpcm.HEADER))
    state = adpcm.State(clip[:adpcm.HEADER])
    adpcm.decode(clip[adpcm.HEADER:], len(clip) - adpcm.HEADER, out, state, native)
    return bytes(out), state.values


def test_plain_decoder_gives_the_reference_samples():
    assert _decoded(CHIRP, False) == (CHIRP_PCM, CHIRP_END)
    assert _decoded(LOUD, False) == (LOUD_PCM, LOUD_END)


def test_native_decoder_gives_the_same_samples_where_the_port_has_it():
    if adpcm.native_decoder() is None:
        # The WASI VM and CPython: no native code (the unix-port run covers it), and asking
        # for it is a clear error.
        assert raises(ValueError, adpcm.decode, CHIRP[4:], 32, bytearray(128), adpcm.State(CHIRP[:4]), True)
        return
    assert _decoded(CHIRP, True) == (CHIRP_PCM, CHIRP_END)
    assert _decoded(LOUD, True) == (LOUD_PCM, LOUD_END)


def test_decoding_in_pieces_carries_the_state_over():
    out = bytearray(len(CHIRP_PCM))
    state = adpcm.State(CHIRP[:4])
    body = memoryview(CHIRP)[4:]
    piece = memoryview(out)
    adpcm.decode(body[:5], 5, piece, state)
    adpcm.decode(body[5:], len(body) - 5, piece[20:], state)
    assert bytes(out) == CHIRP_PCM and state.values == CHIRP_END


def test_bad_state_and_short_output_are_refused():
    assert raises(ValueError, adpcm.State, b"\x00\x00\x59\x00")  # step index 89
    assert raises(ValueError, adpcm.decode, CHIRP[4:], 32, bytearray(127), adpcm.State(CHIRP[:4]))


def _adpcm_pack(clips, rate=16000):
    data = b""
    entries = {}
    for token, clip in clips:
        entries[token] = [len(data), len(clip)]
        data += clip
    index = json.dumps({"lang": "xx", "clips": entries,
                        "format": {"rate": rate, "bits": 4, "channels": 1, "encoding": "ima-adpcm"}})
    raw = index.encode()
    return MAGIC + struct.pack("<HI", VERSION, len(raw)) + raw + data


class _File:
    """A pack in memory (MicroPython has no io.BytesIO.readinto on every port)."""

    def __init__(self, data):
        self.data = data
        self.at = 0

    def read(self, n):
        out = self.data[self.at:self.at + n]
        self.at += len(out)
        return out

    def readinto(self, buf):
        n = min(len(buf), len(self.data) - self.at)
        buf[:n] = self.data[self.at:self.at + n]
        self.at += n
        return n

    def seek(self, at, whence=0):
        self.at = at if whence == 0 else len(self.data) + at
        return self.at


def test_an_adpcm_pack_streams_the_decoded_pcm_in_small_blocks():
    pack = Pack(_File(_adpcm_pack([("chirp", CHIRP), ("loud", LOUD)])), "mem.pack")
    assert pack.encoding == "ima-adpcm" and pack.bits == 16 and pack.rate == 16000
    buf = bytearray(24)  # 6 bytes of ADPCM per block: clips end mid-block
    said = b""
    for block in pack.stream(["chirp", "loud", "chirp"], buf):
        assert len(block) <= 24 and len(block) % 4 == 0
        said += bytes(block)
    assert said == CHIRP_PCM + LOUD_PCM + CHIRP_PCM  # each clip starts from its own header
    assert pack.duration_ms(["chirp", "loud"]) == (64 + 32) * 1000 // 16000
    assert pack.clip_ms("loud") == 2.0


def test_a_damaged_adpcm_pack_is_refused_with_a_reason():
    empty = _adpcm_pack([("x", CHIRP[:4])])  # a header and no samples
    assert raises(PackError, Pack, _File(empty), "empty.pack")
    bad_index = _adpcm_pack([("x", b"\x00\x00\x60\x00\x11")])  # step index 96
    pack = Pack(_File(bad_index), "bad.pack")
    try:
        for _ in pack.stream(["x"], bytearray(16)):
            pass
        assert False, "a clip with step index 96 played"
    except PackError as e:
        assert "step index 96" in str(e), str(e)
