"""Kannada wording table for soundbox.voice (loaded only when a box speaks Kannada).

Slot names in the templates are explained in soundbox.voice.

  paise            words
  1                ಒಂದು ಪೈಸೆ
  50               ಐವತ್ತು ಪೈಸೆ
  100              ಒಂದು ರೂಪಾಯಿ
  101              ಒಂದು ರೂಪಾಯಿ ಒಂದು ಪೈಸೆ
  2300             ಇಪ್ಪತ್ತಮೂರು ರೂಪಾಯಿ
  10000            ನೂರು ರೂಪಾಯಿ
  10100            ನೂರ ಒಂದು ರೂಪಾಯಿ
  25000            ಇನ್ನೂರ ಐವತ್ತು ರೂಪಾಯಿ
  100000           ಸಾವಿರ ರೂಪಾಯಿ
  250000           ಎರಡು ಸಾವಿರದ ಐನೂರು ರೂಪಾಯಿ
  12500050         ಒಂದು ಲಕ್ಷದ ಇಪ್ಪತ್ತೈದು ಸಾವಿರ ರೂಪಾಯಿ ಐವತ್ತು ಪೈಸೆ
  1250000000       ಒಂದು ಕೋಟಿಯ ಇಪ್ಪತ್ತೈದು ಲಕ್ಷ ರೂಪಾಯಿ

- every number 1-99 is its own word: the tens fuse with the unit (ಇಪ್ಪತ್ತು 20,
  ಇಪ್ಪತ್ತೊಂದು 21, ಇಪ್ಪತ್ತೆರಡು 22, ಇಪ್ಪತ್ತಮೂರು 23, ಇಪ್ಪತ್ತನಾಲ್ಕು 24, ಇಪ್ಪತ್ತೈದು 25,
  ಇಪ್ಪತ್ತಾರು 26, ಇಪ್ಪತ್ತೇಳು 27, ಇಪ್ಪತ್ತೆಂಟು 28, ಇಪ್ಪತ್ತೊಂಬತ್ತು 29, the same for each
  ten), each written out, one clip each;
- hundreds are one word each, fused with their count: ನೂರು, ಇನ್ನೂರು, ಮುನ್ನೂರು, ನಾನೂರು,
  ಐನೂರು, ಆರುನೂರು, ಏಳುನೂರು, ಎಂಟುನೂರು, ಒಂಬೈನೂರು; with more to follow they drop the
  final -ು: ನೂರ ಐವತ್ತು (150), ಇನ್ನೂರ ಒಂದು (201);
- thousand: ಸಾವಿರ (one thousand has no count word), ಎರಡು ಸಾವಿರ; with more to follow
  the genitive ಸಾವಿರದ (ಸಾವಿರದ ಐನೂರು 1,500); lakh: ಒಂದು ಲಕ್ಷ, ಲಕ್ಷದ before more;
  crore: ಒಂದು ಕೋಟಿ, ಕೋಟಿಯ before more;
- a number before a noun keeps the noun singular, as Kannada speaks (ಎರಡು ರೂಪಾಯಿ, ಐವತ್ತು
  ಪೈಸೆ; the plural ರೂಪಾಯಿಗಳು is written style), so ರೂಪಾಯಿ and ಪೈಸೆ are the same for one
  and many; rupees and paise follow each other with no "and";
- the verb is the impersonal passive ಸ್ವೀಕರಿಸಲಾಗಿದೆ ("has been received"), which does
  not change with the amount.
Announcement: "[<provider> ಮೂಲಕ] <amount> ಸ್ವೀಕರಿಸಲಾಗಿದೆ"
  ("ಫೋನ್‌ಪೇ ಮೂಲಕ ಇನ್ನೂರ ಐವತ್ತು ರೂಪಾಯಿ ಸ್ವೀಕರಿಸಲಾಗಿದೆ").
Merged: "ನಾಲ್ಕು ಪಾವತಿಗಳು ಸ್ವೀಕರಿಸಲಾಗಿದೆ ಒಟ್ಟು ಇನ್ನೂರು ರೂಪಾಯಿ" (a countable noun takes
  the plural after a count: ಒಂದು ಪಾವತಿ, ನಾಲ್ಕು ಪಾವತಿಗಳು).
Offline summary: "ಆಫ್‌ಲೈನ್ ಇದ್ದಾಗ" before the merged phrase.
Today (long press): "ಇಂದು" before the merged phrase; none yet: "ಇಂದು ಯಾವುದೇ ಪಾವತಿ ಇಲ್ಲ".
Volume ends: "ಗರಿಷ್ಠ ವಾಲ್ಯೂಮ್" / "ಕನಿಷ್ಠ ವಾಲ್ಯೂಮ್".
Replay key: the time it was received, then the announcement (or merged phrase):
  "ಸಂಜೆ ನಾಲ್ಕು ಗಂಟೆ ಹತ್ತು ನಿಮಿಷಕ್ಕೆ ಇನ್ನೂರ ಐವತ್ತು ರೂಪಾಯಿ ಸ್ವೀಕರಿಸಲಾಗಿದೆ".
  hour:minute  time phrase
  16:10        ಸಂಜೆ ನಾಲ್ಕು ಗಂಟೆ ಹತ್ತು ನಿಮಿಷಕ್ಕೆ
  16:00        ಸಂಜೆ ನಾಲ್ಕು ಗಂಟೆಗೆ              (on the hour: ಗಂಟೆಗೆ, no minutes)
  16:01        ಸಂಜೆ ನಾಲ್ಕು ಗಂಟೆ ಒಂದು ನಿಮಿಷಕ್ಕೆ  (ನಿಮಿಷಕ್ಕೆ for one minute and many)
  09:45        ಬೆಳಿಗ್ಗೆ ಒಂಬತ್ತು ಗಂಟೆ ನಲವತ್ತೈದು ನಿಮಿಷಕ್ಕೆ
  13:30        ಮಧ್ಯಾಹ್ನ ಒಂದು ಗಂಟೆ ಮೂವತ್ತು ನಿಮಿಷಕ್ಕೆ
  00:00        ರಾತ್ರಿ ಹನ್ನೆರಡು ಗಂಟೆಗೆ
  12:00        ಮಧ್ಯಾಹ್ನ ಹನ್ನೆರಡು ಗಂಟೆಗೆ
- a 12-hour clock (0 and 12 are ಹನ್ನೆರಡು) said after the part of the day:
  ರಾತ್ರಿ 0-3, ಬೆಳಿಗ್ಗೆ 4-11, ಮಧ್ಯಾಹ್ನ 12-15, ಸಂಜೆ 16-19, ರಾತ್ರಿ 20-23;
- hours and minutes are the number words of the table above (ಗಂಟೆ does not take the
  plural after a count);
- the exact minute, never ಕಾಲು/ಅರ್ಧ/ಮುಕ್ಕಾಲು/ಒಂದೂವರೆ (one rule, a precise timestamp).

Source of the number words: CLDR's Kannada spellout rules (common/rbnf/kn.xml,
%spellout-cardinal): 1-99 with the tens' fused unit suffixes, ನೂರು/ನೂರ and the fused
hundreds, ಸಾವಿರ/ಸಾವಿರದ, ಒಂದು ಲಕ್ಷ/ಲಕ್ಷದ, ಒಂದು ಕೋಟಿ/ಕೋಟಿಯ, which this table follows word for word.
"""

