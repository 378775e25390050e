"""Password rules beyond Django's: letters and digits (PCI 8.3.6), no reuse of the last four (8.3.7)."""

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


class LetterAndDigitValidator:
    """At least one letter and one digit; any other character is welcome."""

    def validate(self, password: str, user=None) -> None:
        if not any(ch.isalpha() for ch in password) or not any(ch.isdigit() for ch in password):
            raise ValidationError(
                _("Your password must contain at least one letter and one digit."), code="password_letter_digit"
            )

    def get_help_text(self) -> str:
        return _("Your password must contain at least one letter and one digit.")


class PasswordHistoryValidator:
    """The new password differs from the current one and the previous ones kept in history."""

    def validate(self, password: str, user=None) -> None:
        if user is None or not getattr(user, "pk", None):
            return
        depth = settings.PASSWORD_HISTORY_DEPTH
        hashes = list(user.password_history.values_list("password", flat=True)[:depth])
        if not hashes and user.password:
            hashes = [user.password]
        if any(check_password(password, h) for h in hashes):
            raise ValidationError(
                _("You cannot reuse any of your last %(count)d passwords.") % {"count": depth},
                code="password_reused",
            )

    def get_help_text(self) -> str:
        return _("You cannot reuse any of your last %(count)d passwords.") % {"count": settings.PASSWORD_HISTORY_DEPTH}
