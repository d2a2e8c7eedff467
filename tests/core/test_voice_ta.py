"""Tamil wording (soundbox.voice, table soundbox.voice_ta). Plain asserts: also run under a
MicroPython VM, so every test body is small (a helper per case; see tests/core/test_p256.py).

The examples are written the way a Tamil speaker says the amount, independently of the
table: a typo in either shows up as a failure here. So is the reader below, which turns
the words back into a number with its own list of the number words."""

import gc

from check import raises

from soundbox.voice import (
    MAX_PAISE,
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
    today_tokens,
)
from soundbox.voice_tokens import TOKENS

LANG = "ta"

# 1-99 before a noun (one is ஒரு there), ten to a line.
NUMBER_WORDS = (
    "ஒரு இரண்டு மூன்று நான்கு ஐந்து ஆறு ஏழு எட்டு ஒன்பது பத்து "
    "பதினொரு பன்னிரண்டு பதின்மூன்று பதினான்கு பதினைந்து பதினாறு பதினேழு பதினெட்டு பத்தொன்பது இருபது "
    "இருபத்தொரு இருபத்திரண்டு இருபத்துமூன்று இருபத்துநான்கு இருபத்தைந்து இருபத்தாறு இருபத்தேழு "
    "இருபத்தெட்டு இருபத்தொன்பது முப்பது "
    "முப்பத்தொரு முப்பத்திரண்டு முப்பத்துமூன்று முப்பத்துநான்கு முப்பத்தைந்து முப்பத்தாறு முப்பத்தேழு "
    "முப்பத்தெட்டு முப்பத்தொன்பது நாற்பது "
    "நாற்பத்தொரு நாற்பத்திரண்டு நாற்பத்துமூன்று நாற்பத்துநான்கு நாற்பத்தைந்து நாற்பத்தாறு நாற்பத்தேழு "
    "நாற்பத்தெட்டு நாற்பத்தொன்பது ஐம்பது "
    "ஐம்பத்தொரு ஐம்பத்திரண்டு ஐம்பத்துமூன்று ஐம்பத்துநான்கு ஐம்பத்தைந்து ஐம்பத்தாறு ஐம்பத்தேழு "
    "ஐம்பத்தெட்டு ஐம்பத்தொன்பது அறுபது "
    "அறுபத்தொரு அறுபத்திரண்டு அறுபத்துமூன்று அறுபத்துநான்கு அறுபத்தைந்து அறுபத்தாறு அறுபத்தேழு "
    "அறுபத்தெட்டு அறுபத்தொன்பது எழுபது "
    "எழுபத்தொரு எழுபத்திரண்டு எழுபத்துமூன்று எழுபத்துநான்கு எழுபத்தைந்து எழுபத்தாறு எழுபத்தேழு "
    "எழுபத்தெட்டு எழுபத்தொன்பது எண்பது "
    "எண்பத்தொரு எண்பத்திரண்டு எண்பத்துமூன்று எண்பத்துநான்கு எண்பத்தைந்து எண்பத்தாறு எண்பத்தேழு "
    "எண்பத்தெட்டு எண்பத்தொன்பது தொண்ணூறு "
    "தொண்ணூற்றொரு தொண்ணூற்றிரண்டு தொண்ணூற்றுமூன்று தொண்ணூற்றுநான்கு தொண்ணூற்றைந்து தொண்ணூற்றாறு "
    "தொண்ணூற்றேழு தொண்ணூற்றெட்டு தொண்ணூற்றொன்பது"
).split(" ")

