"""``python manage.py reconciliation_import PATH [--parse-only]``: import an upstream zip or single INN file.

Prints one summary line: the record count and the amount, fee and settlement totals in fen
(``records=8 amount=1322700 fee=D7936 settlement=C1314764``). ``--parse-only`` parses and prints that line without
touching the database.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from payments.gateway.acp.reconfiles import ReconFileError, Summary, Totals, summarise


class Command(BaseCommand):
    help = "Import an upstream reconciliation file (zip or single INN file) and match it against the ledger."

    def add_arguments(self, parser):
        parser.add_argument("path", help="A {merId}_{YYYYMMDD}.zip or an INN…ZM_/ZME_ file.")
        parser.add_argument("--parse-only", action="store_true", help="Parse and print the totals; write nothing.")

    def handle(self, *args, path, parse_only, **options):
        file = Path(path)
        if not file.is_file():
            raise CommandError(f"No such file: {path}")
        if parse_only:
            try:
                summary = summarise(file)
            except ReconFileError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(summary.line())
            return
        from reconciliation.upstream.choices import RunSource, RunStatus
        from reconciliation.upstream.importer import reconciliation_import

        run = reconciliation_import(actor=None, source=RunSource.COMMAND, path=file)
        if run.status != RunStatus.COMPLETED:
            raise CommandError(f"run {run.pk} failed: {run.error}")
        summary = Summary(
            run.record_count,
            run.amount_total,
            run.fee_total,
            run.settlement_total,
            Totals(run.adjustment_count, run.adjustment_amount, run.adjustment_fee, run.adjustment_settlement),
        )
        line = summary.line()
        if run.error_count:
            first = run.line_errors[0]["line"] if run.line_errors else 0
            line += f" errors={run.error_count} first_error_line={first}"
        discrepancies = sum(v["count"] for k, v in run.class_totals.items() if k != "matched")
        self.stdout.write(f"{line} run={run.pk} discrepancies={discrepancies}")
