"""``python manage.py access_review [--organisation CODE] [--format csv|xlsx] [--output PATH]``

The periodic access review report (PCI DSS 7.2.4: every six months; security check B7): one row per
user with organisation, roles, status, last sign-in, date joined, second factors (a phone that no
sign-in code has confirmed yet shows as such), staff and superuser flags, who last changed the roles
and when (from the audit trail; blank when it has no such event), and whether the username is
generic (security check B1). The rows and the files are built by ``portal.accounts.access_review``;
writing the report is itself audited as ``users.access_review`` with the file's SHA-256
(``services.access_review_write``).

The headers and labels are in ``--language`` (default: ``LANGUAGE_CODE``); times are Beijing time.
Every cell is text, neutralised against spreadsheet formulas (CSV injection).
"""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from portal.accounts.access_review import FORMATS, header, review_rows, to_csv, to_xlsx
from portal.accounts.models import Organisation
from portal.accounts.services import access_review_write


class Command(BaseCommand):
    help = (
        "Write the access review report (every user, organisation, roles, status, last sign-in, second factors, "
        "who last changed the roles) as CSV or XLSX; the report is audited as users.access_review."
    )

    def add_arguments(self, parser):
        parser.add_argument("--organisation", metavar="CODE", help="Only the users of this organisation (its code).")
        parser.add_argument(
            "--format", dest="file_format", choices=FORMATS, default="csv", help="csv (default) or xlsx."
        )
        parser.add_argument(
            "--output",
            metavar="PATH",
            help="The file to write (never overwritten); default access-review-<organisation or all>-<time>.<format>.",
        )
        parser.add_argument(
            "--language",
            choices=[code for code, _name in settings.LANGUAGES],
            default=settings.LANGUAGE_CODE,
            help="Language of the headers and labels (default: LANGUAGE_CODE).",
        )

    def handle(self, *args, organisation=None, file_format: str, output=None, language: str, **options):
        org = None
        if organisation:
            org = Organisation.objects.filter(code=organisation).first()
            if org is None:
                raise CommandError(f"No organisation has the code {organisation}.")
        now = timezone.localtime(timezone.now(), ZoneInfo(settings.BUSINESS_TIME_ZONE))
        path = Path(output or f"access-review-{org.code if org else 'all'}-{now:%Y%m%d-%H%M%S}.{file_format}")
        if path.exists():
            raise CommandError(f"{path} exists: a report is never overwritten; choose another --output.")
        if not path.parent.is_dir():
            raise CommandError(f"The directory {path.parent} does not exist.")
        with translation.override(language):
            head = header()
            rows = review_rows(org)
            if file_format == "xlsx":
                about = [
                    (_("Generated (Beijing time)"), now.strftime("%Y-%m-%d %H:%M:%S")),
                    (_("Organisation"), str(org) if org else _("All organisations")),
                    (_("Users"), str(len(rows))),
                ]
                content = to_xlsx(head, rows, about=about)
            else:
                content = to_csv(head, rows)
        try:
            access_review_write(
                actor=None, organisation=org, file_format=file_format, path=path, content=content, user_count=len(rows)
            )
        except FileExistsError as exc:
            raise CommandError(f"{path} exists: a report is never overwritten; choose another --output.") from exc
        self.stdout.write(f"{path}: {len(rows)} user(s)")
