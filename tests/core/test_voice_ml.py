"""Malayalam wording (soundbox.voice, table soundbox.voice_ml). Plain asserts: also run under
a MicroPython VM, so every test body is small (a helper per case; see tests/core/test_p256.py).

The examples are written the way a Malayalam speaker says the amount, independently of
the table: a typo in either shows up as a failure here. So is the reader below, which
turns the words back into a number with its own list of the number words."""

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

LANG = "ml"

# 1-99 (one said alone before a noun is ഒരു), ten to a line.
NUMBER_WORDS = (
    "ഒരു രണ്ട് മൂന്ന് നാല് അഞ്ച് ആറ് ഏഴ് എട്ട് ഒമ്പത് പത്ത് "
    "പതിനൊന്ന് പന്ത്രണ്ട് പതിമൂന്ന് പതിനാല് പതിനഞ്ച് പതിനാറ് പതിനേഴ് പതിനെട്ട് പത്തൊമ്പത് ഇരുപത് "
    "ഇരുപത്തിയൊന്ന് ഇരുപത്തിരണ്ട് ഇരുപത്തിമൂന്ന് ഇരുപത്തിനാല് ഇരുപത്തിയഞ്ച് ഇരുപത്തിയാറ് ഇരുപത്തിയേഴ് "
    "ഇരുപത്തിയെട്ട് ഇരുപത്തിയൊമ്പത് മുപ്പത് "
    "മുപ്പത്തിയൊന്ന് മുപ്പത്തിരണ്ട് മുപ്പത്തിമൂന്ന് മുപ്പത്തിനാല് മുപ്പത്തിയഞ്ച് മുപ്പത്തിയാറ് മുപ്പത്തിയേഴ് "
    "മുപ്പത്തിയെട്ട് മുപ്പത്തിയൊമ്പത് നാല്പത് "
    "നാല്പത്തിയൊന്ന് നാല്പത്തിരണ്ട് നാല്പത്തിമൂന്ന് നാല്പത്തിനാല് നാല്പത്തിയഞ്ച് നാല്പത്തിയാറ് നാല്പത്തിയേഴ് "
    "നാല്പത്തിയെട്ട് നാല്പത്തിയൊമ്പത് അമ്പത് "
    "അമ്പത്തിയൊന്ന് അമ്പത്തിരണ്ട് അമ്പത്തിമൂന്ന് അമ്പത്തിനാല് അമ്പത്തിയഞ്ച് അമ്പത്തിയാറ് അമ്പത്തിയേഴ് "
    "അമ്പത്തിയെട്ട് അമ്പത്തിയൊമ്പത് അറുപത് "
    "അറുപത്തിയൊന്ന് അറുപത്തിരണ്ട് അറുപത്തിമൂന്ന് അറുപത്തിനാല് അറുപത്തിയഞ്ച് അറുപത്തിയാറ് അറുപത്തിയേഴ് "
    "അറുപത്തിയെട്ട് അറുപത്തിയൊമ്പത് എഴുപത് "
    "എഴുപത്തിയൊന്ന് എഴുപത്തിരണ്ട് എഴുപത്തിമൂന്ന് എഴുപത്തിനാല് എഴുപത്തിയഞ്ച് എഴുപത്തിയാറ് എഴുപത്തിയേഴ് "
    "എഴുപത്തിയെട്ട് എഴുപത്തിയൊമ്പത് എൺപത് "
    "എൺപത്തിയൊന്ന് എൺപത്തിരണ്ട് എൺപത്തിമൂന്ന് എൺപത്തിനാല് എൺപത്തിയഞ്ച് എൺപത്തിയാറ് എൺപത്തിയേഴ് "
    "എൺപത്തിയെട്ട് എൺപത്തിയൊമ്പത് തൊണ്ണൂറ് "
    "തൊണ്ണൂറ്റിയൊന്ന് തൊണ്ണൂറ്റിരണ്ട് തൊണ്ണൂറ്റിമൂന്ന് തൊണ്ണൂറ്റിനാല് തൊണ്ണൂറ്റിയഞ്ച് തൊണ്ണൂറ്റിയാറ് "
    "തൊണ്ണൂറ്റിയേഴ് തൊണ്ണൂറ്റിയെട്ട് തൊണ്ണൂറ്റിയൊമ്പത്"
).split(" ")

