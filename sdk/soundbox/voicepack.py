"""Voice pack reader: one file per language holds every clip the wording engine can ask for.

MicroPython-safe. Layout of `<lang>.pack` (all integers little-endian):

    offset 0   magic b"SBVP"
           4   u16 format version (1)
           6   u32 length N of the index
          10   index: N bytes of UTF-8 JSON
                 {"lang": "hi",
                  "format": {"rate": 16000, "bits": 16, "channels": 1, "encoding": "pcm16"},
                  "clips": {token: [offset, length], ...}, ...}
      10 + N   clip data; a clip's offset and length (bytes) count from here

Encodings: "pcm16" (16-bit little-endian samples) or "ima-adpcm" (bits 4: each clip
as soundbox.adpcm lays it out, a quarter of the size, decoded to the same 16-bit PCM while
it streams). Only the header and the index are read into RAM; clips are read from the
file in blocks of the caller's buffer while they play.
"""

import json
import struct

from soundbox import adpcm

MAGIC = b"SBVP"
VERSION = 1
HEADER = 10  # magic, u16 version, u32 index length
MAX_INDEX = 65536  # a pack's index is a few KB; a larger length means a corrupt file
PCM16 = "pcm16"
ADPCM = "ima-adpcm"
ENCODINGS = (PCM16, ADPCM)
BITS = {PCM16: 16, ADPCM: 4}


class PackError(ValueError):
    """A voice pack that cannot be used; the message says which file and why."""


