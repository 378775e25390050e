"""The periodic access review report (PCI DSS 7.2.4: every six months; security check B7), built from the
users, their roles and second factors and the audit trail: one row of text per user, and the CSV and XLSX
files (``manage.py access_review`` writes them through ``services.access_review_write``, audited).

Every cell is text, neutralised against spreadsheet formulas (CSV injection); times are Beijing time; labels
in the active language.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.audit.formats.csv_export import neutralise
from portal.audit.models import AuditEvent

from .filtersets import UserStatus
from .models import Organisation, OrganisationKind, User
from .roles import Role
from .validators import is_generic_username

FORMATS = ("csv", "xlsx")
#: The audited actions that set a user's roles (``user.create`` grants, ``user.update`` changes).
ROLE_ACTIONS = ("user.create", "user.update")


@dataclass(frozen=True)
class RoleChange:
    """The last audited change of a user's roles: who (the actor's username then) and when."""

    by: str
    at: datetime


def _changes_roles(action: str, details: dict) -> bool:
    if action == "user.create":
        return bool(details.get("roles"))
    before, after = details.get("before") or {}, details.get("after") or {}
    return sorted(before.get("roles") or []) != sorted(after.get("roles") or [])


def last_role_changes(user_ids: Iterable[int] | None = None) -> dict[int, RoleChange]:
    """For each user, the last ``user.create`` that granted roles or ``user.update`` whose roles
    before and after differ. ``user_ids`` None: every user."""
    events = AuditEvent.objects.filter(object_type=User._meta.label_lower, action__in=ROLE_ACTIONS)
    if user_ids is not None:
        events = events.filter(object_id__in=[str(pk) for pk in user_ids])
    latest: dict[int, RoleChange] = {}
    rows = events.order_by("sequence").values_list("object_id", "action", "actor_repr", "occurred_at", "details")
    for object_id, action, actor_repr, occurred_at, details in rows.iterator(chunk_size=2000):
        if not object_id.isdigit() or not _changes_roles(action, details or {}):
            continue
        latest[int(object_id)] = RoleChange(by=actor_repr, at=occurred_at)
    return latest


def header() -> list[str]:
    """The column titles, in the active language."""
    return [
        _("Username"),
        _("Name"),
        _("Organisation code"),
        _("Organisation"),
        _("Organisation kind"),
        _("Roles"),
        _("Status"),
        _("Last sign-in (Beijing time)"),
        _("Joined (Beijing time)"),
        _("Second factors"),
        _("Staff"),
        _("Superuser"),
        _("Roles last changed by"),
        _("Roles last changed (Beijing time)"),
        _("Generic user name"),
    ]


def _when(value: datetime | None) -> str:
    if value is None:
        return ""
    return timezone.localtime(value, ZoneInfo(settings.BUSINESS_TIME_ZONE)).strftime("%Y-%m-%d %H:%M:%S")


def _yes(flag: bool) -> str:
    return _("Yes") if flag else _("No")


def review_rows(organisation: Organisation | None = None) -> list[list[str]]:
    """One row of text per user (all users, or ``organisation``'s), by organisation code and username."""
    users = User.objects.select_related("organisation").prefetch_related("role_assignments")
    if organisation is not None:
        users = users.filter(organisation=organisation)
    users = list(users.order_by("organisation__code", "username"))
    ids = [u.pk for u in users]
    totp = set(TOTPDevice.objects.filter(confirmed=True, user_id__in=ids).values_list("user_id", flat=True))
    changes = last_role_changes(ids if organisation is not None else None)
    roles = dict(Role.choices)
    kinds = dict(OrganisationKind.choices)
    statuses = dict(UserStatus.choices)
    rows = []
    for user in users:
        factors = []
        if user.phone and user.phone_verified:
            factors.append(_("SMS"))
        elif user.phone:
            # An administrator's phone before the user's first sign-in code confirms it: sign-in only.
            factors.append(_("SMS (phone not yet confirmed)"))
        if user.pk in totp:
            factors.append(_("Authenticator app"))
        change = changes.get(user.pk)
        org = user.organisation
        rows.append(
            [
                user.username,
                user.get_full_name(),
                org.code,
                org.display_name,
                str(kinds.get(org.kind, org.kind)),
                "; ".join(str(roles.get(r, r)) for r in sorted(a.role for a in user.role_assignments.all())),
                str(statuses[UserStatus.ACTIVE if user.is_active else UserStatus.DISABLED]),
                _when(user.last_login),
                _when(user.date_joined),
                "; ".join(factors) or _("None"),
                _yes(user.is_staff),
                _yes(user.is_superuser),
                change.by if change else "",
                _when(change.at) if change else "",
                _yes(is_generic_username(user.username)),
            ]
        )
    return rows


def to_csv(head: Sequence[str], rows: Iterable[Sequence[str]]) -> bytes:
    """UTF-8 with a byte-order mark (spreadsheet programs then read Chinese), header first."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow([neutralise(c) for c in head])
    for row in rows:
        writer.writerow([neutralise(c) for c in row])
    return text.getvalue().encode("utf-8-sig")


def to_xlsx(head: Sequence[str], rows: Iterable[Sequence[str]], *, about: Sequence[tuple[str, str]]) -> bytes:
    """One sheet with the table (text cells, header frozen, filters on) and one about the report."""
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = _("Access review")[:31]
    sheet.append([neutralise(c) for c in head])
    count = 0
    for row in rows:
        sheet.append([neutralise(c) for c in row])
        count += 1
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(head))}{count + 1}"
    for index, title in enumerate(head, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = max(12, min(40, len(title) + 4))
    info = workbook.create_sheet(_("Report")[:31])
    for label, value in about:
        info.append([neutralise(label), neutralise(value)])
    info.column_dimensions["A"].width = 30
    info.column_dimensions["B"].width = 60
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
