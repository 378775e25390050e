"""Card numbers: masking, the keyed hash used for exact search, and Luhn helpers.

The full card number (PAN) is never stored: the ledger keeps the masked form (first six,
last four) and an HMAC-SHA256 of the full number under ``settings.CARD_HASH_KEY``.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import re

from django.conf import settings

_NON_DIGITS = re.compile(r"[\s-]")
PAN_PATTERN = re.compile(r"^\d{13,19}$")


def normalise_pan(value: str) -> str:
    """The digits of ``value`` with spaces and dashes removed."""
    return _NON_DIGITS.sub("", value or "")


def luhn_valid(pan: str) -> bool:
    """Whether ``pan`` (digits only) passes the Luhn check."""
    if not pan.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(pan)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def luhn_check_digit(partial: str) -> str:
    """The digit that makes ``partial`` + digit Luhn-valid."""
    for digit in "0123456789":
        if luhn_valid(partial + digit):
            return digit
    raise AssertionError("unreachable")


def looks_like_pan(value: str) -> bool:
    return bool(PAN_PATTERN.match(value))


def mask_pan(pan: str) -> str:
    """First six and last four digits, the rest as ``*`` (PCI DSS 3.4.1)."""
    pan = normalise_pan(pan)
    if len(pan) < 13:
        raise ValueError("not a card number")
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]


def card_hash(pan: str) -> str:
    """HMAC-SHA256 (hex) of the normalised full number under the settings key."""
    key = settings.CARD_HASH_KEY.encode()
    return hmac.new(key, normalise_pan(pan).encode(), hashlib.sha256).hexdigest()


def generate_test_pan(rng: random.Random | None = None, prefix: str = "622202", length: int = 16) -> str:
    """A Luhn-valid test card number starting with ``prefix``."""
    rng = rng or random.Random()
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    return body + luhn_check_digit(body)


def mask_account(number: str) -> str:
    """A settlement account number as it may be stored and shown: first four, last four.

    Numbers of eight digits or fewer keep only the last four.
    """
    digits = normalise_pan(number)
    if len(digits) <= 8:
        return "*" * max(len(digits) - 4, 0) + digits[-4:]
    return digits[:4] + "*" * (len(digits) - 8) + digits[-4:]
