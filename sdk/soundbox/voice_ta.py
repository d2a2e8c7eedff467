"""Tamil wording table for soundbox.voice (loaded only when a box speaks Tamil).

Slot names in the templates are explained in soundbox.voice.

  paise            words
  1                ஒரு பைசா
  50               ஐம்பது பைசா
  100              ஒரு ரூபாய்
  101              ஒரு ரூபாய் ஒரு பைசா
  2550             இருபத்தைந்து ரூபாய் ஐம்பது பைசா
  10000            நூறு ரூபாய்
  10100            நூற்று ஒரு ரூபாய்
  25000            இருநூற்று ஐம்பது ரூபாய்
  100000           ஆயிரம் ரூபாய்
  150000           ஆயிரத்து ஐந்நூறு ரூபாய்
  200000           இரண்டு ஆயிரம் ரூபாய்
  12500050         ஒரு லட்சத்து இருபத்தைந்து ஆயிரம் ரூபாய் ஐம்பது பைசா
  1000000000       ஒரு கோடி ரூபாய்
  1020000000       ஒரு கோடியே இரண்டு லட்சம் ரூபாய்

- every number 1-99 is its own word, tens and units fused by sandhi (இருபத்தைந்து,
  முப்பத்திரண்டு, தொண்ணூற்றொன்பது; 23 and 24 are இருபத்துமூன்று, இருபத்துநான்கு):
  never "இருபது ஐந்து";
- a number is always said before a noun here (ரூபாய், பைசா, ஆயிரம், மணி, நிமிடம் ...), so
  one is the adjective ஒரு (ஒரு ரூபாய், பதினொரு மணி, இருபத்தொரு பைசா), not ஒன்று;
- hundreds are one word each (நூறு, இருநூறு, முந்நூறு, நானூறு, ஐந்நூறு, அறுநூறு,
  எழுநூறு, எண்ணூறு, தொள்ளாயிரம்) and take their joined form when more follows
  (நூற்று ... தொள்ளாயிரத்து: 150 நூற்று ஐம்பது);
- thousand is ஆயிரம், with no count for one thousand, and ஆயிரத்து when more follows;
  lakh is லட்சம் / லட்சத்து, crore கோடி / கோடியே (ஒரு கோடியே இருபது லட்சம்);
- two to ninety nine thousand: the count, then ஆயிரம் (இரண்டு ஆயிரம்). Written Tamil fuses
  the two (இரண்டாயிரம், மூவாயிரம், ஐயாயிரம்); soundbox.voice says a count and a group
  word as two clips, so the pack says them apart, as careful speech does;
- ரூபாய் and பைசா are the same for one and many; rupees and paise follow each other
  with no "and" (இருபத்தைந்து ரூபாய் ஐம்பது பைசா);
- the verb பெறப்பட்டது ("was received") agrees with the amount, a sum: neuter
  singular for every amount.
Announcement: "[<provider> மூலம்] <amount> பெறப்பட்டது"
  ("பேடிஎம் மூலம் இருநூற்று ஐம்பது ரூபாய் பெறப்பட்டது").
Merged: "நான்கு பரிவர்த்தனைகள் மூலம் மொத்தம் இருநூறு ரூபாய் பெறப்பட்டது" ("through four
  transactions a total of ... was received"; one: "ஒரு பரிவர்த்தனை மூலம் ...").
Offline summary: "ஆஃப்லைனில் இருந்தபோது" before the merged phrase.
Today (long press): "இன்று" before the merged phrase; none yet: "இன்று பரிவர்த்தனைகள் எதுவும் இல்லை".
Volume ends: "அதிகபட்ச ஒலி அளவு" / "குறைந்தபட்ச ஒலி அளவு".
Replay key: the time it was received, then the announcement (or merged phrase):
  "மாலை நான்கு மணி பத்து நிமிடத்திற்கு இருநூற்று ஐம்பது ரூபாய் பெறப்பட்டது".
  hour:minute  time phrase
  16:10        மாலை நான்கு மணி பத்து நிமிடத்திற்கு
  16:00        மாலை நான்கு மணிக்கு                (on the hour: மணிக்கு, "at ... o'clock")
  16:01        மாலை நான்கு மணி ஒரு நிமிடத்திற்கு
  09:45        காலை ஒன்பது மணி நாற்பத்தைந்து நிமிடத்திற்கு
  13:30        மதியம் ஒரு மணி முப்பது நிமிடத்திற்கு
  00:00        நள்ளிரவு பன்னிரண்டு மணிக்கு
  12:00        மதியம் பன்னிரண்டு மணிக்கு
  02:05        அதிகாலை இரண்டு மணி ஐந்து நிமிடத்திற்கு
- a 12-hour clock (0 and 12 are பன்னிரண்டு) said after the part of the day:
  நள்ளிரவு 0, அதிகாலை 1-5, காலை 6-11, மதியம் 12-15, மாலை 16-18, இரவு 19-23;
- hours and minutes are the number words above; நிமிடம் stays singular after a number,
  as Tamil time is said;
- the exact minute, never அரை/கால்/முக்கால் ("half past" ...): one rule for every minute.

Source of the number words: the Wikipedia article "Tamil numerals" (தமிழ் எண்கள்: 1-20,
21-26 and the attributive prefixes; read in its handwiki.org and mathsdesign.com copies) and
espeak-ng's own Tamil number rules (dictsource/ta_list, commit 359f5f3: the fused tens
_2X irUbVttU, the joined forms _0M1 a:jirVttU, _0M2 lVd.tSVttU and _0M3
ko:d.ie:, ஒரு before lakh and crore; its _1C nu:t.t.Ri is the spoken நூற்றி, written
here நூற்று). They disagree on 21-99 only in spacing: the
article writes the spoken "இருபத்தி ஒன்று", espeak-ng says "இருபத்து ஒன்று"; this table
writes each as the one fused word of written Tamil (இருபத்தொன்று, here before a noun
இருபத்தொரு). ICU 72's ta spellout was compared too: it agrees on 1-20, the tens and most
hundreds (it writes 400 நாநூறூ, 500 ஐநூறு, 800 எண்நூறு; here நானூறு, ஐந்நூறு, எண்ணூறு as
espeak-ng's na:nu:RU, aInu:RU, en.n.u:RU say them) and composes 21-99 as "இருபது ஒன்று"
and 1000 as "ஒன்று ஆயிரம்", which no speaker says.
"""

