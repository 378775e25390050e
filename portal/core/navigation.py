"""The portal's navigation, in the order of the operator manuals.

Domain apps are reached by URL name only, so the platform imports none of them.
"""

from dataclasses import dataclass

from django.conf import settings
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse
from django.utils.translation import gettext_lazy as _

from portal.accounts.roles import Perm


@dataclass(frozen=True)
class NavItem:
    key: str
    label: str
    url_name: str
    perm: str | None  # None: every signed-in user


NAVIGATION = (
    NavItem("home", _("Home"), "core:home", None),
    NavItem("transactions", _("Transactions"), "payments:index", Perm.TRANSACTIONS_VIEW),
    NavItem("merchants", _("Merchants"), "payments:merchant_list", Perm.MERCHANTS_VIEW),
    NavItem("downloads", _("My downloads"), "payments:downloads", Perm.TRANSACTIONS_EXPORT),
    NavItem("settlement", _("Settlement & reconciliation"), "reconciliation:index", Perm.SETTLEMENT_VIEW),
    NavItem("refunds", _("Refunds"), "refunds:index", Perm.REFUNDS_VIEW),
    NavItem("batches", _("Batch collection & payout"), "batches:list", Perm.BATCHES_VIEW),
    NavItem("security", _("Security"), "accounts:security", None),
    NavItem("users", _("Users"), "accounts:user_list", Perm.USERS_VIEW),
    NavItem("audit", _("Audit log"), "audit:event_list", Perm.AUDIT_VIEW),
    NavItem("help", _("Help"), "help:index", None),
)


# (URL conf, script prefix, URL name) → path, or None for a section whose app is not installed. URL names
# without arguments always give the same path, so each is reversed once per process.
_URLS: dict[tuple, str | None] = {}


def _section_url(url_name: str) -> str | None:
    key = (get_urlconf() or settings.ROOT_URLCONF, get_script_prefix(), url_name)
    if key not in _URLS:
        try:
            _URLS[key] = reverse(url_name)
        except NoReverseMatch:
            _URLS[key] = None
    return _URLS[key]


def navigation_for(request) -> list[dict]:
    """The sections ``request.user`` may open, with the current one marked."""
    items = []
    path = request.path
    for item in NAVIGATION:
        if item.perm and not request.user.has_portal_perm(item.perm):
            continue
        url = _section_url(item.url_name)
        if url is None:
            continue
        active = path == url if item.key == "home" else path.startswith(url)
        items.append({"key": item.key, "label": item.label, "url": url, "active": active})
    # Sections nested in another's URL (merchants under transactions): only the closest is current.
    current = [i for i in items if i["active"]]
    if len(current) > 1:
        closest = max(current, key=lambda i: len(i["url"]))
        for entry in current:
            entry["active"] = entry is closest
    return items
