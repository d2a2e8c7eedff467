"""Punjabi, Gurmukhi (soundbox.voice, "pa"). Plain asserts: also run under a MicroPython VM.

The examples are written the way a Punjabi speaker says the amount, independently of
soundbox/voice_pa.py: a typo in either shows up as a failure here. Test bodies stay
small (a helper per case): the VM's collector can lose a big frame (see test_p256)."""

from check import raises

from soundbox.voice import (
    MAX_PAISE,
    PROMPTS,
    PROVIDERS,
    VOLUME_PROMPTS,
    amount_tokens,
    amount_words,
    announcement_text,
    merged_tokens,
    offline_summary_tokens,
    prompt_tokens,
    replay_tokens,
    time_tokens,
    today_tokens,
)
from soundbox.voice_tokens import TOKENS

LANG = "pa"

ONE_TO_TEN = "ਇੱਕ ਦੋ ਤਿੰਨ ਚਾਰ ਪੰਜ ਛੇ ਸੱਤ ਅੱਠ ਨੌਂ ਦਸ".split()
TEENS = "ਗਿਆਰਾਂ ਬਾਰਾਂ ਤੇਰਾਂ ਚੌਦਾਂ ਪੰਦਰਾਂ ਸੋਲਾਂ ਸਤਾਰਾਂ ਅਠਾਰਾਂ ਉੱਨੀ".split()
RUPEE, RUPEES = "ਰੁਪਇਆ", "ਰੁਪਏ"