EXAMPLES = (
    # units and teens, as paise
    (1, "ഒരു പൈസ"),
    (2, "രണ്ട് പൈസ"),
    (3, "മൂന്ന് പൈസ"),
    (4, "നാല് പൈസ"),
    (5, "അഞ്ച് പൈസ"),
    (6, "ആറ് പൈസ"),
    (7, "ഏഴ് പൈസ"),
    (8, "എട്ട് പൈസ"),
    (9, "ഒമ്പത് പൈസ"),
    (10, "പത്ത് പൈസ"),
    (11, "പതിനൊന്ന് പൈസ"),
    (12, "പന്ത്രണ്ട് പൈസ"),
    (13, "പതിമൂന്ന് പൈസ"),
    (15, "പതിനഞ്ച് പൈസ"),
    (19, "പത്തൊമ്പത് പൈസ"),
    # fused tens
    (20, "ഇരുപത് പൈസ"),
    (21, "ഇരുപത്തിയൊന്ന് പൈസ"),
    (22, "ഇരുപത്തിരണ്ട് പൈസ"),
    (23, "ഇരുപത്തിമൂന്ന് പൈസ"),
    (25, "ഇരുപത്തിയഞ്ച് പൈസ"),
    (29, "ഇരുപത്തിയൊമ്പത് പൈസ"),
    (32, "മുപ്പത്തിരണ്ട് പൈസ"),
    (40, "നാല്പത് പൈസ"),
    (45, "നാല്പത്തിയഞ്ച് പൈസ"),
    (50, "അമ്പത് പൈസ"),
    (58, "അമ്പത്തിയെട്ട് പൈസ"),
    (67, "അറുപത്തിയേഴ് പൈസ"),
    (76, "എഴുപത്തിയാറ് പൈസ"),
    (80, "എൺപത് പൈസ"),
    (83, "എൺപത്തിമൂന്ന് പൈസ"),
    (90, "തൊണ്ണൂറ് പൈസ"),
    (91, "തൊണ്ണൂറ്റിയൊന്ന് പൈസ"),
    (94, "തൊണ്ണൂറ്റിനാല് പൈസ"),
    (99, "തൊണ്ണൂറ്റിയൊമ്പത് പൈസ"),
    # rupees: the same word for one and many
    (100, "ഒരു രൂപ"),
    (200, "രണ്ട് രൂപ"),
    (1100, "പതിനൊന്ന് രൂപ"),
    (4200, "നാല്പത്തിരണ്ട് രൂപ"),
    # hundreds, alone and joined
    (10000, "നൂറ് രൂപ"),
    (10100, "നൂറ്റി ഒരു രൂപ"),
    (15000, "നൂറ്റി അമ്പത് രൂപ"),
    (20000, "ഇരുനൂറ് രൂപ"),
    (25000, "ഇരുനൂറ്റി അമ്പത് രൂപ"),
    (30000, "മുന്നൂറ് രൂപ"),
    (40500, "നാനൂറ്റി അഞ്ച് രൂപ"),
    (50000, "അഞ്ഞൂറ് രൂപ"),
    (80000, "എണ്ണൂറ് രൂപ"),
    (90000, "തൊള്ളായിരം രൂപ"),
    (99900, "തൊള്ളായിരത്തി തൊണ്ണൂറ്റിയൊമ്പത് രൂപ"),
    # thousands
    (100000, "ആയിരം രൂപ"),
    (100100, "ആയിരത്തി ഒരു രൂപ"),
    (150000, "ആയിരത്തി അഞ്ഞൂറ് രൂപ"),
    (200000, "രണ്ട് ആയിരം രൂപ"),
    (250000, "രണ്ട് ആയിരത്തി അഞ്ഞൂറ് രൂപ"),
    (1000000, "പത്ത് ആയിരം രൂപ"),
    (2100000, "ഇരുപത്തിയൊന്ന് ആയിരം രൂപ"),
    (9999900, "തൊണ്ണൂറ്റിയൊമ്പത് ആയിരത്തി തൊള്ളായിരത്തി തൊണ്ണൂറ്റിയൊമ്പത് രൂപ"),
    # lakhs and crores
    (10000000, "ഒരു ലക്ഷം രൂപ"),
    (10000100, "ഒരു ലക്ഷത്തി ഒരു രൂപ"),
    (12500000, "ഒരു ലക്ഷത്തി ഇരുപത്തിയഞ്ച് ആയിരം രൂപ"),
    (20000000, "രണ്ട് ലക്ഷം രൂപ"),
    (999999900, "തൊണ്ണൂറ്റിയൊമ്പത് ലക്ഷത്തി തൊണ്ണൂറ്റിയൊമ്പത് ആയിരത്തി തൊള്ളായിരത്തി തൊണ്ണൂറ്റിയൊമ്പത് രൂപ"),
    (1000000000, "ഒരു കോടി രൂപ"),
    (1000000100, "ഒരു കോടി ഒരു രൂപ"),
    (1020000000, "ഒരു കോടി രണ്ട് ലക്ഷം രൂപ"),
    (1000100000, "ഒരു കോടി ആയിരം രൂപ"),
    (5000000000, "അഞ്ച് കോടി രൂപ"),
    (12345678900, "പന്ത്രണ്ട് കോടി മുപ്പത്തിനാല് ലക്ഷത്തി അമ്പത്തിയാറ് ആയിരത്തി എഴുനൂറ്റി എൺപത്തിയൊമ്പത് രൂപ"),
    # rupees and paise, with no "and"
    (101, "ഒരു രൂപ ഒരു പൈസ"),
    (199, "ഒരു രൂപ തൊണ്ണൂറ്റിയൊമ്പത് പൈസ"),
    (2550, "ഇരുപത്തിയഞ്ച് രൂപ അമ്പത് പൈസ"),
    (12500050, "ഒരു ലക്ഷത്തി ഇരുപത്തിയഞ്ച് ആയിരം രൂപ അമ്പത് പൈസ"),
    (1000000001, "ഒരു കോടി രൂപ ഒരു പൈസ"),
    (MAX_PAISE, "തൊണ്ണൂറ്റിയൊമ്പത് കോടി തൊണ്ണൂറ്റിയൊമ്പത് ലക്ഷത്തി തൊണ്ണൂറ്റിയൊമ്പത് ആയിരത്തി "
                "തൊള്ളായിരത്തി തൊണ്ണൂറ്റിയൊമ്പത് രൂപ തൊണ്ണൂറ്റിയൊമ്പത് പൈസ"),
)


