"""Properties of en-IN amount wording over the whole valid range (CPython, hypothesis)."""

from hypothesis import example, given, settings
from hypothesis import strategies as st

from soundbox.voice import MAX_PAISE, TOKENS, amount_tokens, amount_words, announcement_tokens

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
