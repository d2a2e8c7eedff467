"""Punjabi (Gurmukhi) wording table for soundbox.voice (loaded only when a box speaks Punjabi).

Slot names in the templates are explained in soundbox.voice.

  paise            words
  1                ਇੱਕ ਪੈਸਾ
  50               ਪੰਜਾਹ ਪੈਸੇ
  100              ਇੱਕ ਰੁਪਇਆ
  101              ਇੱਕ ਰੁਪਇਆ ਅਤੇ ਇੱਕ ਪੈਸਾ
  200              ਦੋ ਰੁਪਏ
  10000            ਇੱਕ ਸੌ ਰੁਪਏ
  25000            ਦੋ ਸੌ ਪੰਜਾਹ ਰੁਪਏ
  150000           ਇੱਕ ਹਜ਼ਾਰ ਪੰਜ ਸੌ ਰੁਪਏ
  12500050         ਇੱਕ ਲੱਖ ਪੱਚੀ ਹਜ਼ਾਰ ਰੁਪਏ ਅਤੇ ਪੰਜਾਹ ਪੈਸੇ
  1000000000       ਇੱਕ ਕਰੋੜ ਰੁਪਏ

- every number 1-99 is its own word (irregular: ਪੱਚੀ, ਉਣੰਜਾ, ਨੜਿੰਨਵੇਂ, never "ਵੀਹ ਪੰਜ");
- hundreds are "<count> ਸੌ", always with the count ("ਇੱਕ ਸੌ", "ਦੋ ਸੌ");
  then ਹਜ਼ਾਰ, ਲੱਖ, ਕਰੋੜ after their count, largest first;
- ਰੁਪਇਆ/ਪੈਸਾ for exactly one, ਰੁਪਏ/ਪੈਸੇ otherwise; "ਅਤੇ" joins rupees and paise;
- the verb agrees with the amount: "ਇੱਕ ਰੁਪਇਆ ਪ੍ਰਾਪਤ ਹੋਇਆ", "ਇੱਕ ਪੈਸਾ ਪ੍ਰਾਪਤ ਹੋਇਆ",
  "ਦੋ ਰੁਪਏ ਪ੍ਰਾਪਤ ਹੋਏ"; rupees and paise together are plural
  ("ਇੱਕ ਰੁਪਇਆ ਅਤੇ ਇੱਕ ਪੈਸਾ ਪ੍ਰਾਪਤ ਹੋਏ").
Announcement: "[<provider> ਤੇ] <amount> ਪ੍ਰਾਪਤ ਹੋਇਆ/ਹੋਏ"
  ("ਫ਼ੋਨ ਪੇ ਤੇ ਦੋ ਸੌ ਪੰਜਾਹ ਰੁਪਏ ਪ੍ਰਾਪਤ ਹੋਏ"; ਤੇ is "on").
Merged: "ਚਾਰ ਭੁਗਤਾਨ ਪ੍ਰਾਪਤ ਹੋਏ ਕੁੱਲ ਦੋ ਸੌ ਰੁਪਏ" (ਭੁਗਤਾਨ is the same in the plural;
  the verb agrees with the count: "ਇੱਕ ਭੁਗਤਾਨ ਪ੍ਰਾਪਤ ਹੋਇਆ").
Offline summary: "ਆਫ਼ਲਾਈਨ ਹੁੰਦਿਆਂ" (while offline) before the merged phrase.
Today (long press): "ਅੱਜ" before the merged phrase; none yet: "ਅੱਜ ਕੋਈ ਭੁਗਤਾਨ ਨਹੀਂ".
Volume ends: "ਵੱਧ ਤੋਂ ਵੱਧ ਆਵਾਜ਼" / "ਘੱਟ ਤੋਂ ਘੱਟ ਆਵਾਜ਼".
Replay key: the time it was received, then the announcement (or merged phrase):
  "ਸ਼ਾਮ ਚਾਰ ਵੱਜ ਕੇ ਦਸ ਮਿੰਟ ਤੇ ਦੋ ਸੌ ਪੰਜਾਹ ਰੁਪਏ ਪ੍ਰਾਪਤ ਹੋਏ".
  hour:minute  time phrase
  16:10        ਸ਼ਾਮ ਚਾਰ ਵੱਜ ਕੇ ਦਸ ਮਿੰਟ ਤੇ
  16:00        ਸ਼ਾਮ ਚਾਰ ਵਜੇ                (on the hour: ਵਜੇ, no minutes, no ਤੇ)
  16:01        ਸ਼ਾਮ ਚਾਰ ਵੱਜ ਕੇ ਇੱਕ ਮਿੰਟ ਤੇ   (ਮਿੰਟ is the same for one and many)
  09:45        ਸਵੇਰੇ ਨੌਂ ਵੱਜ ਕੇ ਪੰਤਾਲੀ ਮਿੰਟ ਤੇ
  13:30        ਦੁਪਹਿਰ ਇੱਕ ਵੱਜ ਕੇ ਤੀਹ ਮਿੰਟ ਤੇ
  00:00        ਰਾਤ ਬਾਰਾਂ ਵਜੇ
  12:00        ਦੁਪਹਿਰ ਬਾਰਾਂ ਵਜੇ
- a 12-hour clock (0 and 12 are ਬਾਰਾਂ) said after the part of the day:
  ਰਾਤ 0-3, ਸਵੇਰੇ 4-11, ਦੁਪਹਿਰ 12-15, ਸ਼ਾਮ 16-19, ਰਾਤ 20-23;
- hours and minutes are the number words of the table above ("ਵੱਜ ਕੇ" is one clip);
- the exact minute, never ਸਾਢੇ/ਸਵਾ/ਪੌਣੇ/ਡੇਢ/ਢਾਈ: one rule for every minute, and a
  timestamp the merchant can match against the customer's phone.

Text is NFC: the nukta letters (ਜ਼, ਸ਼, ਫ਼) are stored as letter + nukta, the form NFC
keeps (Unicode excludes the precomposed ones from composition), so a clip name always
matches the text that asked for it.

Source of the number words: the Punjabi cardinals of Unicode CLDR's rule-based number
format (common/rbnf/pa.xml, spellout-cardinal), checked word by word against AI4Bharat's
indic-numtowords (pun) and the words espeak-ng's Punjabi voice says for the digits. The
sources disagree on 31 of the 99; this table takes the spelling two of them share:
  53 ਤਰਵੰਜਾ, 63 ਤਰੇਂਹਠ, 64 ਚੌਂਹਠ, 71 ਇਕਹੱਤਰ  (AI4Bharat, espeak-ng; CLDR ਤਿਰਵੰਜਾ, ਤਰੇਹਠ,
                          ਚੌਹਠ, ਇਕ੍ਹੱਤਰ)
  54 ਚੁਰੰਜਾ                 (CLDR, espeak-ng; AI4Bharat ਚਰਵੰਜਾ)
  69 ਉਣੱਤਰ, 77 ਸਤੱਤਰ, 89 ਉਣਾਨਵੇਂ  (espeak-ng, and AI4Bharat for 77; CLDR ਉਣ੍ਹੱਤਰ,
                          ਸਤੱਤਰ੍ਹ, ਉਣਾਨ੍ਹਵੇ)
  91-99 with the nasal ਵੇਂ: ਇਕਾਨਵੇਂ ... ਨੜਿੰਨਵੇਂ  (espeak-ng, AI4Bharat's other spelling;
                          CLDR ਇਕਾਨਵੇ ... ਨੜ੍ਹਿੰਨਵੇ)
  29 ਉਣੱਤੀ, 31 ਇਕੱਤੀ, 39 ਉਣਤਾਲੀ, 45 ਪੰਤਾਲੀ, 47 ਸੰਤਾਲੀ, 49 ਉਣੰਜਾ, 59 ਉਣਾਹਠ,
  73 ਤਿਹੱਤਰ, 74 ਚੁਹੱਤਰ, 76 ਛਿਹੱਤਰ, 79 ਉਣਾਸੀ, 81 ਇਕਾਸੀ,
  84 ਚੁਰਾਸੀ               (CLDR, espeak-ng)
  75 ਪੰਝੱਤਰ                (CLDR; espeak-ng says ਪੰਜੱਤਰ, AI4Bharat ਪਚਹੱਤਰ: the one this
                          table is least sure of)
"""

