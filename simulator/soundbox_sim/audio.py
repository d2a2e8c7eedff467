"""Simulated audio sinks: HAL `audio.play(tokens, name)` that returns when the audio would end.

Both play from a voice pack (soundbox.voicepack.Pack, the device's own reader):
TimingSink only waits as long as the clips last (one can serve a whole fleet);
WavSink also streams each announcement, block by block as the ESP32 does, into
one WAV file a person can listen to.
"""

import asyncio
import os
import re
import wave

BLOCK = 2048  # bytes per read, as on the device


class PackShelf:
    """One open Pack per language for a whole fleet, built on first use (a language
    switch by cloud command needs the new language's clips)."""

    def __init__(self, pack_dir):
        self.pack_dir = pack_dir
        self._packs = {}

    def __call__(self, lang):
        from soundbox_tools.voicepack import build_pack, open_pack

        if lang not in self._packs:
            build_pack(lang, self.pack_dir)  # cached on disk: instant when it exists
            self._packs[lang] = open_pack(self.pack_dir, lang)
        return self._packs[lang]


class _Sink:
    """What both sinks share: the volume and language the app sets through the HAL."""

    def __init__(self, pack, shelf=None):
        self.pack = pack
        self.shelf = shelf  # lang -> Pack; without one the language is fixed
        self.volume = None  # last level the app set (1-5); recorded only, the audio is not scaled

    def set_volume(self, level):
        self.volume = level

    def set_language(self, lang):
        if self.shelf is not None:
            self.pack = self.shelf(lang)


class TimingSink(_Sink):
    """Takes as long as the announcement would, reading no audio.

    `pack` is a Pack, or an index dict from soundbox_tools.voicepack.load_index
    (whose per-clip "ms" a test may scale down to run faster than real time).
    speedup: play this many times faster than real time (scenario runs and tests).
    """

    def __init__(self, pack, shelf=None, speedup=1.0):
        _Sink.__init__(self, pack, shelf)
        self.speedup = speedup

    def duration_ms(self, tokens):
        if not tokens:
            raise ValueError("nothing to play: empty token list")
        if not isinstance(self.pack, dict):
            return self.pack.duration_ms(tokens)
        clips = self.pack["clips"]
        for token in tokens:
            if token not in clips:
                raise ValueError("token %r is not in the %s voice pack" % (token, self.pack["lang"]))
        return sum(clips[token]["ms"] for token in tokens)

    async def play(self, tokens, name=None):
        await asyncio.sleep(self.duration_ms(tokens) / 1000 / self.speedup)


class WavSink(_Sink):
    """Writes each announcement to out_dir/<NNN>-<name>.wav at the pack's rate, then waits
    for its real duration."""

    def __init__(self, pack, out_dir, shelf=None):
        _Sink.__init__(self, pack, shelf)
        self.out_dir = out_dir
        self.count = 0
        self.last_path = None
        self._buf = bytearray(BLOCK)

    async def play(self, tokens, name=None):
        if not tokens:
            raise ValueError("nothing to play: empty token list")
        ms = self.pack.duration_ms(tokens)  # checks every token before a file exists
        self.count += 1
        os.makedirs(self.out_dir, exist_ok=True)
        path = os.path.join(self.out_dir, "%03d-%s.wav" % (self.count, _safe_name(name)))
        with wave.open(path, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(self.pack.rate)
            for block in self.pack.stream(tokens, self._buf):
                w.writeframesraw(block)
        self.last_path = path
        await asyncio.sleep(ms / 1000)


def _safe_name(name):
    """A file-name-safe, bounded version of an announcement name (a txn id may hold anything)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name or "announcement")).strip("._")
    return cleaned[:48] or "announcement"
