"""Gujarati wording table for soundbox.voice (loaded only when a box speaks Gujarati).

Slot names in the templates are explained in soundbox.voice.

  paise            words
  1                એક પૈસો
  50               પચાસ પૈસા
  100              એક રૂપિયો
  101              એક રૂપિયો અને એક પૈસો
  200              બે રૂપિયા
  10000            એકસો રૂપિયા
  25000            બસો પચાસ રૂપિયા
  150000           એક હજાર પાંચસો રૂપિયા
  12500050         એક લાખ પચ્ચીસ હજાર રૂપિયા અને પચાસ પૈસા
  1000000000       એક કરોડ રૂપિયા

- every number 1-99 is its own word (irregular: પિસ્તાલીસ, અગણોસિત્તેર, નવ્વાણું,
  never "ચાલીસ પાંચ");
- hundreds are one word each, written and said fused: એકસો, બસો (not "બે સો"), ત્રણસો,
  ચારસો, પાંચસો, છસો, સાતસો, આઠસો, નવસો; a hundred is always એકસો, with or without more;
- હજાર, લાખ, કરોડ after their count, largest first, the count always said ("એક હજાર");
- રૂપિયો/પૈસો for exactly one, રૂપિયા/પૈસા otherwise; "અને" joins rupees and paise;
- the verb comes last and agrees with the amount (masculine, like રૂપિયો):
  "એક રૂપિયો મળ્યો", "એક પૈસો મળ્યો", "બે રૂપિયા મળ્યા"; rupees and paise together
  are plural ("એક રૂપિયો અને એક પૈસો મળ્યા").
Announcement: "[<provider> પર] <amount> મળ્યો/મળ્યા" ("ફોન પે પર બસો પચાસ રૂપિયા મળ્યા").
Merged: "ચાર પેમેન્ટ કુલ બસો રૂપિયા મળ્યા" (four payments, in total ... received: the
  verb agrees with the amount, which avoids the neuter plural of the loan word પેમેન્ટ).
Offline summary: "ઑફલાઇન હતું ત્યારે" (while it was offline) before the merged phrase.
Today (long press): "આજે" before the merged phrase; none yet: "આજે કોઈ પેમેન્ટ નથી".
Volume ends: "મહત્તમ અવાજ" / "ન્યૂનતમ અવાજ".
Replay key: the time it was received, then the announcement (or merged phrase):
  "સાંજે ચાર વાગીને દસ મિનિટે બસો પચાસ રૂપિયા મળ્યા".
  hour:minute  time phrase
  16:10        સાંજે ચાર વાગીને દસ મિનિટે
  16:00        સાંજે ચાર વાગ્યે               (on the hour: વાગ્યે, no minutes)
  16:01        સાંજે ચાર વાગીને એક મિનિટે      (મિનિટે is the same for one and many)
  09:45        સવારે નવ વાગીને પિસ્તાલીસ મિનિટે
  13:30        બપોરે એક વાગીને ત્રીસ મિનિટે
  00:00        રાત્રે બાર વાગ્યે
  12:00        બપોરે બાર વાગ્યે
- a 12-hour clock (0 and 12 are બાર) said after the part of the day:
  રાત્રે 0-3, સવારે 4-11, બપોરે 12-15, સાંજે 16-19, રાત્રે 20-23;
- hours and minutes are the number words of the table above;
- the exact minute, never સાડા/સવા/પોણા/દોઢ/અઢી: one rule for every minute, and a
  timestamp the merchant can match against the customer's phone.

Source of the number words: the Gujarati cardinals of Unicode CLDR's rule-based number
format (common/rbnf/gu.xml, spellout-cardinal), checked word by word against AI4Bharat's
indic-numtowords (guj), Gujarati Wikipedia's table of numbers (ગુજરાતી અંક) and the
words espeak-ng's Gujarati voice says for the digits. The sources disagree on 23 of the
99; this table takes the spelling two of them share:
  23 ત્રેવીસ, 26 છવ્વીસ    (Wikipedia, AI4Bharat; CLDR and espeak-ng તેવીસ, છવીસ)
  37 સાડત્રીસ, 38 આડત્રીસ  (AI4Bharat, espeak-ng; CLDR સડત્રીસ, અડત્રીસ)
  42 બેતાલીસ, 43 તેતાલીસ   (espeak-ng with CLDR / AI4Bharat respectively)
  59 ઓગણસાઠ, 60 સાઈઠ, 62 બાસઠ  (CLDR, espeak-ng; AI4Bharat ઓગણસાંઠ, સાંઠ, બાંસઠ)
  66 છાંસઠ, 72 બોંતેર, 73 તોંતેર, 82 બ્યાંસી, 83 ત્યાંસી, 86 છ્યાંસી  (nasal vowel: AI4Bharat,
                          espeak-ng; CLDR without it)
  69 ઓગણસિત્તેર, 87 સત્યાસી, 88 અઠ્યાસી  (AI4Bharat, espeak-ng; CLDR અગણોસિત્તેર,
                          સિત્યાસી, ઈઠ્યાસી)
  74 ચુમોતેર, 77 સિત્યોતેર, 78 ઇઠ્યોતેર, 79 ઓગણાએંસી, 85 પંચાસી  (CLDR; AI4Bharat differs,
                          espeak-ng is nearer CLDR)
  કરોડ (AI4Bharat; CLDR writes a stray nukta, કરોડ઼)
Hundreds fused (એકસો, બસો): espeak-ng's own reading of 100 and 200 and AI4Bharat's બસો.
"""

