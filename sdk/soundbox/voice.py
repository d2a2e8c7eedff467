"""Amount wording: integer paise -> the words (and voice-pack tokens) a soundbox says.

Pure and MicroPython-safe: no I/O, no imports.

en-IN rules (tested exactly):

    paise            words
    1                one paisa
    50               fifty paise
    100              one rupee
    101              one rupee and one paisa
    25000            two hundred fifty rupees
    25050            two hundred fifty rupees and fifty paise
    12500050         one lakh twenty five thousand rupees and fifty paise
    1000000000       one crore rupees
    99999999999      ninety nine crore ninety nine lakh ninety nine thousand
                     nine hundred ninety nine rupees and ninety nine paise

- lowercase words separated by single spaces; no hyphens ("twenty five");
- Indian grouping: crore (10^7), lakh (10^5), thousand, hundred; the largest
  amount is 99,99,99,999.99 rupees, so crores never exceed ninety nine;
- no "and" inside a number; "and" only joins the rupee part to the paise part;
- "rupee" and "paisa" for exactly one, "rupees" and "paise" otherwise;
- zero rupees: only the paise are said; zero paise: only the rupees.

Announcements (English order): "received <amount>", and with a provider
"received <amount> on <provider>", e.g. "received fifty paise on upi".
A provider is one token the voice pack must also hold.

Languages live in _LANGS as tables. Indian languages have irregular words for
every number 1-99, so a table gives all 99 (`below_100`) rather than tens and
units; the grouping words and the rupee/paise/received words come next to it.
Adding hi/ta/... means adding a table and, where word order differs, a
sentence function.
"""

MAX_PAISE = 99999999999  # 99,99,99,999.99 rupees

_EN_UNITS = (
    "", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
    "seventeen", "eighteen", "nineteen",
)
_EN_TENS = (
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty",
    "ninety",
)


def _en_below_100():
    # English 20-99 is regular (tens + units), so build the table; other
    # languages write all 99 entries out.
    words = list(_EN_UNITS)
    for n in range(20, 100):
        tens = _EN_TENS[n // 10]
        words.append(tens if n % 10 == 0 else tens + " " + _EN_UNITS[n % 10])
    return tuple(words)


_EN_IN = {
    "below_100": _en_below_100(),  # index n -> words for n (index 0 unused)
    "hundred": "hundred",
    "thousand": "thousand",
    "lakh": "lakh",
    "crore": "crore",
    "rupee": "rupee",
    "rupees": "rupees",
    "paisa": "paisa",
    "paise": "paise",
    "and": "and",
    "received": "received",
    "on": "on",
    # Spoken health prompts, by name (more come with the voice UX).
    "prompts": {"not_registered": "device not registered"},
}

_LANGS = {"en-IN": _EN_IN}
LANGUAGES = ("en-IN",)


def _table(lang):
    if not isinstance(lang, str) or lang not in _LANGS:
        raise ValueError("unsupported language %r; supported: %s" % (lang, ", ".join(LANGUAGES)))
    return _LANGS[lang]


def _check_paise(paise):
    # type() rather than isinstance(): bool is an int subclass on CPython.
    if type(paise) is not int:
        raise ValueError("amount must be an int number of paise, got %s" % type(paise).__name__)
    if paise < 1:
        raise ValueError("amount must be at least 1 paisa, got %d" % paise)
    if paise > MAX_PAISE:
        raise ValueError("amount must be at most %d paise, got %d" % (MAX_PAISE, paise))


def _number_tokens(n, t):
    """Tokens for 1 <= n <= 99,99,99,999 in Indian grouping."""
    out = []
    for size, word in ((10000000, "crore"), (100000, "lakh"), (1000, "thousand"), (100, "hundred")):
        count = n // size
        if count:
            out.extend(t["below_100"][count].split(" "))
            out.append(t[word])
            n = n % size
    if n:
        out.extend(t["below_100"][n].split(" "))
    return out


def tokens(lang="en-IN"):
    """Every token a voice pack for `lang` must hold, in a stable order."""
    t = _table(lang)
    seen = []
    for words in t["below_100"][1:]:
        for w in words.split(" "):
            if w not in seen:
                seen.append(w)
    for key in ("hundred", "thousand", "lakh", "crore", "rupee", "rupees",
                "paisa", "paise", "and", "received", "on"):
        if t[key] not in seen:
            seen.append(t[key])
    for name in sorted(t["prompts"]):
        for w in t["prompts"][name].split(" "):
            if w not in seen:
                seen.append(w)
    return tuple(seen)


TOKENS = {"en-IN": tokens("en-IN")}


def amount_tokens(paise, lang="en-IN"):
    """The amount as a list of voice-pack tokens (for en-IN: the words)."""
    t = _table(lang)
    _check_paise(paise)
    rupees, rest = paise // 100, paise % 100
    out = []
    if rupees:
        out.extend(_number_tokens(rupees, t))
        out.append(t["rupee"] if rupees == 1 else t["rupees"])
    if rest:
        if rupees:
            out.append(t["and"])
        out.extend(_number_tokens(rest, t))
        out.append(t["paisa"] if rest == 1 else t["paise"])
    return out


def amount_words(paise, lang="en-IN"):
    """The amount in words, e.g. 25050 -> "two hundred fifty rupees and fifty paise"."""
    return " ".join(amount_tokens(paise, lang))


def _check_provider(provider):
    # A provider becomes a clip file name in the pack: keep it a plain token.
    ok = isinstance(provider, str) and 0 < len(provider) <= 32
    if ok:
        for c in provider:
            if not ("a" <= c <= "z" or "0" <= c <= "9" or c == "_"):
                ok = False
                break
    if not ok:
        raise ValueError("provider must be 1-32 chars of a-z, 0-9 or _, got %r" % (provider,))


def announcement_tokens(paise, lang="en-IN", provider=None):
    """Tokens of the full announcement: received <amount> [on <provider>]."""
    t = _table(lang)
    out = [t["received"]] + amount_tokens(paise, lang)
    if provider is not None:
        _check_provider(provider)
        out.append(t["on"])
        out.append(provider)
    return out


def prompt_tokens(name, lang="en-IN"):
    """Tokens of a spoken health prompt, e.g. "not_registered" -> device not registered."""
    prompts = _table(lang)["prompts"]
    if name not in prompts:
        raise ValueError("unknown prompt %r" % (name,))
    return prompts[name].split(" ")


def announcement_text(paise, lang="en-IN", provider=None):
    """The announcement as text, e.g. "received two hundred fifty rupees"."""
    return " ".join(announcement_tokens(paise, lang, provider))
