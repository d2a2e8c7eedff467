"""Telugu wording (soundbox.voice_te). Plain asserts: also run under a MicroPython VM.

The examples are written the way a Telugu speaker says each amount, independently of the
table: a typo in either fails here. Small test functions (a helper per case): the VM's
collector can lose a big frame (see tests/core/test_p256.py)."""

from soundbox.voice import (
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

ONE_TO_TEN = (
    (1, "ఒక"), (2, "రెండు"), (3, "మూడు"), (4, "నాలుగు"), (5, "ఐదు"),
    (6, "ఆరు"), (7, "ఏడు"), (8, "ఎనిమిది"), (9, "తొమ్మిది"), (10, "పది"),
)
TEENS = (
    (11, "పదకొండు"), (12, "పన్నెండు"), (13, "పదమూడు"), (14, "పద్నాలుగు"), (15, "పదిహేను"),
    (16, "పదహారు"), (17, "పదిహేడు"), (18, "పద్దెనిమిది"), (19, "పంతొమ్మిది"),
)
TENS = (
    (20, "ఇరవై"), (21, "ఇరవయ్యొక"), (25, "ఇరవయ్యైదు"), (30, "ముప్పై"), (39, "ముప్పైతొమ్మిది"),
    (40, "నలభై"), (44, "నలభైనాలుగు"), (50, "యాభై"), (58, "యాభయ్యెనిమిది"), (60, "అరవై"),
    (67, "అరవయ్యేడు"), (70, "డెబ్బై"), (73, "డెబ్బైమూడు"), (80, "ఎనభై"), (86, "ఎనభయ్యారు"),
    (90, "తొంభై"), (91, "తొంభయ్యొక"), (99, "తొంభైతొమ్మిది"),
)

# (paise, words)
AMOUNTS = (
    (1, "ఒక పైసా"),
    (2, "రెండు పైసలు"),
    (50, "యాభై పైసలు"),
    (99, "తొంభైతొమ్మిది పైసలు"),
    (100, "ఒక రూపాయి"),
    (200, "రెండు రూపాయలు"),
    (2100, "ఇరవయ్యొక రూపాయలు"),
    (101, "ఒక రూపాయి ఒక పైసా"),
    (150, "ఒక రూపాయి యాభై పైసలు"),
    (201, "రెండు రూపాయలు ఒక పైసా"),
    (10000, "వంద రూపాయలు"),
    (10100, "నూట ఒక రూపాయలు"),
    (15000, "నూట యాభై రూపాయలు"),
    (20000, "రెండువందల రూపాయలు"),
    (25000, "రెండువందల యాభై రూపాయలు"),
    (99900, "తొమ్మిదివందల తొంభైతొమ్మిది రూపాయలు"),
    (100000, "వెయ్యి రూపాయలు"),
    (100100, "వెయ్యి ఒక రూపాయలు"),
    (110000, "వెయ్యి వంద రూపాయలు"),
    (150000, "వెయ్యి ఐదువందల రూపాయలు"),
    (200000, "రెండు వేల రూపాయలు"),
    (250000, "రెండు వేల ఐదువందల రూపాయలు"),
    (1000000, "పది వేల రూపాయలు"),
    (9999900, "తొంభైతొమ్మిది వేల తొమ్మిదివందల తొంభైతొమ్మిది రూపాయలు"),
    (10000000, "ఒక లక్ష రూపాయలు"),
    (10000100, "ఒక లక్ష ఒక రూపాయలు"),
    (10100000, "ఒక లక్ష వెయ్యి రూపాయలు"),
    (12500050, "ఒక లక్ష ఇరవయ్యైదు వేల రూపాయలు యాభై పైసలు"),
    (20000000, "రెండు లక్షల రూపాయలు"),
    (999999900, "తొంభైతొమ్మిది లక్షల తొంభైతొమ్మిది వేల తొమ్మిదివందల తొంభైతొమ్మిది రూపాయలు"),
    (1000000000, "ఒక కోటి రూపాయలు"),
    (1000000001, "ఒక కోటి రూపాయలు ఒక పైసా"),
    (1250000000, "ఒక కోటి ఇరవయ్యైదు లక్షల రూపాయలు"),
    (5000000000, "ఐదు కోట్ల రూపాయలు"),
    (99999999999, "తొంభైతొమ్మిది కోట్ల తొంభైతొమ్మిది లక్షల తొంభైతొమ్మిది వేల తొమ్మిదివందల"
                  " తొంభైతొమ్మిది రూపాయలు తొంభైతొమ్మిది పైసలు"),
)

# (hour, minute, time phrase)
TIMES = (
    (16, 10, "సాయంత్రం నాలుగు గంటల పది నిమిషాలకు"),
    (16, 0, "సాయంత్రం నాలుగు గంటలకు"),
    (16, 1, "సాయంత్రం నాలుగు గంటల ఒక నిమిషానికి"),
    (13, 5, "మధ్యాహ్నం ఒంటి గంట ఐదు నిమిషాలకు"),
    (13, 0, "మధ్యాహ్నం ఒంటి గంటకు"),
    (1, 1, "రాత్రి ఒంటి గంట ఒక నిమిషానికి"),
    (9, 45, "ఉదయం తొమ్మిది గంటల నలభయ్యైదు నిమిషాలకు"),
    (4, 0, "ఉదయం నాలుగు గంటలకు"),
    (3, 59, "రాత్రి మూడు గంటల యాభైతొమ్మిది నిమిషాలకు"),
    (0, 0, "రాత్రి పన్నెండు గంటలకు"),
    (0, 30, "రాత్రి పన్నెండు గంటల ముప్పై నిమిషాలకు"),
    (12, 0, "మధ్యాహ్నం పన్నెండు గంటలకు"),
    (12, 15, "మధ్యాహ్నం పన్నెండు గంటల పదిహేను నిమిషాలకు"),
    (19, 21, "సాయంత్రం ఏడు గంటల ఇరవయ్యొక నిమిషాలకు"),
    (20, 0, "రాత్రి ఎనిమిది గంటలకు"),
    (23, 11, "రాత్రి పదకొండు గంటల పదకొండు నిమిషాలకు"),
)


def _check_amount(paise, words):
    got = amount_words(paise, "te")
    assert got == words, "te %d: %r != %r" % (paise, got, words)
    pack = TOKENS["te"]
    for tok in amount_tokens(paise, "te"):
        assert tok in pack, tok


def _check_rupees(pairs):
    for n, word in pairs:
        _check_amount(n * 100, word + (" రూపాయి" if n == 1 else " రూపాయలు"))


def test_one_to_ten():
    _check_rupees(ONE_TO_TEN)


def test_teens():
    _check_rupees(TEENS)


def test_tens_and_units():
    _check_rupees(TENS)


def test_amounts():
    for paise, words in AMOUNTS:
        _check_amount(paise, words)


def test_the_verb_agrees_with_the_amount():
    assert announcement_text(100, "te") == "ఒక రూపాయి అందింది"
    assert announcement_text(1, "te") == "ఒక పైసా అందింది"
    assert announcement_text(200, "te") == "రెండు రూపాయలు అందాయి"
    assert announcement_text(101, "te") == "ఒక రూపాయి ఒక పైసా అందాయి"


def test_provider_announcement():
    assert announcement_text(25000, "te", "phonepe") == "ఫోన్‌పే ద్వారా రెండువందల యాభై రూపాయలు అందాయి"
    assert announcement_text(100, "te", "paytm") == "పేటీఎమ్ ద్వారా ఒక రూపాయి అందింది"
    assert announcement_text(10000, "te", "upi") == "యూపీఐ ద్వారా వంద రూపాయలు అందాయి"


def test_merged_offline_and_today():
    assert " ".join(merged_tokens(4, 20000, "te")) == "నాలుగు చెల్లింపులు అందాయి మొత్తం రెండువందల రూపాయలు"
    assert " ".join(merged_tokens(1, 100, "te")) == "ఒక చెల్లింపు అందింది మొత్తం ఒక రూపాయి"
    assert " ".join(offline_summary_tokens(3, 50000, "te")) == (
        "ఆఫ్‌లైన్‌లో ఉన్నప్పుడు మూడు చెల్లింపులు అందాయి మొత్తం ఐదువందల రూపాయలు")
    assert " ".join(today_tokens(2, 15000, "te")) == "ఈరోజు రెండు చెల్లింపులు అందాయి మొత్తం నూట యాభై రూపాయలు"
    assert today_tokens(0, 0, "te") == ["ఈరోజు చెల్లింపులు ఏవీ లేవు"]


def _check_time(case):
    hour, minute, text = case
    got = " ".join(time_tokens(hour, minute, "te"))
    assert got == text, "te %02d:%02d: %r != %r" % (hour, minute, got, text)


def test_time_phrases():
    for case in TIMES:
        _check_time(case)


def test_replay():
    assert " ".join(replay_tokens(1, 25000, 16, 10, "te")) == (
        "సాయంత్రం నాలుగు గంటల పది నిమిషాలకు రెండువందల యాభై రూపాయలు అందాయి")
    assert " ".join(replay_tokens(4, 20000, 10, 0, "te")) == (
        "ఉదయం పది గంటలకు నాలుగు చెల్లింపులు అందాయి మొత్తం రెండువందల రూపాయలు")


def test_prompts():
    assert prompt_tokens("no_network", "te") == ["నెట్‌వర్క్ లేదు"]
    assert prompt_tokens("volume_max", "te") == ["గరిష్ఠ వాల్యూమ్"]
    assert prompt_tokens("volume_min", "te") == ["కనిష్ఠ వాల్యూమ్"]
