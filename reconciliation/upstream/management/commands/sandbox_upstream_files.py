"""``python manage.py sandbox_upstream_files --date YYYY-MM-DD [--merchant MERID ...]``: build the sandbox's upstream
zips (``SANDBOX_DIR/files/{merId}_{YYYYMMDD}.zip``) from its own transactions of that settlement day."""

from __future__ import annotations

from datetime import date

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Build the sandbox's upstream reconciliation zips for a settlement day."

    def add_arguments(self, parser):
        parser.add_argument("--date", required=True, help="Settlement day YYYY-MM-DD.")
        parser.add_argument("--merchant", action="append", default=[], help="Merchant number (repeatable).")

    def handle(self, *args, date: str, merchant: list[str], **options):
        if not apps.is_installed("payments.sandbox"):
            raise CommandError("The sandbox is off.")
        from payments.sandbox.models import SandboxTransaction
        from reconciliation.upstream.sandbox import sandbox_upstream_zip

        try:
            day = _parse(date)
        except ValueError:
            raise CommandError("--date must be YYYY-MM-DD") from None
        mer_ids = merchant or sorted(
            set(SandboxTransaction.objects.filter(settle_date=day).values_list("mer_id", flat=True))
        )
        for mer_id in mer_ids:
            path = sandbox_upstream_zip(mer_id, day)
            self.stdout.write(f"{mer_id} {day:%Y-%m-%d}: {path or 'nothing (day not over, or no transactions)'}")


def _parse(value: str) -> date:
    from datetime import date as _date

    return _date.fromisoformat(value)
