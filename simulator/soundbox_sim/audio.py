"""Simulated audio sinks: HAL `audio.play(tokens, name)` that returns when the audio would end.

TimingSink only waits as long as the clips last (for fleets of thousands);
WavSink also writes each announcement as one WAV file a person can listen to.
"""

import asyncio
import os
import re
import wave

from soundbox_tools.voicepack import load_index


def _clips_for(index, tokens):
    """The index entries for tokens, in order; ValueError naming the first token the pack lacks."""
    if not tokens:
        raise ValueError("nothing to play: empty token list")
    clips = index["clips"]
    for token in tokens:
        if token not in clips:
            raise ValueError("token %r is not in the %s voice pack" % (token, index["lang"]))
    return [clips[token] for token in tokens]


class TimingSink:
    """Takes as long as the announcement would, touching no files (one can serve a whole fleet)."""

    def __init__(self, index):
        self.index = index

    async def play(self, tokens, name=None):
        ms = sum(clip["ms"] for clip in _clips_for(self.index, tokens))
        await asyncio.sleep(ms / 1000)


class WavSink:
    """Writes each announcement to out_dir/<NNN>-<name>.wav, then waits for its real duration."""

    def __init__(self, pack_dir, out_dir):
        self.pack_dir = pack_dir
        self.out_dir = out_dir
        self.index = load_index(pack_dir)
        self.count = 0
        self.last_path = None
        self._pcm = {}  # token -> PCM bytes, read from the pack once

    async def play(self, tokens, name=None):
        clips = _clips_for(self.index, tokens)
        pcm = b"".join(self._clip_pcm(token, clip) for token, clip in zip(tokens, clips))
        self.count += 1
        os.makedirs(self.out_dir, exist_ok=True)
        path = os.path.join(self.out_dir, "%03d-%s.wav" % (self.count, _safe_name(name)))
        with wave.open(path, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(self.index["rate"])
            w.writeframes(pcm)
        self.last_path = path
        frames = len(pcm) // 2
        await asyncio.sleep(frames / self.index["rate"])

    def _clip_pcm(self, token, clip):
        if token not in self._pcm:
            path = os.path.join(self.pack_dir, clip["file"])
            with wave.open(path, "rb") as w:
                shape = (w.getnchannels(), w.getsampwidth(), w.getframerate())
                if shape != (1, 2, self.index["rate"]):
                    raise ValueError("clip %s is %r (channels, width, rate), pack says (1, 2, %d)"
                                     % (path, shape, self.index["rate"]))
                self._pcm[token] = w.readframes(w.getnframes())
        return self._pcm[token]


def _safe_name(name):
    """A file-name-safe, bounded version of an announcement name (a txn id may hold anything)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name or "announcement")).strip("._")
    return cleaned[:48] or "announcement"