# (paise, words)
EXAMPLES = (
    (1, "ਇੱਕ ਪੈਸਾ"),
    (2, "ਦੋ ਪੈਸੇ"),
    (50, "ਪੰਜਾਹ ਪੈਸੇ"),
    (99, "ਨੜਿੰਨਵੇਂ ਪੈਸੇ"),
    (100, "ਇੱਕ ਰੁਪਇਆ"),
    (101, "ਇੱਕ ਰੁਪਇਆ ਅਤੇ ਇੱਕ ਪੈਸਾ"),
    (102, "ਇੱਕ ਰੁਪਇਆ ਅਤੇ ਦੋ ਪੈਸੇ"),
    (201, "ਦੋ ਰੁਪਏ ਅਤੇ ਇੱਕ ਪੈਸਾ"),
    (2550, "ਪੱਚੀ ਰੁਪਏ ਅਤੇ ਪੰਜਾਹ ਪੈਸੇ"),
    # the fused tens (one word each, never tens + units)
    (2000, "ਵੀਹ ਰੁਪਏ"),
    (2100, "ਇੱਕੀ ਰੁਪਏ"),
    (2900, "ਉਣੱਤੀ ਰੁਪਏ"),
    (3500, "ਪੈਂਤੀ ਰੁਪਏ"),
    (3900, "ਉਣਤਾਲੀ ਰੁਪਏ"),
    (4200, "ਬਿਆਲੀ ਰੁਪਏ"),
    (4500, "ਪੰਤਾਲੀ ਰੁਪਏ"),
    (4900, "ਉਣੰਜਾ ਰੁਪਏ"),
    (5000, "ਪੰਜਾਹ ਰੁਪਏ"),
    (5400, "ਚੁਰੰਜਾ ਰੁਪਏ"),
    (5900, "ਉਣਾਹਠ ਰੁਪਏ"),
    (6300, "ਤਰੇਂਹਠ ਰੁਪਏ"),
    (6900, "ਉਣੱਤਰ ਰੁਪਏ"),
    (7100, "ਇਕਹੱਤਰ ਰੁਪਏ"),
    (7500, "ਪੰਝੱਤਰ ਰੁਪਏ"),
    (7700, "ਸਤੱਤਰ ਰੁਪਏ"),
    (7900, "ਉਣਾਸੀ ਰੁਪਏ"),
    (8400, "ਚੁਰਾਸੀ ਰੁਪਏ"),
    (8900, "ਉਣਾਨਵੇਂ ਰੁਪਏ"),
    (9000, "ਨੱਬੇ ਰੁਪਏ"),
    (9500, "ਪਚਾਨਵੇਂ ਰੁਪਏ"),
    (9900, "ਨੜਿੰਨਵੇਂ ਰੁਪਏ"),
    # hundreds: the count always said
    (10000, "ਇੱਕ ਸੌ ਰੁਪਏ"),
    (10100, "ਇੱਕ ਸੌ ਇੱਕ ਰੁਪਏ"),
    (15000, "ਇੱਕ ਸੌ ਪੰਜਾਹ ਰੁਪਏ"),
    (20000, "ਦੋ ਸੌ ਰੁਪਏ"),
    (25000, "ਦੋ ਸੌ ਪੰਜਾਹ ਰੁਪਏ"),
    (25050, "ਦੋ ਸੌ ਪੰਜਾਹ ਰੁਪਏ ਅਤੇ ਪੰਜਾਹ ਪੈਸੇ"),
    (99900, "ਨੌਂ ਸੌ ਨੜਿੰਨਵੇਂ ਰੁਪਏ"),
    # thousands, lakhs, crores
    (100000, "ਇੱਕ ਹਜ਼ਾਰ ਰੁਪਏ"),
    (100100, "ਇੱਕ ਹਜ਼ਾਰ ਇੱਕ ਰੁਪਏ"),
    (150000, "ਇੱਕ ਹਜ਼ਾਰ ਪੰਜ ਸੌ ਰੁਪਏ"),
    (200000, "ਦੋ ਹਜ਼ਾਰ ਰੁਪਏ"),
    (250000, "ਦੋ ਹਜ਼ਾਰ ਪੰਜ ਸੌ ਰੁਪਏ"),
    (9999900, "ਨੜਿੰਨਵੇਂ ਹਜ਼ਾਰ ਨੌਂ ਸੌ ਨੜਿੰਨਵੇਂ ਰੁਪਏ"),
    (10000000, "ਇੱਕ ਲੱਖ ਰੁਪਏ"),
    (10000100, "ਇੱਕ ਲੱਖ ਇੱਕ ਰੁਪਏ"),
    (12500050, "ਇੱਕ ਲੱਖ ਪੱਚੀ ਹਜ਼ਾਰ ਰੁਪਏ ਅਤੇ ਪੰਜਾਹ ਪੈਸੇ"),
    (999999900, "ਨੜਿੰਨਵੇਂ ਲੱਖ ਨੜਿੰਨਵੇਂ ਹਜ਼ਾਰ ਨੌਂ ਸੌ ਨੜਿੰਨਵੇਂ ਰੁਪਏ"),
    (1000000000, "ਇੱਕ ਕਰੋੜ ਰੁਪਏ"),
    (1000000001, "ਇੱਕ ਕਰੋੜ ਰੁਪਏ ਅਤੇ ਇੱਕ ਪੈਸਾ"),
    (1250000000, "ਇੱਕ ਕਰੋੜ ਪੱਚੀ ਲੱਖ ਰੁਪਏ"),
    (12345678900, "ਬਾਰਾਂ ਕਰੋੜ ਚੌਂਤੀ ਲੱਖ ਛਪੰਜਾ ਹਜ਼ਾਰ ਸੱਤ ਸੌ ਉਣਾਨਵੇਂ ਰੁਪਏ"),
    (MAX_PAISE, "ਨੜਿੰਨਵੇਂ ਕਰੋੜ ਨੜਿੰਨਵੇਂ ਲੱਖ ਨੜਿੰਨਵੇਂ ਹਜ਼ਾਰ ਨੌਂ ਸੌ ਨੜਿੰਨਵੇਂ ਰੁਪਏ ਅਤੇ ਨੜਿੰਨਵੇਂ ਪੈਸੇ"),
)