from soundbox.voice import Words

TABLE = {
    "below_100": Words(
        "|ಒಂದು|ಎರಡು|ಮೂರು|ನಾಲ್ಕು|ಐದು|ಆರು|ಏಳು|ಎಂಟು|ಒಂಬತ್ತು|ಹತ್ತು|ಹನ್ನೊಂದು|ಹನ್ನೆರಡು|ಹದಿಮೂರು|ಹದಿನಾಲ್ಕು|"
        "ಹದಿನೈದು|ಹದಿನಾರು|ಹದಿನೇಳು|ಹದಿನೆಂಟು|ಹತ್ತೊಂಬತ್ತು|ಇಪ್ಪತ್ತು|ಇಪ್ಪತ್ತೊಂದು|ಇಪ್ಪತ್ತೆರಡು|ಇಪ್ಪತ್ತಮೂರು|"
        "ಇಪ್ಪತ್ತನಾಲ್ಕು|ಇಪ್ಪತ್ತೈದು|ಇಪ್ಪತ್ತಾರು|ಇಪ್ಪತ್ತೇಳು|ಇಪ್ಪತ್ತೆಂಟು|ಇಪ್ಪತ್ತೊಂಬತ್ತು|ಮೂವತ್ತು|ಮೂವತ್ತೊಂದು|"
        "ಮೂವತ್ತೆರಡು|ಮೂವತ್ತಮೂರು|ಮೂವತ್ತನಾಲ್ಕು|ಮೂವತ್ತೈದು|ಮೂವತ್ತಾರು|ಮೂವತ್ತೇಳು|ಮೂವತ್ತೆಂಟು|ಮೂವತ್ತೊಂಬತ್ತು|"
        "ನಲವತ್ತು|ನಲವತ್ತೊಂದು|ನಲವತ್ತೆರಡು|ನಲವತ್ತಮೂರು|ನಲವತ್ತನಾಲ್ಕು|ನಲವತ್ತೈದು|ನಲವತ್ತಾರು|ನಲವತ್ತೇಳು|ನಲವತ್ತೆಂಟು|"
        "ನಲವತ್ತೊಂಬತ್ತು|ಐವತ್ತು|ಐವತ್ತೊಂದು|ಐವತ್ತೆರಡು|ಐವತ್ತಮೂರು|ಐವತ್ತನಾಲ್ಕು|ಐವತ್ತೈದು|ಐವತ್ತಾರು|ಐವತ್ತೇಳು|"
        "ಐವತ್ತೆಂಟು|ಐವತ್ತೊಂಬತ್ತು|ಅರವತ್ತು|ಅರವತ್ತೊಂದು|ಅರವತ್ತೆರಡು|ಅರವತ್ತಮೂರು|ಅರವತ್ತನಾಲ್ಕು|ಅರವತ್ತೈದು|"
        "ಅರವತ್ತಾರು|ಅರವತ್ತೇಳು|ಅರವತ್ತೆಂಟು|ಅರವತ್ತೊಂಬತ್ತು|ಎಪ್ಪತ್ತು|ಎಪ್ಪತ್ತೊಂದು|ಎಪ್ಪತ್ತೆರಡು|ಎಪ್ಪತ್ತಮೂರು|"
        "ಎಪ್ಪತ್ತನಾಲ್ಕು|ಎಪ್ಪತ್ತೈದು|ಎಪ್ಪತ್ತಾರು|ಎಪ್ಪತ್ತೇಳು|ಎಪ್ಪತ್ತೆಂಟು|ಎಪ್ಪತ್ತೊಂಬತ್ತು|ಎಂಬತ್ತು|ಎಂಬತ್ತೊಂದು|"
        "ಎಂಬತ್ತೆರಡು|ಎಂಬತ್ತಮೂರು|ಎಂಬತ್ತನಾಲ್ಕು|ಎಂಬತ್ತೈದು|ಎಂಬತ್ತಾರು|ಎಂಬತ್ತೇಳು|ಎಂಬತ್ತೆಂಟು|ಎಂಬತ್ತೊಂಬತ್ತು|"
        "ತೊಂಬತ್ತು|ತೊಂಬತ್ತೊಂದು|ತೊಂಬತ್ತೆರಡು|ತೊಂಬತ್ತಮೂರು|ತೊಂಬತ್ತನಾಲ್ಕು|ತೊಂಬತ್ತೈದು|ತೊಂಬತ್ತಾರು|ತೊಂಬತ್ತೇಳು|"
        "ತೊಂಬತ್ತೆಂಟು|ತೊಂಬತ್ತೊಂಬತ್ತು"
    ),
    # The hundreds alone, and with more to follow (the final -ು dropped).
    "hundreds": Words("|ನೂರು|ಇನ್ನೂರು|ಮುನ್ನೂರು|ನಾನೂರು|ಐನೂರು|ಆರುನೂರು|ಏಳುನೂರು|ಎಂಟುನೂರು|ಒಂಬೈನೂರು"),
    "hundreds_joined": Words("|ನೂರ|ಇನ್ನೂರ|ಮುನ್ನೂರ|ನಾನೂರ|ಐನೂರ|ಆರುನೂರ|ಏಳುನೂರ|ಎಂಟುನೂರ|ಒಂಬೈನೂರ"),
    # (after one, after one with more, after many, after many with more)
    "thousand": ("ಸಾವಿರ", "ಸಾವಿರದ", "ಸಾವಿರ", "ಸಾವಿರದ"),
    "thousand_one": "",  # ಸಾವಿರ, not ಒಂದು ಸಾವಿರ
    "lakh": ("ಲಕ್ಷ", "ಲಕ್ಷದ", "ಲಕ್ಷ", "ಲಕ್ಷದ"),
    "crore": ("ಕೋಟಿ", "ಕೋಟಿಯ", "ಕೋಟಿ", "ಕೋಟಿಯ"),
    "rupee": "ರೂಪಾಯಿ",
    "rupees": "ರೂಪಾಯಿ",
    "paisa": "ಪೈಸೆ",
    "paise": "ಪೈಸೆ",
    "and": None,  # no word between the rupees and the paise
    "received": "ಸ್ವೀಕರಿಸಲಾಗಿದೆ",
    "received_many": "ಸ್ವೀಕರಿಸಲಾಗಿದೆ",
    "payment": "ಪಾವತಿ",
    "payments": "ಪಾವತಿಗಳು",
    "announce": ("$provider", "$amount", "$received"),
    "provider": ("$name", "ಮೂಲಕ"),
    "merged": ("$count", "$payments", "$received_count", "ಒಟ್ಟು", "$amount"),
    "offline": ("ಆಫ್‌ಲೈನ್ ಇದ್ದಾಗ",),
    "today": ("ಇಂದು",),
    "today_none": "ಇಂದು ಯಾವುದೇ ಪಾವತಿ ಇಲ್ಲ",
    "replay": ("$time", "$said"),
    "time": ("$day_part", "$hour", "ಗಂಟೆ", "$minute", "$minute_word"),
    "time_on_hour": ("$day_part", "$hour", "ಗಂಟೆಗೆ"),
    "day_parts": ((0, "ರಾತ್ರಿ"), (4, "ಬೆಳಿಗ್ಗೆ"), (12, "ಮಧ್ಯಾಹ್ನ"), (16, "ಸಂಜೆ"), (20, "ರಾತ್ರಿ")),
    "minute_words": ("ನಿಮಿಷಕ್ಕೆ", "ನಿಮಿಷಕ್ಕೆ"),
    "providers": {"bhim": "ಭೀಮ್", "gpay": "ಜೀಪೇ", "paytm": "ಪೇಟಿಎಂ", "phonepe": "ಫೋನ್‌ಪೇ", "upi": "ಯುಪಿಐ"},
    "prompts": {
        "charging": "ಚಾರ್ಜ್ ಆಗುತ್ತಿದೆ",
        "clock_not_set": "ಗಡಿಯಾರದ ಸಮಯ ಹೊಂದಿಸಿಲ್ಲ",
        "low_battery": "ಬ್ಯಾಟರಿ ಕಡಿಮೆ ಇದೆ",
        "no_network": "ನೆಟ್‌ವರ್ಕ್ ಇಲ್ಲ",
        "not_registered": "ಸಾಧನ ನೋಂದಣಿ ಆಗಿಲ್ಲ",
        "server_unreachable": "ಸರ್ವರ್ ಸಂಪರ್ಕ ಸಾಧ್ಯವಾಗುತ್ತಿಲ್ಲ",
        "updating": "ಅಪ್‌ಡೇಟ್ ಆಗುತ್ತಿದೆ",
        "volume_max": "ಗರಿಷ್ಠ ವಾಲ್ಯೂಮ್",
        "volume_min": "ಕನಿಷ್ಠ ವಾಲ್ಯೂಮ್",
    },
}
