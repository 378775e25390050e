"""Why a refund request or action was refused: a code for the API and a message in the user's language."""

from __future__ import annotations

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

MESSAGES = {
    "not_found": _("No such payment or refund."),
    "not_a_payment": _("Only a payment can be refunded or voided; this transaction is a %(type)s."),
    "not_successful": _("Only a successful payment can be refunded or voided; this one is %(status)s."),
    "window_expired": _(
        "The payment was made on %(date)s, more than %(days)s days ago: it can no longer be refunded online. "
        "Use the manual dispute process."
    ),
    "amount_not_positive": _("The amount must be more than zero."),
    "amount_exceeds": _(
        "The amount (%(amount)s yuan) is more than what can still be refunded of this payment: %(refundable)s yuan."
    ),
    "nothing_refundable": _("Nothing is left to refund of this payment."),
    "reason_required": _("Give a reason for the refund."),
    "reason_too_long": _("The reason is too long (at most 255 characters)."),
    "currency": _("Only refunds in CNY (currency 156) are supported."),
    "not_cancellable": _("This refund can no longer be cancelled: it has been decided."),
    "not_maker": _("Only the person who requested this refund can cancel it."),
}


class RefundError(Exception):
    """A refused refund action: ``code``, its params, and the HTTP status the web and API layers answer."""

    def __init__(self, code: str, params: dict | None = None, *, status: int = 400):
        super().__init__(code)
        self.code = code
        self.params = params or {}
        self.status = status

    @property
    def message(self) -> str:
        template = MESSAGES.get(self.code)
        if template is None:
            return self.code
        text = gettext(str(template))
        try:
            return text % self.params
        except (KeyError, TypeError, ValueError):
            return text

    def __str__(self) -> str:
        return self.message
