"""Voice packs: every wording token of a language, spoken by espeak-ng, in one `<lang>.pack` file.

    soundbox voicepack build --lang hi [--rate 16000|8000] [--codec pcm|adpcm] [--out DIR]

writes DIR/hi.pack (layout in soundbox.voicepack, which the device reads) and
DIR/hi.pack.sha256 (`sha256sum -c` format). The hash is for deployment checks
only for now; signing packs (a hash in a signed manifest, updatable over the air
as their own kind) comes with the OTA issue.

Each clip is synthesized once per build with pyttsx3 driving espeak-ng (words,
never digits; one file per runAndWait; in a fresh process, see tts.py, so the
same inputs give the same bytes), trimmed of silence, resampled to the device
format (mono 16-bit PCM, 16 kHz by default or 8 kHz for small flash) and faded
in and out over a few ms so back-to-back clips do not click. `--codec adpcm` stores
each clip as IMA-ADPCM (4 bits a sample, soundbox_tools.adpcm): 16 kHz in a quarter of
the flash, decoded on the device while it streams.

Caching: the pack's index records a fingerprint of all its inputs, so a rebuild
with the same inputs returns at once. DIR/.cache/<voice>/ keeps the trimmed
clips of the last synthesis (WAV at espeak's own rate), so a rebuild at another
rate only resamples. The espeak-ng version is recorded in the index but is not
part of either key: delete .cache after upgrading espeak-ng.
"""

import array
import hashlib
import json
import math
import operator
import os
import struct
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

from soundbox import voice_tokens
from soundbox.voicepack import ADPCM, HEADER, MAGIC, PCM16, VERSION, Pack, PackError
from soundbox_tools import tts
from soundbox_tools.adpcm import encode_clip

RATES = (16000, 8000)
DEFAULT_RATE = 16000
CODECS = {"pcm": PCM16, "adpcm": ADPCM}  # --codec name -> the pack's format "encoding"
BUILDER_VERSION = 1  # bump when the processing below changes what a clip sounds like
ESPEAK_VOICES = {"en-IN": "en", "hi": "hi", "mr": "mr", "bn": "bn", "gu": "gu", "pa": "pa", "ta": "ta", "ml": "ml", "or": "or", "te": "te", "kn": "kn"}  # espeak-ng has no Indian English
WORDS_PER_MINUTE = 175  # a touch slower than espeak's 200: small speakers, noisy shops
# Spellings espeak-ng says right; the token stays the real word.
SPOKEN = {
    "en-IN": {
        "paise": "pai-say",  # espeak: "pays"
        "lakh": "laakh",  # espeak: "lack"
        "am": "a.m.",  # espeak: the verb "am"
        "upi": "U P I", "paytm": "pay T M", "phonepe": "phone pay", "gpay": "G pay", "bhim": "bheem",
    },
    # espeak-ng 1.51's Odia reads a nukta letter (ଡ଼, ୟ) before a vowel sign with an extra
    # vowel ("koṛo-ie"), and ୱ as its character name.
    "or": {
        "କୋଡ଼ିଏ": "କୋରିଏ", "ବୟାଳିଶି": "ବଇଆଳିଶି", "ତେୟାଳିଶି": "ତେଇଆଳିଶି", "ଛୟାଳିଶି": "ଛଇଆଳିଶି",
        "ବୟାଅଶୀ": "ବଇଆଅଶୀ", "ତେୟାଅଶୀ": "ତେଇଆଅଶୀ", "ଛୟାଅଶୀ": "ଛଇଆଅଶୀ", "ବୟାନବେ": "ବଇଆନବେ",
        "ତେୟାନବେ": "ତେଇଆନବେ", "ଛୟାନବେ": "ଛଇଆନବେ", "ସନ୍ଧ୍ୟା": "ସନ୍ଧ୍ଯା", "ୟୁପିଆଇ": "ଇଉପିଆଇ",
        "ବ୍ୟାଟେରୀ କମ୍ ଅଛି": "ବ୍ଯାଟେରୀ କମ୍ ଅଛି", "ନେଟୱର୍କ ନାହିଁ": "ନେଟଵର୍କ ନାହିଁ",
        "ସର୍ବାଧିକ ଭଲ୍ୟୁମ୍": "ସର୍ବାଧିକ ଭଲିଉମ୍", "ସର୍ବନିମ୍ନ ଭଲ୍ୟୁମ୍": "ସର୍ବନିମ୍ନ ଭଲିଉମ୍",
    },
}
SOUND_THRESHOLD = 500  # |sample| above this is speech (about -36 dBFS)
PAD_MS = 30  # silence kept at each end so clips neither click nor run together
FADE_MS = 5  # linear fade at each end: the pad is quiet, not silent
FILTER_ZEROS = 8  # zero crossings of the resampling filter on each side
FILTER_ROLLOFF = 0.92  # cutoff as a fraction of the output's Nyquist frequency


