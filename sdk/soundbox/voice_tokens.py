"""The tokens a voice pack must hold: soundbox.voice.tokens(lang), which imports this
module when asked (pack tools and tests ask; a box announcing payments never does)."""

from soundbox import voice


def tokens(lang):
    """Every token a voice pack for `lang` must hold, in a stable order."""
    t = voice._table(lang)
    seen = []

    def add(token):
        if token and token not in seen:
            seen.append(token)

    below_100 = t["below_100"]
    for n in range(1, len(below_100)):
        for w in voice._split(below_100[n]):
            add(w)
    _add_numbered(add, t.get("hundreds", ()))
    for key in ("hundred_alone", "hundred", "thousand", "lakh", "crore", "rupee", "rupees",
                "paisa", "paise", "and", "received", "received_many", "payment", "payments"):
        add(t.get(key))
    add(t["today_none"])
    for template in (t["announce"], t["provider"], t["merged"], t["offline"], t["today"],
                     t["replay"], t["time"], t["time_on_hour"]):
        for item in template:
            if item[0] != "$":
                add(item)
    # The time phrase's words (hours and minutes are number words, already added).
    for _, part in t.get("day_parts", ()):
        add(part)
    _add_numbered(add, t.get("clock_hours", ()))
    _add_numbered(add, t.get("clock_hours_on", ()))
    for w in t.get("minute_words", ()):
        add(w)
    for key in ("minute_zero", "am", "pm", "noon", "midnight"):
        add(t.get(key))
    for provider in voice.PROVIDERS:
        add(t["providers"][provider])
    for name in voice.PROMPTS + voice.VOLUME_PROMPTS:
        add(t["prompts"][name])
    return tuple(seen)


def _add_numbered(add, words):
    for n in range(1, len(words)):  # index 0 is not a word
        add(words[n])
