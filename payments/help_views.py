"""The in-portal help page of the sandbox acquirer (/help/sandbox/).

It lives in payments, not in ``portal.core.help``, because it renders the outcome table from
``payments.sandbox.outcomes`` and the platform imports no domain app. The outcomes are computed with
``outcomes.decide`` itself, so the page cannot drift from what the sandbox does.
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404
from django.utils.translation import gettext_lazy as _

from portal.core.help import HelpPageView, duration_text

from .cards import mask_pan
from .sandbox import outcomes

# Describe each test card of ``outcomes.TEST_CARDS`` (keyed like it); a card missing here shows its outcome only.
CARD_NOTES: dict[str, str] = {
    "success": _("Succeeds."),
    "insufficient_balance": _("Fails: insufficient balance."),
    "pending": _("Stays in process for a while, then succeeds."),
    "card_status": _("Fails: the card's status is not valid."),
    "success_debit_ccb": _("Succeeds (a debit card of another bank)."),
    "success_credit": _("Succeeds (a 16-digit credit card)."),
}

STATUS_LABELS: dict[str, str] = {
    outcomes.STATUS_SUCCESS: _("Success"),
    outcomes.STATUS_FAILED: _("Failed"),
    outcomes.STATUS_PENDING: _("In process, then success"),
}

# The network's refund and void rules the sandbox enforces (outcomes.py docstring), with a plain explanation.
REFUND_RULES: tuple[tuple[str, str], ...] = (
    ("12", _("The merchant already used this order ID.")),
    ("35", _("The original payment does not exist, failed, or belongs to another merchant.")),
    ("45", _("Nothing is left to refund, or a void of a payment that was already (partly) refunded.")),
    ("36", _("A void not for the full amount, or a refund above what can still be refunded.")),
    (
        "39",
        _("A void after the payment's settlement day closed (23:00), or a refund more than %(days)s days later."),
    ),
)

# Any amount for the card rows: one that no amount rule matches.
_PLAIN_AMOUNT = 10000


def _outcome_row(outcome: outcomes.Outcome) -> dict:
    return {
        "sync_code": outcome.sync_code,
        "sync_message": outcomes.resp_msg(outcome.sync_code),
        "status": outcome.status,
        "status_label": STATUS_LABELS.get(outcome.status, outcome.status),
        "resp_code": outcome.resp_code,
        "resp_message": outcomes.resp_msg(outcome.resp_code),
        "refused": outcome.refused,
    }


def card_rows() -> list[dict]:
    """One row per test card: masked number, the last four digits that decide, and the outcome."""
    rows = []
    for key, pan in outcomes.TEST_CARDS.items():
        outcome = outcomes.decide(amount=_PLAIN_AMOUNT, card_number=pan)
        rows.append(
            {
                "key": key,
                "masked": mask_pan(pan),
                "last_four": pan[-4:],
                "note": CARD_NOTES.get(key, ""),
                **_outcome_row(outcome),
            }
        )
    return rows


def amount_rows() -> list[dict]:
    """The amount rules, shown by example amounts (fen) decided without a card."""
    examples = ((10099, _("Amount ending in 99 fen, e.g. ¥100.99")), (1, _("Exactly ¥0.01")))
    return [{"fen": fen, "label": label, **_outcome_row(outcomes.decide(amount=fen))} for fen, label in examples]


class SandboxHelpView(HelpPageView):
    """How to test against the embedded sandbox acquirer; a 404 whenever the sandbox is off."""

    template_name = "help/sandbox.html"
    page_url_name = "payments_help:sandbox"

    def get(self, request, *args, **kwargs):
        # The URL is mounted only when the sandbox is on at start-up; the view checks again so that it can
        # never describe test behaviour on a portal connected to the real network.
        if not settings.SANDBOX_ENABLED:
            raise Http404
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        scale = settings.SANDBOX_NOTIFY_TIME_SCALE
        context.update(
            card_rows=card_rows(),
            amount_rows=amount_rows(),
            refund_rules=[
                {
                    "code": code,
                    "message": outcomes.resp_msg(code),
                    "explanation": str(text) % {"days": outcomes.REFUND_WINDOW_DAYS},
                }
                for code, text in REFUND_RULES
            ],
            pending_text=duration_text(settings.SANDBOX_PENDING_SECONDS),
            notify_schedule=", ".join(
                duration_text(round(minutes * 60 * scale)) for minutes in outcomes.NOTIFY_SCHEDULE_MINUTES
            ),
            invalid_code=outcomes.resp_msg("61"),
        )
        return context
