"""Kannada wording (soundbox.voice_kn). Plain asserts: also run under a MicroPython VM.

The examples are written the way a Kannada speaker says each amount, independently of the
table: a typo in either fails here. Small test functions (a helper per case): the VM's
collector can lose a big frame (see tests/core/test_p256.py)."""

from soundbox.voice import (
    amount_tokens,
    amount_words,
    announcement_text,
    merged_tokens,
    offline_summary_tokens,
    prompt_tokens,
    replay_tokens,
    time_tokens,
    today_tokens,
)
from soundbox.voice_tokens import TOKENS

ONE_TO_TEN = (
    (1, "ಒಂದು"), (2, "ಎರಡು"), (3, "ಮೂರು"), (4, "ನಾಲ್ಕು"), (5, "ಐದು"),
    (6, "ಆರು"), (7, "ಏಳು"), (8, "ಎಂಟು"), (9, "ಒಂಬತ್ತು"), (10, "ಹತ್ತು"),
)
TEENS = (
    (11, "ಹನ್ನೊಂದು"), (12, "ಹನ್ನೆರಡು"), (13, "ಹದಿಮೂರು"), (14, "ಹದಿನಾಲ್ಕು"), (15, "ಹದಿನೈದು"),
    (16, "ಹದಿನಾರು"), (17, "ಹದಿನೇಳು"), (18, "ಹದಿನೆಂಟು"), (19, "ಹತ್ತೊಂಬತ್ತು"),
)
# The fused tens: each unit's own joining (ಒ, ಎ, ಐ, ಆ, ಏ as vowel signs; ಮೂರು, ನಾಲ್ಕು after -ತ್ತ).
TENS = (
    (20, "ಇಪ್ಪತ್ತು"), (21, "ಇಪ್ಪತ್ತೊಂದು"), (22, "ಇಪ್ಪತ್ತೆರಡು"), (23, "ಇಪ್ಪತ್ತಮೂರು"),
    (24, "ಇಪ್ಪತ್ತನಾಲ್ಕು"), (25, "ಇಪ್ಪತ್ತೈದು"), (26, "ಇಪ್ಪತ್ತಾರು"), (27, "ಇಪ್ಪತ್ತೇಳು"),
    (28, "ಇಪ್ಪತ್ತೆಂಟು"), (29, "ಇಪ್ಪತ್ತೊಂಬತ್ತು"), (30, "ಮೂವತ್ತು"), (33, "ಮೂವತ್ತಮೂರು"),
    (40, "ನಲವತ್ತು"), (45, "ನಲವತ್ತೈದು"), (50, "ಐವತ್ತು"), (56, "ಐವತ್ತಾರು"), (60, "ಅರವತ್ತು"),
    (64, "ಅರವತ್ತನಾಲ್ಕು"), (70, "ಎಪ್ಪತ್ತು"), (77, "ಎಪ್ಪತ್ತೇಳು"), (80, "ಎಂಬತ್ತು"),
    (88, "ಎಂಬತ್ತೆಂಟು"), (90, "ತೊಂಬತ್ತು"), (91, "ತೊಂಬತ್ತೊಂದು"), (99, "ತೊಂಬತ್ತೊಂಬತ್ತು"),
)