EXAMPLES = (
    # units and teens, as paise
    (1, "ஒரு பைசா"),
    (2, "இரண்டு பைசா"),
    (3, "மூன்று பைசா"),
    (4, "நான்கு பைசா"),
    (5, "ஐந்து பைசா"),
    (6, "ஆறு பைசா"),
    (7, "ஏழு பைசா"),
    (8, "எட்டு பைசா"),
    (9, "ஒன்பது பைசா"),
    (10, "பத்து பைசா"),
    (11, "பதினொரு பைசா"),
    (12, "பன்னிரண்டு பைசா"),
    (13, "பதின்மூன்று பைசா"),
    (15, "பதினைந்து பைசா"),
    (19, "பத்தொன்பது பைசா"),
    # fused tens
    (20, "இருபது பைசா"),
    (21, "இருபத்தொரு பைசா"),
    (22, "இருபத்திரண்டு பைசா"),
    (23, "இருபத்துமூன்று பைசா"),
    (24, "இருபத்துநான்கு பைசா"),
    (25, "இருபத்தைந்து பைசா"),
    (29, "இருபத்தொன்பது பைசா"),
    (32, "முப்பத்திரண்டு பைசா"),
    (45, "நாற்பத்தைந்து பைசா"),
    (50, "ஐம்பது பைசா"),
    (58, "ஐம்பத்தெட்டு பைசா"),
    (67, "அறுபத்தேழு பைசா"),
    (76, "எழுபத்தாறு பைசா"),
    (83, "எண்பத்துமூன்று பைசா"),
    (90, "தொண்ணூறு பைசா"),
    (91, "தொண்ணூற்றொரு பைசா"),
    (94, "தொண்ணூற்றுநான்கு பைசா"),
    (99, "தொண்ணூற்றொன்பது பைசா"),
    # rupees: the same word for one and many
    (100, "ஒரு ரூபாய்"),
    (200, "இரண்டு ரூபாய்"),
    (1100, "பதினொரு ரூபாய்"),
    (4200, "நாற்பத்திரண்டு ரூபாய்"),
    # hundreds, alone and joined
    (10000, "நூறு ரூபாய்"),
    (10100, "நூற்று ஒரு ரூபாய்"),
    (15000, "நூற்று ஐம்பது ரூபாய்"),
    (20000, "இருநூறு ரூபாய்"),
    (25000, "இருநூற்று ஐம்பது ரூபாய்"),
    (30000, "முந்நூறு ரூபாய்"),
    (40500, "நானூற்று ஐந்து ரூபாய்"),
    (50000, "ஐந்நூறு ரூபாய்"),
    (80000, "எண்ணூறு ரூபாய்"),
    (90000, "தொள்ளாயிரம் ரூபாய்"),
    (99900, "தொள்ளாயிரத்து தொண்ணூற்றொன்பது ரூபாய்"),
    # thousands
    (100000, "ஆயிரம் ரூபாய்"),
    (100100, "ஆயிரத்து ஒரு ரூபாய்"),
    (150000, "ஆயிரத்து ஐந்நூறு ரூபாய்"),
    (200000, "இரண்டு ஆயிரம் ரூபாய்"),
    (250000, "இரண்டு ஆயிரத்து ஐந்நூறு ரூபாய்"),
    (1000000, "பத்து ஆயிரம் ரூபாய்"),
    (2100000, "இருபத்தொரு ஆயிரம் ரூபாய்"),
    (9999900, "தொண்ணூற்றொன்பது ஆயிரத்து தொள்ளாயிரத்து தொண்ணூற்றொன்பது ரூபாய்"),
    # lakhs and crores
    (10000000, "ஒரு லட்சம் ரூபாய்"),
    (10000100, "ஒரு லட்சத்து ஒரு ரூபாய்"),
    (12500000, "ஒரு லட்சத்து இருபத்தைந்து ஆயிரம் ரூபாய்"),
    (20000000, "இரண்டு லட்சம் ரூபாய்"),
    (999999900, "தொண்ணூற்றொன்பது லட்சத்து தொண்ணூற்றொன்பது ஆயிரத்து தொள்ளாயிரத்து தொண்ணூற்றொன்பது ரூபாய்"),
    (1000000000, "ஒரு கோடி ரூபாய்"),
    (1000000100, "ஒரு கோடியே ஒரு ரூபாய்"),
    (1020000000, "ஒரு கோடியே இரண்டு லட்சம் ரூபாய்"),
    (1000100000, "ஒரு கோடியே ஆயிரம் ரூபாய்"),
    (5000000000, "ஐந்து கோடி ரூபாய்"),
    (12345678900, "பன்னிரண்டு கோடியே முப்பத்துநான்கு லட்சத்து ஐம்பத்தாறு ஆயிரத்து எழுநூற்று எண்பத்தொன்பது ரூபாய்"),
    # rupees and paise, with no "and"
    (101, "ஒரு ரூபாய் ஒரு பைசா"),
    (199, "ஒரு ரூபாய் தொண்ணூற்றொன்பது பைசா"),
    (2550, "இருபத்தைந்து ரூபாய் ஐம்பது பைசா"),
    (12500050, "ஒரு லட்சத்து இருபத்தைந்து ஆயிரம் ரூபாய் ஐம்பது பைசா"),
    (1000000001, "ஒரு கோடி ரூபாய் ஒரு பைசா"),
    (MAX_PAISE, "தொண்ணூற்றொன்பது கோடியே தொண்ணூற்றொன்பது லட்சத்து தொண்ணூற்றொன்பது ஆயிரத்து "
                "தொள்ளாயிரத்து தொண்ணூற்றொன்பது ரூபாய் தொண்ணூற்றொன்பது பைசா"),
)


