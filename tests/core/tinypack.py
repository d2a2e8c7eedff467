"""The clips of tests/core/tiny.pack: small ramps whose sample values say where they came from.

tiny.pack is written by the real builder (soundbox_tools.voicepack.write_pack) from these;
tests/test_voicepack.py checks the committed file is still exactly what it writes
(regenerate with `python tests/test_voicepack.py --write-tiny-pack`).
"""

import struct

LANG = "hi"
RATE = 16000


def ramp(first, n):
    """n little-endian 16-bit samples: first, first + 1, ..."""
    return b"".join(struct.pack("<h", first + i) for i in range(n))


CLIPS = (
    ("one", ramp(1000, 300)),
    ("रुपये", ramp(2000, 500)),
    ("प्राप्त हुए", ramp(-3000, 401)),
)
