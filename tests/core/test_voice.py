"""Amount wording (soundbox.voice). Plain asserts: also run under a MicroPython VM.

The example lists are written the way a native speaker says the amount, independently
of the tables in voice.py: a typo in either shows up as a failure here."""

import gc

from check import error_message, raises

from soundbox.voice import (
    LANGUAGES,
    MAX_COUNT,
    MAX_PAISE,
    MAX_TOTAL_PAISE,
    PROMPTS,
    PROVIDERS,
    amount_tokens,
    amount_words,
    announcement_text,
    announcement_tokens,
    merged_tokens,
    offline_summary_tokens,
    prompt_tokens,
    replay_tokens,
    time_tokens,
)
from soundbox.voice_tokens import TOKENS, tokens

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
                 "crore", "rupee", "rupees", "paisa", "paise", "and", "received", "on",
                 "payment", "payments", "total", "while", "offline", "upi", "device not registered",
                 "at", "oh", "am", "pm", "noon", "midnight"):
        assert word in pack, word
    # 19 units + 8 tens + 4 group words + 4 currency words + and/received + payment(s)
    # + on/total/while/offline + 5 providers + 7 prompts (one phrase each)
    # + today and "no payments today" + 2 volume prompts + at/oh/am/pm/noon/midnight (replay)
    assert len(pack) == 65


def test_prompts():
    assert prompt_tokens("not_registered") == ["device not registered"]
    assert prompt_tokens("not_registered", "hi") == ["डिवाइस पंजीकृत नहीं है"]
    for lang in LANGUAGES:
        for name in PROMPTS:
            said = prompt_tokens(name, lang)
            assert len(said) == 1 and said[0] in TOKENS[lang], (lang, name)
        assert raises(ValueError, prompt_tokens, "no_such_prompt", lang)
        assert raises(ValueError, prompt_tokens, ["not_registered"], lang)
    assert "not_registered" in error_message(ValueError, prompt_tokens, "nope")


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


def _refuses_provider(lang, bad):
    # The table loaded outside raises(): an import inside its try may collect garbage, and
    # the WASI VM then frees raises()'s own frame (it has a try: over 11 words).
    announcement_tokens(100, lang)
    assert raises(ValueError, announcement_tokens, 100, lang, bad), (lang, bad)


