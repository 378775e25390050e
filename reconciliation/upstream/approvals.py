"""Registration of the ``reconciliation.adjust`` approvable kind and its default policy."""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from portal.accounts.roles import Role
from portal.approvals import policies
from portal.approvals.choices import StageOrg
from portal.approvals.registry import register_approvable

from . import services

#: The ledger is the acquirer's book: one acquirer reviewer approves an adjustment (not the maker).
DEFAULT_STAGES = [{"role": Role.ACQUIRER_REVIEWER.value, "org": StageOrg.ACQUIRER.value}]


def _describe(request) -> dict:
    return {
        "url": reverse("reconciliation:upstream_discrepancy_detail", args=[request.object_id]),
        "title": request.summary,
    }


def register() -> None:
    policies.DEFAULT_POLICIES.setdefault(services.ADJUST_KIND, DEFAULT_STAGES)
    register_approvable(
        services.ADJUST_KIND,
        label=_("Reconciliation adjustment"),
        on_approved=services.adjust_on_approved,
        on_rejected=services.adjust_on_closed,
        on_expired=services.adjust_on_closed,
        on_voided=services.adjust_on_closed,
        on_cancelled=services.adjust_on_closed,
        describe=_describe,
        current_content_hash=services.adjust_current_hash,
    )