class VoicePackError(RuntimeError):
    """A voice pack could not be built or read; the message is one line with the reason."""


class SilentClip(VoicePackError):
    """A rendered clip held no sound above the threshold."""


def pack_path(pack_dir, lang):
    return os.path.join(str(pack_dir), lang + ".pack")


def build_pack(lang, out_dir, progress=None, rate=DEFAULT_RATE, tokens=None, codec="pcm"):
    """Build out_dir/<lang>.pack (cached if its inputs did not change) and return its summary:
    the index ({"lang", "format", "clips": {token: [offset, length]}, ...}) plus "path",
    "size" (bytes), "speech_ms", "cached" and "build_s". codec: "pcm" or "adpcm".

    progress(done, total) is called after each clip, e.g. to drive a progress bar.
    `tokens` limits the pack to some tokens (tests); by default it holds voice_tokens.tokens(lang).
    """
    started = time.monotonic()
    wanted = voice_tokens.tokens(lang) if tokens is None else tuple(tokens)  # ValueError: unknown language
    if rate not in RATES:
        raise VoicePackError("rate must be one of %s Hz, got %r" % (", ".join(map(str, RATES)), rate))
    if codec not in CODECS:
        raise VoicePackError("codec must be one of %s, got %r" % (", ".join(CODECS), codec))
    if not wanted:
        raise VoicePackError("no tokens to put in the pack")
    encoding = CODECS[codec]
    texts = [(token, SPOKEN.get(lang, {}).get(token, token)) for token in wanted]
    inputs = _fingerprint(lang, rate, texts, encoding)
    out = Path(out_dir)
    path = Path(pack_path(out, lang))

    index = _cached_index(path, inputs)
    if index is None:
        pcm_clips = []
        for (token, _), source in zip(texts, _sources(lang, texts, out / ".cache" / ESPEAK_VOICES[lang])):
            pcm_clips.append((token, _finish(*source, rate)))
            if progress:
                progress(len(pcm_clips), len(texts))
        index = write_pack(path, lang, rate, pcm_clips, inputs, _espeak_version(), encoding)
        cached = False
    else:
        if progress:
            progress(len(texts), len(texts))
        cached = True
    size = path.stat().st_size
    with Pack(str(path)) as pack:
        speech = pack.duration_ms(list(pack.clips))
    return dict(index, path=str(path), size=size, speech_ms=speech, cached=cached,
                build_s=round(time.monotonic() - started, 3))


def open_pack(pack_dir, lang):
    """The device-side reader on pack_dir/<lang>.pack; VoicePackError naming the fix if unusable."""
    path = pack_path(pack_dir, lang)
    try:
        return Pack(path)
    except OSError:
        raise VoicePackError("no voice pack at %s: run `soundbox voicepack build --lang %s --out %s`"
                             % (path, lang, pack_dir)) from None
    except PackError as e:
        raise VoicePackError(str(e)) from None


def load_index(pack_dir, lang="en-IN"):
    """The clips of pack_dir/<lang>.pack as {"lang", "rate", "clips": {token: {"offset", "length", "ms"}}}.

    For tools and tests that want durations as data (the simulator's TimingSink
    also accepts this form, e.g. with every "ms" scaled down).
    """
    with open_pack(pack_dir, lang) as pack:
        clips = {}
        for token, (offset, length) in pack.clips.items():
            clips[token] = {"offset": offset, "length": length, "ms": pack.clip_ms(token)}
        return {"lang": pack.lang, "rate": pack.rate, "clips": clips}


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


# ---- pack file -----------------------------------------------------------------