def test_bad_provider():
    # A helper per case and a while loop keep the frame small: with many languages the VM
    # collects during this test, and frees a big running frame (see test_p256).
    bad = ("", "Paytm", "google pay", "a-b", "x" * 33, 5, b"upi", "amazonpay", ["upi"])
    i = 0
    while i < len(bad) * len(LANGUAGES):
        if i % len(bad) == 0:
            gc.collect()  # see test_every_minute_of_the_day_in_the_pack
        _refuses_provider(LANGUAGES[i // len(bad)], bad[i % len(bad)])  # one table load a language
        i += 1
    assert "paytm" in error_message(ValueError, announcement_tokens, 100, "hi", "amazonpay")


def test_range_edges_are_accepted():
    assert amount_words(1) == "one paisa"
    assert amount_words(MAX_PAISE).startswith("ninety nine crore")


# ---- Hindi, Marathi, Bengali -------------------------------------------------------------

HI_EXAMPLES = (
    (1, "एक पैसा"),
    (2, "दो पैसे"),
    (10, "दस पैसे"),
    (11, "ग्यारह पैसे"),
    (25, "पच्चीस पैसे"),
    (50, "पचास पैसे"),
    (99, "निन्यानबे पैसे"),
    (100, "एक रुपया"),
    (101, "एक रुपया और एक पैसा"),
    (150, "एक रुपया और पचास पैसे"),
    (200, "दो रुपये"),
    (201, "दो रुपये और एक पैसा"),
    (500, "पाँच रुपये"),
    (600, "छह रुपये"),
    (900, "नौ रुपये"),
    (1000, "दस रुपये"),
    (1800, "अठारह रुपये"),
    (1900, "उन्नीस रुपये"),
    (2100, "इक्कीस रुपये"),
    (2900, "उनतीस रुपये"),
    (3300, "तैंतीस रुपये"),
    (3700, "सैंतीस रुपये"),
    (3900, "उनतालीस रुपये"),
    (4200, "बयालीस रुपये"),
    (4500, "पैंतालीस रुपये"),
    (4900, "उनचास रुपये"),
    (5100, "इक्यावन रुपये"),
    (5300, "तिरपन रुपये"),
    (5900, "उनसठ रुपये"),
    (6400, "चौंसठ रुपये"),
    (6700, "सड़सठ रुपये"),
    (6900, "उनहत्तर रुपये"),
    (7200, "बहत्तर रुपये"),
    (7900, "उन्यासी रुपये"),
    (8000, "अस्सी रुपये"),
    (8200, "बयासी रुपये"),
    (8900, "नवासी रुपये"),
    (9000, "नब्बे रुपये"),
    (9100, "इक्यानबे रुपये"),
    (9900, "निन्यानबे रुपये"),
    (10000, "एक सौ रुपये"),
    (10100, "एक सौ एक रुपये"),
    (25000, "दो सौ पचास रुपये"),
    (25050, "दो सौ पचास रुपये और पचास पैसे"),
    (99900, "नौ सौ निन्यानबे रुपये"),
    (100000, "एक हज़ार रुपये"),
    (150000, "एक हज़ार पाँच सौ रुपये"),
    (1234500, "बारह हज़ार तीन सौ पैंतालीस रुपये"),
    (10000000, "एक लाख रुपये"),
    (12500050, "एक लाख पच्चीस हज़ार रुपये और पचास पैसे"),
    (250000000, "पच्चीस लाख रुपये"),
    (1000000000, "एक करोड़ रुपये"),
    (1250000000, "एक करोड़ पच्चीस लाख रुपये"),
    (1000000100, "एक करोड़ एक रुपये"),
    (MAX_PAISE, "निन्यानबे करोड़ निन्यानबे लाख निन्यानबे हज़ार नौ सौ निन्यानबे रुपये और निन्यानबे पैसे"),
)

MR_EXAMPLES = (
    (1, "एक पैसा"),
    (2, "दोन पैसे"),
    (50, "पन्नास पैसे"),
    (100, "एक रुपया"),
    (101, "एक रुपया आणि एक पैसा"),
    (200, "दोन रुपये"),
    (600, "सहा रुपये"),
    (900, "नऊ रुपये"),
    (1100, "अकरा रुपये"),
    (1600, "सोळा रुपये"),
    (1900, "एकोणीस रुपये"),
    (2500, "पंचवीस रुपये"),
    (2900, "एकोणतीस रुपये"),
    (4100, "एक्केचाळीस रुपये"),
    (5600, "छप्पन्न रुपये"),
    (6500, "पासष्ट रुपये"),
    (7300, "त्र्याहत्तर रुपये"),
    (8000, "ऐंशी रुपये"),
    (9000, "नव्वद रुपये"),
    (9900, "नव्व्याण्णव रुपये"),
    (10000, "शंभर रुपये"),
    (10100, "एकशे एक रुपये"),
    (12500, "एकशे पंचवीस रुपये"),
    (25000, "दोनशे पन्नास रुपये"),
    (90000, "नऊशे रुपये"),
    (100000, "एक हजार रुपये"),
    (110000, "एक हजार शंभर रुपये"),
    (125000, "एक हजार दोनशे पन्नास रुपये"),
    (10000000, "एक लाख रुपये"),
    (10010000, "एक लाख शंभर रुपये"),
    (12500050, "एक लाख पंचवीस हजार रुपये आणि पन्नास पैसे"),
    (1000000000, "एक कोटी रुपये"),
    (MAX_PAISE, "नव्व्याण्णव कोटी नव्व्याण्णव लाख नव्व्याण्णव हजार नऊशे नव्व्याण्णव रुपये आणि नव्व्याण्णव पैसे"),
)

BN_EXAMPLES = (
    (1, "এক পয়সা"),
    (2, "দুই পয়সা"),
    (50, "পঞ্চাশ পয়সা"),
    (100, "এক টাকা"),
    (101, "এক টাকা এক পয়সা"),
    (200, "দুই টাকা"),
    (600, "ছয় টাকা"),
    (1400, "চোদ্দ টাকা"),
    (2000, "বিশ টাকা"),
    (2550, "পঁচিশ টাকা পঞ্চাশ পয়সা"),
    (2900, "ঊনত্রিশ টাকা"),
    (4200, "বিয়াল্লিশ টাকা"),
    (5300, "তিপ্পান্ন টাকা"),
    (7500, "পঁচাত্তর টাকা"),
    (9900, "নিরানব্বই টাকা"),
    (10000, "একশো টাকা"),
    (10100, "একশো এক টাকা"),
    (25000, "দুশো পঞ্চাশ টাকা"),
    (90000, "নয়শো টাকা"),
    (100000, "এক হাজার টাকা"),
    (150000, "এক হাজার পাঁচশো টাকা"),
    (10000000, "এক লাখ টাকা"),
    (12500050, "এক লাখ পঁচিশ হাজার টাকা পঞ্চাশ পয়সা"),
    (1000000000, "এক কোটি টাকা"),
    (MAX_PAISE, "নিরানব্বই কোটি নিরানব্বই লাখ নিরানব্বই হাজার নয়শো নিরানব্বই টাকা নিরানব্বই পয়সা"),
)

# (lang, paise, provider, announcement): word order and verb agreement
ANNOUNCEMENTS = (
    ("hi", 100, None, "एक रुपया प्राप्त हुआ"),
    ("hi", 1, None, "एक पैसा प्राप्त हुआ"),
    ("hi", 200, None, "दो रुपये प्राप्त हुए"),
    ("hi", 2, None, "दो पैसे प्राप्त हुए"),
    ("hi", 101, None, "एक रुपया और एक पैसा प्राप्त हुए"),
    ("hi", 25000, None, "दो सौ पचास रुपये प्राप्त हुए"),
    ("hi", 25000, "paytm", "पेटीएम पर दो सौ पचास रुपये प्राप्त हुए"),
    ("hi", 100, "upi", "यूपीआई पर एक रुपया प्राप्त हुआ"),
    ("mr", 100, None, "एक रुपया मिळाला"),
    ("mr", 1, None, "एक पैसा मिळाला"),
    ("mr", 200, None, "दोन रुपये मिळाले"),
    ("mr", 101, None, "एक रुपया आणि एक पैसा मिळाले"),
    ("mr", 25000, "phonepe", "फोनपे वर दोनशे पन्नास रुपये मिळाले"),
    ("bn", 100, None, "এক টাকা পাওয়া গেছে"),
    ("bn", 200, None, "দুই টাকা পাওয়া গেছে"),
    ("bn", 25000, "paytm", "পেটিএম এর মাধ্যমে দুশো পঞ্চাশ টাকা পাওয়া গেছে"),
    ("en-IN", 100, "gpay", "received one rupee on gpay"),
)

# (lang, count, total paise, merged, offline summary)
SUMMARIES = (
    ("en-IN", 4, 20000, "four payments received total two hundred rupees",
     "while offline four payments received total two hundred rupees"),
    ("en-IN", 1, 100, "one payment received total one rupee",
     "while offline one payment received total one rupee"),
    ("hi", 4, 20000, "चार भुगतान प्राप्त हुए कुल दो सौ रुपये",
     "ऑफ़लाइन रहते हुए चार भुगतान प्राप्त हुए कुल दो सौ रुपये"),
    ("hi", 1, 100, "एक भुगतान प्राप्त हुआ कुल एक रुपया",
     "ऑफ़लाइन रहते हुए एक भुगतान प्राप्त हुआ कुल एक रुपया"),
    ("mr", 4, 20000, "चार पेमेंट एकूण दोनशे रुपये मिळाले",
     "ऑफलाइन असताना चार पेमेंट एकूण दोनशे रुपये मिळाले"),
    ("mr", 2, 100, "दोन पेमेंट एकूण एक रुपया मिळाला",
     "ऑफलाइन असताना दोन पेमेंट एकूण एक रुपया मिळाला"),
    ("bn", 3, 50000, "তিন টি পেমেন্ট পাওয়া গেছে মোট পাঁচশো টাকা",
     "অফলাইন থাকাকালীন তিন টি পেমেন্ট পাওয়া গেছে মোট পাঁচশো টাকা"),
)


def _check_examples(lang, examples):
    for paise, words in examples:
        got = amount_words(paise, lang)
        assert got == words, "%s %d: %r != %r" % (lang, paise, got, words)
        for tok in amount_tokens(paise, lang):
            assert tok in TOKENS[lang], (lang, tok)


def test_hindi_examples():
    _check_examples("hi", HI_EXAMPLES)


def test_marathi_examples():
    _check_examples("mr", MR_EXAMPLES)


def test_bengali_examples():
    _check_examples("bn", BN_EXAMPLES)


def test_announcements_in_each_language():
    for lang, paise, provider, text in ANNOUNCEMENTS:
        got = announcement_text(paise, lang, provider)
        assert got == text, "%s %d %s: %r != %r" % (lang, paise, provider, got, text)
        for tok in announcement_tokens(paise, lang, provider):
            assert tok in TOKENS[lang], (lang, tok)


def test_multi_word_tokens_are_single_clips():
    assert announcement_tokens(200, "hi") == ["दो", "रुपये", "प्राप्त हुए"]
    assert announcement_tokens(100, "hi") == ["एक", "रुपया", "प्राप्त हुआ"]


def test_every_provider_in_every_language():
    for lang in LANGUAGES:
        said = []
        for provider in PROVIDERS:
            toks = announcement_tokens(100, lang, provider)
            assert len(toks) == len(announcement_tokens(100, lang)) + 2, (lang, provider)
            for tok in toks:
                assert tok in TOKENS[lang], (lang, tok)
            said.append(" ".join(toks))
        assert len(set(said)) == len(PROVIDERS), lang  # each provider sounds different


def test_every_number_below_100_is_one_distinct_word():
    # Indian languages: 1-99 are irregular, so each must be its own clip, never tens + units.
    for lang in ("hi", "mr", "bn"):
        words = []
        for n in range(1, 100):
            toks = amount_tokens(n * 100, lang)
            assert len(toks) == 2 and " " not in toks[0], (lang, n, toks)
            words.append(toks[0])
        assert len(set(words)) == 99, lang


def test_merged_and_offline_summaries():
    for lang, count, total, merged, offline in SUMMARIES:
        got = " ".join(merged_tokens(count, total, lang))
        assert got == merged, "%s: %r != %r" % (lang, got, merged)
        got = " ".join(offline_summary_tokens(count, total, lang))
        assert got == offline, "%s: %r != %r" % (lang, got, offline)
        for tok in offline_summary_tokens(count, total, lang):
            assert tok in TOKENS[lang], (lang, tok)


def test_summary_totals_may_exceed_one_payment():
    # Sixteen of the largest payments: a crore count above 99 is itself a number.
    assert " ".join(merged_tokens(16, 16 * MAX_PAISE)) == (
        "sixteen payments received total one thousand five hundred ninety nine crore ninety nine"
        " lakh ninety nine thousand nine hundred ninety nine rupees and eighty four paise")
    assert merged_tokens(1, MAX_TOTAL_PAISE, "hi")[-1] == "पैसे"
    for lang in LANGUAGES:
        for tok in merged_tokens(MAX_COUNT, MAX_TOTAL_PAISE, lang):
            assert tok in TOKENS[lang], (lang, tok)


def test_bad_summary_arguments():
    for fn in (merged_tokens, offline_summary_tokens):
        for count, total in ((0, 100), (-1, 100), (2.0, 100), (True, 100), ("2", 100),
                             (2, 0), (2, 100.0), (2, False), (2, MAX_TOTAL_PAISE + 1), (2, None)):
            assert raises(ValueError, fn, count, total), (fn, count, total)
        assert raises(ValueError, fn, MAX_COUNT + 1, 100)
        assert raises(ValueError, fn, 2, 100, "xx")
    assert "count" in error_message(ValueError, merged_tokens, 0, 100)
    assert "float" in error_message(ValueError, merged_tokens, 2, 1.5)


def test_token_sets_of_all_languages():
    for lang in LANGUAGES:
        pack = tokens(lang)
        assert pack == TOKENS[lang] and len(pack) == len(set(pack)), lang
        for tok in pack:
            assert tok and tok == tok.strip() and "  " not in tok, (lang, tok)
        # 99 number words, hundreds, groups, currency, phrases, 5 providers, 7 prompts
        assert len(pack) >= 99 + 5 + 7 or lang == "en-IN", (lang, len(pack))


# ---- the replay key: the last announcement with the time it was received -------------------

# (lang, hour, minute, time phrase), written as each language says a clock time
TIMES = (
    ("en-IN", 15, 45, "at three forty five pm"),
    ("en-IN", 15, 5, "at three oh five pm"),
    ("en-IN", 15, 0, "at three pm"),
    ("en-IN", 9, 30, "at nine thirty am"),
    ("en-IN", 1, 1, "at one oh one am"),
    ("en-IN", 11, 59, "at eleven fifty nine am"),
    ("en-IN", 0, 20, "at twelve twenty am"),
    ("en-IN", 0, 0, "at twelve midnight"),
    ("en-IN", 12, 0, "at twelve noon"),
    ("en-IN", 12, 10, "at twelve ten pm"),
    ("en-IN", 23, 0, "at eleven pm"),
    ("hi", 16, 10, "शाम चार बजकर दस मिनट पर"),
    ("hi", 16, 0, "शाम चार बजे"),
    ("hi", 16, 1, "शाम चार बजकर एक मिनट पर"),
    ("hi", 9, 45, "सुबह नौ बजकर पैंतालीस मिनट पर"),
    ("hi", 4, 0, "सुबह चार बजे"),
    ("hi", 3, 59, "रात तीन बजकर उनसठ मिनट पर"),
    ("hi", 13, 30, "दोपहर एक बजकर तीस मिनट पर"),
    ("hi", 12, 0, "दोपहर बारह बजे"),
    ("hi", 0, 0, "रात बारह बजे"),
    ("hi", 19, 25, "शाम सात बजकर पच्चीस मिनट पर"),
    ("hi", 20, 5, "रात आठ बजकर पाँच मिनट पर"),
    ("hi", 23, 15, "रात ग्यारह बजकर पंद्रह मिनट पर"),
    ("mr", 16, 10, "सायंकाळी चार वाजून दहा मिनिटांनी"),
    ("mr", 16, 0, "सायंकाळी चार वाजता"),
    ("mr", 16, 1, "सायंकाळी चार वाजून एक मिनिटाने"),
    ("mr", 5, 30, "पहाटे पाच वाजून तीस मिनिटांनी"),
    ("mr", 6, 0, "सकाळी सहा वाजता"),
    ("mr", 9, 45, "सकाळी नऊ वाजून पंचेचाळीस मिनिटांनी"),
    ("mr", 13, 5, "दुपारी एक वाजून पाच मिनिटांनी"),
    ("mr", 12, 0, "दुपारी बारा वाजता"),
    ("mr", 0, 0, "रात्री बारा वाजता"),
    ("mr", 21, 59, "रात्री नऊ वाजून एकोणसाठ मिनिटांनी"),
    ("bn", 16, 10, "বিকেল চারটে বেজে দশ মিনিটে"),
    ("bn", 16, 0, "বিকেল চারটেয়"),
    ("bn", 16, 1, "বিকেল চারটে বেজে এক মিনিটে"),
    ("bn", 5, 30, "ভোর পাঁচটা বেজে ত্রিশ মিনিটে"),
    ("bn", 9, 45, "সকাল নটা বেজে পঁয়তাল্লিশ মিনিটে"),
    ("bn", 13, 5, "দুপুর একটা বেজে পাঁচ মিনিটে"),
    ("bn", 14, 0, "দুপুর দুটোয়"),
    ("bn", 15, 20, "বিকেল তিনটে বেজে বিশ মিনিটে"),
    ("bn", 18, 0, "সন্ধ্যা ছটায়"),
    ("bn", 19, 0, "সন্ধ্যা সাতটায়"),
    ("bn", 22, 11, "রাত দশটা বেজে এগারো মিনিটে"),
    ("bn", 11, 0, "সকাল এগারোটায়"),
    ("bn", 8, 0, "সকাল আটটায়"),
    ("bn", 21, 0, "রাত নটায়"),
    ("bn", 0, 0, "রাত বারোটায়"),
)

# (lang, count, total paise, hour, minute, replayed announcement)
REPLAYS = (
    ("en-IN", 1, 25000, 15, 45, "received two hundred fifty rupees at three forty five pm"),
    ("en-IN", 1, 100, 12, 0, "received one rupee at twelve noon"),
    ("en-IN", 4, 20000, 15, 5, "four payments received total two hundred rupees at three oh five pm"),
    ("hi", 1, 25000, 16, 10, "शाम चार बजकर दस मिनट पर दो सौ पचास रुपये प्राप्त हुए"),
    ("hi", 1, 100, 16, 0, "शाम चार बजे एक रुपया प्राप्त हुआ"),
    ("hi", 4, 20000, 10, 30, "सुबह दस बजकर तीस मिनट पर चार भुगतान प्राप्त हुए कुल दो सौ रुपये"),
    ("mr", 1, 25000, 16, 10, "सायंकाळी चार वाजून दहा मिनिटांनी दोनशे पन्नास रुपये मिळाले"),
    ("mr", 1, 100, 16, 0, "सायंकाळी चार वाजता एक रुपया मिळाला"),
    ("mr", 4, 20000, 13, 1, "दुपारी एक वाजून एक मिनिटाने चार पेमेंट एकूण दोनशे रुपये मिळाले"),
    ("bn", 1, 25000, 16, 10, "বিকেল চারটে বেজে দশ মিনিটে দুশো পঞ্চাশ টাকা পাওয়া গেছে"),
    ("bn", 3, 50000, 19, 0, "সন্ধ্যা সাতটায় তিন টি পেমেন্ট পাওয়া গেছে মোট পাঁচশো টাকা"),
)


# Test bodies stay small (a helper per case): the VM's collector can lose a big frame
# (see soundbox_tools.mpvm).
def _check_time(case):
    lang, hour, minute, text = case
    got = " ".join(time_tokens(hour, minute, lang))
    assert got == text, "%s %02d:%02d: %r != %r" % (lang, hour, minute, got, text)


def test_time_phrases_in_each_language():
    for case in TIMES:
        _check_time(case)


def _check_replay(case):
    lang, count, total, hour, minute, text = case
    said = replay_tokens(count, total, hour, minute, lang)
    assert " ".join(said) == text, "%s: %r != %r" % (lang, " ".join(said), text)
    for tok in said:
        assert tok in TOKENS[lang], (lang, tok)


def test_replay_says_the_announcement_with_the_time():
    for case in REPLAYS:
        _check_replay(case)


def test_replay_is_the_announcement_plus_the_time():
    assert replay_tokens(1, 25050, 9, 5) == announcement_tokens(25050) + time_tokens(9, 5)
    assert replay_tokens(2, 300, 9, 5, "hi") == time_tokens(9, 5, "hi") + merged_tokens(2, 300, "hi")
    assert replay_tokens(1, MAX_PAISE, 23, 59, "bn")[-1] == "পাওয়া গেছে"


def _check_minute(pack, lang, hour, minute):
    for tok in time_tokens(hour, minute, lang):
        assert tok in pack, (lang, hour, minute, tok)


def _check_hour(lang, hour):
    pack = TOKENS[lang]
    minute = 0
    while minute < 60:
        _check_minute(pack, lang, hour, minute)
        minute += 1


def test_every_minute_of_the_day_in_the_pack():
    # 24 x 60 phrases per language; cheap enough for the VM too. While loops and small
    # frames: on MicroPython a language's table is loaded again when another language was
    # spoken last, and the VM may collect garbage then (see test_p256 on frame size).
    i = 0
    while i < len(LANGUAGES) * 24:
        if i % 24 == 0:
            gc.collect()  # from this small frame: no collection lands in a big one mid-language
        _check_hour(LANGUAGES[i // 24], i % 24)
        i += 1


def test_bad_replay_arguments():
    for hour, minute in ((24, 0), (-1, 0), (0, 60), (0, -1), (1.0, 0), (1, 0.5), (True, 0),
                         (0, False), ("3", 0), (None, 0)):
        assert raises(ValueError, replay_tokens, 1, 100, hour, minute), (hour, minute)
        assert raises(ValueError, time_tokens, hour, minute, "hi"), (hour, minute)
    for count, total in ((0, 100), (-1, 100), (1.0, 100), (True, 100), (1, 0), (1, 1.5),
                         (1, MAX_PAISE + 1), (2, MAX_TOTAL_PAISE + 1), (MAX_COUNT + 1, 100)):
        assert raises(ValueError, replay_tokens, count, total, 10, 0), (count, total)
    assert raises(ValueError, replay_tokens, 1, 100, 10, 0, "xx")
    assert "hour" in error_message(ValueError, replay_tokens, 1, 100, 24, 0)
    assert "at most 59" in error_message(ValueError, replay_tokens, 1, 100, 10, 60)
    assert "float" in error_message(ValueError, time_tokens, 10.0, 0)


def test_number_tables_are_words_in_one_string():
    from soundbox.voice import Words

    w = Words("|one|two|twenty one")
    assert len(w) == 4 and w[0] == "" and w[1] == "one" and w[3] == "twenty one" and w[-1] == "twenty one"
    assert list(w) == ["", "one", "two", "twenty one"]
    assert w.index("two") == 2 and raises(ValueError, w.index, "three")
    assert raises(IndexError, w.__getitem__, 4) and raises(IndexError, w.__getitem__, -5)
    assert Words("solo")[0] == "solo" and len(Words("solo")) == 1


def _check_table_words(words):
    parts = words.text.split("|")
    assert len(words) == len(parts)
    n = 0
    while n < len(parts):
        assert words[n] == parts[n], (n, words[n], parts[n])
        assert words[n - len(parts)] == parts[n], n  # negative indexes too
        n += 1


def _check_language_words(lang):
    from soundbox import voice

    t = voice._table(lang)
    for key in ("below_100", "hundreds", "hundreds_joined", "clock_hours", "clock_hours_on"):
        if key in t:
            _check_table_words(t[key])


def test_number_tables_give_every_word_as_a_split_would():
    # On a board (and in the VM) a word is one slice at offsets found on first use; on
    # CPython the table is split once. Either way each word is the one between its bars.
    from soundbox.voice import Words

    _check_table_words(Words("|one|two|twenty one"))
    _check_table_words(Words("|एक||दो"))  # an empty word, and non-ASCII text
    i = 0
    while i < len(LANGUAGES):
        gc.collect()  # from this small frame: see test_every_minute_of_the_day_in_the_pack
        _check_language_words(LANGUAGES[i])
        i += 1


def test_a_board_keeps_one_language_table_loaded():
    # On MicroPython the table last used is the only one kept (its module is forgotten when
    # another language is spoken); a CPython process keeps every table it has loaded.
    import sys

    from soundbox import voice

    for lang in LANGUAGES + ("hi", "en-IN"):
        assert announcement_tokens(100, lang)
    assert amount_words(25050, "en-IN") == "two hundred fifty rupees and fifty paise"
    names = [voice._module_name(lang) for lang in LANGUAGES]
    loaded = [name for name in names if "soundbox." + name in sys.modules]
    if sys.implementation.name == "micropython":
        assert loaded == ["voice_en"] and list(voice._tables) == ["en-IN"], (loaded, list(voice._tables))
    else:
        assert loaded == names and len(voice._tables) == len(LANGUAGES)
    assert announcement_text(100, "hi") == "एक रुपया प्राप्त हुआ"  # loaded again after being forgotten


def test_group_words_may_have_forms_for_one_many_and_more_to_follow():
    # The Dravidian tables need these (ta "ஆயிரம்" / "ஆயிரத்து", te "వెయ్యి" / "వేలు" / "వేల");
    # a made-up table shows each rule on its own, independently of any language.
    from soundbox import voice

    t = {
        "below_100": voice.Words("|one|two|three"),
        "hundreds": voice.Words("|C|CC|CCC"),
        "hundreds_joined": voice.Words("|C+|CC+|CCC+"),
        "thousand": ("K", "K+", "Ks", "Ks+"),
        "thousand_one": "",
        "lakh": ("L", "L+", "Ls", "Ls+"),
        "lakh_one": "a",
        "crore": "Cr",
    }

    def say(n):
        return " ".join(voice._number_tokens(n, t))

    assert say(100) == "C" and say(101) == "C+ one" and say(300) == "CCC"
    assert say(1000) == "K" and say(1001) == "K+ one" and say(2000) == "two Ks"
    assert say(2100) == "two Ks+ C" and say(3103) == "three Ks+ C+ three"
    assert say(100000) == "a L" and say(200001) == "two Ls+ one" and say(101000) == "a L+ K"
    assert say(10000000) == "one Cr" and say(20001000) == "two Cr K" and say(10 ** 10) == "K Cr"
