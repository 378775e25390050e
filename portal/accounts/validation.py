"""Validation rules for organisations, shared by forms, the admin and services."""

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


def validate_organisation(org) -> None:
    """Acquirer: institution code of 8–11 digits. Merchant: 15-digit merchant number and an acquirer."""
    errors = {}
    if org.kind == "acquirer" and not re.fullmatch(r"[0-9]{8,11}", org.code or ""):
        errors["code"] = _("An acquirer's institution code has 8 to 11 digits.")
    if org.kind == "merchant":
        if not re.fullmatch(r"[0-9]{15}", org.code or ""):
            errors["code"] = _("A merchant number has 15 digits.")
        if org.acquirer_id is None:
            errors["acquirer"] = _("A merchant must belong to an acquirer.")
        elif org.acquirer.kind != "acquirer":
            errors["acquirer"] = _("A merchant's acquirer must be an acquirer organisation.")
    if org.kind != "merchant" and org.acquirer_id is not None:
        errors["acquirer"] = _("Only a merchant has an acquirer.")
    if errors:
        raise ValidationError(errors)