# (hour, minute, time phrase)
TIMES = (
    (16, 10, "ਸ਼ਾਮ ਚਾਰ ਵੱਜ ਕੇ ਦਸ ਮਿੰਟ ਤੇ"),
    (16, 0, "ਸ਼ਾਮ ਚਾਰ ਵਜੇ"),
    (16, 1, "ਸ਼ਾਮ ਚਾਰ ਵੱਜ ਕੇ ਇੱਕ ਮਿੰਟ ਤੇ"),
    (9, 45, "ਸਵੇਰੇ ਨੌਂ ਵੱਜ ਕੇ ਪੰਤਾਲੀ ਮਿੰਟ ਤੇ"),
    (4, 0, "ਸਵੇਰੇ ਚਾਰ ਵਜੇ"),
    (3, 59, "ਰਾਤ ਤਿੰਨ ਵੱਜ ਕੇ ਉਣਾਹਠ ਮਿੰਟ ਤੇ"),
    (13, 30, "ਦੁਪਹਿਰ ਇੱਕ ਵੱਜ ਕੇ ਤੀਹ ਮਿੰਟ ਤੇ"),
    (12, 0, "ਦੁਪਹਿਰ ਬਾਰਾਂ ਵਜੇ"),
    (0, 0, "ਰਾਤ ਬਾਰਾਂ ਵਜੇ"),
    (0, 5, "ਰਾਤ ਬਾਰਾਂ ਵੱਜ ਕੇ ਪੰਜ ਮਿੰਟ ਤੇ"),
    (19, 25, "ਸ਼ਾਮ ਸੱਤ ਵੱਜ ਕੇ ਪੱਚੀ ਮਿੰਟ ਤੇ"),
    (20, 5, "ਰਾਤ ਅੱਠ ਵੱਜ ਕੇ ਪੰਜ ਮਿੰਟ ਤੇ"),
    (23, 15, "ਰਾਤ ਗਿਆਰਾਂ ਵੱਜ ਕੇ ਪੰਦਰਾਂ ਮਿੰਟ ਤੇ"),
    (11, 59, "ਸਵੇਰੇ ਗਿਆਰਾਂ ਵੱਜ ਕੇ ਉਣਾਹਠ ਮਿੰਟ ਤੇ"),
)


def _check(paise, words):
    got = amount_words(paise, LANG)
    assert got == words, "%d: %r != %r" % (paise, got, words)
    for tok in amount_tokens(paise, LANG):
        assert tok in TOKENS[LANG], tok


def test_one_to_ten_and_the_teens():
    n = 1
    for word in ONE_TO_TEN + TEENS:
        _check(n * 100, word + " " + (RUPEE if n == 1 else RUPEES))
        n += 1


def test_examples():
    for paise, words in EXAMPLES:
        _check(paise, words)


def test_every_number_below_100_is_one_distinct_word():
    words = []
    for n in range(1, 100):
        toks = amount_tokens(n * 100, LANG)
        assert len(toks) == 2 and " " not in toks[0], (n, toks)
        words.append(toks[0])
    assert len(set(words)) == 99


def test_the_verb_agrees_with_the_amount():
    assert announcement_text(100, LANG) == "ਇੱਕ ਰੁਪਇਆ ਪ੍ਰਾਪਤ ਹੋਇਆ"
    assert announcement_text(1, LANG) == "ਇੱਕ ਪੈਸਾ ਪ੍ਰਾਪਤ ਹੋਇਆ"
    assert announcement_text(200, LANG) == "ਦੋ ਰੁਪਏ ਪ੍ਰਾਪਤ ਹੋਏ"
    assert announcement_text(101, LANG) == "ਇੱਕ ਰੁਪਇਆ ਅਤੇ ਇੱਕ ਪੈਸਾ ਪ੍ਰਾਪਤ ਹੋਏ"
    assert announcement_text(25000, LANG) == "ਦੋ ਸੌ ਪੰਜਾਹ ਰੁਪਏ ਪ੍ਰਾਪਤ ਹੋਏ"


def test_provider_announcement():
    assert announcement_text(25000, LANG, "phonepe") == "ਫ਼ੋਨ ਪੇ ਤੇ ਦੋ ਸੌ ਪੰਜਾਹ ਰੁਪਏ ਪ੍ਰਾਪਤ ਹੋਏ"
    assert announcement_text(100, LANG, "paytm") == "ਪੇਟੀਐਮ ਤੇ ਇੱਕ ਰੁਪਇਆ ਪ੍ਰਾਪਤ ਹੋਇਆ"
    said = [announcement_text(100, LANG, p) for p in PROVIDERS]
    assert len(set(said)) == len(PROVIDERS)


