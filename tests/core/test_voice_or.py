"""Odia wording (soundbox.voice, "or"). Plain asserts: also run under a MicroPython VM.

The examples are written the way an Odia speaker says the amount, independently of
soundbox/voice_or.py: a typo in either shows up as a failure here. Test bodies stay
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

LANG = "or"

ONE_TO_TEN = "ଏକ ଦୁଇ ତିନି ଚାରି ପାଞ୍ଚ ଛଅ ସାତ ଆଠ ନଅ ଦଶ".split()
TEENS = "ଏଗାର ବାର ତେର ଚଉଦ ପନ୍ଦର ଷୋହଳ ସତର ଅଠର ଊଣେଇଶି".split()
RUPEE, RUPEES = "ଟଙ୍କା", "ଟଙ୍କା"

# (paise, words)
EXAMPLES = (
    (1, "ଏକ ପଇସା"),
    (2, "ଦୁଇ ପଇସା"),
    (50, "ପଚାଶ ପଇସା"),
    (99, "ଅନେଶତ ପଇସା"),
    (100, "ଏକ ଟଙ୍କା"),
    (101, "ଏକ ଟଙ୍କା ଏକ ପଇସା"),
    (102, "ଏକ ଟଙ୍କା ଦୁଇ ପଇସା"),
    (201, "ଦୁଇ ଟଙ୍କା ଏକ ପଇସା"),
    (2550, "ପଚିଶି ଟଙ୍କା ପଚାଶ ପଇସା"),
    # the fused tens (one word each, never tens + units)
    (2000, "କୋଡ଼ିଏ ଟଙ୍କା"),
    (2100, "ଏକୋଇଶି ଟଙ୍କା"),
    (2900, "ଅଣତିରିଶି ଟଙ୍କା"),
    (3000, "ତିରିଶି ଟଙ୍କା"),
    (3700, "ସଇଁତିରିଶି ଟଙ୍କା"),
    (3900, "ଅଣଚାଳିଶି ଟଙ୍କା"),
    (4200, "ବୟାଳିଶି ଟଙ୍କା"),
    (4900, "ଅଣଚାଶ ଟଙ୍କା"),
    (5200, "ବାଉନ ଟଙ୍କା"),
    (5900, "ଅଣଷଠି ଟଙ୍କା"),
    (6000, "ଷାଠିଏ ଟଙ୍କା"),
    (6900, "ଅଣସ୍ତରି ଟଙ୍କା"),
    (7000, "ସତୁରି ଟଙ୍କା"),
    (7500, "ପଞ୍ଚସ୍ତରି ଟଙ୍କା"),
    (7900, "ଅଣାଅଶୀ ଟଙ୍କା"),
    (8000, "ଅଶୀ ଟଙ୍କା"),
    (8600, "ଛୟାଅଶୀ ଟଙ୍କା"),
    (8900, "ଅଣାନବେ ଟଙ୍କା"),
    (9000, "ନବେ ଟଙ୍କା"),
    (9900, "ଅନେଶତ ଟଙ୍କା"),
    # hundreds: one word each, ଶହେ for a hundred with or without more
    (10000, "ଶହେ ଟଙ୍କା"),
    (10100, "ଶହେ ଏକ ଟଙ୍କା"),
    (15000, "ଶହେ ପଚାଶ ଟଙ୍କା"),
    (20000, "ଦୁଇଶହ ଟଙ୍କା"),
    (25000, "ଦୁଇଶହ ପଚାଶ ଟଙ୍କା"),
    (25050, "ଦୁଇଶହ ପଚାଶ ଟଙ୍କା ପଚାଶ ପଇସା"),
    (99900, "ନଅଶହ ଅନେଶତ ଟଙ୍କା"),
    # thousands, lakhs, crores: the count always said
    (100000, "ଏକ ହଜାର ଟଙ୍କା"),
    (100100, "ଏକ ହଜାର ଏକ ଟଙ୍କା"),
    (110000, "ଏକ ହଜାର ଶହେ ଟଙ୍କା"),
    (150000, "ଏକ ହଜାର ପାଞ୍ଚଶହ ଟଙ୍କା"),
    (200000, "ଦୁଇ ହଜାର ଟଙ୍କା"),
    (250000, "ଦୁଇ ହଜାର ପାଞ୍ଚଶହ ଟଙ୍କା"),
    (9999900, "ଅନେଶତ ହଜାର ନଅଶହ ଅନେଶତ ଟଙ୍କା"),
    (10000000, "ଏକ ଲକ୍ଷ ଟଙ୍କା"),
    (10000100, "ଏକ ଲକ୍ଷ ଏକ ଟଙ୍କା"),
    (12500050, "ଏକ ଲକ୍ଷ ପଚିଶି ହଜାର ଟଙ୍କା ପଚାଶ ପଇସା"),
    (999999900, "ଅନେଶତ ଲକ୍ଷ ଅନେଶତ ହଜାର ନଅଶହ ଅନେଶତ ଟଙ୍କା"),
    (1000000000, "ଏକ କୋଟି ଟଙ୍କା"),
    (1000000001, "ଏକ କୋଟି ଟଙ୍କା ଏକ ପଇସା"),
    (1250000000, "ଏକ କୋଟି ପଚିଶି ଲକ୍ଷ ଟଙ୍କା"),
    (12345678900, "ବାର କୋଟି ଚଉତିରିଶି ଲକ୍ଷ ଛପନ ହଜାର ସାତଶହ ଅଣାନବେ ଟଙ୍କା"),
    (MAX_PAISE, "ଅନେଶତ କୋଟି ଅନେଶତ ଲକ୍ଷ ଅନେଶତ ହଜାର ନଅଶହ ଅନେଶତ ଟଙ୍କା ଅନେଶତ ପଇସା"),
)

# (hour, minute, time phrase)
TIMES = (
    (16, 10, "ଦିନ ଚାରିଟା ବାଜି ଦଶ ମିନିଟରେ"),
    (16, 0, "ଦିନ ଚାରିଟାରେ"),
    (16, 1, "ଦିନ ଚାରିଟା ବାଜି ଏକ ମିନିଟରେ"),
    (9, 45, "ସକାଳ ନଅଟା ବାଜି ପଞ୍ଚଚାଳିଶି ମିନିଟରେ"),
    (4, 0, "ସକାଳ ଚାରିଟାରେ"),
    (3, 59, "ରାତି ତିନିଟା ବାଜି ଅଣଷଠି ମିନିଟରେ"),
    (13, 5, "ଦିନ ଏକଟା ବାଜି ପାଞ୍ଚ ମିନିଟରେ"),
    (12, 0, "ଦିନ ବାରଟାରେ"),
    (0, 0, "ରାତି ବାରଟାରେ"),
    (0, 5, "ରାତି ବାରଟା ବାଜି ପାଞ୍ଚ ମିନିଟରେ"),
    (18, 0, "ସନ୍ଧ୍ୟା ଛଅଟାରେ"),
    (19, 25, "ସନ୍ଧ୍ୟା ସାତଟା ବାଜି ପଚିଶି ମିନିଟରେ"),
    (20, 5, "ରାତି ଆଠଟା ବାଜି ପାଞ୍ଚ ମିନିଟରେ"),
    (23, 15, "ରାତି ଏଗାରଟା ବାଜି ପନ୍ଦର ମିନିଟରେ"),
    (11, 0, "ସକାଳ ଏଗାରଟାରେ"),
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


def test_the_verb_is_the_same_for_one_and_many():
    assert announcement_text(100, LANG) == "ଏକ ଟଙ୍କା ମିଳିଲା"
    assert announcement_text(1, LANG) == "ଏକ ପଇସା ମିଳିଲା"
    assert announcement_text(200, LANG) == "ଦୁଇ ଟଙ୍କା ମିଳିଲା"
    assert announcement_text(101, LANG) == "ଏକ ଟଙ୍କା ଏକ ପଇସା ମିଳିଲା"


def test_provider_announcement():
    assert announcement_text(25000, LANG, "phonepe") == "ଫୋନ୍ ପେ ମାଧ୍ୟମରେ ଦୁଇଶହ ପଚାଶ ଟଙ୍କା ମିଳିଲା"
    assert announcement_text(100, LANG, "paytm") == "ପେଟିଏମ୍ ମାଧ୍ୟମରେ ଏକ ଟଙ୍କା ମିଳିଲା"
    said = [announcement_text(100, LANG, p) for p in PROVIDERS]
    assert len(set(said)) == len(PROVIDERS)


def test_merged_offline_and_today():
    assert " ".join(merged_tokens(4, 20000, LANG)) == "ଚାରି ପେମେଣ୍ଟରେ ମୋଟ ଦୁଇଶହ ଟଙ୍କା ମିଳିଲା"
    assert " ".join(merged_tokens(2, 100, LANG)) == "ଦୁଇ ପେମେଣ୍ଟରେ ମୋଟ ଏକ ଟଙ୍କା ମିଳିଲା"
    assert " ".join(offline_summary_tokens(3, 50000, LANG)) == (
        "ଅଫଲାଇନ୍ ଥିବା ବେଳେ ତିନି ପେମେଣ୍ଟରେ ମୋଟ ପାଞ୍ଚଶହ ଟଙ୍କା ମିଳିଲା")
    assert " ".join(today_tokens(3, 50000, LANG)) == "ଆଜି ତିନି ପେମେଣ୍ଟରେ ମୋଟ ପାଞ୍ଚଶହ ଟଙ୍କା ମିଳିଲା"
    assert today_tokens(0, 0, LANG) == ["ଆଜି କୌଣସି ପେମେଣ୍ଟ୍ ନାହିଁ"]


def _check_time(hour, minute, text):
    got = " ".join(time_tokens(hour, minute, LANG))
    assert got == text, "%02d:%02d: %r != %r" % (hour, minute, got, text)


def test_time_phrases():
    for hour, minute, text in TIMES:
        _check_time(hour, minute, text)


def test_replay():
    assert " ".join(replay_tokens(1, 25000, 16, 10, LANG)) == (
        "ଦିନ ଚାରିଟା ବାଜି ଦଶ ମିନିଟରେ ଦୁଇଶହ ପଚାଶ ଟଙ୍କା ମିଳିଲା")
    assert " ".join(replay_tokens(3, 50000, 19, 0, LANG)) == (
        "ସନ୍ଧ୍ୟା ସାତଟାରେ ତିନି ପେମେଣ୍ଟରେ ମୋଟ ପାଞ୍ଚଶହ ଟଙ୍କା ମିଳିଲା")


def test_prompts_are_single_clips_in_the_pack():
    for name in PROMPTS + VOLUME_PROMPTS:
        toks = prompt_tokens(name, LANG)
        assert len(toks) == 1 and toks[0] in TOKENS[LANG], name
    assert prompt_tokens("volume_max", LANG) == ["ସର୍ବାଧିକ ଭଲ୍ୟୁମ୍"]
    assert prompt_tokens("low_battery", LANG) == ["ବ୍ୟାଟେରୀ କମ୍ ଅଛି"]


def test_no_digits_or_latin_in_any_token():
    for tok in TOKENS[LANG]:
        for ch in tok:
            assert ch == " " or 0x0B00 <= ord(ch) <= 0x0B7F, tok  # Odia block only


def test_nukta_letter_is_letter_plus_nukta():
    # NFC keeps ଡ + ଼ (U+0B5C is excluded from composition): the pack's names use it too.
    for tok in TOKENS[LANG]:
        assert "\u0b5c" not in tok and "\u0b5d" not in tok, tok
    assert amount_words(2000, LANG) == "\u0b15\u0b4b\u0b21\u0b3c\u0b3f\u0b0f \u0b1f\u0b19\u0b4d\u0b15\u0b3e"


def test_bad_input_is_refused():
    assert raises(ValueError, amount_words, 0, LANG)
    assert raises(ValueError, amount_words, MAX_PAISE + 1, LANG)
    assert raises(ValueError, announcement_text, 100, LANG, "cash")
