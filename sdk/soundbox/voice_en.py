"""English (India) wording table for soundbox.voice (loaded only when a box speaks it).

Slot names in the templates are explained in soundbox.voice.

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
  every word is its own token (English 20-99 is regular: tens + units);
- "one hundred", never a bare "hundred";
- no "and" inside a number; "and" only joins the rupee part to the paise part;
- "rupee" and "paisa" for exactly one, "rupees" and "paise" otherwise.
Announcement (English order): "received <amount> [on <provider>]".
Merged: "four payments received total two hundred rupees" ("one payment received ...").
Offline summary: "while offline three payments received total ...".
Today (long press of the replay key): "today three payments received total ...",
  or "no payments today" before the first one.
Volume keys at either end: "maximum volume", "minimum volume".
Replay key: the last announcement again, then when it was received, on a 12-hour clock:
  hour:minute  time phrase
  15:45        at three forty five pm
  15:05        at three oh five pm       (minutes 1-9: "oh" and the digit)
  15:00        at three pm               (on the hour: no minutes)
  09:30        at nine thirty am
  00:20        at twelve twenty am       (0:xx is twelve ... am)
  12:10        at twelve ten pm          (12:xx is twelve ... pm)
  12:00        at twelve noon            (the hour alone is ambiguous at twelve)
  00:00        at twelve midnight
  "received two hundred fifty rupees at three forty five pm",
  "four payments received total two hundred rupees at three pm".

below_100: index n -> the words for n (index 0 unused); a space separates tokens.
Written out in full although English 20-99 is regular (tens + units): one constant
(soundbox.voice.Words) stays in flash when the code runs from ROMFS, where strings
built at import would take heap.
"""

from soundbox.voice import Words

TABLE = {
    "below_100": Words(
        "|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
        "sixteen|seventeen|eighteen|nineteen|twenty|twenty one|twenty two|twenty three|twenty four|"
        "twenty five|twenty six|twenty seven|twenty eight|twenty nine|thirty|thirty one|thirty two|"
        "thirty three|thirty four|thirty five|thirty six|thirty seven|thirty eight|thirty nine|"
        "forty|forty one|forty two|forty three|forty four|forty five|forty six|forty seven|"
        "forty eight|forty nine|fifty|fifty one|fifty two|fifty three|fifty four|fifty five|"
        "fifty six|fifty seven|fifty eight|fifty nine|sixty|sixty one|sixty two|sixty three|"
        "sixty four|sixty five|sixty six|sixty seven|sixty eight|sixty nine|seventy|seventy one|"
        "seventy two|seventy three|seventy four|seventy five|seventy six|seventy seven|"
        "seventy eight|seventy nine|eighty|eighty one|eighty two|eighty three|eighty four|"
        "eighty five|eighty six|eighty seven|eighty eight|eighty nine|ninety|ninety one|ninety two|"
        "ninety three|ninety four|ninety five|ninety six|ninety seven|ninety eight|ninety nine"
    ),
    "hundred": "hundred",  # said after the count: "two hundred"
    "thousand": "thousand",
    "lakh": "lakh",
    "crore": "crore",
    "rupee": "rupee",
    "rupees": "rupees",
    "paisa": "paisa",
    "paise": "paise",
    "and": "and",
    "received": "received",
    "received_many": "received",
    "payment": "payment",
    "payments": "payments",
    "announce": ("$received", "$amount", "$provider"),
    "provider": ("on", "$name"),
    "merged": ("$count", "$payments", "$received_count", "total", "$amount"),
    "offline": ("while", "offline"),  # said before the merged phrase
    "today": ("today",),  # said before the merged phrase on a long press
    "today_none": "no payments today",
    "replay": ("$said", "$time"),
    "time": ("at", "$hour", "$minute", "$meridiem"),
    "time_on_hour": ("at", "$hour", "$meridiem"),
    "minute_zero": "oh",
    "am": "am",
    "pm": "pm",
    "noon": "noon",
    "midnight": "midnight",
    "providers": {"bhim": "bhim", "gpay": "gpay", "paytm": "paytm", "phonepe": "phonepe", "upi": "upi"},
    "prompts": {
        "charging": "charging",
        "clock_not_set": "clock not set",
        "low_battery": "low battery",
        "no_network": "no network",
        "not_registered": "device not registered",
        "server_unreachable": "server unreachable",
        "updating": "update in progress",
        "volume_max": "maximum volume",
        "volume_min": "minimum volume",
    },
}