from soundbox.voice import Words

TABLE = {
    "below_100": Words(
        "|ஒரு|இரண்டு|மூன்று|நான்கு|ஐந்து|ஆறு|ஏழு|எட்டு|ஒன்பது|பத்து|பதினொரு|பன்னிரண்டு|"
        "பதின்மூன்று|பதினான்கு|பதினைந்து|பதினாறு|பதினேழு|பதினெட்டு|பத்தொன்பது|"
        "இருபது|இருபத்தொரு|இருபத்திரண்டு|இருபத்துமூன்று|இருபத்துநான்கு|இருபத்தைந்து|"
        "இருபத்தாறு|இருபத்தேழு|இருபத்தெட்டு|இருபத்தொன்பது|"
        "முப்பது|முப்பத்தொரு|முப்பத்திரண்டு|முப்பத்துமூன்று|முப்பத்துநான்கு|முப்பத்தைந்து|"
        "முப்பத்தாறு|முப்பத்தேழு|முப்பத்தெட்டு|முப்பத்தொன்பது|"
        "நாற்பது|நாற்பத்தொரு|நாற்பத்திரண்டு|நாற்பத்துமூன்று|நாற்பத்துநான்கு|நாற்பத்தைந்து|"
        "நாற்பத்தாறு|நாற்பத்தேழு|நாற்பத்தெட்டு|நாற்பத்தொன்பது|"
        "ஐம்பது|ஐம்பத்தொரு|ஐம்பத்திரண்டு|ஐம்பத்துமூன்று|ஐம்பத்துநான்கு|ஐம்பத்தைந்து|"
        "ஐம்பத்தாறு|ஐம்பத்தேழு|ஐம்பத்தெட்டு|ஐம்பத்தொன்பது|"
        "அறுபது|அறுபத்தொரு|அறுபத்திரண்டு|அறுபத்துமூன்று|அறுபத்துநான்கு|அறுபத்தைந்து|"
        "அறுபத்தாறு|அறுபத்தேழு|அறுபத்தெட்டு|அறுபத்தொன்பது|"
        "எழுபது|எழுபத்தொரு|எழுபத்திரண்டு|எழுபத்துமூன்று|எழுபத்துநான்கு|எழுபத்தைந்து|"
        "எழுபத்தாறு|எழுபத்தேழு|எழுபத்தெட்டு|எழுபத்தொன்பது|"
        "எண்பது|எண்பத்தொரு|எண்பத்திரண்டு|எண்பத்துமூன்று|எண்பத்துநான்கு|எண்பத்தைந்து|"
        "எண்பத்தாறு|எண்பத்தேழு|எண்பத்தெட்டு|எண்பத்தொன்பது|"
        "தொண்ணூறு|தொண்ணூற்றொரு|தொண்ணூற்றிரண்டு|தொண்ணூற்றுமூன்று|தொண்ணூற்றுநான்கு|"
        "தொண்ணூற்றைந்து|தொண்ணூற்றாறு|தொண்ணூற்றேழு|தொண்ணூற்றெட்டு|தொண்ணூற்றொன்பது"
    ),
    "hundreds": Words("|நூறு|இருநூறு|முந்நூறு|நானூறு|ஐந்நூறு|அறுநூறு|எழுநூறு|எண்ணூறு|தொள்ளாயிரம்"),
    "hundreds_joined": Words(
        "|நூற்று|இருநூற்று|முந்நூற்று|நானூற்று|ஐந்நூற்று|அறுநூற்று|எழுநூற்று|எண்ணூற்று|தொள்ளாயிரத்து"
    ),
    # (one, one with more after, many, many with more after): see soundbox.voice
    "thousand": ("ஆயிரம்", "ஆயிரத்து", "ஆயிரம்", "ஆயிரத்து"),
    "thousand_one": "",  # 1000 is ஆயிரம், no count before it
    "lakh": ("லட்சம்", "லட்சத்து", "லட்சம்", "லட்சத்து"),
    "crore": ("கோடி", "கோடியே", "கோடி", "கோடியே"),
    "rupee": "ரூபாய்",
    "rupees": "ரூபாய்",
    "paisa": "பைசா",
    "paise": "பைசா",
    "and": None,  # no word between the rupees and the paise
    "received": "பெறப்பட்டது",
    "received_many": "பெறப்பட்டது",
    "payment": "பரிவர்த்தனை",
    "payments": "பரிவர்த்தனைகள்",
    "announce": ("$provider", "$amount", "$received"),
    "provider": ("$name", "மூலம்"),
    "merged": ("$count", "$payments", "மூலம்", "மொத்தம்", "$amount", "$received"),
    "offline": ("ஆஃப்லைனில் இருந்தபோது",),
    "today": ("இன்று",),
    "today_none": "இன்று பரிவர்த்தனைகள் எதுவும் இல்லை",
    "replay": ("$time", "$said"),
    "time": ("$day_part", "$hour", "மணி", "$minute", "$minute_word"),
    "time_on_hour": ("$day_part", "$hour", "மணிக்கு"),
    "day_parts": ((0, "நள்ளிரவு"), (1, "அதிகாலை"), (6, "காலை"), (12, "மதியம்"), (16, "மாலை"),
                  (19, "இரவு")),
    "minute_words": ("நிமிடத்திற்கு", "நிமிடத்திற்கு"),
    "providers": {"bhim": "பீம்", "gpay": "ஜீபே", "paytm": "பேடிஎம்", "phonepe": "ஃபோன்பே",
                  "upi": "யூபிஐ"},
    "prompts": {
        "charging": "சார்ஜ் ஆகிறது",
        "clock_not_set": "கடிகார நேரம் அமைக்கப்படவில்லை",
        "low_battery": "பேட்டரி குறைவாக உள்ளது",
        "no_network": "நெட்வொர்க் இல்லை",
        "not_registered": "சாதனம் பதிவு செய்யப்படவில்லை",
        "server_unreachable": "சர்வரைத் தொடர்பு கொள்ள முடியவில்லை",
        "updating": "புதுப்பிக்கப்படுகிறது",
        "volume_max": "அதிகபட்ச ஒலி அளவு",
        "volume_min": "குறைந்தபட்ச ஒலி அளவு",
    },
}