def _check_example(case):
    paise, words = case
    got = amount_words(paise, LANG)
    assert got == words, "%d: %r != %r" % (paise, got, words)


def test_amounts_as_a_malayalam_speaker_says_them():
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
        assert said == [NUMBER_WORDS[n - 1], "പൈസ"], (n, said)
        below.append(said[0])
        n += 1
    assert len(set(below)) == 99


# ---- an independent reader: words -> paise ---------------------------------------------------

HUNDREDS = "നൂറ് ഇരുനൂറ് മുന്നൂറ് നാനൂറ് അഞ്ഞൂറ് അറുനൂറ് എഴുനൂറ് എണ്ണൂറ് തൊള്ളായിരം".split(" ")
HUNDREDS_JOINED = "നൂറ്റി ഇരുനൂറ്റി മുന്നൂറ്റി നാനൂറ്റി അഞ്ഞൂറ്റി അറുനൂറ്റി എഴുനൂറ്റി എണ്ണൂറ്റി തൊള്ളായിരത്തി".split(" ")
ENDS, MAY_GO_ON, GOES_ON = 0, 1, 2  # what a word allows after it
# group word -> (size, what may follow): കോടി has no joined form, the others do
GROUPS = {"ആയിരം": (1000, ENDS), "ആയിരത്തി": (1000, GOES_ON), "ലക്ഷം": (100000, ENDS),
          "ലക്ഷത്തി": (100000, GOES_ON), "കോടി": (10000000, MAY_GO_ON)}
START = 10 ** 12  # "last size" at the start of a number: any group may come first


def _may_start_part(state):
    # A count or hundreds begins a number, or follows a form that lets more follow.
    assert state[3] == START or state[4] != ENDS, "more after a form that ends the number"


def _read_count(word, state):
    _may_start_part(state)
    state[2] = NUMBER_WORDS.index(word) + 1
    state[4] = ENDS


def _read_hundreds(word, state):
    _may_start_part(state)
    assert state[2] == 0 and state[3] > 100, "misplaced hundreds"
    joined = word in HUNDREDS_JOINED
    state[1] += 100 * ((HUNDREDS_JOINED if joined else HUNDREDS).index(word) + 1)
    state[3] = 100
    state[4] = GOES_ON if joined else ENDS


def _read_group(word, state):
    size, follows = GROUPS[word]
    count = state[2]
    if not count:  # a thousand has no count before it; lakh and crore always do
        assert size == 1000, "group without a count"
        _may_start_part(state)
        count = 1
    assert state[3] > size, "group order"
    state[1] += count * size
    state[2] = 0
    state[3] = size
    state[4] = follows


