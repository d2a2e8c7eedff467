"""Bengali wording table for soundbox.voice (loaded only when a box speaks Bengali).

Slot names in the templates are explained in soundbox.voice.

  paise            words
  1                এক পয়সা
  50               পঞ্চাশ পয়সা
  100              এক টাকা
  2550             পঁচিশ টাকা পঞ্চাশ পয়সা
  10000            একশো টাকা
  25000            দুশো পঞ্চাশ টাকা
  12500050         এক লাখ পঁচিশ হাজার টাকা পঞ্চাশ পয়সা
  1000000000       এক কোটি টাকা

- every number 1-99 is its own word (ঊনত্রিশ, বিয়াল্লিশ, নিরানব্বই ...);
- hundreds are one word each: একশো, দুশো, তিনশো ... নয়শো;
- হাজার, লাখ, কোটি after their count, largest first;
- the rupee is টাকা and the paisa পয়সা, the same for one and for many;
- rupees and paise follow each other with no "and" ("পঁচিশ টাকা পঞ্চাশ পয়সা");
- the verb "পাওয়া গেছে" (has been received) does not change with the amount.
Announcement: "[<provider> এর মাধ্যমে] <amount> পাওয়া গেছে".
Merged: "চার টি পেমেন্ট পাওয়া গেছে মোট দুশো টাকা" (the counter টি follows the
  count, so "চার টি" is said as চারটি).
Offline summary: "অফলাইন থাকাকালীন" before the merged phrase.
Today (long press): "আজ" before the merged phrase; none yet: "আজ কোনো পেমেন্ট নেই".
Volume ends: "সর্বোচ্চ ভলিউম" / "সর্বনিম্ন ভলিউম".
Replay key: the time it was received, then the announcement (or merged phrase):
  "বিকেল চারটে বেজে দশ মিনিটে দুশো পঞ্চাশ টাকা পাওয়া গেছে".
  hour:minute  time phrase
  16:10        বিকেল চারটে বেজে দশ মিনিটে
  16:00        বিকেল চারটেয়                 (on the hour: the hour's locative form)
  16:01        বিকেল চারটে বেজে এক মিনিটে
  05:30        ভোর পাঁচটা বেজে ত্রিশ মিনিটে
  09:45        সকাল নটা বেজে পঁয়তাল্লিশ মিনিটে
  13:05        দুপুর একটা বেজে পাঁচ মিনিটে
  18:00        সন্ধ্যা ছটায়
  00:00        রাত বারোটায়
- a 12-hour clock (0 and 12 are বারোটা) said after the part of the day:
  রাত 0-3, ভোর 4-5, সকাল 6-11, দুপুর 12-14, বিকেল 15-17, সন্ধ্যা 18-19, রাত 20-23;
- the hour is the clock word with its classifier (একটা, দুটো, তিনটে, চারটে, পাঁচটা,
  ছটা, সাতটা, আটটা, নটা, দশটা, এগারোটা, বারোটা), then বেজে, the minute's number word
  and মিনিটে (the same for one minute and many);
- on the hour, the clock word's locative alone means "at four": চারটেয়, একটায় ...;
- the exact minute, never সাড়ে/সোয়া/পৌনে/দেড়টা/আড়াইটে (one rule, a precise timestamp).
"""

from soundbox.voice import Words

