"""soundbox.adpcm's decoder in viper (native code): the same rules, machine integers.

Imported by soundbox.adpcm where the port emits native code (ESP32, the unix port); the
WASI VM and CPython cannot, and use the plain version there. Kept line for line beside
adpcm._decode_plain so the two are read together; the tests compare their output.
"""

import micropython


@micropython.viper
def decode(src, count: int, dst, values, step_table):
    # step_table is adpcm.STEPS, passed in so that this module imports nothing of the SDK.
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