def test_merged_offline_and_today():
    assert " ".join(merged_tokens(4, 20000, LANG)) == "ਚਾਰ ਭੁਗਤਾਨ ਪ੍ਰਾਪਤ ਹੋਏ ਕੁੱਲ ਦੋ ਸੌ ਰੁਪਏ"
    assert " ".join(merged_tokens(1, 100, LANG)) == "ਇੱਕ ਭੁਗਤਾਨ ਪ੍ਰਾਪਤ ਹੋਇਆ ਕੁੱਲ ਇੱਕ ਰੁਪਇਆ"
    assert " ".join(offline_summary_tokens(3, 50000, LANG)) == (
        "ਆਫ਼ਲਾਈਨ ਹੁੰਦਿਆਂ ਤਿੰਨ ਭੁਗਤਾਨ ਪ੍ਰਾਪਤ ਹੋਏ ਕੁੱਲ ਪੰਜ ਸੌ ਰੁਪਏ")
    assert " ".join(today_tokens(3, 50000, LANG)) == "ਅੱਜ ਤਿੰਨ ਭੁਗਤਾਨ ਪ੍ਰਾਪਤ ਹੋਏ ਕੁੱਲ ਪੰਜ ਸੌ ਰੁਪਏ"
    assert today_tokens(0, 0, LANG) == ["ਅੱਜ ਕੋਈ ਭੁਗਤਾਨ ਨਹੀਂ"]


def _check_time(hour, minute, text):
    got = " ".join(time_tokens(hour, minute, LANG))
    assert got == text, "%02d:%02d: %r != %r" % (hour, minute, got, text)


def test_time_phrases():
    for hour, minute, text in TIMES:
        _check_time(hour, minute, text)


def test_replay():
    assert " ".join(replay_tokens(1, 25000, 16, 10, LANG)) == (
        "ਸ਼ਾਮ ਚਾਰ ਵੱਜ ਕੇ ਦਸ ਮਿੰਟ ਤੇ ਦੋ ਸੌ ਪੰਜਾਹ ਰੁਪਏ ਪ੍ਰਾਪਤ ਹੋਏ")
    assert " ".join(replay_tokens(4, 20000, 12, 0, LANG)) == (
        "ਦੁਪਹਿਰ ਬਾਰਾਂ ਵਜੇ ਚਾਰ ਭੁਗਤਾਨ ਪ੍ਰਾਪਤ ਹੋਏ ਕੁੱਲ ਦੋ ਸੌ ਰੁਪਏ")


def test_prompts_are_single_clips_in_the_pack():
    for name in PROMPTS + VOLUME_PROMPTS:
        toks = prompt_tokens(name, LANG)
        assert len(toks) == 1 and toks[0] in TOKENS[LANG], name
    assert prompt_tokens("volume_max", LANG) == ["ਵੱਧ ਤੋਂ ਵੱਧ ਆਵਾਜ਼"]
    assert prompt_tokens("low_battery", LANG) == ["ਬੈਟਰੀ ਘੱਟ ਹੈ"]


def test_no_digits_or_latin_in_any_token():
    for tok in TOKENS[LANG]:
        for ch in tok:
            assert ch == " " or 0x0A00 <= ord(ch) <= 0x0A7F, tok  # Gurmukhi block only


def test_nukta_letters_are_letter_plus_nukta():
    # NFC keeps ਜ + ਼ (U+0A5B is excluded from composition): the pack's names use it too.
    for tok in TOKENS[LANG]:
        for ch in tok:
            assert ch not in "\u0a33\u0a36\u0a59\u0a5a\u0a5b\u0a5e", tok
    assert "\u0a1c\u0a3c" in amount_words(100000, LANG)  # ਹਜ਼ਾਰ


def test_bad_input_is_refused():
    assert raises(ValueError, amount_words, 0, LANG)
    assert raises(ValueError, amount_words, MAX_PAISE + 1, LANG)
    assert raises(ValueError, announcement_text, 100, LANG, "cash")
