"""Speak texts into WAV files with pyttsx3 + espeak-ng, in a child process of their own.

espeak-ng carries state from one utterance to the next within a process: the same
text comes out a few samples different the second time. A fresh process that says
the same texts in the same order writes the same bytes, so voice packs are only
reproducible if every build synthesizes in a new process. render() starts this
module as that process:

    request (stdin, JSON): {"voice", "wpm", "texts": [...], "out": dir, "threshold"}
    reply (stdout lines):  "ok <i>" once <out>/<i>.wav is written, then at most one
                           "error <reason>" or "retry <reason>" (start over in a new process)
"""

import array
import contextlib
import ctypes
import io
import json
import subprocess
import sys
import wave
from pathlib import Path



class TtsError(RuntimeError):
    """Synthesis failed; the message is one line with the reason."""


def render(voice, wpm, texts, out_dir, threshold, attempts=3):
    """Synthesize texts[i] into out_dir/<i>.wav in a fresh process; yield each i as it is ready.

    If a clip comes out wrong (spoken at another rate, see _engine, or silent), the
    worker stops and a new one starts over: saying the clips before it again gives
    the new process the same history; they are not yielded twice.
    """
    try:
        import pyttsx3  # noqa: F401  (fail here, with the fix, rather than in the child)
    except ImportError:
        raise TtsError("pyttsx3 is not installed (pip install pyttsx3)") from None
    request = json.dumps({"voice": voice, "wpm": wpm, "texts": list(texts), "out": str(out_dir),
                          "threshold": threshold})
    done = 0
    for attempt in range(attempts):
        retry = None
        for word, rest in _run_worker(request):
            if word == "ok" and int(rest) >= done:
                done = int(rest) + 1
                yield done - 1
            elif word == "retry":
                retry = rest
        if retry is None:
            return
    raise TtsError("%s, %d times" % (retry, attempts))


def _run_worker(request):
    """(word, rest) of each line the worker prints; TtsError if it fails for good."""
    proc = subprocess.Popen([sys.executable, "-m", "soundbox_tools.tts"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")
    error = retry = None
    try:
        proc.stdin.write(request)
        proc.stdin.close()
        for line in proc.stdout:
            word, _, rest = line.rstrip("\n").partition(" ")
            if word == "error":
                error = rest
            else:
                retry = rest if word == "retry" else retry
                yield word, rest
    finally:
        if proc.poll() is None:
            proc.kill()
        stderr = proc.stderr.read()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    if error or (proc.returncode != 0 and retry is None):
        lines = stderr.strip().splitlines()
        raise TtsError(error or (lines[-1] if lines else "speech worker exited with %d" % proc.returncode))


class _StartOver(TtsError):
    """A clip came out wrong: start over in a new process (a retry here would change history)."""


def _engine(voice, wpm):
    """A pyttsx3 espeak engine whose voice and rate are in force (not merely queued)."""
    import pyttsx3  # speech worker only
    from pyttsx3.drivers import _espeak
    try:
        engine = pyttsx3.init("espeak")
        engine.setProperty("voice", voice)
        engine.setProperty("rate", wpm)
    except Exception as e:  # pyttsx3 raises assorted types when libespeak-ng is absent
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise TtsError("espeak-ng is not usable (apt-get install espeak-ng): %s" % reason) from None
    # pyttsx3 queues the settings; espeak-ng applies the rate on its own thread, and a
    # clip synthesized before that happens is spoken at another speed (seen in 1 of ~30
    # processes; in ~1 of 70 the rate is lost). Nothing said yet: run the queue, wait
    # until espeak has applied it, and set the rate directly if it did not take.
    engine.runAndWait()
    _espeak.Synchronize()
    if _rate(_espeak) != wpm:
        _espeak.SetParameter(_espeak.RATE, wpm, 0)
        _espeak.Synchronize()
    _check_rate(_espeak, wpm)
    # An unknown voice name leaves espeak-ng on its default (English) without a word.
    current = _espeak.GetCurrentVoice()
    identifier = current.contents.identifier.decode() if current else ""
    if identifier.rsplit("/", 1)[-1] != voice:
        raise TtsError("espeak-ng has no %r voice (it would speak %r): install espeak-ng-data"
                       % (voice, identifier or "nothing"))
    return engine, _espeak


def _rate(espeak):
    """The speaking rate espeak-ng uses now (pyttsx3's GetParameter binding omits `current`)."""
    get = espeak.dll.espeak_GetParameter
    get.argtypes, get.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return get(espeak.RATE, 1)


def _check_rate(espeak, wpm):
    rate = _rate(espeak)
    if rate != wpm:
        raise _StartOver("espeak-ng speaks at %d words a minute, not the %d asked for" % (rate, wpm))


def _say(engine, espeak, wpm, text, path, threshold):
    """True if text was written to path with some sound above threshold."""
    engine.save_to_file(text, str(path))
    # One file per runAndWait(); pyttsx3 prints "Audio saved to ..." for each: keep it quiet.
    with contextlib.redirect_stdout(io.StringIO()):
        engine.runAndWait()
        # runAndWait() returns once espeak-ng has *queued* the text; the file is written
        # when synthesis ends.
        espeak.Synchronize()
    _check_rate(espeak, wpm)
    if not path.is_file():
        return False
    with wave.open(str(path), "rb") as w:
        samples = array.array("h", w.readframes(w.getnframes()))
    if sys.byteorder == "big":
        samples.byteswap()  # WAV is little-endian
    return any(s > threshold or s < -threshold for s in samples)


def _worker():
    out = sys.stdout
    try:
        request = json.loads(sys.stdin.read())
        engine, espeak = _engine(request["voice"], request["wpm"])
        for i, text in enumerate(request["texts"]):
            path = Path(request["out"]) / ("%d.wav" % i)
            if not _say(engine, espeak, request["wpm"], text, path, request["threshold"]):
                raise _StartOver("espeak-ng rendered only silence for %r" % text)
            out.write("ok %d\n" % i)
            out.flush()
    except _StartOver as e:
        out.write("retry %s\n" % e)
        out.flush()
        sys.exit(1)
    except TtsError as e:
        out.write("error %s\n" % e)
        out.flush()
        sys.exit(1)


if __name__ == "__main__":
    _worker()
