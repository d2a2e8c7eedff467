"""Malayalam wording table for soundbox.voice (loaded only when a box speaks Malayalam).

Slot names in the templates are explained in soundbox.voice.

  paise            words
  1                ഒരു പൈസ
  50               അമ്പത് പൈസ
  100              ഒരു രൂപ
  101              ഒരു രൂപ ഒരു പൈസ
  2550             ഇരുപത്തിയഞ്ച് രൂപ അമ്പത് പൈസ
  10000            നൂറ് രൂപ
  10500            നൂറ്റി അഞ്ച് രൂപ
  25000            ഇരുനൂറ്റി അമ്പത് രൂപ
  100000           ആയിരം രൂപ
  150000           ആയിരത്തി അഞ്ഞൂറ് രൂപ
  200000           രണ്ട് ആയിരം രൂപ
  12500050         ഒരു ലക്ഷത്തി ഇരുപത്തിയഞ്ച് ആയിരം രൂപ അമ്പത് പൈസ
  1000000000       ഒരു കോടി രൂപ
  1020000000       ഒരു കോടി രണ്ട് ലക്ഷം രൂപ

- every number 1-99 is its own word, tens and units fused (ഇരുപത്തിയൊന്ന്,
  മുപ്പത്തിരണ്ട്, തൊണ്ണൂറ്റിയൊമ്പത്): never "ഇരുപത് ഒന്ന്";
- one said alone before a noun is ഒരു (ഒരു രൂപ, ഒരു പൈസ, ഒരു മണി, ഒരു ലക്ഷം), so the
  table's one is ഒരു; in 101 it stays ഒരു too (നൂറ്റി ഒരു രൂപ), see the note below;
- hundreds are one word each (നൂറ്, ഇരുനൂറ്, മുന്നൂറ്, നാനൂറ്, അഞ്ഞൂറ്, അറുനൂറ്,
  എഴുനൂറ്, എണ്ണൂറ്, തൊള്ളായിരം) and take their joined form when more follows
  (നൂറ്റി ... തൊള്ളായിരത്തി: 150 നൂറ്റി അമ്പത്);
- thousand is ആയിരം, with no count for one thousand, and ആയിരത്തി when more follows;
  lakh is ലക്ഷം / ലക്ഷത്തി (ഒരു ലക്ഷത്തി ഇരുപത്തിയഞ്ച് ആയിരം); crore is കോടി;
- two to ninety nine thousand: the count, then ആയിരം (രണ്ട് ആയിരം). Written Malayalam
  fuses the two, often irregularly (രണ്ടായിരം, മൂവായിരം, അയ്യായിരം, എണ്ണായിരം);
  soundbox.voice says a count and a group word as two clips, so the pack says them apart;
- രൂപ and പൈസ are the same for one and many; rupees and paise follow each other with no
  "and" (ഇരുപത്തിയഞ്ച് രൂപ അമ്പത് പൈസ);
- the verb ലഭിച്ചു ("was received") does not change with the amount or the count.
Announcement: "[<provider> വഴി] <amount> ലഭിച്ചു"
  ("പേടിഎം വഴി ഇരുനൂറ്റി അമ്പത് രൂപ ലഭിച്ചു").
Merged: "നാല് ഇടപാടുകളിലൂടെ ആകെ ഇരുനൂറ് രൂപ ലഭിച്ചു" ("through four transactions a
  total of ... was received"; one: "ഒരു ഇടപാടിലൂടെ ...").
Offline summary: "ഓഫ്ലൈനായിരുന്നപ്പോൾ" before the merged phrase.
Today (long press): "ഇന്ന്" before the merged phrase; none yet: "ഇന്ന് ഇടപാടുകളൊന്നുമില്ല".
Volume ends: "പരമാവധി ശബ്ദം" / "കുറഞ്ഞ ശബ്ദം".
Replay key: the time it was received, then the announcement (or merged phrase):
  "വൈകുന്നേരം നാല് മണി പത്ത് മിനിറ്റിന് ഇരുനൂറ്റി അമ്പത് രൂപ ലഭിച്ചു".
  hour:minute  time phrase
  16:10        വൈകുന്നേരം നാല് മണി പത്ത് മിനിറ്റിന്
  16:00        വൈകുന്നേരം നാല് മണിക്ക്           (on the hour: മണിക്ക്, "at ... o'clock")
  16:01        വൈകുന്നേരം നാല് മണി ഒരു മിനിറ്റിന്
  09:45        രാവിലെ ഒമ്പത് മണി നാല്പത്തിയഞ്ച് മിനിറ്റിന്
  13:30        ഉച്ചയ്ക്ക് ഒരു മണി മുപ്പത് മിനിറ്റിന്
  00:00        അർധരാത്രി പന്ത്രണ്ട് മണിക്ക്
  12:00        ഉച്ചയ്ക്ക് പന്ത്രണ്ട് മണിക്ക്
  02:05        പുലർച്ചെ രണ്ട് മണി അഞ്ച് മിനിറ്റിന്
- a 12-hour clock (0 and 12 are പന്ത്രണ്ട്) said after the part of the day:
  അർധരാത്രി 0, പുലർച്ചെ 1-5, രാവിലെ 6-11, ഉച്ചയ്ക്ക് 12-15, വൈകുന്നേരം 16-18, രാത്രി 19-23;
- hours and minutes are the number words above; മിനിറ്റ് is the same for one and many;
- the exact minute, never അര/കാൽ/മുക്കാൽ ("half past" ...): one rule for every minute.

Not expressible in soundbox.voice today, so the nearest form is used: the one after a
hundred or a group word is ഒന്ന് in Malayalam (നൂറ്റിയൊന്ന്, ആയിരത്തൊന്ന്), but the engine
has one word for one; ഒരു is kept, as the lone ഒരു രൂപ / ഒരു പൈസ / ഒരു മിനിറ്റ് are said far
more often than 101, 1,001 ... And the fused thousands above.

Source of the number words: mlmorph 1.4.3, the Malayalam morphology analyser of Santhosh
Thottingal (SMC), whose generator gives every word of this table for 2-99 (among its
variants: ഇരുപത്തിയഞ്ച് / ഇരുപത്തഞ്ച്, നാല്പത് / നാൽപത്, അമ്പത് / അൻപത്), the hundreds
and their joined forms (നൂറ്റി ...), ആയിരത്തി, ലക്ഷത്തി and ഒരു before lakh and crore; its
one is the counting form ഒന്ന് (see above for ഒരു). Cross-checked with espeak-ng's
Malayalam number rules (dictsource/ml_list, commit 359f5f3: _2X iruvatti, _0C nu:t.t.i ...
_9C tol.l.a:jiRatti, _0M1 a:jiRatti, _0M2 laks.at.t.i, _0M3 ko:t.i) and AI4Bharat's
indic-numtowords 1.1.0 (the same words, some spelled apart: "ഇരുപത്തി മൂന്ന്"; 200 as
ഇരുന്നൂറ്, here ഇരുനൂറ് as mlmorph and espeak-ng). ICU 72 has no Malayalam spellout (it
falls back to English), so it could not be compared.
"""

