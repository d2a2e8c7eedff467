"""IMA-ADPCM (4 bits a sample) decoding for voice packs: a 16 kHz clip in a quarter of the
flash its 16-bit PCM takes. MicroPython-safe.

A clip is a 4-byte header, the decoder's starting state (i16 LE predictor, u8 step index,
u8 0), then one nibble per sample, the earlier sample in the high nibble (the order of
Python's audioop, which the tests check against). Each clip starts afresh, so any clip
plays alone. The step and index rules are the IMA/DVI reference's; the encoder is host-only
(soundbox_tools.adpcm).

`decode(src, count, dst, state)` turns `count` bytes of src into 4 * count bytes of
little-endian 16-bit PCM in dst. On a MicroPython with native code (ESP32, the unix port)
a viper version (_VIPER) does it some tens of times faster; elsewhere (the WASI VM,
CPython) the plain one below.
"""

from binascii import unhexlify

HEADER = 4

# The 89 quantiser steps of IMA-ADPCM (7, 8, 9 ... 29794, 32767), u16 LE in one bytes
# object: 178 bytes, not a tuple of 89 int objects in the heap.
STEPS = unhexlify(
    "0700080009000a000b000c000d000e001000110013001500170019001c001f002200250029002d0032003700"
    "3c00420049005000580061006b00760082008f009d00ad00be00d100e600fd0017013301510173019801c101"
    "ee01200256029202d4021c036c03c30324048e04020583051006ab0656071208e008c309bd0ad00bff0c4c0e"
    "ba0f4c110713ee1406175419dc1ba51eb6211525ca28df2c5b314b36b93bb24144487e4f71572f60ce696274"
    "ff7f"
)
MAX_INDEX = 88


def step(index):
    return STEPS[2 * index] | STEPS[2 * index + 1] << 8


def index_change(nibble):
    # -1 for the small magnitudes 0-3, then 2, 4, 6, 8: the reference's index table.
    m = nibble & 7
    return -1 if m < 4 else (m - 3) * 2


class State:
    """Where the decoder is in a clip: the predicted sample and the step index."""

    def __init__(self, header):
        predictor = header[0] | header[1] << 8
        if predictor >= 32768:
            predictor -= 65536
        index = header[2]
        if index > MAX_INDEX:
            raise ValueError("ADPCM step index %d is over %d" % (index, MAX_INDEX))
        self.values = [predictor, index]  # a list: the viper decoder updates it in place


def _decode_plain(src, count, dst, values):
    predictor, index = values
    steps = STEPS
    out = 0
    for i in range(count):
        byte = src[i]
        for nibble in (byte >> 4, byte & 15):
            s = steps[2 * index] | steps[2 * index + 1] << 8
            diff = s >> 3
            if nibble & 4:
                diff += s
            if nibble & 2:
                diff += s >> 1
            if nibble & 1:
                diff += s >> 2
            if nibble & 8:
                predictor -= diff
                if predictor < -32768:
                    predictor = -32768
            else:
                predictor += diff
                if predictor > 32767:
                    predictor = 32767
            m = nibble & 7
            index += -1 if m < 4 else (m - 3) * 2
            if index < 0:
                index = 0
            elif index > 88:
                index = 88
            dst[out] = predictor & 255
            dst[out + 1] = (predictor >> 8) & 255
            out += 2
    values[0] = predictor
    values[1] = index


# The same decoder in viper (native code, some tens of times faster), line for line beside
# _decode_plain; the tests compare their output. Kept as source and compiled on the device
# at its first use: mpy-cross can only emit native code for a -march it is given, and a board's
# own compiler emits it for its CPU (on the ESP32 and the unix port). Where the port has no
# native emitter (the WASI VM) or no `micropython` module (CPython), the plain one is used.
_VIPER = """
@micropython.viper
def decode(src, count: int, dst, values, step_table):
    # step_table is STEPS: viper reads it through a raw pointer.
    s8 = ptr8(src)
    d8 = ptr8(dst)
    steps = ptr8(step_table)
    predictor = int(values[0])
    index = int(values[1])
    out = 0
    i = 0
    while i < count:
        byte = s8[i]
        half = 0
        while half < 2:
            nibble = (byte >> 4) if half == 0 else (byte & 15)
            s = steps[2 * index] | (steps[2 * index + 1] << 8)
            diff = s >> 3
            if nibble & 4:
                diff += s
            if nibble & 2:
                diff += s >> 1
            if nibble & 1:
                diff += s >> 2
            if nibble & 8:
                predictor -= diff
                if predictor < -32768:
                    predictor = -32768
            else:
                predictor += diff
                if predictor > 32767:
                    predictor = 32767
            m = nibble & 7
            if m < 4:
                index -= 1
            else:
                index += (m - 3) * 2
            if index < 0:
                index = 0
            elif index > 88:
                index = 88
            d8[out] = predictor & 255
            d8[out + 1] = (predictor >> 8) & 255
            out += 2
            half += 1
        i += 1
    values[0] = predictor
    values[1] = index
"""


def _compile_viper():
    try:
        import micropython

        scope = {"micropython": micropython}
        exec(_VIPER, scope)
        return scope["decode"]
    except Exception:
        return None


_native = []  # type: list  # [the viper decoder or None], filled on the first decode: not at boot


def native_decoder():
    """The viper decoder where this port compiles native code, else None."""
    if not _native:
        _native.append(_compile_viper())
    return _native[0]


def decode(src, count, dst, state, native=None):
    """Decode the first `count` bytes of src into 4 * count bytes of PCM at the start of dst.
    native: True / False to choose the decoder (tests, benchmarks); None for the fastest."""
    if len(src) < count:
        raise ValueError("ADPCM decode of %d bytes from a source of %d" % (count, len(src)))
    if len(dst) < 4 * count:
        raise ValueError("ADPCM decode of %d bytes needs %d bytes of output room, got %d"
                         % (count, 4 * count, len(dst)))
    fast = native_decoder() if native is not False else None
    if native and fast is None:
        raise ValueError("this port cannot compile native code")
    if fast is not None:
        fast(src, count, dst, state.values, STEPS)
    else:
        _decode_plain(src, count, dst, state.values)