class Pack:
    """An open voice pack. `source` is a path or a binary file object (read, readinto, seek)."""

    def __init__(self, source, name=None):
        if isinstance(source, str):
            self.name = source
            self._file = open(source, "rb")  # OSError (missing file) propagates unchanged
            self._owned = True
        else:
            self.name = name or "<pack>"
            self._file = source
            self._owned = False
        self._raw = None  # ADPCM input buffer, made on first use
        try:
            self._read_index()
        except Exception:
            self.close()
            raise

    def _fail(self, reason):
        raise PackError("voice pack %s: %s" % (self.name, reason))

    def _read_index(self):
        f = self._file
        head = f.read(HEADER)
        if len(head) < HEADER or head[:4] != MAGIC:
            self._fail("not a voice pack (bad magic)")
        version, size = struct.unpack("<HI", head[4:HEADER])
        if version != VERSION:
            self._fail("format version %d, this reader knows %d" % (version, VERSION))
        if size > MAX_INDEX:
            self._fail("index of %d bytes is too large" % size)
        raw = f.read(size)
        if len(raw) != size:
            self._fail("truncated index")
        try:
            index = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeError):  # MicroPython's json raises ValueError too
            self._fail("index is not valid JSON")
        raw = None  # free the text before the clip table is built
        if not isinstance(index, dict) or not isinstance(index.get("clips"), dict):
            self._fail("index has no clips")
        fmt = index.get("format")
        if not isinstance(fmt, dict) or fmt.get("encoding") not in ENCODINGS:
            self._fail("unsupported format %r" % (fmt,))
        encoding = fmt["encoding"]
        if fmt.get("bits") != BITS[encoding] or fmt.get("channels") != 1:
            self._fail("format must be mono %d-bit %s, got %r" % (BITS[encoding], encoding, fmt))
        if type(fmt.get("rate")) is not int or not 4000 <= fmt["rate"] <= 48000:
            self._fail("sample rate must be 4000-48000 Hz, got %r" % (fmt.get("rate"),))
        self.lang = index.get("lang")
        self.rate = fmt["rate"]
        self.encoding = encoding
        self.bits = 16  # of what stream() yields: ADPCM is decoded to 16-bit PCM
        self.channels = 1
        self.data_start = HEADER + size
        data_size = f.seek(0, 2) - self.data_start
        clips = {}
        for token, entry in index["clips"].items():
            if (not isinstance(entry, list) or len(entry) != 2 or type(entry[0]) is not int
                    or type(entry[1]) is not int):
                self._fail("bad entry for %r" % (token,))
            offset, length = entry
            if offset < 0 or offset + length > data_size:
                self._fail("clip %r lies outside the data (truncated file?)" % (token,))
            if (length < adpcm.HEADER + 1 if encoding == ADPCM
                    else length < 2 or offset % 2 or length % 2):
                self._fail("clip %r is not whole %s samples" % (token, encoding))
            clips[token] = (offset, length)  # a tuple: one allocation, not a list and its array
        self.clips = clips

    def close(self):
        if self._owned and self._file is not None:
            self._file.close()
        self._file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __contains__(self, token):
        return token in self.clips

    def clip_range(self, token):
        """(offset from the start of the file, length in bytes) of a token's clip."""
        entry = self.clips.get(token)
        if entry is None:
            raise ValueError("token %r is not in the %s voice pack" % (token, self.lang))
        return self.data_start + entry[0], entry[1]

    def _samples(self, length):
        if self.encoding == ADPCM:
            return (length - adpcm.HEADER) * 2
        return length // 2

    def duration_ms(self, tokens):
        """How long the clips of `tokens` last, played back to back (ValueError for an unknown token)."""
        total = 0
        for token in tokens:
            total += self._samples(self.clip_range(token)[1])
        return total * 1000 // self.rate

    def clip_ms(self, token):
        """How long one token's clip lasts, in ms (a float)."""
        return self._samples(self.clip_range(token)[1]) * 1000 / self.rate

    def stream(self, tokens, buf):
        """Yield the PCM of `tokens` in order, as memoryviews into `buf` of at most len(buf) bytes.

        Every token is checked before the first block, so an unknown token never
        leaves half an announcement played. Each view is only valid until the next
        one is requested: the same buffer is refilled. Blocks hold whole samples.
        """
        if not tokens:
            raise ValueError("nothing to play: empty token list")
        clips = self.clips
        for token in tokens:
            if token not in clips:
                self.clip_range(token)  # raises: not in the pack
        block = len(buf) & ~1
        if block < 2:
            raise ValueError("buffer must hold at least one sample (2 bytes)")
        f = self._file
        if f is None:
            raise ValueError("voice pack %s is closed" % self.name)
        view = memoryview(buf)
        full = view[:block]
        if self.encoding == ADPCM:
            yield from self._stream_adpcm(tokens, view, block)
            return
        # Each clip is looked up as it comes: the first block is read before the rest
        # of the announcement's clips are found.
        data_start = self.data_start
        for token in tokens:
            start, left = clips[token]
            f.seek(data_start + start)
            while left:
                got = f.readinto(full if left >= block else view[:left])
                if not got:
                    self._fail("clip ends early (file changed while open?)")
                left -= got
                yield full if got == block else full[:got]

    def _stream_adpcm(self, tokens, view, block):
        # A quarter of the caller's buffer holds the 4-bit data its PCM block comes from;
        # the raw buffer is the pack's, kept between announcements (a few hundred bytes).
        step = block // 4
        if step < 1:
            raise ValueError("buffer must hold at least 4 bytes for ADPCM")
        raw = self._raw
        if raw is None or len(raw) < step:
            raw = self._raw = bytearray(step)
        raw_view = memoryview(raw)
        header = bytearray(adpcm.HEADER)
        f = self._file
        clips = self.clips
        for token in tokens:
            start, length = clips[token]
            start += self.data_start
            f.seek(start)
            if f.readinto(header) != adpcm.HEADER:
                self._fail("clip ends early (file changed while open?)")
            if header[2] > adpcm.MAX_INDEX:
                self._fail("clip at %d starts with ADPCM step index %d (over %d)"
                           % (start, header[2], adpcm.MAX_INDEX))
            state = adpcm.State(header)
            left = length - adpcm.HEADER
            while left:
                n = step if left >= step else left
                got = f.readinto(raw_view[:n])
                if not got:
                    self._fail("clip ends early (file changed while open?)")
                adpcm.decode(raw, got, view, state)
                left -= got
                yield view[:4 * got]