def _fingerprint(lang, rate, texts, encoding=PCM16):
    """Hash of everything that decides the pack's bytes (except the espeak-ng version)."""
    inputs = {} if encoding == PCM16 else {"encoding": encoding}  # PCM packs keep their old hash
    inputs.update({"builder": BUILDER_VERSION, "format": VERSION, "lang": lang, "voice": ESPEAK_VOICES[lang],
              "wpm": WORDS_PER_MINUTE, "rate": rate, "threshold": SOUND_THRESHOLD, "pad_ms": PAD_MS,
              "fade_ms": FADE_MS, "filter": [FILTER_ZEROS, FILTER_ROLLOFF], "texts": texts})
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def read_index(path):
    """The whole JSON index of a pack file (the device reader keeps only what it needs)."""
    with open(path, "rb") as f:
        head = f.read(HEADER)
        if len(head) < HEADER or head[:4] != MAGIC:
            raise VoicePackError("%s is not a voice pack" % path)
        version, size = struct.unpack("<HI", head[4:HEADER])
        if version != VERSION:
            raise VoicePackError("%s has format version %d, not %d" % (path, version, VERSION))
        try:
            return json.loads(f.read(size).decode("utf-8"))
        except ValueError as e:  # UnicodeDecodeError is a ValueError too
            raise VoicePackError("%s has a corrupt index: %s" % (path, e)) from None


def _cached_index(path, inputs):
    """The pack's index if the file is whole (its sidecar hash matches) and built from `inputs`."""
    try:
        index = read_index(path)
        recorded = Path(str(path) + ".sha256").read_text().split()[0]
    except (OSError, VoicePackError, IndexError):
        return None
    if index.get("inputs") != inputs or recorded != file_sha256(path):
        return None
    return index


def write_pack(path, lang, rate, pcm_clips, inputs="", synth_version="", encoding=PCM16):
    """Write pcm_clips [(token, PCM bytes)] as the pack at `path` (+ its .sha256), stored as
    `encoding` (PCM16 or ADPCM); return the index."""
    path = Path(path)
    if encoding == ADPCM:
        pcm_clips = [(token, encode_clip(pcm)) for token, pcm in pcm_clips]
    clips, offset = {}, 0
    for token, data in pcm_clips:
        clips[token] = [offset, len(data)]
        offset += len(data)
    bits = 4 if encoding == ADPCM else 16
    index = {"lang": lang, "format": {"rate": rate, "bits": bits, "channels": 1, "encoding": encoding},
             "clips": clips, "inputs": inputs, "builder": BUILDER_VERSION, "synth": synth_version}
    # ensure_ascii=False: Devanagari is 3 bytes as UTF-8 but 6 as \\u escapes.
    raw = json.dumps(index, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(MAGIC + struct.pack("<HI", VERSION, len(raw)) + raw)
        for _, pcm in pcm_clips:
            f.write(pcm)
    digest = file_sha256(tmp)
    sidecar = Path(str(path) + ".sha256")
    sidecar_tmp = sidecar.with_name(sidecar.name + ".tmp")
    sidecar_tmp.write_text("%s  %s\n" % (digest, path.name))
    os.replace(tmp, path)  # a half-written pack never takes the real name
    os.replace(sidecar_tmp, sidecar)
    return index


# ---- synthesis ---------------------------------------------------------------

def _sources(lang, texts, cache):
    """Yield (trimmed samples, rate) for each text, in order: from the cache when this exact
    sequence was synthesized before, else from a fresh synthesis of the whole sequence."""
    espeak_voice = ESPEAK_VOICES[lang]
    spoken = [text for _, text in texts]
    # The whole sequence is the key: espeak-ng's output depends on what it said before.
    key = hashlib.sha256(json.dumps([BUILDER_VERSION, espeak_voice, WORDS_PER_MINUTE, SOUND_THRESHOLD,
                                     PAD_MS, spoken]).encode()).hexdigest()[:24]
    paths = [cache / ("%s-%d.wav" % (key, i)) for i in range(len(spoken))]
    if all(p.is_file() for p in paths):
        try:
            cached = [_read_wav(p) for p in paths]
        except (OSError, EOFError, wave.Error, VoicePackError):
            cached = None  # a damaged cache: synthesize again
        if cached is not None:
            yield from cached
            return
    cache.mkdir(parents=True, exist_ok=True)
    for stale in cache.glob("*.wav"):  # keep only the latest sequence: the cache stays bounded
        stale.unlink()
    with tempfile.TemporaryDirectory(prefix="voicepack-") as tmp:
        try:
            for i in tts.render(espeak_voice, WORDS_PER_MINUTE, spoken, tmp, SOUND_THRESHOLD):
                samples, rate = _read_wav(Path(tmp) / ("%d.wav" % i))
                try:
                    samples = trim(samples, rate)
                except SilentClip:
                    raise VoicePackError("espeak-ng rendered only silence for %r" % spoken[i]) from None
                _write_wav(paths[i], samples, rate)
                yield samples, rate
        except tts.TtsError as e:
            raise VoicePackError(str(e)) from None


def _espeak_version():
    """espeak-ng's version, for the record in the index (never fails a build)."""
    try:
        out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, timeout=10).stdout
        return " ".join(out.split()[:4]).rstrip(":")
    except (OSError, subprocess.SubprocessError):
        return "espeak-ng"


