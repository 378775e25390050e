"""``python manage.py audit_verify``: walk the hash chain and say whether it is intact."""

import sys

from django.core.management.base import BaseCommand, CommandError

from portal.audit.services import audit_verify_chain


class Command(BaseCommand):
    help = (
        "Verify the audit trail's hash chain. Prints 'OK <count>' and exits 0 when it is intact; "
        "otherwise names the first broken sequence number and exits 1."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=5000, help="Events read per query (memory stays flat).")

    def handle(self, *args, batch_size: int, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be positive.")
        report = audit_verify_chain(batch_size=batch_size)
        if report.ok:
            self.stdout.write(f"OK {report.count}")
            return
        self.stderr.write(
            f"BROKEN at sequence {report.first_broken_sequence}: {report.reason} "
            f"({report.count} events verified before it)"
        )
        sys.exit(1)