def _read_unit(word, state):
    assert state[4] != GOES_ON, "joined form with nothing after it"
    value = state[1] + state[2]
    assert value, "unit without a number"
    state[0] += value * (100 if word == "രൂപ" else 1)
    state[1] = state[2] = 0
    state[3] = START
    state[4] = ENDS


def _read_word(word, state):
    # state: [total paise, number so far, count below 100, last size, what may follow]
    if word in NUMBER_WORDS:
        assert state[2] == 0, "two counts in a row"
        _read_count(word, state)
    elif word in HUNDREDS or word in HUNDREDS_JOINED:
        _read_hundreds(word, state)
    elif word in GROUPS:
        _read_group(word, state)
    elif word in ("രൂപ", "പൈസ"):
        _read_unit(word, state)
    else:
        raise AssertionError("unknown word %r" % word)


def read_amount(words):
    state = [0, 0, 0, START, ENDS]
    for word in words.split(" "):
        _read_word(word, state)
    assert state[1] == 0 and state[2] == 0, "number without a unit"
    return state[0]


def test_the_reader_checks_itself():
    assert read_amount("ഇരുനൂറ്റി അമ്പത് രൂപ അമ്പത് പൈസ") == 25050
    assert read_amount("ആയിരത്തി ഒരു രൂപ") == 100100
    assert read_amount("ഒരു കോടി രണ്ട് ലക്ഷം രൂപ") == 1020000000
    for bad in ("ഇരുനൂറ്റി രൂപ", "ലക്ഷം രൂപ", "ആയിരം ഒരു ലക്ഷം രൂപ", "ഇരുപത് അഞ്ച് പൈസ",
                "നൂറ് നൂറ് രൂപ", "അമ്പത്", "ഒരു ലക്ഷത്തി രൂപ", "ആയിരം അഞ്ഞൂറ് രൂപ"):
        assert raises(AssertionError, read_amount, bad), bad


def _read_back(paise):
    got = read_amount(amount_words(paise, LANG))
    assert got == paise, (paise, got, amount_words(paise, LANG))


def test_amounts_read_back_to_themselves():
    # The examples, then strides through the whole range and the rupees below a thousand:
    # each hundreds and group form occurs, alone and with more after it.
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
    assert announcement_text(25000, LANG) == "ഇരുനൂറ്റി അമ്പത് രൂപ ലഭിച്ചു"
    assert announcement_text(100, LANG) == "ഒരു രൂപ ലഭിച്ചു"
    assert announcement_text(25000, LANG, "paytm") == "പേടിഎം വഴി ഇരുനൂറ്റി അമ്പത് രൂപ ലഭിച്ചു"
    assert announcement_text(50, LANG, "phonepe") == "ഫോൺപേ വഴി അമ്പത് പൈസ ലഭിച്ചു"
    assert announcement_text(100000, LANG, "gpay") == "ജീപേ വഴി ആയിരം രൂപ ലഭിച്ചു"
    assert announcement_text(200, LANG, "bhim") == "ഭീം വഴി രണ്ട് രൂപ ലഭിച്ചു"
    assert announcement_text(1, LANG, "upi") == "യുപിഐ വഴി ഒരു പൈസ ലഭിച്ചു"
    assert raises(ValueError, announcement_tokens, 100, LANG, "cash")


def test_every_provider_is_its_own_clip():
    names = []
    for provider in PROVIDERS:
        said = announcement_tokens(100, LANG, provider)
        assert said[1] == "വഴി" and said[0] in TOKENS[LANG], (provider, said)
        names.append(said[0])
    assert len(set(names)) == len(PROVIDERS)


def test_merged_offline_and_today():
    assert " ".join(merged_tokens(4, 20000, LANG)) == "നാല് ഇടപാടുകളിലൂടെ ആകെ ഇരുനൂറ് രൂപ ലഭിച്ചു"
    assert " ".join(merged_tokens(1, 100, LANG)) == "ഒരു ഇടപാടിലൂടെ ആകെ ഒരു രൂപ ലഭിച്ചു"
    assert " ".join(offline_summary_tokens(3, 50000, LANG)) == (
        "ഓഫ്ലൈനായിരുന്നപ്പോൾ മൂന്ന് ഇടപാടുകളിലൂടെ ആകെ അഞ്ഞൂറ് രൂപ ലഭിച്ചു")
    assert " ".join(today_tokens(2, 150, LANG)) == "ഇന്ന് രണ്ട് ഇടപാടുകളിലൂടെ ആകെ ഒരു രൂപ അമ്പത് പൈസ ലഭിച്ചു"
    assert today_tokens(0, 0, LANG) == ["ഇന്ന് ഇടപാടുകളൊന്നുമില്ല"]


