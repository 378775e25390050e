"""The in-portal help: how the portal works, for every signed-in user.

The pages read the numbers they quote (lockout, session limits, code validity, download limits,
approval threshold) from ``django.conf.settings`` so that they stay true when an operator changes them.
The platform imports no domain app: sections are linked by URL name only, and the sandbox page lives in
``payments.help_views``.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.generic import TemplateView

from portal.accounts.roles import ROLE_PERMISSIONS, Perm, Role

from .mixins import PortalPermissionMixin

#: A human label for every permission string of ``portal.accounts.roles.Perm``, in the order shown.
PERMISSION_LABELS: dict[str, str] = {
    Perm.ORG_VIEW: _("See your organisation's details"),
    Perm.MERCHANTS_VIEW: _("Look up the merchants of an acquirer"),
    Perm.TRANSACTIONS_VIEW: _("Query transactions"),
    Perm.TRANSACTIONS_EXPORT: _("Download transaction details"),
    Perm.REFUNDS_VIEW: _("See voids and refunds"),
    Perm.REFUNDS_CREATE: _("Start a void or refund (maker)"),
    Perm.REFUNDS_APPROVE: _("Review voids and refunds (checker)"),
    Perm.BATCHES_VIEW: _("See batch files"),
    Perm.BATCHES_UPLOAD: _("Upload batch files (maker)"),
    Perm.BATCHES_APPROVE: _("Review batch files (checker)"),
    Perm.SETTLEMENT_VIEW: _("Settlement summaries and reconciliation files"),
    Perm.RECONCILIATION_MANAGE: _("Resolve reconciliation discrepancies"),
    Perm.USERS_VIEW: _("See users"),
    Perm.USERS_MANAGE: _("Create, change, lock and unlock users"),
    Perm.AUDIT_VIEW: _("Read the audit log"),
    Perm.AUDIT_EXPORT: _("Export and verify the audit log"),
    Perm.POLICIES_MANAGE: _("Configure approval policies"),
}

#: The help pages in the order of the side menu: (URL name, title).
HELP_PAGES: tuple[tuple[str, str], ...] = (
    ("help:index", _("Overview and roles")),
    ("help:security", _("Sign-in and security")),
    ("help:transactions", _("Transactions")),
    ("help:refunds", _("Voids and refunds")),
    ("help:settlement", _("Settlement and reconciliation")),
    ("help:api", _("The API")),
)


def duration_text(seconds: int) -> str:
    """``seconds`` in words, in the largest whole unit: "12 hours", "15 minutes", "90 seconds"."""
    seconds = int(seconds)
    if seconds and seconds % 86400 == 0:
        n = seconds // 86400
        return ngettext("%(n)d day", "%(n)d days", n) % {"n": n}
    if seconds and seconds % 3600 == 0:
        n = seconds // 3600
        return ngettext("%(n)d hour", "%(n)d hours", n) % {"n": n}
    if seconds and seconds % 60 == 0:
        n = seconds // 60
        return ngettext("%(n)d minute", "%(n)d minutes", n) % {"n": n}
    return ngettext("%(n)d second", "%(n)d seconds", seconds) % {"n": seconds}


def _cooloff_seconds() -> int:
    """django-axes accepts a timedelta or a number of hours; anything else (a callable) is shown as configured."""
    value = settings.AXES_COOLOFF_TIME
    if isinstance(value, timedelta):
        return int(value.total_seconds())
    if isinstance(value, int | float):
        return int(value * 3600)
    return 0


def yuan_text(fen: int) -> str:
    """An amount of fen as yuan with thousands separators and two decimals: 50000000 → "500,000.00"."""
    sign = "-" if fen < 0 else ""
    fen = abs(int(fen))
    return "%s%s.%02d" % (sign, f"{fen // 100:,}", fen % 100)


class HelpPageView(PortalPermissionMixin, TemplateView):
    """A help page: open to every signed-in user (after both factors), read-only."""

    any_signed_in_user = True
    http_method_names = ["get", "head", "options"]
    page_url_name = ""

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["help_pages"] = [
            {"url_name": name, "title": title, "active": name == self.page_url_name} for name, title in HELP_PAGES
        ]
        # The sandbox page is linked by URL name (it lives in payments) and only while the sandbox runs.
        context["sandbox_enabled"] = settings.SANDBOX_ENABLED
        context["sandbox_active"] = self.page_url_name == "payments_help:sandbox"
        return context


class HelpIndexView(HelpPageView):
    """What the portal does, its sections, and the role → permission matrix."""

    template_name = "help/index.html"
    page_url_name = "help:index"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        roles = list(Role)
        context["roles"] = [{"value": role.value, "label": role.label} for role in roles]
        context["permission_rows"] = [
            {
                "perm": perm,
                "label": label,
                "cells": [perm in ROLE_PERMISSIONS.get(role, frozenset()) for role in roles],
            }
            for perm, label in PERMISSION_LABELS.items()
        ]
        context["my_roles"] = self.request.user.role_codes
        return context


class HelpSecurityView(HelpPageView):
    """Password rules, second factor, lockout, session limits and step-up, with the configured numbers."""

    template_name = "help/security.html"
    page_url_name = "help:security"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            password_min_length=getattr(settings, "PASSWORD_MIN_LENGTH", 12),
            password_history_depth=getattr(settings, "PASSWORD_HISTORY_DEPTH", 4),
            failure_limit=settings.AXES_FAILURE_LIMIT,
            lockout_text=duration_text(_cooloff_seconds()),
            idle_text=duration_text(settings.SESSION_IDLE_SECONDS),
            absolute_text=duration_text(settings.SESSION_ABSOLUTE_SECONDS),
            step_up_text=duration_text(settings.STEP_UP_MAX_AGE_SECONDS),
            sms_validity_text=duration_text(settings.OTP_SMS_TOKEN_VALIDITY),
            sms_cooldown_text=duration_text(settings.OTP_SMS_COOLDOWN_DURATION),
            sms_daily_cap=settings.SMS_DAILY_CAP,
        )
        return context


class HelpTransactionsView(HelpPageView):
    """Today's and past transactions, filters, card search, downloads, amounts."""

    template_name = "help/transactions.html"
    page_url_name = "help:transactions"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["stream_limit_text"] = f"{settings.TRANSACTIONS_EXPORT_STREAM_LIMIT:,}"
        return context


class HelpRefundsView(HelpPageView):
    """Void and refund rules, maker-checker, batch refund files."""

    template_name = "help/refunds.html"
    page_url_name = "help:refunds"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["acquirer_threshold_yuan"] = yuan_text(getattr(settings, "APPROVAL_ACQUIRER_THRESHOLD_FEN", 50_000_000))
        context["step_up_text"] = duration_text(settings.STEP_UP_MAX_AGE_SECONDS)
        context["approval_expiry_text"] = duration_text(getattr(settings, "APPROVAL_EXPIRY_HOURS", 72) * 3600)
        return context


class HelpSettlementView(HelpPageView):
    """The daily close, reconciliation files, statements and discrepancies."""

    template_name = "help/settlement.html"
    page_url_name = "help:settlement"


class HelpApiView(HelpPageView):
    """An overview of the REST API under /api/v1/."""

    template_name = "help/api.html"
    page_url_name = "help:api"
