"""Odia wording table for soundbox.voice (loaded only when a box speaks Odia).

Slot names in the templates are explained in soundbox.voice.

  paise            words
  1                ଏକ ପଇସା
  50               ପଚାଶ ପଇସା
  100              ଏକ ଟଙ୍କା
  2550             ପଚିଶି ଟଙ୍କା ପଚାଶ ପଇସା
  10000            ଶହେ ଟଙ୍କା
  10100            ଶହେ ଏକ ଟଙ୍କା
  25000            ଦୁଇଶହ ପଚାଶ ଟଙ୍କା
  150000           ଏକ ହଜାର ପାଞ୍ଚଶହ ଟଙ୍କା
  12500050         ଏକ ଲକ୍ଷ ପଚିଶି ହଜାର ଟଙ୍କା ପଚାଶ ପଇସା
  1000000000       ଏକ କୋଟି ଟଙ୍କା

- every number 1-99 is its own word (irregular: କୋଡ଼ିଏ, ଅଣଚାଶ, ଷାଠିଏ, ଅନେଶତ, never
  "କୋଡ଼ିଏ ପାଞ୍ଚ"); 19-48 are said with a final -ଶି (ଏକୋଇଶି, ତିରିଶି, ଚାଳିଶି), as in speech;
- hundreds are one word each: ଶହେ (a hundred, with or without more: "ଶହେ ଏକ"), then
  ଦୁଇଶହ, ତିନିଶହ ... ନଅଶହ;
- ହଜାର, ଲକ୍ଷ, କୋଟି after their count, largest first, the count always said ("ଏକ ହଜାର");
- the rupee is ଟଙ୍କା and the paisa ପଇସା, the same for one and for many;
- rupees and paise follow each other with no "and" ("ପଚିଶି ଟଙ୍କା ପଚାଶ ପଇସା");
- the verb "ମିଳିଲା" (was received) does not change with the amount: an Odia verb
  agrees with its person, and an amount is always the third person.
Announcement: "[<provider> ମାଧ୍ୟମରେ] <amount> ମିଳିଲା" ("ଫୋନ୍ ପେ ମାଧ୍ୟମରେ ଦୁଇଶହ ପଚାଶ ଟଙ୍କା
  ମିଳିଲା": through PhonePe).
Merged: "ଚାରି ପେମେଣ୍ଟରେ ମୋଟ ଦୁଇଶହ ଟଙ୍କା ମିଳିଲା" (in four payments, in total ...: the
  count needs no counter word before the locative ପେମେଣ୍ଟରେ).
Offline summary: "ଅଫଲାଇନ୍ ଥିବା ବେଳେ" (while offline) before the merged phrase.
Today (long press): "ଆଜି" before the merged phrase; none yet: "ଆଜି କୌଣସି ପେମେଣ୍ଟ୍ ନାହିଁ".
Volume ends: "ସର୍ବାଧିକ ଭଲ୍ୟୁମ୍" / "ସର୍ବନିମ୍ନ ଭଲ୍ୟୁମ୍".
Replay key: the time it was received, then the announcement (or merged phrase):
  "ଦିନ ଚାରିଟା ବାଜି ଦଶ ମିନିଟରେ ଦୁଇଶହ ପଚାଶ ଟଙ୍କା ମିଳିଲା".
  hour:minute  time phrase
  16:10        ଦିନ ଚାରିଟା ବାଜି ଦଶ ମିନିଟରେ
  16:00        ଦିନ ଚାରିଟାରେ                 (on the hour: the hour's locative form)
  16:01        ଦିନ ଚାରିଟା ବାଜି ଏକ ମିନିଟରେ    (ମିନିଟରେ is the same for one and many)
  09:45        ସକାଳ ନଅଟା ବାଜି ପଞ୍ଚଚାଳିଶି ମିନିଟରେ
  13:05        ଦିନ ଏକଟା ବାଜି ପାଞ୍ଚ ମିନିଟରେ
  18:00        ସନ୍ଧ୍ୟା ଛଅଟାରେ
  00:00        ରାତି ବାରଟାରେ
  12:00        ଦିନ ବାରଟାରେ
- a 12-hour clock (0 and 12 are ବାରଟା) said after the part of the day:
  ରାତି 0-3, ସକାଳ 4-11, ଦିନ 12-16, ସନ୍ଧ୍ୟା 17-19, ରାତି 20-23;
- the hour is the clock word with its counter ଟା (ଏକଟା, ଦୁଇଟା ... ବାରଟା), then ବାଜି,
  the minute's number word and ମିନିଟରେ;
- on the hour, the clock word's locative alone means "at four": ଚାରିଟାରେ, ଏକଟାରେ ...;
- the exact minute, never ସାଢ଼େ/ସୁଆ/ପାଉଣେ/ଦେଢ଼/ଅଢ଼େଇ (one rule, a precise timestamp).

Text is NFC: ଡ଼ and ୟ are stored as letter + nukta, the form NFC keeps (Unicode excludes
the precomposed ones from composition), so a clip name always matches the text that asked
for it. espeak-ng 1.51's Odia voice reads a nukta letter followed by a vowel sign with an
extra vowel (କୋଡ଼ିଏ as "koṛo-ie"), and ୱ as its character name: the pack builder says
those few tokens from a respelling (soundbox_tools.voicepack.SPOKEN["or"]).

Source of the number words: the Odia cardinals of Unicode CLDR's rule-based number format
(common/rbnf/or.xml, spellout-cardinal), checked word by word against AI4Bharat's
indic-numtowords (ori) and the words espeak-ng's Odia voice says for the digits. The
sources disagree on 57 of the 99; this table takes the spelling two of them share:
  19-48 ending in -ଶି (ଊଣେଇଶି ... ଅଠଚାଳିଶି)  (espeak-ng says -ଶି; CLDR and AI4Bharat write
                          the literary -ଶ, said "-śɔ")
  16 ଷୋହଳ, 29 ଅଣତିରିଶି, 37 ସଇଁତିରିଶି, 39 ଅଣଚାଳିଶି, 43 ତେୟାଳିଶି, 46 ଛୟାଳିଶି, 49 ଅଣଚାଶ,
  52 ବାଉନ, 59 ଅଣଷଠି, 69-78 ଅଣସ୍ତରି ... ଅଠସ୍ତରି, 79-88 ଅଣାଅଶୀ ... ଅଠାଅଶୀ, 93 ତେୟାନବେ,
  96 ଛୟାନବେ, 99 ଅନେଶତ    (AI4Bharat, espeak-ng; CLDR ଷୋଳ, ଊଣାତିରିଶ ..., ସତୁରୀ-based
                          69-78, contracted 79-88 (ଏକାଶୀ), ନିଆଁନବେ for 99)
  20 କୋଡ଼ିଏ, 24 ଚବିଶି, 45 ପଞ୍ଚଚାଳିଶି  (CLDR or AI4Bharat, with espeak-ng)
  70 ସତୁରି               (the sources differ only in the vowel length: ସତୁରୀ, ସତୂରି)
"""

