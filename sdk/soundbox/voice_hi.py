"""Hindi wording table for soundbox.voice (loaded only when a box speaks Hindi).

Slot names in the templates are explained in soundbox.voice.

  paise            words
  1                एक पैसा
  50               पचास पैसे
  100              एक रुपया
  101              एक रुपया और एक पैसा
  200              दो रुपये
  10000            एक सौ रुपये
  25000            दो सौ पचास रुपये
  150000           एक हज़ार पाँच सौ रुपये
  12500050         एक लाख पच्चीस हज़ार रुपये और पचास पैसे
  1000000000       एक करोड़ रुपये

- every number 1-99 is its own word (irregular: पच्चीस, never "बीस पाँच");
- hundreds are "<count> सौ", always with the count ("एक सौ", not a bare "सौ");
  then हज़ार, लाख, करोड़ after their count, largest first;
- रुपया/पैसा for exactly one, रुपये/पैसे otherwise; "और" joins rupees and paise;
- the verb agrees with the amount: "एक रुपया प्राप्त हुआ", "एक पैसा प्राप्त हुआ",
  "दो रुपये प्राप्त हुए"; rupees and paise together are plural
  ("एक रुपया और एक पैसा प्राप्त हुए").
Announcement: "[<provider> पर] <amount> प्राप्त हुआ/हुए"
  ("पेटीएम पर दो सौ पचास रुपये प्राप्त हुए").
Merged: "चार भुगतान प्राप्त हुए कुल दो सौ रुपये" (भुगतान is the same in the
  plural; the verb agrees with the count: "एक भुगतान प्राप्त हुआ").
Offline summary: "ऑफ़लाइन रहते हुए" before the merged phrase.
Today (long press): "आज" before the merged phrase; none yet: "आज कोई भुगतान नहीं".
Volume ends: "अधिकतम आवाज़" / "न्यूनतम आवाज़".
Replay key: the time it was received, then the announcement (or merged phrase):
  "शाम चार बजकर दस मिनट पर दो सौ पचास रुपये प्राप्त हुए".
  hour:minute  time phrase
  16:10        शाम चार बजकर दस मिनट पर
  16:00        शाम चार बजे                (on the hour: बजे, no minutes, no पर)
  16:01        शाम चार बजकर एक मिनट पर    (मिनट is the same for one and many)
  09:45        सुबह नौ बजकर पैंतालीस मिनट पर
  13:30        दोपहर एक बजकर तीस मिनट पर
  00:00        रात बारह बजे
  12:00        दोपहर बारह बजे
  02:05        रात दो बजकर पाँच मिनट पर
- a 12-hour clock (0 and 12 are बारह) said after the part of the day:
  रात 0-3, सुबह 4-11, दोपहर 12-15, शाम 16-19, रात 20-23;
- hours and minutes are the number words of the table above;
- the exact minute, never साढ़े/सवा/पौने/डेढ़/ढाई: one rule for every minute, and a
  timestamp the merchant can match against the customer's phone.
"""

from soundbox.voice import Words

TABLE = {
    "below_100": Words(
        "|एक|दो|तीन|चार|पाँच|छह|सात|आठ|नौ|दस|ग्यारह|बारह|तेरह|चौदह|पंद्रह|सोलह|सत्रह|अठारह|उन्नीस|"
        "बीस|इक्कीस|बाईस|तेईस|चौबीस|पच्चीस|छब्बीस|सत्ताईस|अट्ठाईस|उनतीस|तीस|इकतीस|बत्तीस|तैंतीस|"
        "चौंतीस|पैंतीस|छत्तीस|सैंतीस|अड़तीस|उनतालीस|चालीस|इकतालीस|बयालीस|तैंतालीस|चवालीस|पैंतालीस|"
        "छियालीस|सैंतालीस|अड़तालीस|उनचास|पचास|इक्यावन|बावन|तिरपन|चौवन|पचपन|छप्पन|सत्तावन|अट्ठावन|"
        "उनसठ|साठ|इकसठ|बासठ|तिरसठ|चौंसठ|पैंसठ|छियासठ|सड़सठ|अड़सठ|उनहत्तर|सत्तर|इकहत्तर|बहत्तर|"
        "तिहत्तर|चौहत्तर|पचहत्तर|छिहत्तर|सतहत्तर|अठहत्तर|उन्यासी|अस्सी|इक्यासी|बयासी|तिरासी|चौरासी|"
        "पचासी|छियासी|सत्तासी|अट्ठासी|नवासी|नब्बे|इक्यानबे|बानबे|तिरानबे|चौरानबे|पचानबे|छियानबे|"
        "सत्तानबे|अट्ठानबे|निन्यानबे"
    ),
    "hundred": "सौ",
    "thousand": "हज़ार",
    "lakh": "लाख",
    "crore": "करोड़",
    "rupee": "रुपया",
    "rupees": "रुपये",
    "paisa": "पैसा",
    "paise": "पैसे",
    "and": "और",
    "received": "प्राप्त हुआ",
    "received_many": "प्राप्त हुए",
    "payment": "भुगतान",
    "payments": "भुगतान",
    "announce": ("$provider", "$amount", "$received"),
    "provider": ("$name", "पर"),
    "merged": ("$count", "$payments", "$received_count", "कुल", "$amount"),
    "offline": ("ऑफ़लाइन रहते हुए",),
    "today": ("आज",),
    "today_none": "आज कोई भुगतान नहीं",
    "replay": ("$time", "$said"),
    "time": ("$day_part", "$hour", "बजकर", "$minute", "$minute_word", "पर"),
    "time_on_hour": ("$day_part", "$hour", "बजे"),
    "day_parts": ((0, "रात"), (4, "सुबह"), (12, "दोपहर"), (16, "शाम"), (20, "रात")),
    "minute_words": ("मिनट", "मिनट"),
    "providers": {"bhim": "भीम", "gpay": "जीपे", "paytm": "पेटीएम", "phonepe": "फ़ोनपे", "upi": "यूपीआई"},
    "prompts": {
        "charging": "चार्ज हो रहा है",
        "clock_not_set": "घड़ी का समय सेट नहीं है",
        "low_battery": "बैटरी कम है",
        "no_network": "नेटवर्क नहीं है",
        "not_registered": "डिवाइस पंजीकृत नहीं है",
        "server_unreachable": "सर्वर से संपर्क नहीं हो पा रहा है",
        "updating": "अपडेट हो रहा है",
        "volume_max": "अधिकतम आवाज़",
        "volume_min": "न्यूनतम आवाज़",
    },
}