def _check_example(case):
    paise, words = case
    got = amount_words(paise, LANG)
    assert got == words, "%d: %r != %r" % (paise, got, words)


def test_amounts_as_a_tamil_speaker_says_them():
    for case in EXAMPLES:
        _check_example(case)


def _check_tokens(paise, pack):
    for tok in amount_tokens(paise, LANG):
        assert tok in pack, (paise, tok)


def test_every_example_is_said_with_pack_tokens():
    pack = TOKENS[LANG]
    for case in EXAMPLES:
        _check_tokens(case[0], pack)


def test_every_number_below_100_is_its_own_word():
    below = []
    n = 1
    while n < 100:
        said = amount_tokens(n, LANG)
        assert said == [NUMBER_WORDS[n - 1], "பைசா"], (n, said)
        below.append(said[0])
        n += 1
    assert len(set(below)) == 99


# ---- an independent reader: words -> paise ---------------------------------------------------

HUNDREDS = ("நூறு இருநூறு முந்நூறு நானூறு ஐந்நூறு அறுநூறு எழுநூறு எண்ணூறு தொள்ளாயிரம்").split(" ")
HUNDREDS_JOINED = ("நூற்று இருநூற்று முந்நூற்று நானூற்று ஐந்நூற்று அறுநூற்று எழுநூற்று எண்ணூற்று "
                   "தொள்ளாயிரத்து").split(" ")
# group word -> (size, more must follow)
GROUPS = {"ஆயிரம்": (1000, False), "ஆயிரத்து": (1000, True), "லட்சம்": (100000, False),
          "லட்சத்து": (100000, True), "கோடி": (10000000, False), "கோடியே": (10000000, True)}


START = 10 ** 12  # "last size" at the start of a number: any group may come first


def _may_start_part(state):
    # A count or hundreds begins a number, or follows a joined form (நூற்று, ஆயிரத்து ...).
    assert state[3] == START or state[4], "more after a form that ends the number"


def _read_count(word, state):
    _may_start_part(state)
    state[2] = NUMBER_WORDS.index(word) + 1
    state[4] = False


def _read_hundreds(word, state):
    _may_start_part(state)
    assert state[2] == 0 and state[3] > 100, "misplaced hundreds"
    joined = word in HUNDREDS_JOINED
    state[1] += 100 * ((HUNDREDS_JOINED if joined else HUNDREDS).index(word) + 1)
    state[3] = 100
    state[4] = joined


def _read_group(word, state):
    size, joined = GROUPS[word]
    count = state[2]
    if not count:  # a thousand has no count before it; lakh and crore always do
        assert size == 1000, "group without a count"
        _may_start_part(state)
        count = 1
    assert state[3] > size, "group order"
    state[1] += count * size
    state[2] = 0
    state[3] = size
    state[4] = joined


def _read_unit(word, state):
    assert not state[4], "joined form with nothing after it"
    value = state[1] + state[2]
    assert value, "unit without a number"
    state[0] += value * (100 if word == "ரூபாய்" else 1)
    state[1] = state[2] = 0
    state[3] = START
    state[4] = False


def _read_word(word, state):
    # state: [total paise, number so far, count below 100, last size, last was a joined form]
    if word in NUMBER_WORDS:
        assert state[2] == 0, "two counts in a row"
        _read_count(word, state)
    elif word in HUNDREDS or word in HUNDREDS_JOINED:
        _read_hundreds(word, state)
    elif word in GROUPS:
        _read_group(word, state)
    elif word in ("ரூபாய்", "பைசா"):
        _read_unit(word, state)
    else:
        raise AssertionError("unknown word %r" % word)