def _read_wav(path):
    with wave.open(str(path), "rb") as w:
        rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        pcm = w.readframes(w.getnframes())
    if channels != 1 or width != 2:
        raise VoicePackError("%s: expected mono 16-bit, got %d ch %d bytes" % (path, channels, width))
    return pcm_to_samples(pcm), rate


def _write_wav(path, samples, rate):
    tmp = path.with_name(path.name + ".tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples_to_pcm(samples))
    os.replace(tmp, path)


def pcm_to_samples(pcm):
    samples = array.array("h", pcm)
    if sys.byteorder == "big":
        samples.byteswap()  # WAV and packs are little-endian
    return samples


def samples_to_pcm(samples):
    if sys.byteorder == "big":
        samples = array.array("h", samples)
        samples.byteswap()
    return samples.tobytes()


# ---- signal processing -------------------------------------------------------

def trim(samples, rate):
    """samples without leading/trailing silence, keeping PAD_MS of it at each end."""
    loud = [i for i, s in enumerate(samples) if s > SOUND_THRESHOLD or s < -SOUND_THRESHOLD]
    if not loud:
        raise SilentClip("no sound above %d" % SOUND_THRESHOLD)
    pad = rate * PAD_MS // 1000
    return samples[max(0, loud[0] - pad):min(len(samples), loud[-1] + 1 + pad)]


def _finish(samples, source_rate, rate):
    """Device PCM of a trimmed source clip: resampled, trimmed again (filtering moves where the
    sound starts and ends by a few samples), faded."""
    out = resample(samples, source_rate, rate)
    try:
        out = trim(out, rate)
    except SilentClip:
        pass  # the source had sound above the threshold; keep it as it is
    return _fade(out, rate)


def _fade(samples, rate):
    """PCM bytes of samples with a linear fade-in and fade-out of FADE_MS."""
    n = min(len(samples) // 2, rate * FADE_MS // 1000)
    out = array.array("h", samples)
    for i in range(n):
        out[i] = out[i] * i // n
        out[-1 - i] = out[-1 - i] * i // n
    return samples_to_pcm(out)


_BANKS = {}


def _filter_bank(up, down):
    """Polyphase windowed-sinc low-pass taps: bank[phase][k] weighs input (base - half + 1 + k)."""
    if (up, down) in _BANKS:
        return _BANKS[(up, down)]
    cutoff = 0.5 * min(1.0, up / down) * FILTER_ROLLOFF  # cycles per input sample
    half = math.ceil(FILTER_ZEROS / (2 * cutoff))
    bank = []
    for phase in range(up):
        frac = phase / up  # the output sample sits frac of an input sample after `base`
        taps = []
        for k in range(-half + 1, half + 1):
            x = k - frac
            t = 2 * cutoff * x
            sinc = 1.0 if x == 0 else math.sin(math.pi * t) / (math.pi * t)
            w = x / half  # Blackman window over |x| < half
            window = 0.42 + 0.5 * math.cos(math.pi * w) + 0.08 * math.cos(2 * math.pi * w) if abs(w) < 1 else 0.0
            taps.append(sinc * window)
        total = sum(taps)
        bank.append([tap / total for tap in taps])  # unity gain at DC
    _BANKS[(up, down)] = bank, half
    return bank, half


def resample(samples, src_rate, dst_rate):
    """samples (array 'h') at src_rate -> at dst_rate, band-limited (no aliasing when going down)."""
    if src_rate == dst_rate:
        return array.array("h", samples)
    g = math.gcd(src_rate, dst_rate)
    up, down = dst_rate // g, src_rate // g
    bank, half = _filter_bank(up, down)
    padded = [0] * half + list(samples) + [0] * (half + 1)
    out = array.array("h", bytes(2 * (len(samples) * up // down)))
    mul = operator.mul
    for j in range(len(out)):
        base, phase = divmod(j * down, up)
        v = round(sum(map(mul, bank[phase], padded[base + 1:base + 2 * half + 1])))
        out[j] = 32767 if v > 32767 else -32768 if v < -32768 else v
    return out
