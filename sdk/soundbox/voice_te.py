"""Telugu wording table for soundbox.voice (loaded only when a box speaks Telugu).

Slot names in the templates are explained in soundbox.voice.

  paise            words
  1                ఒక పైసా
  50               యాభై పైసలు
  100              ఒక రూపాయి
  101              ఒక రూపాయి ఒక పైసా
  2100             ఇరవయ్యొక రూపాయలు
  10000            వంద రూపాయలు
  15000            నూట యాభై రూపాయలు
  25000            రెండువందల యాభై రూపాయలు
  100000           వెయ్యి రూపాయలు
  250000           రెండు వేల ఐదువందల రూపాయలు
  12500050         ఒక లక్ష ఇరవయ్యైదు వేల రూపాయలు యాభై పైసలు
  1000000000       ఒక కోటి రూపాయలు
  5000000000       ఐదు కోట్ల రూపాయలు

- every number a box says stands before a noun (రూపాయలు, పైసలు, చెల్లింపులు,
  నిమిషాలు), so the table holds the attributive forms: one is ఒక (the bare numeral
  is ఒకటి);
- every number 1-99 is its own word, written out: 1-19 are single words; 21-99 fuse the
  tens word and the unit as Telugu says them, each one clip: before a unit that starts
  with a vowel the tens' -ై becomes -య్య- (ఇరవయ్యొక 21, ముప్పయ్యైదు 35, నలభయ్యారు 46,
  యాభయ్యేడు 57, డెబ్బయ్యెనిమిది 78), before a consonant they are simply joined
  (ఇరవైరెండు 22, తొంభైతొమ్మిది 99); CLDR writes them apart (ఇరవై ఐదు), as print often does;
- hundreds: వంద (100) alone, నూట when more follows (నూట యాభై); 200-900 are one word
  each, the count and వందల, the oblique used before a noun and before more (రెండువందల
  రూపాయలు, రెండువందల యాభై): the bare numeral రెండు వందలు is never said before a noun;
- thousand: వెయ్యి for one thousand (no count word), వేల after a count (రెండు వేల);
  lakh: ఒక లక్ష, రెండు లక్షల; crore: ఒక కోటి, రెండు కోట్ల (oblique before a noun
  and before more, like the hundreds);
- రూపాయి/పైసా for exactly one, రూపాయలు/పైసలు otherwise; rupees and paise follow each
  other with no "and" (ఒక రూపాయి యాభై పైసలు);
- the verb agrees with the amount (neuter singular / plural): "ఒక రూపాయి అందింది",
  "రెండు రూపాయలు అందాయి"; rupees and paise together are plural.
Announcement: "[<provider> ద్వారా] <amount> అందింది/అందాయి"
  ("ఫోన్‌పే ద్వారా రెండువందల యాభై రూపాయలు అందాయి").
Merged: "నాలుగు చెల్లింపులు అందాయి మొత్తం రెండువందల రూపాయలు"
  (one payment: "ఒక చెల్లింపు అందింది").
Offline summary: "ఆఫ్‌లైన్‌లో ఉన్నప్పుడు" before the merged phrase.
Today (long press): "ఈరోజు" before the merged phrase; none yet: "ఈరోజు చెల్లింపులు ఏవీ లేవు".
Volume ends: "గరిష్ఠ వాల్యూమ్" / "కనిష్ఠ వాల్యూమ్".
Replay key: the time it was received, then the announcement (or merged phrase):
  "సాయంత్రం నాలుగు గంటల పది నిమిషాలకు రెండువందల యాభై రూపాయలు అందాయి".
  hour:minute  time phrase
  16:10        సాయంత్రం నాలుగు గంటల పది నిమిషాలకు
  16:00        సాయంత్రం నాలుగు గంటలకు           (on the hour: the hour's dative, no minutes)
  16:01        సాయంత్రం నాలుగు గంటల ఒక నిమిషానికి (one minute: singular dative)
  13:05        మధ్యాహ్నం ఒంటి గంట ఐదు నిమిషాలకు  (one o'clock is ఒంటి గంట, singular)
  13:00        మధ్యాహ్నం ఒంటి గంటకు
  09:45        ఉదయం తొమ్మిది గంటల నలభయ్యైదు నిమిషాలకు
  00:00        రాత్రి పన్నెండు గంటలకు
  12:00        మధ్యాహ్నం పన్నెండు గంటలకు
- a 12-hour clock (0 and 12 are పన్నెండు) said after the part of the day:
  రాత్రి 0-3, ఉదయం 4-11, మధ్యాహ్నం 12-15, సాయంత్రం 16-19, రాత్రి 20-23;
- the hour and its గంట word are one clip ("రెండు గంటల", "ఒంటి గంట"; on the hour
  "రెండు గంటలకు", "ఒంటి గంటకు"), then the minute's number word and నిమిషాలకు
  (నిమిషానికి for one minute);
- the exact minute, never ముప్పావు/అర/పావు (one rule, a precise timestamp).

Source of the number words: CLDR's Telugu spellout rules (common/rbnf/te.xml:
%spellout-cardinal, whose 1-99 (fused here as spoken), వంద/నూట, వందలు/వందల, వెయ్యి/వేల, ఒక లక్ష/లక్షల and
ఒక కోటి/కోట్ల this table follows), with the attributive ఒక for ఒకటి and the oblique
వందల for the bare వందలు before a noun, as in C. P. Brown's Telugu-English dictionary
and everyday use ("ఐదు వందల రూపాయలు").
"""

