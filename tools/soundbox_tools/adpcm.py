"""IMA-ADPCM encoding of voice-pack clips (host side; the device's decoder is soundbox.adpcm).

encode_clip(pcm) -> soundbox.adpcm's clip layout: the starting state, then one nibble per
sample, the earlier sample in the high nibble. A clip of odd length gets one more sample
(a repeat of the last), so every byte holds two.
"""

import array
import struct
import sys

from soundbox.adpcm import MAX_INDEX, index_change, step


def encode_clip(pcm):
    """16-bit little-endian mono PCM -> one ADPCM clip (bytes), starting from silence."""
    samples = array.array("h", pcm)
    if sys.byteorder == "big":
        samples.byteswap()
    if len(samples) % 2:
        samples.append(samples[-1])
    predictor, index = 0, 0
    out = bytearray(struct.pack("<hBB", predictor, index, 0))
    high = None
    for sample in samples:
        nibble, predictor, index = _encode_sample(sample, predictor, index)
        if high is None:
            high = nibble
        else:
            out.append(high << 4 | nibble)
            high = None
    return bytes(out)


def _encode_sample(sample, predictor, index):
    """The nibble that brings the decoder closest to `sample`, and the decoder's state after it."""
    s = step(index)
    diff = sample - predictor
    nibble = 0
    if diff < 0:
        nibble, diff = 8, -diff
    # The decoder adds s/8 + the bits' shares of s, s/2, s/4: mirror it exactly.
    moved = s >> 3
    if diff >= s:
        nibble |= 4
        diff -= s
        moved += s
    if diff >= s >> 1:
        nibble |= 2
        diff -= s >> 1
        moved += s >> 1
    if diff >= s >> 2:
        nibble |= 1
        moved += s >> 2
    predictor = max(-32768, predictor - moved) if nibble & 8 else min(32767, predictor + moved)
    index = min(MAX_INDEX, max(0, index + index_change(nibble)))
    return nibble, predictor, index
