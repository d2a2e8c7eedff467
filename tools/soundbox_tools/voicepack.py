"""Voice packs: one trimmed WAV clip per wording token, rendered with pyttsx3 + espeak-ng.

A pack is a directory: `<token>.wav` for every token of soundbox.voice.tokens(lang),
and `index.json` {"lang", "rate", "channels": 1, "width": 2,
"clips": {token: {"file": "<token>.wav", "ms": duration}}}.
"""

import array
import contextlib
import io
import json
import os
import sys
import tempfile
import wave
from pathlib import Path

from soundbox import voice

INDEX = "index.json"
ESPEAK_VOICES = {"en-IN": "en"}  # espeak-ng has no Indian English voice
WORDS_PER_MINUTE = 175  # a touch slower than espeak's 200: small speakers, noisy shops
# Spellings espeak-ng says right; the token (file name) stays the real word.
SPOKEN = {"paise": "pai-say", "lakh": "laakh"}  # espeak: "paise" -> "pays", "lakh" -> "lack"
SOUND_THRESHOLD = 500  # |sample| above this is speech (about -36 dBFS)
PAD_MS = 30  # silence kept at each end so clips neither click nor run together


class VoicePackError(RuntimeError):
    """A voice pack could not be built or read; the message is one line with the reason."""


class SilentClip(VoicePackError):
    """A rendered clip held no sound above the threshold."""


def build_pack(lang, out_dir, progress=None):
    """Render every token of `lang` into out_dir and return the index (cached if complete).

    progress(done, total) is called after each clip, e.g. to drive a progress bar.
    """
    tokens = voice.tokens(lang)  # ValueError for an unknown language
    out = Path(out_dir)
    cached = _complete_index(out, lang, tokens)
    if cached is not None:
        if progress:
            progress(len(tokens), len(tokens))
        return cached

    engine = _engine(lang)
    out.mkdir(parents=True, exist_ok=True)
    clips, rate = {}, None
    with tempfile.TemporaryDirectory(prefix="voicepack-") as tmp:
        for done, token in enumerate(tokens, 1):
            raw = Path(tmp) / ("%d.wav" % done)
            clip_rate, ms = _render_clip(engine, token, raw, out / (token + ".wav"))
            if rate is not None and clip_rate != rate:
                raise VoicePackError("clip %r is %d Hz, others are %d Hz" % (token, clip_rate, rate))
            rate = clip_rate
            clips[token] = {"file": token + ".wav", "ms": ms}
            if progress:
                progress(done, len(tokens))

    index = {"lang": lang, "rate": rate, "channels": 1, "width": 2, "clips": clips}
    tmp_index = out / (INDEX + ".tmp")
    tmp_index.write_text(json.dumps(index, indent=1, sort_keys=True))
    os.replace(tmp_index, out / INDEX)  # a half-written index never looks complete
    return index


def load_index(pack_dir):
    """The index of a built pack; VoicePackError if it is missing or malformed."""
    path = Path(pack_dir) / INDEX
    try:
        index = json.loads(path.read_text())
    except FileNotFoundError:
        raise VoicePackError("no voice pack at %s (missing %s)" % (pack_dir, INDEX)) from None
    except (OSError, ValueError) as e:
        raise VoicePackError("unreadable voice pack index %s: %s" % (path, e)) from None
    if not isinstance(index, dict) or not isinstance(index.get("clips"), dict):
        raise VoicePackError("malformed voice pack index %s: no clips" % path)
    for key in ("lang", "rate", "channels", "width"):
        if key not in index:
            raise VoicePackError("malformed voice pack index %s: no %r" % (path, key))
    return index


def _complete_index(out, lang, tokens):
    """The existing index if it covers every token with files present, else None."""
    try:
        index = load_index(out)
    except VoicePackError:
        return None
    clips = index["clips"]
    if index["lang"] != lang:
        return None
    for token in tokens:
        if token not in clips or not (out / clips[token]["file"]).is_file():
            return None
    return index


def _engine(lang):
    try:
        import pyttsx3
    except ImportError:
        raise VoicePackError("pyttsx3 is not installed (pip install pyttsx3)") from None
    try:
        engine = pyttsx3.init("espeak")
        engine.setProperty("voice", ESPEAK_VOICES[lang])
        engine.setProperty("rate", WORDS_PER_MINUTE)
    except Exception as e:  # pyttsx3 raises assorted types when libespeak-ng is absent
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise VoicePackError("espeak-ng is not usable (apt-get install espeak-ng): %s" % reason) from None
    return engine


def _render_clip(engine, token, raw, dst, attempts=3):
    """Render one token and trim it into dst; return (rate, duration ms)."""
    for attempt in range(attempts):
        _render(engine, SPOKEN.get(token, token), raw)
        try:
            return _trim(raw, dst)
        except SilentClip:
            # pyttsx3 has been seen (once in ~20 builds) to write a silent clip: say it again.
            if attempt == attempts - 1:
                raise VoicePackError("espeak-ng rendered only silence for %r, %d times" % (token, attempts)) from None


def _render(engine, text, path):
    engine.save_to_file(text, str(path))
    # One file per runAndWait(); pyttsx3 prints "Audio saved to ..." for each: keep it quiet.
    with contextlib.redirect_stdout(io.StringIO()):
        engine.runAndWait()
    if not path.is_file():
        raise VoicePackError("espeak-ng wrote no audio for %r" % text)


def _trim(src, dst):
    """Copy src to dst without leading/trailing silence; return (rate, duration ms)."""
    with wave.open(str(src), "rb") as w:
        rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        pcm = w.readframes(w.getnframes())
    if channels != 1 or width != 2:
        raise VoicePackError("%s: expected mono 16-bit, got %d ch %d bytes" % (src, channels, width))
    samples = array.array("h", pcm)
    if sys.byteorder == "big":
        samples.byteswap()  # WAV is little-endian
    loud = [i for i, s in enumerate(samples) if abs(s) > SOUND_THRESHOLD]
    if not loud:
        raise SilentClip(src.name)
    pad = rate * PAD_MS // 1000
    start, end = max(0, loud[0] - pad), min(len(samples), loud[-1] + 1 + pad)
    with wave.open(str(dst), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm[start * 2:end * 2])
    return rate, round((end - start) * 1000 / rate)