TABLE = {
    "below_100": Words(
        "|এক|দুই|তিন|চার|পাঁচ|ছয়|সাত|আট|নয়|দশ|এগারো|বারো|তেরো|চোদ্দ|পনেরো|ষোলো|সতেরো|আঠারো|উনিশ|"
        "বিশ|একুশ|বাইশ|তেইশ|চব্বিশ|পঁচিশ|ছাব্বিশ|সাতাশ|আঠাশ|ঊনত্রিশ|ত্রিশ|একত্রিশ|বত্রিশ|তেত্রিশ|"
        "চৌত্রিশ|পঁয়ত্রিশ|ছত্রিশ|সাঁইত্রিশ|আটত্রিশ|ঊনচল্লিশ|চল্লিশ|একচল্লিশ|বিয়াল্লিশ|তেতাল্লিশ|"
        "চুয়াল্লিশ|পঁয়তাল্লিশ|ছেচল্লিশ|সাতচল্লিশ|আটচল্লিশ|ঊনপঞ্চাশ|পঞ্চাশ|একান্ন|বাহান্ন|"
        "তিপ্পান্ন|চুয়ান্ন|পঞ্চান্ন|ছাপ্পান্ন|সাতান্ন|আটান্ন|ঊনষাট|ষাট|একষট্টি|বাষট্টি|তেষট্টি|"
        "চৌষট্টি|পঁয়ষট্টি|ছেষট্টি|সাতষট্টি|আটষট্টি|ঊনসত্তর|সত্তর|একাত্তর|বাহাত্তর|তিয়াত্তর|"
        "চুয়াত্তর|পঁচাত্তর|ছিয়াত্তর|সাতাত্তর|আটাত্তর|ঊনআশি|আশি|একাশি|বিরাশি|তিরাশি|চুরাশি|পঁচাশি|"
        "ছিয়াশি|সাতাশি|আটাশি|ঊননব্বই|নব্বই|একানব্বই|বিরানব্বই|তিরানব্বই|চুরানব্বই|পঁচানব্বই|"
        "ছিয়ানব্বই|সাতানব্বই|আটানব্বই|নিরানব্বই"
    ),
    "hundreds": Words("|একশো|দুশো|তিনশো|চারশো|পাঁচশো|ছয়শো|সাতশো|আটশো|নয়শো"),
    "thousand": "হাজার",
    "lakh": "লাখ",
    "crore": "কোটি",
    "rupee": "টাকা",
    "rupees": "টাকা",
    "paisa": "পয়সা",
    "paise": "পয়সা",
    "and": None,  # no word between the rupees and the paise
    "received": "পাওয়া গেছে",
    "received_many": "পাওয়া গেছে",
    "payment": "টি পেমেন্ট",
    "payments": "টি পেমেন্ট",
    "announce": ("$provider", "$amount", "$received"),
    "provider": ("$name", "এর মাধ্যমে"),
    "merged": ("$count", "$payments", "$received_count", "মোট", "$amount"),
    "offline": ("অফলাইন থাকাকালীন",),
    "today": ("আজ",),
    "today_none": "আজ কোনো পেমেন্ট নেই",
    "replay": ("$time", "$said"),
    "time": ("$day_part", "$hour", "বেজে", "$minute", "$minute_word"),
    "time_on_hour": ("$day_part", "$hour_on"),
    "day_parts": ((0, "রাত"), (4, "ভোর"), (6, "সকাল"), (12, "দুপুর"), (15, "বিকেল"), (18, "সন্ধ্যা"),
                  (20, "রাত")),
    # index h -> the clock word for h o'clock (index 0 unused)
    "clock_hours": Words("|একটা|দুটো|তিনটে|চারটে|পাঁচটা|ছটা|সাতটা|আটটা|নটা|দশটা|এগারোটা|বারোটা"),
    "clock_hours_on": Words(
        "|একটায়|দুটোয়|তিনটেয়|চারটেয়|পাঁচটায়|ছটায়|সাতটায়|আটটায়|নটায়|দশটায়|এগারোটায়|"
        "বারোটায়"
    ),
    "minute_words": ("মিনিটে", "মিনিটে"),
    "providers": {"bhim": "ভীম", "gpay": "জিপে", "paytm": "পেটিএম", "phonepe": "ফোনপে", "upi": "ইউপিআই"},
    "prompts": {
        "charging": "চার্জ হচ্ছে",
        "clock_not_set": "ঘড়ির সময় সেট করা নেই",
        "low_battery": "ব্যাটারি কম",
        "no_network": "নেটওয়ার্ক নেই",
        "not_registered": "ডিভাইস নিবন্ধিত নয়",
        "server_unreachable": "সার্ভারের সাথে যোগাযোগ হচ্ছে না",
        "updating": "আপডেট চলছে",
        "volume_max": "সর্বোচ্চ ভলিউম",
        "volume_min": "সর্বনিম্ন ভলিউম",
    },
}
