"""Amount wording (soundbox.voice). Plain asserts: also run under a MicroPython VM."""

from check import error_message, raises

from soundbox.voice import (
    MAX_PAISE,
    TOKENS,
    amount_tokens,
    amount_words,
    prompt_tokens,
    announcement_text,
    announcement_tokens,
    tokens,
)

# The table from the module docstring, then more edges of each rule.
EXAMPLES = (
    (100, "one rupee"),
    (1, "one paisa"),
    (50, "fifty paise"),
    (101, "one rupee and one paisa"),
    (25000, "two hundred fifty rupees"),
    (25050, "two hundred fifty rupees and fifty paise"),
    (12500050, "one lakh twenty five thousand rupees and fifty paise"),
    (1000000000, "one crore rupees"),
    # paise only
    (2, "two paise"),
    (10, "ten paise"),
    (11, "eleven paise"),
    (19, "nineteen paise"),
    (20, "twenty paise"),
    (21, "twenty one paise"),
    (99, "ninety nine paise"),
    # rupees only, singular/plural
    (200, "two rupees"),
    (1000, "ten rupees"),
    (1500, "fifteen rupees"),
    (4200, "forty two rupees"),
    (9900, "ninety nine rupees"),
    (10000, "one hundred rupees"),
    (10100, "one hundred one rupees"),
    (11000, "one hundred ten rupees"),
    (99900, "nine hundred ninety nine rupees"),
    (100000, "one thousand rupees"),
    (100100, "one thousand one rupees"),
    (110000, "one thousand one hundred rupees"),
    (123400, "one thousand two hundred thirty four rupees"),
    (1000000, "ten thousand rupees"),
    (9999900, "ninety nine thousand nine hundred ninety nine rupees"),
    (10000000, "one lakh rupees"),
    (10000100, "one lakh one rupees"),
    (12500000, "one lakh twenty five thousand rupees"),
    (250000000, "twenty five lakh rupees"),
    (999999900, "ninety nine lakh ninety nine thousand nine hundred ninety nine rupees"),
    (1250000000, "one crore twenty five lakh rupees"),
    (1000000100, "one crore one rupees"),
    (1000100000, "one crore one thousand rupees"),
    (5000000000, "five crore rupees"),
    (10000000000, "ten crore rupees"),
    (12345678900, "twelve crore thirty four lakh fifty six thousand seven hundred eighty nine rupees"),
    # rupees and paise
    (102, "one rupee and two paise"),
    (201, "two rupees and one paisa"),
    (199, "one rupee and ninety nine paise"),
    (10001, "one hundred rupees and one paisa"),
    (1000000001, "one crore rupees and one paisa"),
    (
        MAX_PAISE,
        "ninety nine crore ninety nine lakh ninety nine thousand nine hundred ninety nine"
        " rupees and ninety nine paise",
    ),
)


def test_examples():
    for paise, words in EXAMPLES:
        got = amount_words(paise)
        assert got == words, "%d: %r != %r" % (paise, got, words)


def test_explicit_language_matches_default():
    assert amount_words(25050, "en-IN") == amount_words(25050)


def test_tokens_are_the_words_for_english():
    for paise, words in EXAMPLES:
        assert amount_tokens(paise) == words.split(" ")


def test_every_token_is_in_the_pack_set():
    pack = TOKENS["en-IN"]
    for paise, _ in EXAMPLES:
        for tok in announcement_tokens(paise, provider="upi"):
            assert tok in pack or tok == "upi", tok


def test_token_set_is_complete_and_free_of_duplicates():
    pack = tokens("en-IN")
    assert pack == TOKENS["en-IN"]
    assert len(pack) == len(set(pack))
    for word in ("one", "nineteen", "twenty", "ninety", "hundred", "thousand", "lakh",
                 "crore", "rupee", "rupees", "paisa", "paise", "and", "received", "on"):
        assert word in pack, word
    for word in prompt_tokens("not_registered"):
        assert word in pack, word
    # 19 units + 8 tens + 4 group words + 4 currency words + and/received/on
    # + device/not/registered for the "not registered" prompt
    assert len(pack) == 41


def test_prompts():
    assert prompt_tokens("not_registered") == ["device", "not", "registered"]
    assert raises(ValueError, prompt_tokens, "no_such_prompt")


def test_announcement():
    assert announcement_tokens(25000) == ["received", "two", "hundred", "fifty", "rupees"]
    assert announcement_text(25000) == "received two hundred fifty rupees"
    assert announcement_text(50, "en-IN", "upi") == "received fifty paise on upi"
    assert announcement_tokens(100, provider="paytm") == ["received", "one", "rupee", "on", "paytm"]


def test_bad_amount_types():
    for bad in (True, False, 250.0, 1.5, "100", None, [100], b"1"):
        assert raises(ValueError, amount_words, bad), repr(bad)
        assert raises(ValueError, amount_tokens, bad), repr(bad)
        assert raises(ValueError, announcement_tokens, bad), repr(bad)


def test_bad_amount_values():
    for bad in (0, -1, -100, MAX_PAISE + 1, 10 ** 12):
        assert raises(ValueError, amount_words, bad), bad
        assert raises(ValueError, announcement_text, bad), bad


def test_errors_give_a_reason():
    assert "float" in error_message(ValueError, amount_words, 250.0)
    assert "bool" in error_message(ValueError, amount_words, True)
    assert "at least" in error_message(ValueError, amount_words, 0)
    assert "at most" in error_message(ValueError, amount_words, MAX_PAISE + 1)
    assert "hi-IN" in error_message(ValueError, amount_words, 100, "hi-IN")


def test_unknown_language():
    for bad in ("hi-IN", "en", "EN-IN", "", None, 1, ["en-IN"]):
        assert raises(ValueError, amount_words, 100, bad), repr(bad)
        assert raises(ValueError, tokens, bad), repr(bad)
        assert raises(ValueError, announcement_tokens, 100, bad), repr(bad)


def test_bad_provider():
    for bad in ("", "Paytm", "google pay", "a-b", "x" * 33, 5, b"upi"):
        assert raises(ValueError, announcement_tokens, 100, "en-IN", bad), repr(bad)


def test_range_edges_are_accepted():
    assert amount_words(1) == "one paisa"
    assert amount_words(MAX_PAISE).startswith("ninety nine crore")