from soundbox.voice import Words

TABLE = {
    "below_100": Words(
        "|ఒక|రెండు|మూడు|నాలుగు|ఐదు|ఆరు|ఏడు|ఎనిమిది|తొమ్మిది|పది|పదకొండు|పన్నెండు|పదమూడు|పద్నాలుగు|"
        "పదిహేను|పదహారు|పదిహేడు|పద్దెనిమిది|పంతొమ్మిది|ఇరవై|ఇరవయ్యొక|ఇరవైరెండు|ఇరవైమూడు|ఇరవైనాలుగు|"
        "ఇరవయ్యైదు|ఇరవయ్యారు|ఇరవయ్యేడు|ఇరవయ్యెనిమిది|ఇరవైతొమ్మిది|ముప్పై|ముప్పయ్యొక|ముప్పైరెండు|"
        "ముప్పైమూడు|ముప్పైనాలుగు|ముప్పయ్యైదు|ముప్పయ్యారు|ముప్పయ్యేడు|ముప్పయ్యెనిమిది|ముప్పైతొమ్మిది|నలభై|"
        "నలభయ్యొక|నలభైరెండు|నలభైమూడు|నలభైనాలుగు|నలభయ్యైదు|నలభయ్యారు|నలభయ్యేడు|నలభయ్యెనిమిది|నలభైతొమ్మిది|"
        "యాభై|యాభయ్యొక|యాభైరెండు|యాభైమూడు|యాభైనాలుగు|యాభయ్యైదు|యాభయ్యారు|యాభయ్యేడు|యాభయ్యెనిమిది|"
        "యాభైతొమ్మిది|అరవై|అరవయ్యొక|అరవైరెండు|అరవైమూడు|అరవైనాలుగు|అరవయ్యైదు|అరవయ్యారు|అరవయ్యేడు|"
        "అరవయ్యెనిమిది|అరవైతొమ్మిది|డెబ్బై|డెబ్బయ్యొక|డెబ్బైరెండు|డెబ్బైమూడు|డెబ్బైనాలుగు|డెబ్బయ్యైదు|"
        "డెబ్బయ్యారు|డెబ్బయ్యేడు|డెబ్బయ్యెనిమిది|డెబ్బైతొమ్మిది|ఎనభై|ఎనభయ్యొక|ఎనభైరెండు|ఎనభైమూడు|"
        "ఎనభైనాలుగు|ఎనభయ్యైదు|ఎనభయ్యారు|ఎనభయ్యేడు|ఎనభయ్యెనిమిది|ఎనభైతొమ్మిది|తొంభై|తొంభయ్యొక|తొంభైరెండు|"
        "తొంభైమూడు|తొంభైనాలుగు|తొంభయ్యైదు|తొంభయ్యారు|తొంభయ్యేడు|తొంభయ్యెనిమిది|తొంభైతొమ్మిది"
    ),
    # The hundreds said alone before a noun, and with more to follow (one clip each).
    "hundreds": Words(
        "|వంద|రెండువందల|మూడువందల|నాలుగువందల|ఐదువందల|ఆరువందల|ఏడువందల|ఎనిమిదివందల|తొమ్మిదివందల"
    ),
    "hundreds_joined": Words(
        "|నూట|రెండువందల|మూడువందల|నాలుగువందల|ఐదువందల|ఆరువందల|ఏడువందల|ఎనిమిదివందల|తొమ్మిదివందల"
    ),
    # (after one, after one with more, after many, after many with more): always before a noun
    "thousand": ("వెయ్యి", "వెయ్యి", "వేల", "వేల"),
    "thousand_one": "",  # వెయ్యి, never ఒక వెయ్యి
    "lakh": ("లక్ష", "లక్ష", "లక్షల", "లక్షల"),
    "lakh_one": "ఒక",
    "crore": ("కోటి", "కోటి", "కోట్ల", "కోట్ల"),
    "crore_one": "ఒక",
    "rupee": "రూపాయి",
    "rupees": "రూపాయలు",
    "paisa": "పైసా",
    "paise": "పైసలు",
    "and": None,  # no word between the rupees and the paise
    "received": "అందింది",
    "received_many": "అందాయి",
    "payment": "చెల్లింపు",
    "payments": "చెల్లింపులు",
    "announce": ("$provider", "$amount", "$received"),
    "provider": ("$name", "ద్వారా"),
    "merged": ("$count", "$payments", "$received_count", "మొత్తం", "$amount"),
    "offline": ("ఆఫ్‌లైన్‌లో ఉన్నప్పుడు",),
    "today": ("ఈరోజు",),
    "today_none": "ఈరోజు చెల్లింపులు ఏవీ లేవు",
    "replay": ("$time", "$said"),
    "time": ("$day_part", "$hour", "$minute", "$minute_word"),
    "time_on_hour": ("$day_part", "$hour_on"),
    "day_parts": ((0, "రాత్రి"), (4, "ఉదయం"), (12, "మధ్యాహ్నం"), (16, "సాయంత్రం"), (20, "రాత్రి")),
    # index h -> the hour with its గంట word, before the minutes / on the hour (index 0 unused)
    "clock_hours": Words(
        "|ఒంటి గంట|రెండు గంటల|మూడు గంటల|నాలుగు గంటల|ఐదు గంటల|ఆరు గంటల|ఏడు గంటల|ఎనిమిది గంటల|"
        "తొమ్మిది గంటల|పది గంటల|పదకొండు గంటల|పన్నెండు గంటల"
    ),
    "clock_hours_on": Words(
        "|ఒంటి గంటకు|రెండు గంటలకు|మూడు గంటలకు|నాలుగు గంటలకు|ఐదు గంటలకు|ఆరు గంటలకు|ఏడు గంటలకు|"
        "ఎనిమిది గంటలకు|తొమ్మిది గంటలకు|పది గంటలకు|పదకొండు గంటలకు|పన్నెండు గంటలకు"
    ),
    "minute_words": ("నిమిషానికి", "నిమిషాలకు"),
    "providers": {"bhim": "భీమ్", "gpay": "జీపే", "paytm": "పేటీఎమ్", "phonepe": "ఫోన్‌పే", "upi": "యూపీఐ"},
    "prompts": {
        "charging": "ఛార్జ్ అవుతోంది",
        "clock_not_set": "గడియారం సమయం సెట్ చేయలేదు",
        "low_battery": "బ్యాటరీ తక్కువగా ఉంది",
        "no_network": "నెట్‌వర్క్ లేదు",
        "not_registered": "పరికరం నమోదు కాలేదు",
        "server_unreachable": "సర్వర్‌కు కనెక్ట్ కావడం లేదు",
        "updating": "అప్‌డేట్ అవుతోంది",
        "volume_max": "గరిష్ఠ వాల్యూమ్",
        "volume_min": "కనిష్ఠ వాల్యూమ్",
    },
}