def read_amount(words):
    state = [0, 0, 0, START, False]
    for word in words.split(" "):
        _read_word(word, state)
    assert state[1] == 0 and state[2] == 0, "number without a unit"
    return state[0]


def test_the_reader_checks_itself():
    assert read_amount("இருநூற்று ஐம்பது ரூபாய் ஐம்பது பைசா") == 25050
    assert read_amount("ஆயிரத்து ஒரு ரூபாய்") == 100100
    for bad in ("இருநூற்று ரூபாய்", "லட்சம் ரூபாய்", "ஆயிரம் ஒரு லட்சம் ரூபாய்", "இருபது ஐந்து பைசா",
                "நூறு நூறு ரூபாய்", "ஐம்பது", "ஒரு கோடியே ரூபாய்"):
        assert raises(AssertionError, read_amount, bad), bad


def _read_back(paise):
    got = read_amount(amount_words(paise, LANG))
    assert got == paise, (paise, got, amount_words(paise, LANG))


def test_amounts_read_back_to_themselves():
    # Every paise count and a stride through the rupees up to the largest payment: each
    # hundreds and group form occurs, alone and with more after it.
    for case in EXAMPLES:
        _read_back(case[0])
    paise = 1
    while paise < MAX_PAISE:
        _read_back(paise)
        paise = paise * 3 + 7
    rupees = 1
    while rupees < 100000:
        if rupees % 9700 == 1:
            # Collect from this small frame every hundred amounts: in the VM, a collection
            # the allocator ran mid-loop made a word come out empty (its collector cannot
            # see all a running function holds; see soundbox_tools.mpvm).
            gc.collect()
        _read_back(rupees * 100)
        rupees += 97


# ---- announcements, summaries, prompts -------------------------------------------------------

def test_announcement_with_and_without_a_provider():
    assert announcement_text(25000, LANG) == "இருநூற்று ஐம்பது ரூபாய் பெறப்பட்டது"
    assert announcement_text(100, LANG) == "ஒரு ரூபாய் பெறப்பட்டது"
    assert announcement_text(25000, LANG, "paytm") == "பேடிஎம் மூலம் இருநூற்று ஐம்பது ரூபாய் பெறப்பட்டது"
    assert announcement_text(50, LANG, "phonepe") == "ஃபோன்பே மூலம் ஐம்பது பைசா பெறப்பட்டது"
    assert announcement_text(100000, LANG, "gpay") == "ஜீபே மூலம் ஆயிரம் ரூபாய் பெறப்பட்டது"
    assert announcement_text(200, LANG, "bhim") == "பீம் மூலம் இரண்டு ரூபாய் பெறப்பட்டது"
    assert announcement_text(1, LANG, "upi") == "யூபிஐ மூலம் ஒரு பைசா பெறப்பட்டது"
    assert raises(ValueError, announcement_tokens, 100, LANG, "cash")


def test_every_provider_is_its_own_clip():
    names = []
    for provider in PROVIDERS:
        said = announcement_tokens(100, LANG, provider)
        assert said[1] == "மூலம்" and said[0] in TOKENS[LANG], (provider, said)
        names.append(said[0])
    assert len(set(names)) == len(PROVIDERS)


def test_merged_offline_and_today():
    assert " ".join(merged_tokens(4, 20000, LANG)) == "நான்கு பரிவர்த்தனைகள் மூலம் மொத்தம் இருநூறு ரூபாய் பெறப்பட்டது"
    assert " ".join(merged_tokens(1, 100, LANG)) == "ஒரு பரிவர்த்தனை மூலம் மொத்தம் ஒரு ரூபாய் பெறப்பட்டது"
    assert " ".join(offline_summary_tokens(3, 50000, LANG)) == (
        "ஆஃப்லைனில் இருந்தபோது மூன்று பரிவர்த்தனைகள் மூலம் மொத்தம் ஐந்நூறு ரூபாய் பெறப்பட்டது")
    assert " ".join(today_tokens(2, 150, LANG)) == (
        "இன்று இரண்டு பரிவர்த்தனைகள் மூலம் மொத்தம் ஒரு ரூபாய் ஐம்பது பைசா பெறப்பட்டது")
    assert today_tokens(0, 0, LANG) == ["இன்று பரிவர்த்தனைகள் எதுவும் இல்லை"]


