"""Properties of the amount wording of every language over the whole valid range (CPython, hypothesis)."""

import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from soundbox import voice
from soundbox.voice import (
    LANGUAGES,
    MAX_COUNT,
    MAX_PAISE,
    MAX_TOTAL_PAISE,
    PROMPTS,
    PROVIDERS,
    amount_tokens,
    amount_words,
    announcement_tokens,
    merged_tokens,
    offline_summary_tokens,
    prompt_tokens,
    replay_tokens,
    time_tokens,
)
from soundbox.voice_tokens import TOKENS, tokens

ONES = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
    " fifteen sixteen seventeen eighteen nineteen".split())}
TENS = {w: 10 * i for i, w in enumerate(
    "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if w != "_"}
GROUPS = {"crore": 10_000_000, "lakh": 100_000, "thousand": 1000, "hundred": 100}
UNITS = {"rupee": 100, "rupees": 100, "paisa": 1, "paise": 1}


def parse_en_in(words: str) -> int:
    """Independent reader of en-IN wording: words -> paise. Strict about grouping order."""
    total = 0
    number = 0  # value of the number being read, before its unit word
    small = 0  # value below 100 since the last group word
    last_group = None
    for w in words.split(" "):
        if w in ONES:
            small += ONES[w]
        elif w in TENS:
            assert small == 0, "tens after another number word: %r" % words
            small += TENS[w]
        elif w in GROUPS:
            assert 0 < small < 100, "group word without a count: %r" % words
            assert last_group is None or GROUPS[w] < GROUPS[last_group], "group order: %r" % words
            number += small * GROUPS[w]
            small, last_group = 0, w
        elif w in UNITS:
            number += small
            assert number > 0, "unit without a number: %r" % words
            singular = w in ("rupee", "paisa")
            assert singular == (number == 1), "singular/plural: %r" % words
            total += number * UNITS[w]
            number, small, last_group = 0, 0, None
        elif w == "and":
            assert total >= 100 and number == 0 and small == 0, "misplaced and: %r" % words
        else:
            raise AssertionError("unknown word %r in %r" % (w, words))
    assert number == 0 and small == 0, "number without a unit: %r" % words
    return total


amounts = st.integers(min_value=1, max_value=MAX_PAISE)
EDGES = (1, 99, 100, 101, 199, 10_000, 10_001, 9_999_999, 10_000_000, 1_000_000_000, MAX_PAISE)


@settings(max_examples=2000)
@given(amounts)
@example(1)
@example(MAX_PAISE)
def test_words_read_back_to_the_same_amount(paise):
    assert parse_en_in(amount_words(paise)) == paise


@settings(max_examples=2000)
@given(amounts)
def test_words_use_only_pack_tokens_and_clean_spacing(paise):
    words = amount_words(paise)
    assert words == words.strip() and "  " not in words
    assert "-" not in words and words == words.lower()
    assert words.split(" ") == amount_tokens(paise)
    pack = set(TOKENS["en-IN"])
    assert set(announcement_tokens(paise)) <= pack


@given(amounts)
def test_and_only_between_rupees_and_paise(paise):
    words = amount_words(paise).split(" ")
    expected = 1 if paise >= 100 and paise % 100 else 0
    assert words.count("and") == expected


def test_parser_checks_itself():
    # The reader must reject wording that breaks the rules, or the round trip proves little.
    for bad in ("one rupees", "two rupee", "one hundred and one rupees", "lakh rupees",
                "one thousand one lakh rupees", "fifty", "and fifty paise"):
        try:
            parse_en_in(bad)
        except AssertionError:
            continue
        raise AssertionError("parser accepted %r" % bad)
    for paise in EDGES:
        assert parse_en_in(amount_words(paise)) == paise


# ---- every language ------------------------------------------------------------------------

# Hindi 1-99 written out here independently of voice.py's table, so a wrong word in
# either place fails the round trip.
HI_NUMBERS = {w: i + 1 for i, w in enumerate((
    "एक दो तीन चार पाँच छह सात आठ नौ दस "
    "ग्यारह बारह तेरह चौदह पंद्रह सोलह सत्रह अठारह उन्नीस बीस "
    "इक्कीस बाईस तेईस चौबीस पच्चीस छब्बीस सत्ताईस अट्ठाईस उनतीस तीस "
    "इकतीस बत्तीस तैंतीस चौंतीस पैंतीस छत्तीस सैंतीस अड़तीस उनतालीस चालीस "
    "इकतालीस बयालीस तैंतालीस चवालीस पैंतालीस छियालीस सैंतालीस अड़तालीस उनचास पचास "
    "इक्यावन बावन तिरपन चौवन पचपन छप्पन सत्तावन अट्ठावन उनसठ साठ "
    "इकसठ बासठ तिरसठ चौंसठ पैंसठ छियासठ सड़सठ अड़सठ उनहत्तर सत्तर "
    "इकहत्तर बहत्तर तिहत्तर चौहत्तर पचहत्तर छिहत्तर सतहत्तर अठहत्तर उन्यासी अस्सी "
    "इक्यासी बयासी तिरासी चौरासी पचासी छियासी सत्तासी अट्ठासी नवासी नब्बे "
    "इक्यानबे बानबे तिरानबे चौरानबे पचानबे छियानबे सत्तानबे अट्ठानबे निन्यानबे").split())}
assert len(HI_NUMBERS) == 99

HI = {"numbers": HI_NUMBERS, "hundred": "सौ", "hundreds": {},
      "groups": {"करोड़": 10_000_000, "लाख": 100_000, "हज़ार": 1000},
      "rupee": ("रुपया", "रुपये"), "paisa": ("पैसा", "पैसे"), "and": "और"}
# The other Indian languages: the number words come from the engine's own table (their
# spelling is checked by the native examples in tests/core/test_voice*.py); the parser checks
# the structure: grouping, hundreds, agreement, joining, and the forms a group word takes
# after one or more and with or without more to follow (the Dravidian languages).
TABLE_GROUPS = (("crore", 10_000_000), ("lakh", 100_000), ("thousand", 1000))


def spec_of(lang):
    t = voice._table(lang)
    hundreds = {w: 100 * i for i, w in enumerate(t.get("hundreds", ())) if i}
    joined = {w: 100 * i for i, w in enumerate(t.get("hundreds_joined", ())) if i}
    spec = {"numbers": {w: i for i, w in enumerate(t["below_100"]) if i}, "hundred": t.get("hundred"),
            "hundreds": dict(hundreds, **joined), "groups": {}, "ones": {}, "implicit_one": set(),
            "rupee": (t["rupee"], t["rupees"]), "paisa": (t["paisa"], t["paise"]), "and": t["and"]}
    if t.get("hundred_alone"):
        spec["hundreds"][t["hundred_alone"]] = 100
        spec["alone_only"] = t["hundred_alone"]
    # Words that only ever stand with more after them, or only at the end of a number.
    ends = set(hundreds) - set(joined) if joined else set()
    goes_on = set(joined) - set(hundreds)
    after_one, after_many = set(), set()
    for key, size in TABLE_GROUPS:
        forms = t[key]
        forms = (forms,) * 4 if isinstance(forms, str) else forms
        for form in forms:
            spec["groups"][form] = size
        ends |= {forms[0], forms[2]} - {forms[1], forms[3]}
        goes_on |= {forms[1], forms[3]} - {forms[0], forms[2]}
        after_one |= {forms[0], forms[1]} - {forms[2], forms[3]}
        after_many |= {forms[2], forms[3]} - {forms[0], forms[1]}
        one = t.get(key + "_one")
        if one == "":
            spec["implicit_one"].add(key)
        elif one and one not in spec["numbers"]:
            spec["ones"][one] = size
    sizes = dict(TABLE_GROUPS)
    spec.update(ends=ends, goes_on=goes_on, after_one=after_one, after_many=after_many,
                group_key={w: key for key in sizes for w in spec["groups"] if spec["groups"][w] == sizes[key]})
    return spec


MR = dict(spec_of("mr"), alone_only="शंभर")
SPECS = {lang: spec_of(lang) for lang in LANGUAGES if lang not in ("en-IN", "hi")}
SPECS.update(hi=HI, mr=MR)
BN = SPECS["bn"]
INDIAN = [lang for lang in LANGUAGES if lang != "en-IN"]


def _follows_number(toks, i, spec):
    nxt = toks[i + 1] if i + 1 < len(toks) else None
    return nxt is not None and (nxt in spec["numbers"] or nxt in spec["hundreds"] or nxt in spec.get("ones", ())
                                or (nxt in spec["groups"] and spec.get("group_key", {}).get(nxt)
                                    in spec.get("implicit_one", ())))


def parse_indian(words: str, spec) -> int:
    """Independent reader of Indian-language amount wording: words -> paise. Strict about
    grouping order, hundreds, singular/plural, where the "and" word may stand, and which
    form of a group or hundreds word may stand where."""
    total, number, small, last = 0, 0, 0, None  # last: size of the last group word read
    seen_unit = None
    toks = words.split(" ")
    for i, w in enumerate(toks):
        if w in spec.get("ends", ()):
            assert not _follows_number(toks, i, spec), "a closing form before more: %r" % words
        if w in spec.get("goes_on", ()):
            assert _follows_number(toks, i, spec), "a joining form with nothing after: %r" % words
        if w in spec["numbers"]:
            assert small == 0, "two number words in a row: %r" % words
            small = spec["numbers"][w]
        elif w in spec.get("ones", ()):
            assert small == 0 and toks[i + 1] in spec["groups"], "the count word for one, alone: %r" % words
            small = 1
        elif w == spec["hundred"]:
            assert 0 < small < 10 and (last is None or last > 100), "bad hundreds: %r" % words
            number += small * 100
            small, last = 0, 100
        elif w in spec["hundreds"]:
            assert small == 0 and (last is None or last > 100), "bad hundreds: %r" % words
            if w == spec.get("alone_only"):
                assert i + 1 < len(toks) and toks[i + 1] not in spec["numbers"], "शंभर before more: %r" % words
            elif spec.get("alone_only") and spec["hundreds"][w] == 100:
                assert toks[i + 1] in spec["numbers"], "एकशे with nothing after: %r" % words
            number += spec["hundreds"][w]
            last = 100
        elif w in spec["groups"]:
            size = spec["groups"][w]
            if small == 0 and spec.get("group_key", {}).get(w) in spec.get("implicit_one", ()):
                small = 1  # "ஆயிரம்" alone is one thousand
            assert 0 < small < 100 and (last is None or size < last), "group order: %r" % words
            assert w not in spec.get("after_one", ()) or small == 1, "a form for one after more: %r" % words
            assert w not in spec.get("after_many", ()) or small > 1, "a form for many after one: %r" % words
            number += small * size
            small, last = 0, size
        elif w in spec["rupee"] or w in spec["paisa"]:
            number += small
            assert number > 0, "unit without a number: %r" % words
            pair = spec["rupee"] if w in spec["rupee"] else spec["paisa"]
            assert w == (pair[0] if number == 1 else pair[1]), "singular/plural: %r" % words
            assert seen_unit is None or (seen_unit == "rupee" and pair is spec["paisa"]), "units: %r" % words
            seen_unit = "rupee" if pair is spec["rupee"] else "paisa"
            total += number * (100 if seen_unit == "rupee" else 1)
            number, small, last = 0, 0, None
        elif spec["and"] and w == spec["and"]:
            assert seen_unit == "rupee" and number == 0 and small == 0, "misplaced and: %r" % words
            assert toks[i + 1] in spec["numbers"], "and before no number: %r" % words
        else:
            raise AssertionError("unknown word %r in %r" % (w, words))
    assert number == 0 and small == 0, "number without a unit: %r" % words
    if spec["and"] and seen_unit == "paisa" and total >= 100:
        assert spec["and"] in toks, "rupees and paise not joined: %r" % words
    return total


@pytest.mark.parametrize("lang", INDIAN)
@settings(max_examples=2000)
@given(amounts)
@example(1)
@example(MAX_PAISE)
@example(10_000)
@example(10_010_000)
def test_indian_words_read_back_to_the_same_amount(lang, paise):
    assert parse_indian(amount_words(paise, lang), SPECS[lang]) == paise


@pytest.mark.parametrize("lang", LANGUAGES)
@settings(max_examples=2000)
@given(amounts, st.sampled_from((None,) + PROVIDERS))
@example(1, None)
@example(MAX_PAISE, "upi")
def test_every_language_uses_only_its_pack_tokens(lang, paise, provider):
    pack = set(TOKENS[lang])
    said = announcement_tokens(paise, lang, provider)
    assert set(said) <= pack
    assert " ".join(amount_tokens(paise, lang)) == amount_words(paise, lang)


@settings(max_examples=1000)
@given(st.integers(1, MAX_COUNT), st.integers(1, MAX_TOTAL_PAISE), st.sampled_from(LANGUAGES))
def test_summaries_use_only_pack_tokens(count, total, lang):
    pack = set(TOKENS[lang])
    assert set(merged_tokens(count, total, lang)) <= pack
    assert set(offline_summary_tokens(count, total, lang)) <= pack


hours = st.integers(0, 23)
minutes = st.integers(0, 59)


@settings(max_examples=2000)
@given(st.sampled_from(LANGUAGES), st.integers(1, MAX_COUNT), amounts, st.integers(1, MAX_TOTAL_PAISE),
       hours, minutes)
@example("en-IN", 1, MAX_PAISE, MAX_TOTAL_PAISE, 0, 0)
@example("bn", MAX_COUNT, MAX_PAISE, 1, 23, 59)
@example("mr", 2, 1, 2, 12, 0)
def test_replay_uses_only_pack_tokens(lang, count, paise, total, hour, minute):
    pack = set(TOKENS[lang])
    single = replay_tokens(1, paise, hour, minute, lang)
    merged = replay_tokens(max(count, 2), total, hour, minute, lang)
    assert set(single) <= pack and set(merged) <= pack
    when = time_tokens(hour, minute, lang)
    if lang == "en-IN":  # English says the time last, the Indian languages first
        assert single == announcement_tokens(paise, lang) + when
    else:
        assert merged == when + merged_tokens(max(count, 2), total, lang)


EN_HOURS = {w: i for i, w in enumerate(
    "_ one two three four five six seven eight nine ten eleven twelve".split()) if i}


def parse_en_time(words: str):
    """Independent reader of the en-IN time phrase: "at three oh five pm" -> (15, 5)."""
    toks = words.split(" ")
    assert toks[0] == "at" and toks[1] in EN_HOURS, words
    h12, rest, last = EN_HOURS[toks[1]], toks[2:-1], toks[-1]
    minute = 0
    if rest:
        if rest[0] == "oh":
            assert len(rest) == 2 and 0 < ONES[rest[1]] < 10, words
            rest = rest[1:]
        else:
            assert rest[0] in TENS or 10 <= ONES.get(rest[0], 0), words
        minute = sum(ONES.get(w, 0) + TENS.get(w, 0) for w in rest)
        assert 0 < minute < 60, words
    if last in ("noon", "midnight"):
        assert h12 == 12 and minute == 0, words
        return (12 if last == "noon" else 0), 0
    assert last in ("am", "pm") and not (h12 == 12 and minute == 0), words
    return h12 % 12 + (12 if last == "pm" else 0), minute


def test_time_parser_checks_itself():
    for bad in ("at three five pm", "at three oh fifteen pm", "at twelve pm", "at one noon",
                "at thirteen pm", "three pm", "at three forty five", "at three sixty pm",
                "at twelve ten noon"):
        try:
            parse_en_time(bad)
        except (AssertionError, KeyError):
            continue
        raise AssertionError("parser accepted %r" % bad)
    assert parse_en_time("at twelve midnight") == (0, 0)
    assert parse_en_time("at twelve oh five am") == (0, 5)


# Indian languages: the clock hour's word for 1-12, from each table (hi, mr: the number
# words; bn: its own clock words), and the day part said for every hour.
DAY_PARTS = {
    "hi": ["रात"] * 4 + ["सुबह"] * 8 + ["दोपहर"] * 4 + ["शाम"] * 4 + ["रात"] * 4,
    "mr": ["रात्री"] * 4 + ["पहाटे"] * 2 + ["सकाळी"] * 6 + ["दुपारी"] * 4 + ["सायंकाळी"] * 4 + ["रात्री"] * 4,
    "bn": ["রাত"] * 4 + ["ভোর"] * 2 + ["সকাল"] * 6 + ["দুপুর"] * 3 + ["বিকেল"] * 3 + ["সন্ধ্যা"] * 2 + ["রাত"] * 4,
}


def test_every_time_of_day_in_every_language():
    # Exhaustive: 1,440 minutes x 4 languages; each phrase read back (English) or checked
    # word by word against the rules next to each table.
    for hour in range(24):
        for minute in range(60):
            assert parse_en_time(" ".join(time_tokens(hour, minute))) == (hour, minute)
            for lang in ("hi", "mr", "bn"):
                t = voice._table(lang)
                said = time_tokens(hour, minute, lang)
                assert set(said) <= set(TOKENS[lang])
                assert said[0] == DAY_PARTS[lang][hour], (lang, hour, said)
                h12 = hour % 12 or 12
                if minute == 0:
                    assert len(said) in (2, 3) and h12 == (t.get("clock_hours_on") or t["below_100"]).index(said[1])
                else:
                    assert said[1] == (t.get("clock_hours") or t["below_100"])[h12]
                    assert said[3] == t["below_100"][minute], (lang, hour, minute, said)
                    assert said[4] == t["minute_words"][minute != 1]


@settings(max_examples=1000)
@given(amounts)
def test_hindi_verb_agrees_with_the_amount(paise):
    said = announcement_tokens(paise, "hi")
    assert said[-1] == ("प्राप्त हुआ" if paise in (1, 100) else "प्राप्त हुए")


def test_every_small_amount_in_every_language():
    # Exhaustive below 1,000 rupees, where every number word and hundreds form occurs.
    for lang in LANGUAGES:
        pack = set(TOKENS[lang])
        for paise in range(1, 100_001):
            words = amount_words(paise, lang)
            assert set(amount_tokens(paise, lang)) <= pack, (lang, paise)
            if lang == "en-IN":
                assert parse_en_in(words) == paise
            else:
                assert parse_indian(words, SPECS[lang]) == paise, (lang, paise)


def test_prompts_and_providers_are_in_every_pack():
    for lang in LANGUAGES:
        pack = set(TOKENS[lang])
        for name in PROMPTS:
            assert set(prompt_tokens(name, lang)) <= pack
        assert tokens(lang) == TOKENS[lang]


def test_tokens_are_nfc_and_clean():
    # One spelling per clip name: a decomposed/precomposed mismatch would miss the clip.
    for lang in LANGUAGES:
        for tok in TOKENS[lang]:
            assert unicodedata.normalize("NFC", tok) == tok, (lang, tok)
            assert tok == tok.strip() and "  " not in tok and "\u200d" not in tok, (lang, tok)


def test_indian_parser_checks_itself():
    for bad in ("एक रुपये", "दो रुपया", "सौ रुपये", "एक हज़ार एक लाख रुपये", "पचास",
                "और पचास पैसे", "दो रुपये पचास पैसे", "बीस पाँच रुपये", "एक सौ दो सौ रुपये"):
        try:
            parse_indian(bad, HI)
        except AssertionError:
            continue
        raise AssertionError("parser accepted %r" % bad)
    for bad in ("एकशे रुपये", "एक शंभर रुपये", "शंभर एक रुपये"):
        try:
            parse_indian(bad, MR)
        except AssertionError:
            continue
        raise AssertionError("parser accepted %r" % bad)
    # The Dravidian forms: a joining form must have more after it, a closing one must not.
    for bad in ("ஆயிரத்து ரூபாய்", "ஆயிரம் நூறு ரூபாய்", "நூற்று ரூபாய்", "நூறு ஐந்து ரூபாய்"):
        try:
            parse_indian(bad, SPECS["ta"])
        except AssertionError:
            continue
        raise AssertionError("parser accepted %r" % bad)
    assert parse_indian("ஆயிரத்து ஐந்நூறு ரூபாய்", SPECS["ta"]) == 150000
    assert parse_indian("दो सौ पचास रुपये", HI) == 25000
    assert parse_indian("एक हजार शंभर रुपये", MR) == 110000
    assert parse_indian("পঁচিশ টাকা পঞ্চাশ পয়সা", BN) == 2550
