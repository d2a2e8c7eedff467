"""The wording's fast path (soundbox.voice builds every phrase into one list, and a board
finds a number word by its offset) says exactly what the code before it said, in every
language, for random amounts, counts and providers (CPython, hypothesis).

The oracle is that earlier code, kept here and nowhere else: a list per number, group
and word, and a table word found by searching for its "|" separators one by one.
"""

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from soundbox import voice
from soundbox.voice import LANGUAGES, MAX_COUNT, MAX_PAISE, MAX_TOTAL_PAISE, PROVIDERS

# ---- the oracle: the wording code as it was before the fast path -----------------------------


def old_word(words, n):
    """Word n of a Words table, found as the board found it: the n-th "|" by searching."""
    text = words.text
    start = 0
    while n:
        start = text.index("|", start) + 1
        n -= 1
    end = text.find("|", start)
    return text[start:] if end < 0 else text[start:end]


def old_split(words):
    return words.split(" ")


def old_hundreds(h, rest, t):
    if "hundreds" not in t:
        return old_split(old_word(t["below_100"], h)) + [t["hundred"]]
    if h == 1 and not rest and "hundred_alone" in t:
        return [t["hundred_alone"]]
    if rest and "hundreds_joined" in t:
        return [old_word(t["hundreds_joined"], h)]
    return [old_word(t["hundreds"], h)]


def old_group_count(count, key, t):
    if count == 1 and key + "_one" in t:
        one = t[key + "_one"]
        return [one] if one else []
    if key == "crore":
        return old_number_tokens(count, t)
    return old_split(old_word(t["below_100"], count))


def old_group_word(count, rest, key, t):
    forms = t[key]
    if isinstance(forms, str):
        return forms
    return forms[(0 if count == 1 else 2) + (1 if rest else 0)]


def old_number_tokens(n, t):
    out = []
    for size, key in ((10000000, "crore"), (100000, "lakh"), (1000, "thousand")):
        count = n // size
        if count:
            n = n % size
            out.extend(old_group_count(count, key, t))
            out.append(old_group_word(count, n, key, t))
    if n >= 100:
        out.extend(old_hundreds(n // 100, n % 100, t))
        n = n % 100
    if n:
        out.extend(old_split(old_word(t["below_100"], n)))
    return out


def old_amount(paise, t):
    rupees, rest = paise // 100, paise % 100
    out = []
    if rupees:
        out.extend(old_number_tokens(rupees, t))
        out.append(t["rupee"] if rupees == 1 else t["rupees"])
    if rest:
        if rupees and t["and"]:
            out.append(t["and"])
        out.extend(old_number_tokens(rest, t))
        out.append(t["paisa"] if rest == 1 else t["paise"])
    return out


def old_fill(template, t, paise, count=None, provider=None):
    out = []
    for item in template:
        if item == "$amount":
            out.extend(old_amount(paise, t))
        elif item == "$received":
            out.append(t["received"] if paise in (1, 100) else t["received_many"])
        elif item == "$provider":
            if provider is not None:
                for part in t["provider"]:
                    out.append(t["providers"][provider] if part == "$name" else part)
        elif item == "$count":
            out.extend(old_number_tokens(count, t))
        elif item == "$payments":
            out.append(t["payment"] if count == 1 else t["payments"])
        elif item == "$received_count":
            out.append(t["received"] if count == 1 else t["received_many"])
        else:
            out.append(item)
    return out


def old_announcement(paise, lang, provider=None):
    t = voice._table(lang)
    return old_fill(t["announce"], t, paise, provider=provider)


def old_merged(count, total, lang):
    t = voice._table(lang)
    return old_fill(t["merged"], t, total, count=count)


# ---- a table as a board holds it ---------------------------------------------------------------


def board_table(lang, monkeypatch):
    """lang's table with each Words built as on MicroPython (offsets found on first use)."""
    monkeypatch.setattr(voice, "_KEEP_ONE", True)
    t = {key: voice.Words(value.text) if isinstance(value, voice.Words) else value
         for key, value in voice._table(lang).items()}
    monkeypatch.setattr(voice, "_KEEP_ONE", False)
    assert all(w._split is None for w in t.values() if isinstance(w, voice.Words))
    return t


@pytest.fixture(scope="module")
def board_tables():
    mp = pytest.MonkeyPatch()
    try:
        yield {lang: board_table(lang, mp) for lang in LANGUAGES}
    finally:
        mp.undo()


# ---- the properties ----------------------------------------------------------------------------

langs = st.sampled_from(LANGUAGES)
providers = st.one_of(st.none(), st.sampled_from(PROVIDERS))
EDGES = (1, 99, 100, 101, 199, 10_000, 10_001, 100_000, 100_100, 9_999_999, 10_000_000,
         10_000_100, 1_000_000_000, 1_000_100_000, MAX_PAISE)


@settings(max_examples=3000, deadline=None)
@given(st.integers(min_value=1, max_value=MAX_PAISE), langs, providers)
@example(1, "ta", None)
@example(MAX_PAISE, "te", "upi")
def test_announcement_is_what_the_old_code_said(paise, lang, provider):
    assert voice.announcement_tokens(paise, lang, provider) == old_announcement(paise, lang, provider)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_edges_of_every_group_in_every_language(lang):
    for paise in EDGES:
        for provider in (None,) + PROVIDERS:
            assert voice.announcement_tokens(paise, lang, provider) == old_announcement(paise, lang, provider)


@settings(max_examples=1500, deadline=None)
@given(st.integers(min_value=1, max_value=MAX_COUNT), st.integers(min_value=1, max_value=MAX_TOTAL_PAISE), langs)
@example(1, MAX_TOTAL_PAISE, "ta")
@example(MAX_COUNT, 100, "kn")
def test_summaries_are_what_the_old_code_said(count, total, lang):
    merged = old_merged(count, total, lang)
    t = voice._table(lang)
    assert voice.merged_tokens(count, total, lang) == merged
    assert voice.offline_summary_tokens(count, total, lang) == list(t["offline"]) + merged
    assert voice.today_tokens(count, total, lang) == list(t["today"]) + merged


@settings(max_examples=1500, deadline=None)
@given(st.integers(min_value=1, max_value=MAX_TOTAL_PAISE), langs, providers)
@example(MAX_TOTAL_PAISE, "ml", "paytm")
def test_a_board_table_says_the_same(board_tables, paise, lang, provider):
    # The board's lookups (one slice at the word's offset) with the fast path, against the
    # oracle on the same language: summary totals reach crore counts above ninety nine.
    t = board_tables[lang]
    assert voice._fill(t["announce"], t, paise, provider) == old_announcement(paise, lang, provider)
    assert voice._fill(t["merged"], t, paise, paise % 1000 + 1) == old_merged(paise % 1000 + 1, paise, lang)


def test_every_table_word_on_a_board_is_the_searched_word(board_tables):
    for lang, t in board_tables.items():
        for key, words in t.items():
            if isinstance(words, voice.Words):
                for n in range(len(words)):
                    assert words[n] == old_word(words, n) == voice._table(lang)[key][n], (lang, key, n)


def test_the_oracle_says_what_the_examples_say():
    assert old_announcement(100, "hi") == ["एक", "रुपया", "प्राप्त हुआ"]
    assert old_announcement(25050, "en-IN", "upi") == "received two hundred fifty rupees and fifty paise on upi".split()
