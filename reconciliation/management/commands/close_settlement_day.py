"""``python manage.py close_settlement_day --date YYYY-MM-DD``: the 23:00 close of one day, by hand."""

from __future__ import annotations

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from reconciliation.services import SettlementCloseError, settlement_close_day


class Command(BaseCommand):
    help = "Close settlement day T (T-1 23:00 to T 23:00 Beijing time); idempotent."

    def add_arguments(self, parser):
        parser.add_argument("--date", required=True, help="Settlement day, YYYY-MM-DD")

    def handle(self, *args, **options):
        raw = options["date"]
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            raise CommandError(f"Invalid date {raw!r}: expected YYYY-MM-DD.") from None
        try:
            closed = settlement_close_day(actor=None, day=day)
        except SettlementCloseError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(
            f"settlement day {closed.day.isoformat()} closed: merchants={closed.merchant_count} "
            f"hash={closed.content_hash}"
        )
