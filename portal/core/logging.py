"""A logging filter that keeps card numbers, codes and secrets out of every log line."""

import logging
import re

_PAN = re.compile(r"(?<!\d)\d{13,19}(?!\d)")
_SECRET = re.compile(r"(?i)(password|passwd|secret|otp_token|token|signature)(['\"]?\s*[:=]\s*['\"]?)([^\s'\",&]+)")


def luhn_valid(digits: str) -> bool:
    """The Luhn check every card number passes (and most other long numbers fail)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _mask_pan(match: re.Match) -> str:
    digits = match.group(0)
    if not luhn_valid(digits):
        return digits  # a merchant number, a timing, an id: not a card number
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


def mask_card_numbers(text: str) -> str:
    """Mask every Luhn-valid 13–19 digit run in ``text`` to BIN + last four."""
    return _PAN.sub(_mask_pan, text)


def redact(text: str) -> str:
    """Mask Luhn-valid 13–19 digit runs to BIN + last four; blank values of secret-looking keys."""
    text = _PAN.sub(_mask_pan, text)
    return _SECRET.sub(lambda m: m.group(1) + m.group(2) + "[redacted]", text)


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave the record as it is
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = ()
        return True