from soundbox.voice import Words

TABLE = {
    "below_100": Words(
        "|ਇੱਕ|ਦੋ|ਤਿੰਨ|ਚਾਰ|ਪੰਜ|ਛੇ|ਸੱਤ|ਅੱਠ|ਨੌਂ|ਦਸ|"
        "ਗਿਆਰਾਂ|ਬਾਰਾਂ|ਤੇਰਾਂ|ਚੌਦਾਂ|ਪੰਦਰਾਂ|ਸੋਲਾਂ|ਸਤਾਰਾਂ|ਅਠਾਰਾਂ|ਉੱਨੀ|ਵੀਹ|"
        "ਇੱਕੀ|ਬਾਈ|ਤੇਈ|ਚੌਵੀ|ਪੱਚੀ|ਛੱਬੀ|ਸਤਾਈ|ਅਠਾਈ|ਉਣੱਤੀ|ਤੀਹ|"
        "ਇਕੱਤੀ|ਬੱਤੀ|ਤੇਤੀ|ਚੌਂਤੀ|ਪੈਂਤੀ|ਛੱਤੀ|ਸੈਂਤੀ|ਅਠੱਤੀ|ਉਣਤਾਲੀ|ਚਾਲੀ|"
        "ਇਕਤਾਲੀ|ਬਿਆਲੀ|ਤਰਤਾਲੀ|ਚੁਤਾਲੀ|ਪੰਤਾਲੀ|ਛਿਆਲੀ|ਸੰਤਾਲੀ|ਅਠਤਾਲੀ|ਉਣੰਜਾ|ਪੰਜਾਹ|"
        "ਇਕਵੰਜਾ|ਬਵੰਜਾ|ਤਰਵੰਜਾ|ਚੁਰੰਜਾ|ਪਚਵੰਜਾ|ਛਪੰਜਾ|ਸਤਵੰਜਾ|ਅਠਵੰਜਾ|ਉਣਾਹਠ|ਸੱਠ|"
        "ਇਕਾਹਠ|ਬਾਹਠ|ਤਰੇਂਹਠ|ਚੌਂਹਠ|ਪੈਂਹਠ|ਛਿਆਹਠ|ਸਤਾਹਠ|ਅਠਾਹਠ|ਉਣੱਤਰ|ਸੱਤਰ|"
        "ਇਕਹੱਤਰ|ਬਹੱਤਰ|ਤਿਹੱਤਰ|ਚੁਹੱਤਰ|ਪੰਝੱਤਰ|ਛਿਹੱਤਰ|ਸਤੱਤਰ|ਅਠੱਤਰ|ਉਣਾਸੀ|ਅੱਸੀ|"
        "ਇਕਾਸੀ|ਬਿਆਸੀ|ਤਿਰਾਸੀ|ਚੁਰਾਸੀ|ਪਚਾਸੀ|ਛਿਆਸੀ|ਸਤਾਸੀ|ਅਠਾਸੀ|ਉਣਾਨਵੇਂ|ਨੱਬੇ|"
        "ਇਕਾਨਵੇਂ|ਬਾਨਵੇਂ|ਤਰਾਨਵੇਂ|ਚੁਰਾਨਵੇਂ|ਪਚਾਨਵੇਂ|ਛਿਆਨਵੇਂ|ਸਤਾਨਵੇਂ|ਅਠਾਨਵੇਂ|ਨੜਿੰਨਵੇਂ"
    ),
    "hundred": "ਸੌ",
    "thousand": "ਹਜ਼ਾਰ",
    "lakh": "ਲੱਖ",
    "crore": "ਕਰੋੜ",
    "rupee": "ਰੁਪਇਆ",
    "rupees": "ਰੁਪਏ",
    "paisa": "ਪੈਸਾ",
    "paise": "ਪੈਸੇ",
    "and": "ਅਤੇ",
    "received": "ਪ੍ਰਾਪਤ ਹੋਇਆ",
    "received_many": "ਪ੍ਰਾਪਤ ਹੋਏ",
    "payment": "ਭੁਗਤਾਨ",
    "payments": "ਭੁਗਤਾਨ",
    "announce": ("$provider", "$amount", "$received"),
    "provider": ("$name", "ਤੇ"),
    "merged": ("$count", "$payments", "$received_count", "ਕੁੱਲ", "$amount"),
    "offline": ("ਆਫ਼ਲਾਈਨ ਹੁੰਦਿਆਂ",),
    "today": ("ਅੱਜ",),
    "today_none": "ਅੱਜ ਕੋਈ ਭੁਗਤਾਨ ਨਹੀਂ",
    "replay": ("$time", "$said"),
    "time": ("$day_part", "$hour", "ਵੱਜ ਕੇ", "$minute", "$minute_word", "ਤੇ"),
    "time_on_hour": ("$day_part", "$hour", "ਵਜੇ"),
    "day_parts": ((0, "ਰਾਤ"), (4, "ਸਵੇਰੇ"), (12, "ਦੁਪਹਿਰ"), (16, "ਸ਼ਾਮ"), (20, "ਰਾਤ")),
    "minute_words": ("ਮਿੰਟ", "ਮਿੰਟ"),
    "providers": {"bhim": "ਭੀਮ", "gpay": "ਜੀਪੇ", "paytm": "ਪੇਟੀਐਮ", "phonepe": "ਫ਼ੋਨ ਪੇ", "upi": "ਯੂਪੀਆਈ"},
    "prompts": {
        "charging": "ਚਾਰਜ ਹੋ ਰਿਹਾ ਹੈ",
        "clock_not_set": "ਘੜੀ ਦਾ ਸਮਾਂ ਸੈੱਟ ਨਹੀਂ ਹੈ",
        "low_battery": "ਬੈਟਰੀ ਘੱਟ ਹੈ",
        "no_network": "ਨੈੱਟਵਰਕ ਨਹੀਂ ਹੈ",
        "not_registered": "ਡਿਵਾਈਸ ਰਜਿਸਟਰਡ ਨਹੀਂ ਹੈ",
        "server_unreachable": "ਸਰਵਰ ਨਾਲ ਸੰਪਰਕ ਨਹੀਂ ਹੋ ਰਿਹਾ",
        "updating": "ਅੱਪਡੇਟ ਹੋ ਰਿਹਾ ਹੈ",
        "volume_max": "ਵੱਧ ਤੋਂ ਵੱਧ ਆਵਾਜ਼",
        "volume_min": "ਘੱਟ ਤੋਂ ਘੱਟ ਆਵਾਜ਼",
    },
}