def test_a_total_above_ninety_nine_crore():
    said = " ".join(merged_tokens(16, 16 * MAX_PAISE, LANG))
    assert said == ("பதினாறு பரிவர்த்தனைகள் மூலம் மொத்தம் ஆயிரத்து ஐந்நூற்று தொண்ணூற்றொன்பது கோடியே "
                    "தொண்ணூற்றொன்பது லட்சத்து தொண்ணூற்றொன்பது ஆயிரத்து தொள்ளாயிரத்து தொண்ணூற்றொன்பது "
                    "ரூபாய் எண்பத்துநான்கு பைசா பெறப்பட்டது"), said


def test_prompts():
    assert prompt_tokens("not_registered", LANG) == ["சாதனம் பதிவு செய்யப்படவில்லை"]
    assert prompt_tokens("low_battery", LANG) == ["பேட்டரி குறைவாக உள்ளது"]
    assert prompt_tokens("volume_max", LANG) == ["அதிகபட்ச ஒலி அளவு"]
    assert prompt_tokens("volume_min", LANG) == ["குறைந்தபட்ச ஒலி அளவு"]


def _native(tok):
    # Tamil script (U+0B80-U+0BFF) and spaces only: espeak-ng is fed words, never digits
    # or Latin letters it would spell out.
    for ch in tok:
        assert ch == " " or 0x0B80 <= ord(ch) <= 0x0BFF, (tok, ch)


def test_every_token_is_in_tamil_script():
    for tok in TOKENS[LANG]:
        _native(tok)


# ---- the time of day (replay key) ------------------------------------------------------------

TIMES = (
    (16, 10, "மாலை நான்கு மணி பத்து நிமிடத்திற்கு"),
    (16, 0, "மாலை நான்கு மணிக்கு"),
    (16, 1, "மாலை நான்கு மணி ஒரு நிமிடத்திற்கு"),
    (9, 45, "காலை ஒன்பது மணி நாற்பத்தைந்து நிமிடத்திற்கு"),
    (6, 0, "காலை ஆறு மணிக்கு"),
    (5, 59, "அதிகாலை ஐந்து மணி ஐம்பத்தொன்பது நிமிடத்திற்கு"),
    (2, 5, "அதிகாலை இரண்டு மணி ஐந்து நிமிடத்திற்கு"),
    (13, 30, "மதியம் ஒரு மணி முப்பது நிமிடத்திற்கு"),
    (12, 0, "மதியம் பன்னிரண்டு மணிக்கு"),
    (0, 0, "நள்ளிரவு பன்னிரண்டு மணிக்கு"),
    (0, 15, "நள்ளிரவு பன்னிரண்டு மணி பதினைந்து நிமிடத்திற்கு"),
    (18, 21, "மாலை ஆறு மணி இருபத்தொரு நிமிடத்திற்கு"),
    (19, 0, "இரவு ஏழு மணிக்கு"),
    (23, 11, "இரவு பதினொரு மணி பதினொரு நிமிடத்திற்கு"),
    (11, 0, "காலை பதினொரு மணிக்கு"),
)


def _check_time(case):
    hour, minute, text = case
    got = " ".join(time_tokens(hour, minute, LANG))
    assert got == text, "%02d:%02d: %r != %r" % (hour, minute, got, text)


def test_time_phrases():
    for case in TIMES:
        _check_time(case)


def test_replay_says_the_time_then_the_announcement():
    assert " ".join(replay_tokens(1, 25000, 16, 10, LANG)) == (
        "மாலை நான்கு மணி பத்து நிமிடத்திற்கு இருநூற்று ஐம்பது ரூபாய் பெறப்பட்டது")
    assert " ".join(replay_tokens(4, 20000, 10, 30, LANG)) == (
        "காலை பத்து மணி முப்பது நிமிடத்திற்கு நான்கு பரிவர்த்தனைகள் மூலம் மொத்தம் இருநூறு ரூபாய் பெறப்பட்டது")
