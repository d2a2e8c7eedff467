"""Gujarati wording (soundbox.voice, "gu"). Plain asserts: also run under a MicroPython VM.

The examples are written the way a Gujarati speaker says the amount, independently of
soundbox/voice_gu.py: a typo in either shows up as a failure here. Test bodies stay
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

LANG = "gu"

ONE_TO_TEN = "એક બે ત્રણ ચાર પાંચ છ સાત આઠ નવ દસ".split()
TEENS = "અગિયાર બાર તેર ચૌદ પંદર સોળ સત્તર અઢાર ઓગણીસ".split()

# (paise, words)
EXAMPLES = (
    (1, "એક પૈસો"),
    (2, "બે પૈસા"),
    (50, "પચાસ પૈસા"),
    (99, "નવ્વાણું પૈસા"),
    (100, "એક રૂપિયો"),
    (101, "એક રૂપિયો અને એક પૈસો"),
    (102, "એક રૂપિયો અને બે પૈસા"),
    (201, "બે રૂપિયા અને એક પૈસો"),
    (2550, "પચ્ચીસ રૂપિયા અને પચાસ પૈસા"),
    # the fused tens (one word each, never tens + units)
    (2100, "એકવીસ રૂપિયા"),
    (2300, "ત્રેવીસ રૂપિયા"),
    (2900, "ઓગણત્રીસ રૂપિયા"),
    (3500, "પાંત્રીસ રૂપિયા"),
    (3900, "ઓગણચાલીસ રૂપિયા"),
    (4400, "ચુંમાલીસ રૂપિયા"),
    (4500, "પિસ્તાલીસ રૂપિયા"),
    (4900, "ઓગણપચાસ રૂપિયા"),
    (5100, "એકાવન રૂપિયા"),
    (5900, "ઓગણસાઠ રૂપિયા"),
    (6000, "સાઈઠ રૂપિયા"),
    (6900, "ઓગણસિત્તેર રૂપિયા"),
    (7100, "એકોતેર રૂપિયા"),
    (7500, "પંચોતેર રૂપિયા"),
    (7900, "ઓગણાએંસી રૂપિયા"),
    (8400, "ચોર્યાસી રૂપિયા"),
    (8900, "નેવ્યાસી રૂપિયા"),
    (9000, "નેવું રૂપિયા"),
    (9600, "છન્નું રૂપિયા"),
    (9900, "નવ્વાણું રૂપિયા"),
    # hundreds: one fused word each, two hundred is બસો
    (10000, "એકસો રૂપિયા"),
    (10100, "એકસો એક રૂપિયા"),
    (15000, "એકસો પચાસ રૂપિયા"),
    (20000, "બસો રૂપિયા"),
    (25000, "બસો પચાસ રૂપિયા"),
    (25050, "બસો પચાસ રૂપિયા અને પચાસ પૈસા"),
    (60000, "છસો રૂપિયા"),
    (99900, "નવસો નવ્વાણું રૂપિયા"),
    # thousands, lakhs, crores: the count always said
    (100000, "એક હજાર રૂપિયા"),
    (100100, "એક હજાર એક રૂપિયા"),
    (150000, "એક હજાર પાંચસો રૂપિયા"),
    (200000, "બે હજાર રૂપિયા"),
    (250000, "બે હજાર પાંચસો રૂપિયા"),
    (9999900, "નવ્વાણું હજાર નવસો નવ્વાણું રૂપિયા"),
    (10000000, "એક લાખ રૂપિયા"),
    (10000100, "એક લાખ એક રૂપિયા"),
    (12500050, "એક લાખ પચ્ચીસ હજાર રૂપિયા અને પચાસ પૈસા"),
    (999999900, "નવ્વાણું લાખ નવ્વાણું હજાર નવસો નવ્વાણું રૂપિયા"),
    (1000000000, "એક કરોડ રૂપિયા"),
    (1000000001, "એક કરોડ રૂપિયા અને એક પૈસો"),
    (1250000000, "એક કરોડ પચ્ચીસ લાખ રૂપિયા"),
    (12345678900, "બાર કરોડ ચોત્રીસ લાખ છપ્પન હજાર સાતસો નેવ્યાસી રૂપિયા"),
    (MAX_PAISE, "નવ્વાણું કરોડ નવ્વાણું લાખ નવ્વાણું હજાર નવસો નવ્વાણું રૂપિયા અને નવ્વાણું પૈસા"),
)

# (hour, minute, time phrase)
TIMES = (
    (16, 10, "સાંજે ચાર વાગીને દસ મિનિટે"),
    (16, 0, "સાંજે ચાર વાગ્યે"),
    (16, 1, "સાંજે ચાર વાગીને એક મિનિટે"),
    (9, 45, "સવારે નવ વાગીને પિસ્તાલીસ મિનિટે"),
    (4, 0, "સવારે ચાર વાગ્યે"),
    (3, 59, "રાત્રે ત્રણ વાગીને ઓગણસાઠ મિનિટે"),
    (13, 30, "બપોરે એક વાગીને ત્રીસ મિનિટે"),
    (12, 0, "બપોરે બાર વાગ્યે"),
    (0, 0, "રાત્રે બાર વાગ્યે"),
    (0, 5, "રાત્રે બાર વાગીને પાંચ મિનિટે"),
    (19, 25, "સાંજે સાત વાગીને પચ્ચીસ મિનિટે"),
    (20, 5, "રાત્રે આઠ વાગીને પાંચ મિનિટે"),
    (23, 15, "રાત્રે અગિયાર વાગીને પંદર મિનિટે"),
    (11, 59, "સવારે અગિયાર વાગીને ઓગણસાઠ મિનિટે"),
)


def _check(paise, words):
    got = amount_words(paise, LANG)
    assert got == words, "%d: %r != %r" % (paise, got, words)
    for tok in amount_tokens(paise, LANG):
        assert tok in TOKENS[LANG], tok


def test_one_to_ten_and_the_teens():
    n = 1
    for word in ONE_TO_TEN + TEENS:
        _check(n * 100, word + (" રૂપિયો" if n == 1 else " રૂપિયા"))
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
    assert announcement_text(100, LANG) == "એક રૂપિયો મળ્યો"
    assert announcement_text(1, LANG) == "એક પૈસો મળ્યો"
    assert announcement_text(200, LANG) == "બે રૂપિયા મળ્યા"
    assert announcement_text(101, LANG) == "એક રૂપિયો અને એક પૈસો મળ્યા"
    assert announcement_text(25000, LANG) == "બસો પચાસ રૂપિયા મળ્યા"


def test_provider_announcement():
    assert announcement_text(25000, LANG, "phonepe") == "ફોન પે પર બસો પચાસ રૂપિયા મળ્યા"
    assert announcement_text(100, LANG, "paytm") == "પેટીએમ પર એક રૂપિયો મળ્યો"
    said = [announcement_text(100, LANG, p) for p in PROVIDERS]
    assert len(set(said)) == len(PROVIDERS)


def test_merged_offline_and_today():
    assert " ".join(merged_tokens(4, 20000, LANG)) == "ચાર પેમેન્ટ કુલ બસો રૂપિયા મળ્યા"
    assert " ".join(merged_tokens(2, 100, LANG)) == "બે પેમેન્ટ કુલ એક રૂપિયો મળ્યો"
    assert " ".join(offline_summary_tokens(3, 50000, LANG)) == (
        "ઑફલાઇન હતું ત્યારે ત્રણ પેમેન્ટ કુલ પાંચસો રૂપિયા મળ્યા")
    assert " ".join(today_tokens(3, 50000, LANG)) == "આજે ત્રણ પેમેન્ટ કુલ પાંચસો રૂપિયા મળ્યા"
    assert today_tokens(0, 0, LANG) == ["આજે કોઈ પેમેન્ટ નથી"]


def _check_time(hour, minute, text):
    got = " ".join(time_tokens(hour, minute, LANG))
    assert got == text, "%02d:%02d: %r != %r" % (hour, minute, got, text)


def test_time_phrases():
    for hour, minute, text in TIMES:
        _check_time(hour, minute, text)


def test_replay():
    assert " ".join(replay_tokens(1, 25000, 16, 10, LANG)) == (
        "સાંજે ચાર વાગીને દસ મિનિટે બસો પચાસ રૂપિયા મળ્યા")
    assert " ".join(replay_tokens(4, 20000, 12, 0, LANG)) == (
        "બપોરે બાર વાગ્યે ચાર પેમેન્ટ કુલ બસો રૂપિયા મળ્યા")


def test_prompts_are_single_clips_in_the_pack():
    for name in PROMPTS + VOLUME_PROMPTS:
        toks = prompt_tokens(name, LANG)
        assert len(toks) == 1 and toks[0] in TOKENS[LANG], name
    assert prompt_tokens("volume_max", LANG) == ["મહત્તમ અવાજ"]
    assert prompt_tokens("low_battery", LANG) == ["બેટરી ઓછી છે"]


def test_no_digits_or_latin_in_any_token():
    for tok in TOKENS[LANG]:
        for ch in tok:
            assert ch == " " or ord(ch) >= 0x0A80, tok  # Gujarati block and above


def test_bad_input_is_refused():
    assert raises(ValueError, amount_words, 0, LANG)
    assert raises(ValueError, amount_words, MAX_PAISE + 1, LANG)
    assert raises(ValueError, announcement_text, 100, LANG, "cash")