from soundbox.voice import Words

TABLE = {
    "below_100": Words(
        "|ଏକ|ଦୁଇ|ତିନି|ଚାରି|ପାଞ୍ଚ|ଛଅ|ସାତ|ଆଠ|ନଅ|ଦଶ|"
        "ଏଗାର|ବାର|ତେର|ଚଉଦ|ପନ୍ଦର|ଷୋହଳ|ସତର|ଅଠର|ଊଣେଇଶି|କୋଡ଼ିଏ|"
        "ଏକୋଇଶି|ବାଇଶି|ତେଇଶି|ଚବିଶି|ପଚିଶି|ଛବିଶି|ସତାଇଶି|ଅଠାଇଶି|ଅଣତିରିଶି|ତିରିଶି|"
        "ଏକତିରିଶି|ବତିଶି|ତେତିଶି|ଚଉତିରିଶି|ପଞ୍ଚତିରିଶି|ଛତିଶି|ସଇଁତିରିଶି|ଅଠତିରିଶି|ଅଣଚାଳିଶି|ଚାଳିଶି|"
        "ଏକଚାଳିଶି|ବୟାଳିଶି|ତେୟାଳିଶି|ଚଉରାଳିଶି|ପଞ୍ଚଚାଳିଶି|ଛୟାଳିଶି|ସତଚାଳିଶି|ଅଠଚାଳିଶି|ଅଣଚାଶ|ପଚାଶ|"
        "ଏକାବନ|ବାଉନ|ତେପନ|ଚଉବନ|ପଞ୍ଚାବନ|ଛପନ|ସତାବନ|ଅଠାବନ|ଅଣଷଠି|ଷାଠିଏ|"
        "ଏକଷଠି|ବାଷଠି|ତେଷଠି|ଚଉଷଠି|ପଞ୍ଚଷଠି|ଛଅଷଠି|ସତଷଠି|ଅଠଷଠି|ଅଣସ୍ତରି|ସତୁରି|"
        "ଏକସ୍ତରି|ବାସ୍ତରି|ତେସ୍ତରି|ଚଉସ୍ତରି|ପଞ୍ଚସ୍ତରି|ଛଅସ୍ତରି|ସତସ୍ତରି|ଅଠସ୍ତରି|ଅଣାଅଶୀ|ଅଶୀ|"
        "ଏକାଅଶୀ|ବୟାଅଶୀ|ତେୟାଅଶୀ|ଚଉରାଅଶୀ|ପଞ୍ଚାଅଶୀ|ଛୟାଅଶୀ|ସତାଅଶୀ|ଅଠାଅଶୀ|ଅଣାନବେ|ନବେ|"
        "ଏକାନବେ|ବୟାନବେ|ତେୟାନବେ|ଚଉରାନବେ|ପଞ୍ଚାନବେ|ଛୟାନବେ|ସତାନବେ|ଅଠାନବେ|ଅନେଶତ"
    ),
    # index d -> the one word for d hundreds (ଶହେ: "a hundred", with or without more)
    "hundreds": Words("|ଶହେ|ଦୁଇଶହ|ତିନିଶହ|ଚାରିଶହ|ପାଞ୍ଚଶହ|ଛଅଶହ|ସାତଶହ|ଆଠଶହ|ନଅଶହ"),
    "thousand": "ହଜାର",
    "lakh": "ଲକ୍ଷ",
    "crore": "କୋଟି",
    "rupee": "ଟଙ୍କା",
    "rupees": "ଟଙ୍କା",
    "paisa": "ପଇସା",
    "paise": "ପଇସା",
    "and": None,  # no word between the rupees and the paise
    "received": "ମିଳିଲା",
    "received_many": "ମିଳିଲା",
    "payment": "ପେମେଣ୍ଟରେ",
    "payments": "ପେମେଣ୍ଟରେ",
    "announce": ("$provider", "$amount", "$received"),
    "provider": ("$name", "ମାଧ୍ୟମରେ"),
    "merged": ("$count", "$payments", "ମୋଟ", "$amount", "$received"),
    "offline": ("ଅଫଲାଇନ୍ ଥିବା ବେଳେ",),
    "today": ("ଆଜି",),
    "today_none": "ଆଜି କୌଣସି ପେମେଣ୍ଟ୍ ନାହିଁ",
    "replay": ("$time", "$said"),
    "time": ("$day_part", "$hour", "ବାଜି", "$minute", "$minute_word"),
    "time_on_hour": ("$day_part", "$hour_on"),
    "day_parts": ((0, "ରାତି"), (4, "ସକାଳ"), (12, "ଦିନ"), (17, "ସନ୍ଧ୍ୟା"), (20, "ରାତି")),
    # index h -> the clock word for h o'clock (index 0 unused)
    "clock_hours": Words("|ଏକଟା|ଦୁଇଟା|ତିନିଟା|ଚାରିଟା|ପାଞ୍ଚଟା|ଛଅଟା|ସାତଟା|ଆଠଟା|ନଅଟା|ଦଶଟା|ଏଗାରଟା|ବାରଟା"),
    "clock_hours_on": Words(
        "|ଏକଟାରେ|ଦୁଇଟାରେ|ତିନିଟାରେ|ଚାରିଟାରେ|ପାଞ୍ଚଟାରେ|ଛଅଟାରେ|ସାତଟାରେ|ଆଠଟାରେ|ନଅଟାରେ|ଦଶଟାରେ|"
        "ଏଗାରଟାରେ|ବାରଟାରେ"
    ),
    "minute_words": ("ମିନିଟରେ", "ମିନିଟରେ"),
    "providers": {"bhim": "ଭୀମ୍", "gpay": "ଜିପେ", "paytm": "ପେଟିଏମ୍", "phonepe": "ଫୋନ୍ ପେ", "upi": "ୟୁପିଆଇ"},
    "prompts": {
        "charging": "ଚାର୍ଜ୍ ହେଉଛି",
        "clock_not_set": "ସମୟ ସେଟ୍ ହୋଇନାହିଁ",
        "low_battery": "ବ୍ୟାଟେରୀ କମ୍ ଅଛି",
        "no_network": "ନେଟୱର୍କ ନାହିଁ",
        "not_registered": "ଡିଭାଇସ୍ ପଞ୍ଜୀକୃତ ହୋଇନାହିଁ",
        "server_unreachable": "ସର୍ଭର୍ ସହ ସମ୍ପର୍କ ହେଉନାହିଁ",
        "updating": "ଅପଡେଟ୍ ହେଉଛି",
        "volume_max": "ସର୍ବାଧିକ ଭଲ୍ୟୁମ୍",
        "volume_min": "ସର୍ବନିମ୍ନ ଭଲ୍ୟୁମ୍",
    },
}
