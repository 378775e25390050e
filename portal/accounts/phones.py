"""Phone numbers: normalising and masking.

Every write path stores a phone in its canonical form (``normalise_phone``), so that one number is
one value: a verified phone belongs to one active user only (security check B1), which a database
constraint enforces (``models.User.Meta.constraints``).

The canonical form of a mainland China mobile number (11 digits starting with 1) is its 11-digit
national number, whichever way it was typed: ``13800138000``, ``8613800138000``, ``+8613800138000``
and ``+86 138-0013-8000`` are all ``13800138000`` (the form the portal has always shown and texted).
Any other number keeps its digits and a leading + as typed.
"""

import re

# A mainland mobile with the country code, with or without +: the national number is group 1.
_MAINLAND_MOBILE_WITH_COUNTRY_CODE = re.compile(r"^\+?86(1[0-9]{10})$")


def normalise_phone(raw: str) -> str:
    """The canonical form of ``raw``: spaces and dashes stripped (a leading + kept), and a mainland
    mobile number with the country code (``86…``, ``+86…``) reduced to its 11-digit national number.

    ``models.canonical_phone`` computes the same in SQL for the database constraint.
    """
    phone = "".join(ch for ch in raw.strip() if ch.isdigit() or ch == "+")
    match = _MAINLAND_MOBILE_WITH_COUNTRY_CODE.match(phone)
    return match.group(1) if match else phone


def mask_phone(phone: str) -> str:
    """``13812345678`` → ``138****5678``: the first three and last four digits stay visible."""
    if len(phone) <= 7:
        return "*" * max(len(phone) - 2, 0) + phone[-2:]
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]