from soundbox.voice import Words

TABLE = {
    "below_100": Words(
        "|એક|બે|ત્રણ|ચાર|પાંચ|છ|સાત|આઠ|નવ|દસ|અગિયાર|બાર|તેર|ચૌદ|પંદર|સોળ|સત્તર|અઢાર|ઓગણીસ|વીસ|"
        "એકવીસ|બાવીસ|ત્રેવીસ|ચોવીસ|પચ્ચીસ|છવ્વીસ|સત્તાવીસ|અઠ્ઠાવીસ|ઓગણત્રીસ|ત્રીસ|"
        "એકત્રીસ|બત્રીસ|તેત્રીસ|ચોત્રીસ|પાંત્રીસ|છત્રીસ|સાડત્રીસ|આડત્રીસ|ઓગણચાલીસ|ચાલીસ|"
        "એકતાલીસ|બેતાલીસ|તેતાલીસ|ચુંમાલીસ|પિસ્તાલીસ|છેતાલીસ|સુડતાલીસ|અડતાલીસ|ઓગણપચાસ|પચાસ|"
        "એકાવન|બાવન|ત્રેપન|ચોપન|પંચાવન|છપ્પન|સત્તાવન|અઠ્ઠાવન|ઓગણસાઠ|સાઈઠ|"
        "એકસઠ|બાસઠ|ત્રેસઠ|ચોસઠ|પાંસઠ|છાંસઠ|સડસઠ|અડસઠ|ઓગણસિત્તેર|સિત્તેર|"
        "એકોતેર|બોંતેર|તોંતેર|ચુમોતેર|પંચોતેર|છોતેર|સિત્યોતેર|ઇઠ્યોતેર|ઓગણાએંસી|એંસી|"
        "એક્યાસી|બ્યાંસી|ત્યાંસી|ચોર્યાસી|પંચાસી|છ્યાંસી|સત્યાસી|અઠ્યાસી|નેવ્યાસી|નેવું|"
        "એકાણું|બાણું|ત્રાણું|ચોરાણું|પંચાણું|છન્નું|સત્તાણું|અઠ્ઠાણું|નવ્વાણું"
    ),
    # index d -> the one word for d hundreds (બસો: two hundred is fused, not "બે સો")
    "hundreds": Words("|એકસો|બસો|ત્રણસો|ચારસો|પાંચસો|છસો|સાતસો|આઠસો|નવસો"),
    "thousand": "હજાર",
    "lakh": "લાખ",
    "crore": "કરોડ",
    "rupee": "રૂપિયો",
    "rupees": "રૂપિયા",
    "paisa": "પૈસો",
    "paise": "પૈસા",
    "and": "અને",
    "received": "મળ્યો",
    "received_many": "મળ્યા",
    "payment": "પેમેન્ટ",
    "payments": "પેમેન્ટ",
    "announce": ("$provider", "$amount", "$received"),
    "provider": ("$name", "પર"),
    "merged": ("$count", "$payments", "કુલ", "$amount", "$received"),
    "offline": ("ઑફલાઇન હતું ત્યારે",),
    "today": ("આજે",),
    "today_none": "આજે કોઈ પેમેન્ટ નથી",
    "replay": ("$time", "$said"),
    "time": ("$day_part", "$hour", "વાગીને", "$minute", "$minute_word"),
    "time_on_hour": ("$day_part", "$hour", "વાગ્યે"),
    "day_parts": ((0, "રાત્રે"), (4, "સવારે"), (12, "બપોરે"), (16, "સાંજે"), (20, "રાત્રે")),
    "minute_words": ("મિનિટે", "મિનિટે"),
    "providers": {"bhim": "ભીમ", "gpay": "જીપે", "paytm": "પેટીએમ", "phonepe": "ફોન પે", "upi": "યુપીઆઈ"},
    "prompts": {
        "charging": "ચાર્જ થઈ રહ્યું છે",
        "clock_not_set": "ઘડિયાળનો સમય સેટ નથી",
        "low_battery": "બેટરી ઓછી છે",
        "no_network": "નેટવર્ક નથી",
        "not_registered": "ડિવાઇસ નોંધાયેલું નથી",
        "server_unreachable": "સર્વર સાથે સંપર્ક થઈ શકતો નથી",
        "updating": "અપડેટ થઈ રહ્યું છે",
        "volume_max": "મહત્તમ અવાજ",
        "volume_min": "ન્યૂનતમ અવાજ",
    },
}