from soundbox.voice import Words

TABLE = {
    "below_100": Words(
        "|ഒരു|രണ്ട്|മൂന്ന്|നാല്|അഞ്ച്|ആറ്|ഏഴ്|എട്ട്|ഒമ്പത്|പത്ത്|പതിനൊന്ന്|പന്ത്രണ്ട്|"
        "പതിമൂന്ന്|പതിനാല്|പതിനഞ്ച്|പതിനാറ്|പതിനേഴ്|പതിനെട്ട്|പത്തൊമ്പത്|"
        "ഇരുപത്|ഇരുപത്തിയൊന്ന്|ഇരുപത്തിരണ്ട്|ഇരുപത്തിമൂന്ന്|ഇരുപത്തിനാല്|ഇരുപത്തിയഞ്ച്|"
        "ഇരുപത്തിയാറ്|ഇരുപത്തിയേഴ്|ഇരുപത്തിയെട്ട്|ഇരുപത്തിയൊമ്പത്|"
        "മുപ്പത്|മുപ്പത്തിയൊന്ന്|മുപ്പത്തിരണ്ട്|മുപ്പത്തിമൂന്ന്|മുപ്പത്തിനാല്|മുപ്പത്തിയഞ്ച്|"
        "മുപ്പത്തിയാറ്|മുപ്പത്തിയേഴ്|മുപ്പത്തിയെട്ട്|മുപ്പത്തിയൊമ്പത്|"
        "നാല്പത്|നാല്പത്തിയൊന്ന്|നാല്പത്തിരണ്ട്|നാല്പത്തിമൂന്ന്|നാല്പത്തിനാല്|നാല്പത്തിയഞ്ച്|"
        "നാല്പത്തിയാറ്|നാല്പത്തിയേഴ്|നാല്പത്തിയെട്ട്|നാല്പത്തിയൊമ്പത്|"
        "അമ്പത്|അമ്പത്തിയൊന്ന്|അമ്പത്തിരണ്ട്|അമ്പത്തിമൂന്ന്|അമ്പത്തിനാല്|അമ്പത്തിയഞ്ച്|"
        "അമ്പത്തിയാറ്|അമ്പത്തിയേഴ്|അമ്പത്തിയെട്ട്|അമ്പത്തിയൊമ്പത്|"
        "അറുപത്|അറുപത്തിയൊന്ന്|അറുപത്തിരണ്ട്|അറുപത്തിമൂന്ന്|അറുപത്തിനാല്|അറുപത്തിയഞ്ച്|"
        "അറുപത്തിയാറ്|അറുപത്തിയേഴ്|അറുപത്തിയെട്ട്|അറുപത്തിയൊമ്പത്|"
        "എഴുപത്|എഴുപത്തിയൊന്ന്|എഴുപത്തിരണ്ട്|എഴുപത്തിമൂന്ന്|എഴുപത്തിനാല്|എഴുപത്തിയഞ്ച്|"
        "എഴുപത്തിയാറ്|എഴുപത്തിയേഴ്|എഴുപത്തിയെട്ട്|എഴുപത്തിയൊമ്പത്|"
        "എൺപത്|എൺപത്തിയൊന്ന്|എൺപത്തിരണ്ട്|എൺപത്തിമൂന്ന്|എൺപത്തിനാല്|എൺപത്തിയഞ്ച്|"
        "എൺപത്തിയാറ്|എൺപത്തിയേഴ്|എൺപത്തിയെട്ട്|എൺപത്തിയൊമ്പത്|"
        "തൊണ്ണൂറ്|തൊണ്ണൂറ്റിയൊന്ന്|തൊണ്ണൂറ്റിരണ്ട്|തൊണ്ണൂറ്റിമൂന്ന്|തൊണ്ണൂറ്റിനാല്|"
        "തൊണ്ണൂറ്റിയഞ്ച്|തൊണ്ണൂറ്റിയാറ്|തൊണ്ണൂറ്റിയേഴ്|തൊണ്ണൂറ്റിയെട്ട്|തൊണ്ണൂറ്റിയൊമ്പത്"
    ),
    "hundreds": Words("|നൂറ്|ഇരുനൂറ്|മുന്നൂറ്|നാനൂറ്|അഞ്ഞൂറ്|അറുനൂറ്|എഴുനൂറ്|എണ്ണൂറ്|തൊള്ളായിരം"),
    "hundreds_joined": Words(
        "|നൂറ്റി|ഇരുനൂറ്റി|മുന്നൂറ്റി|നാനൂറ്റി|അഞ്ഞൂറ്റി|അറുനൂറ്റി|എഴുനൂറ്റി|എണ്ണൂറ്റി|തൊള്ളായിരത്തി"
    ),
    # (one, one with more after, many, many with more after): see soundbox.voice
    "thousand": ("ആയിരം", "ആയിരത്തി", "ആയിരം", "ആയിരത്തി"),
    "thousand_one": "",  # 1000 is ആയിരം, no count before it
    "lakh": ("ലക്ഷം", "ലക്ഷത്തി", "ലക്ഷം", "ലക്ഷത്തി"),
    "crore": "കോടി",
    "rupee": "രൂപ",
    "rupees": "രൂപ",
    "paisa": "പൈസ",
    "paise": "പൈസ",
    "and": None,  # no word between the rupees and the paise
    "received": "ലഭിച്ചു",
    "received_many": "ലഭിച്ചു",
    "payment": "ഇടപാടിലൂടെ",
    "payments": "ഇടപാടുകളിലൂടെ",
    "announce": ("$provider", "$amount", "$received"),
    "provider": ("$name", "വഴി"),
    "merged": ("$count", "$payments", "ആകെ", "$amount", "$received"),
    "offline": ("ഓഫ്ലൈനായിരുന്നപ്പോൾ",),
    "today": ("ഇന്ന്",),
    "today_none": "ഇന്ന് ഇടപാടുകളൊന്നുമില്ല",
    "replay": ("$time", "$said"),
    "time": ("$day_part", "$hour", "മണി", "$minute", "$minute_word"),
    "time_on_hour": ("$day_part", "$hour", "മണിക്ക്"),
    "day_parts": ((0, "അർധരാത്രി"), (1, "പുലർച്ചെ"), (6, "രാവിലെ"), (12, "ഉച്ചയ്ക്ക്"),
                  (16, "വൈകുന്നേരം"), (19, "രാത്രി")),
    "minute_words": ("മിനിറ്റിന്", "മിനിറ്റിന്"),
    "providers": {"bhim": "ഭീം", "gpay": "ജീപേ", "paytm": "പേടിഎം", "phonepe": "ഫോൺപേ",
                  "upi": "യുപിഐ"},
    "prompts": {
        "charging": "ചാർജ് ചെയ്യുന്നു",
        "clock_not_set": "ക്ലോക്കിൽ സമയം സെറ്റ് ചെയ്തിട്ടില്ല",
        "low_battery": "ബാറ്ററി കുറവാണ്",
        "no_network": "നെറ്റ്വർക്ക് ഇല്ല",
        "not_registered": "ഉപകരണം രജിസ്റ്റർ ചെയ്തിട്ടില്ല",
        "server_unreachable": "സെർവറുമായി ബന്ധപ്പെടാൻ കഴിയുന്നില്ല",
        "updating": "അപ്ഡേറ്റ് ചെയ്യുന്നു",
        "volume_max": "പരമാവധി ശബ്ദം",
        "volume_min": "കുറഞ്ഞ ശബ്ദം",
    },
}