# (paise, words)
AMOUNTS = (
    (1, "ಒಂದು ಪೈಸೆ"),
    (2, "ಎರಡು ಪೈಸೆ"),
    (50, "ಐವತ್ತು ಪೈಸೆ"),
    (99, "ತೊಂಬತ್ತೊಂಬತ್ತು ಪೈಸೆ"),
    (100, "ಒಂದು ರೂಪಾಯಿ"),
    (200, "ಎರಡು ರೂಪಾಯಿ"),
    (101, "ಒಂದು ರೂಪಾಯಿ ಒಂದು ಪೈಸೆ"),
    (250, "ಎರಡು ರೂಪಾಯಿ ಐವತ್ತು ಪೈಸೆ"),
    (10000, "ನೂರು ರೂಪಾಯಿ"),
    (10100, "ನೂರ ಒಂದು ರೂಪಾಯಿ"),
    (15000, "ನೂರ ಐವತ್ತು ರೂಪಾಯಿ"),
    (20000, "ಇನ್ನೂರು ರೂಪಾಯಿ"),
    (30500, "ಮುನ್ನೂರ ಐದು ರೂಪಾಯಿ"),
    (40000, "ನಾನೂರು ರೂಪಾಯಿ"),
    (50000, "ಐನೂರು ರೂಪಾಯಿ"),
    (90000, "ಒಂಬೈನೂರು ರೂಪಾಯಿ"),
    (99900, "ಒಂಬೈನೂರ ತೊಂಬತ್ತೊಂಬತ್ತು ರೂಪಾಯಿ"),
    (100000, "ಸಾವಿರ ರೂಪಾಯಿ"),
    (100100, "ಸಾವಿರದ ಒಂದು ರೂಪಾಯಿ"),
    (110000, "ಸಾವಿರದ ನೂರು ರೂಪಾಯಿ"),
    (150000, "ಸಾವಿರದ ಐನೂರು ರೂಪಾಯಿ"),
    (200000, "ಎರಡು ಸಾವಿರ ರೂಪಾಯಿ"),
    (250000, "ಎರಡು ಸಾವಿರದ ಐನೂರು ರೂಪಾಯಿ"),
    (1000000, "ಹತ್ತು ಸಾವಿರ ರೂಪಾಯಿ"),
    (9999900, "ತೊಂಬತ್ತೊಂಬತ್ತು ಸಾವಿರದ ಒಂಬೈನೂರ ತೊಂಬತ್ತೊಂಬತ್ತು ರೂಪಾಯಿ"),
    (10000000, "ಒಂದು ಲಕ್ಷ ರೂಪಾಯಿ"),
    (10000100, "ಒಂದು ಲಕ್ಷದ ಒಂದು ರೂಪಾಯಿ"),
    (10100000, "ಒಂದು ಲಕ್ಷದ ಸಾವಿರ ರೂಪಾಯಿ"),
    (12500050, "ಒಂದು ಲಕ್ಷದ ಇಪ್ಪತ್ತೈದು ಸಾವಿರ ರೂಪಾಯಿ ಐವತ್ತು ಪೈಸೆ"),
    (20000000, "ಎರಡು ಲಕ್ಷ ರೂಪಾಯಿ"),
    (1000000000, "ಒಂದು ಕೋಟಿ ರೂಪಾಯಿ"),
    (1000000001, "ಒಂದು ಕೋಟಿ ರೂಪಾಯಿ ಒಂದು ಪೈಸೆ"),
    (1250000000, "ಒಂದು ಕೋಟಿಯ ಇಪ್ಪತ್ತೈದು ಲಕ್ಷ ರೂಪಾಯಿ"),
    (5000000000, "ಐದು ಕೋಟಿ ರೂಪಾಯಿ"),
    (99999999999, "ತೊಂಬತ್ತೊಂಬತ್ತು ಕೋಟಿಯ ತೊಂಬತ್ತೊಂಬತ್ತು ಲಕ್ಷದ ತೊಂಬತ್ತೊಂಬತ್ತು ಸಾವಿರದ ಒಂಬೈನೂರ"
                  " ತೊಂಬತ್ತೊಂಬತ್ತು ರೂಪಾಯಿ ತೊಂಬತ್ತೊಂಬತ್ತು ಪೈಸೆ"),
)

# (hour, minute, time phrase)
TIMES = (
    (16, 10, "ಸಂಜೆ ನಾಲ್ಕು ಗಂಟೆ ಹತ್ತು ನಿಮಿಷಕ್ಕೆ"),
    (16, 0, "ಸಂಜೆ ನಾಲ್ಕು ಗಂಟೆಗೆ"),
    (16, 1, "ಸಂಜೆ ನಾಲ್ಕು ಗಂಟೆ ಒಂದು ನಿಮಿಷಕ್ಕೆ"),
    (13, 30, "ಮಧ್ಯಾಹ್ನ ಒಂದು ಗಂಟೆ ಮೂವತ್ತು ನಿಮಿಷಕ್ಕೆ"),
    (13, 0, "ಮಧ್ಯಾಹ್ನ ಒಂದು ಗಂಟೆಗೆ"),
    (9, 45, "ಬೆಳಿಗ್ಗೆ ಒಂಬತ್ತು ಗಂಟೆ ನಲವತ್ತೈದು ನಿಮಿಷಕ್ಕೆ"),
    (4, 0, "ಬೆಳಿಗ್ಗೆ ನಾಲ್ಕು ಗಂಟೆಗೆ"),
    (3, 59, "ರಾತ್ರಿ ಮೂರು ಗಂಟೆ ಐವತ್ತೊಂಬತ್ತು ನಿಮಿಷಕ್ಕೆ"),
    (0, 0, "ರಾತ್ರಿ ಹನ್ನೆರಡು ಗಂಟೆಗೆ"),
    (0, 5, "ರಾತ್ರಿ ಹನ್ನೆರಡು ಗಂಟೆ ಐದು ನಿಮಿಷಕ್ಕೆ"),
    (12, 0, "ಮಧ್ಯಾಹ್ನ ಹನ್ನೆರಡು ಗಂಟೆಗೆ"),
    (12, 15, "ಮಧ್ಯಾಹ್ನ ಹನ್ನೆರಡು ಗಂಟೆ ಹದಿನೈದು ನಿಮಿಷಕ್ಕೆ"),
    (19, 23, "ಸಂಜೆ ಏಳು ಗಂಟೆ ಇಪ್ಪತ್ತಮೂರು ನಿಮಿಷಕ್ಕೆ"),
    (20, 0, "ರಾತ್ರಿ ಎಂಟು ಗಂಟೆಗೆ"),
    (23, 11, "ರಾತ್ರಿ ಹನ್ನೊಂದು ಗಂಟೆ ಹನ್ನೊಂದು ನಿಮಿಷಕ್ಕೆ"),
)


