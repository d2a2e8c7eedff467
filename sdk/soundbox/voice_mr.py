"""Marathi wording table for soundbox.voice (loaded only when a box speaks Marathi).

Slot names in the templates are explained in soundbox.voice.

  paise            words
  1                एक पैसा
  100              एक रुपया
  101              एक रुपया आणि एक पैसा
  10000            शंभर रुपये
  12500            एकशे पंचवीस रुपये
  25000            दोनशे पन्नास रुपये
  110000           एक हजार शंभर रुपये
  12500050         एक लाख पंचवीस हजार रुपये आणि पन्नास पैसे

- every number 1-99 is its own word (एकोणीस, एक्केचाळीस, नव्व्याण्णव ...);
- hundreds are one word each: शंभर for a hundred with nothing after it,
  एकशे when more follows ("एकशे पंचवीस"), then दोनशे, तीनशे ... नऊशे;
- हजार, लाख, कोटी after their count, largest first;
- रुपया/पैसा for exactly one, रुपये/पैसे otherwise; "आणि" joins rupees and paise;
- the verb comes last and agrees with the amount: "एक रुपया मिळाला",
  "दोन रुपये मिळाले"; rupees and paise together are plural.
Announcement: "[<provider> वर] <amount> मिळाला/मिळाले" ("फोनपे वर दोनशे पन्नास रुपये मिळाले").
Merged: "चार पेमेंट एकूण दोनशे रुपये मिळाले" (four payments, in total ... received:
  the verb agrees with the amount, which avoids the count's gender/number forms).
Offline summary: "ऑफलाइन असताना" before the merged phrase.
Today (long press): "आज" before the merged phrase; none yet: "आज एकही पेमेंट नाही".
Volume ends: "कमाल आवाज" / "किमान आवाज".
Replay key: the time it was received, then the announcement (or merged phrase):
  "सायंकाळी चार वाजून दहा मिनिटांनी दोनशे पन्नास रुपये मिळाले".
  hour:minute  time phrase
  16:10        सायंकाळी चार वाजून दहा मिनिटांनी
  16:00        सायंकाळी चार वाजता            (on the hour: वाजता, no minutes)
  16:01        सायंकाळी चार वाजून एक मिनिटाने   (one minute: singular मिनिटाने)
  05:30        पहाटे पाच वाजून तीस मिनिटांनी
  09:45        सकाळी नऊ वाजून पंचेचाळीस मिनिटांनी
  13:05        दुपारी एक वाजून पाच मिनिटांनी
  00:00        रात्री बारा वाजता
  12:00        दुपारी बारा वाजता
- a 12-hour clock (0 and 12 are बारा) said after the part of the day:
  रात्री 0-3, पहाटे 4-5, सकाळी 6-11, दुपारी 12-15, सायंकाळी 16-19, रात्री 20-23;
- hours and minutes are the number words of the table above;
- the exact minute, never साडे/सव्वा/पावणे/दीड/अडीच (one rule, a precise timestamp).
"""

from soundbox.voice import Words

TABLE = {
    "below_100": Words(
        "|एक|दोन|तीन|चार|पाच|सहा|सात|आठ|नऊ|दहा|अकरा|बारा|तेरा|चौदा|पंधरा|सोळा|सतरा|अठरा|एकोणीस|वीस|"
        "एकवीस|बावीस|तेवीस|चोवीस|पंचवीस|सव्वीस|सत्तावीस|अठ्ठावीस|एकोणतीस|तीस|एकतीस|बत्तीस|तेहेतीस|"
        "चौतीस|पस्तीस|छत्तीस|सदतीस|अडतीस|एकोणचाळीस|चाळीस|एक्केचाळीस|बेचाळीस|त्रेचाळीस|चव्वेचाळीस|"
        "पंचेचाळीस|सेहेचाळीस|सत्तेचाळीस|अठ्ठेचाळीस|एकोणपन्नास|पन्नास|एक्कावन्न|बावन्न|त्रेपन्न|"
        "चोपन्न|पंचावन्न|छप्पन्न|सत्तावन्न|अठ्ठावन्न|एकोणसाठ|साठ|एकसष्ट|बासष्ट|त्रेसष्ट|चौसष्ट|"
        "पासष्ट|सहासष्ट|सदुसष्ट|अडुसष्ट|एकोणसत्तर|सत्तर|एक्काहत्तर|बाहत्तर|त्र्याहत्तर|चौऱ्याहत्तर|"
        "पंच्याहत्तर|शहात्तर|सत्त्याहत्तर|अठ्ठ्याहत्तर|एकोणऐंशी|ऐंशी|एक्क्याऐंशी|ब्याऐंशी|"
        "त्र्याऐंशी|चौऱ्याऐंशी|पंच्याऐंशी|शहाऐंशी|सत्त्याऐंशी|अठ्ठ्याऐंशी|एकोणनव्वद|नव्वद|"
        "एक्क्याण्णव|ब्याण्णव|त्र्याण्णव|चौऱ्याण्णव|पंच्याण्णव|शहाण्णव|सत्त्याण्णव|अठ्ठ्याण्णव|"
        "नव्व्याण्णव"
    ),
    # index d -> the one word for d hundreds when more follows; "hundred_alone" when nothing does
    "hundreds": Words("|एकशे|दोनशे|तीनशे|चारशे|पाचशे|सहाशे|सातशे|आठशे|नऊशे"),
    "hundred_alone": "शंभर",
    "thousand": "हजार",
    "lakh": "लाख",
    "crore": "कोटी",
    "rupee": "रुपया",
    "rupees": "रुपये",
    "paisa": "पैसा",
    "paise": "पैसे",
    "and": "आणि",
    "received": "मिळाला",
    "received_many": "मिळाले",
    "payment": "पेमेंट",
    "payments": "पेमेंट",
    "announce": ("$provider", "$amount", "$received"),
    "provider": ("$name", "वर"),
    "merged": ("$count", "$payments", "एकूण", "$amount", "$received"),
    "offline": ("ऑफलाइन असताना",),
    "today": ("आज",),
    "today_none": "आज एकही पेमेंट नाही",
    "replay": ("$time", "$said"),
    "time": ("$day_part", "$hour", "वाजून", "$minute", "$minute_word"),
    "time_on_hour": ("$day_part", "$hour", "वाजता"),
    "day_parts": ((0, "रात्री"), (4, "पहाटे"), (6, "सकाळी"), (12, "दुपारी"), (16, "सायंकाळी"),
                  (20, "रात्री")),
    "minute_words": ("मिनिटाने", "मिनिटांनी"),
    "providers": {"bhim": "भीम", "gpay": "जीपे", "paytm": "पेटीएम", "phonepe": "फोनपे", "upi": "यूपीआय"},
    "prompts": {
        "charging": "चार्जिंग होत आहे",
        "clock_not_set": "घड्याळाची वेळ सेट केलेली नाही",
        "low_battery": "बॅटरी कमी आहे",
        "no_network": "नेटवर्क नाही",
        "not_registered": "डिव्हाइस नोंदणीकृत नाही",
        "server_unreachable": "सर्व्हरशी संपर्क होत नाही",
        "updating": "अपडेट सुरू आहे",
        "volume_max": "कमाल आवाज",
        "volume_min": "किमान आवाज",
    },
}