def test_a_total_above_ninety_nine_crore():
    said = " ".join(merged_tokens(16, 16 * MAX_PAISE, LANG))
    assert said == ("പതിനാറ് ഇടപാടുകളിലൂടെ ആകെ ആയിരത്തി അഞ്ഞൂറ്റി തൊണ്ണൂറ്റിയൊമ്പത് കോടി "
                    "തൊണ്ണൂറ്റിയൊമ്പത് ലക്ഷത്തി തൊണ്ണൂറ്റിയൊമ്പത് ആയിരത്തി തൊള്ളായിരത്തി തൊണ്ണൂറ്റിയൊമ്പത് "
                    "രൂപ എൺപത്തിനാല് പൈസ ലഭിച്ചു"), said


def test_prompts():
    assert prompt_tokens("not_registered", LANG) == ["ഉപകരണം രജിസ്റ്റർ ചെയ്തിട്ടില്ല"]
    assert prompt_tokens("low_battery", LANG) == ["ബാറ്ററി കുറവാണ്"]
    assert prompt_tokens("volume_max", LANG) == ["പരമാവധി ശബ്ദം"]
    assert prompt_tokens("volume_min", LANG) == ["കുറഞ്ഞ ശബ്ദം"]


def _native(tok):
    # Malayalam script (U+0D00-U+0D7F) and spaces only: espeak-ng is fed words, never
    # digits or Latin letters it would spell out; no joiners (ZWJ/ZWNJ) either.
    for ch in tok:
        assert ch == " " or 0x0D00 <= ord(ch) <= 0x0D7F, (tok, ch)


def test_every_token_is_in_malayalam_script():
    for tok in TOKENS[LANG]:
        _native(tok)


# ---- the time of day (replay key) ------------------------------------------------------------

TIMES = (
    (16, 10, "വൈകുന്നേരം നാല് മണി പത്ത് മിനിറ്റിന്"),
    (16, 0, "വൈകുന്നേരം നാല് മണിക്ക്"),
    (16, 1, "വൈകുന്നേരം നാല് മണി ഒരു മിനിറ്റിന്"),
    (9, 45, "രാവിലെ ഒമ്പത് മണി നാല്പത്തിയഞ്ച് മിനിറ്റിന്"),
    (6, 0, "രാവിലെ ആറ് മണിക്ക്"),
    (5, 59, "പുലർച്ചെ അഞ്ച് മണി അമ്പത്തിയൊമ്പത് മിനിറ്റിന്"),
    (2, 5, "പുലർച്ചെ രണ്ട് മണി അഞ്ച് മിനിറ്റിന്"),
    (13, 30, "ഉച്ചയ്ക്ക് ഒരു മണി മുപ്പത് മിനിറ്റിന്"),
    (12, 0, "ഉച്ചയ്ക്ക് പന്ത്രണ്ട് മണിക്ക്"),
    (0, 0, "അർധരാത്രി പന്ത്രണ്ട് മണിക്ക്"),
    (0, 15, "അർധരാത്രി പന്ത്രണ്ട് മണി പതിനഞ്ച് മിനിറ്റിന്"),
    (18, 21, "വൈകുന്നേരം ആറ് മണി ഇരുപത്തിയൊന്ന് മിനിറ്റിന്"),
    (19, 0, "രാത്രി ഏഴ് മണിക്ക്"),
    (23, 11, "രാത്രി പതിനൊന്ന് മണി പതിനൊന്ന് മിനിറ്റിന്"),
    (11, 0, "രാവിലെ പതിനൊന്ന് മണിക്ക്"),
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
        "വൈകുന്നേരം നാല് മണി പത്ത് മിനിറ്റിന് ഇരുനൂറ്റി അമ്പത് രൂപ ലഭിച്ചു")
    assert " ".join(replay_tokens(4, 20000, 10, 30, LANG)) == (
        "രാവിലെ പത്ത് മണി മുപ്പത് മിനിറ്റിന് നാല് ഇടപാടുകളിലൂടെ ആകെ ഇരുനൂറ് രൂപ ലഭിച്ചു")