def _check_amount(paise, words):
    got = amount_words(paise, "kn")
    assert got == words, "kn %d: %r != %r" % (paise, got, words)
    pack = TOKENS["kn"]
    for tok in amount_tokens(paise, "kn"):
        assert tok in pack, tok


def _check_rupees(pairs):
    for n, word in pairs:
        _check_amount(n * 100, word + " ರೂಪಾಯಿ")


def test_one_to_ten():
    _check_rupees(ONE_TO_TEN)


def test_teens():
    _check_rupees(TEENS)


def test_fused_tens():
    _check_rupees(TENS)


def test_amounts():
    for paise, words in AMOUNTS:
        _check_amount(paise, words)


def test_the_passive_verb_is_the_same_for_any_amount():
    assert announcement_text(100, "kn") == "ಒಂದು ರೂಪಾಯಿ ಸ್ವೀಕರಿಸಲಾಗಿದೆ"
    assert announcement_text(1, "kn") == "ಒಂದು ಪೈಸೆ ಸ್ವೀಕರಿಸಲಾಗಿದೆ"
    assert announcement_text(20000, "kn") == "ಇನ್ನೂರು ರೂಪಾಯಿ ಸ್ವೀಕರಿಸಲಾಗಿದೆ"


def test_provider_announcement():
    assert announcement_text(25000, "kn", "phonepe") == "ಫೋನ್‌ಪೇ ಮೂಲಕ ಇನ್ನೂರ ಐವತ್ತು ರೂಪಾಯಿ ಸ್ವೀಕರಿಸಲಾಗಿದೆ"
    assert announcement_text(100, "kn", "paytm") == "ಪೇಟಿಎಂ ಮೂಲಕ ಒಂದು ರೂಪಾಯಿ ಸ್ವೀಕರಿಸಲಾಗಿದೆ"
    assert announcement_text(10000, "kn", "upi") == "ಯುಪಿಐ ಮೂಲಕ ನೂರು ರೂಪಾಯಿ ಸ್ವೀಕರಿಸಲಾಗಿದೆ"


def test_merged_offline_and_today():
    assert " ".join(merged_tokens(4, 20000, "kn")) == "ನಾಲ್ಕು ಪಾವತಿಗಳು ಸ್ವೀಕರಿಸಲಾಗಿದೆ ಒಟ್ಟು ಇನ್ನೂರು ರೂಪಾಯಿ"
    assert " ".join(merged_tokens(1, 100, "kn")) == "ಒಂದು ಪಾವತಿ ಸ್ವೀಕರಿಸಲಾಗಿದೆ ಒಟ್ಟು ಒಂದು ರೂಪಾಯಿ"
    assert " ".join(offline_summary_tokens(3, 50000, "kn")) == (
        "ಆಫ್‌ಲೈನ್ ಇದ್ದಾಗ ಮೂರು ಪಾವತಿಗಳು ಸ್ವೀಕರಿಸಲಾಗಿದೆ ಒಟ್ಟು ಐನೂರು ರೂಪಾಯಿ")
    assert " ".join(today_tokens(2, 15000, "kn")) == "ಇಂದು ಎರಡು ಪಾವತಿಗಳು ಸ್ವೀಕರಿಸಲಾಗಿದೆ ಒಟ್ಟು ನೂರ ಐವತ್ತು ರೂಪಾಯಿ"
    assert today_tokens(0, 0, "kn") == ["ಇಂದು ಯಾವುದೇ ಪಾವತಿ ಇಲ್ಲ"]


def _check_time(case):
    hour, minute, text = case
    got = " ".join(time_tokens(hour, minute, "kn"))
    assert got == text, "kn %02d:%02d: %r != %r" % (hour, minute, got, text)


def test_time_phrases():
    for case in TIMES:
        _check_time(case)


def test_replay():
    assert " ".join(replay_tokens(1, 25000, 16, 10, "kn")) == (
        "ಸಂಜೆ ನಾಲ್ಕು ಗಂಟೆ ಹತ್ತು ನಿಮಿಷಕ್ಕೆ ಇನ್ನೂರ ಐವತ್ತು ರೂಪಾಯಿ ಸ್ವೀಕರಿಸಲಾಗಿದೆ")
    assert " ".join(replay_tokens(4, 20000, 10, 0, "kn")) == (
        "ಬೆಳಿಗ್ಗೆ ಹತ್ತು ಗಂಟೆಗೆ ನಾಲ್ಕು ಪಾವತಿಗಳು ಸ್ವೀಕರಿಸಲಾಗಿದೆ ಒಟ್ಟು ಇನ್ನೂರು ರೂಪಾಯಿ")


def test_prompts():
    assert prompt_tokens("no_network", "kn") == ["ನೆಟ್‌ವರ್ಕ್ ಇಲ್ಲ"]
    assert prompt_tokens("volume_max", "kn") == ["ಗರಿಷ್ಠ ವಾಲ್ಯೂಮ್"]
    assert prompt_tokens("volume_min", "kn") == ["ಕನಿಷ್ಠ ವಾಲ್ಯೂಮ್"]
