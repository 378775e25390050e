"""Benchmark ``recon_match`` (issue 5 §6): import and match an upstream ZM file of ``--rows`` lines against a ledger of
``--ledger-rows`` rows that holds those transactions, versus PostgreSQL ``COPY`` of the same file into a bare table.

``python bench/recon_match.py [--rows 1000000] [--ledger-rows 10000000]``

* Ledger: ``manage.py ledger_bulk_load`` (through ``common.ensure_rows``) fills the database up to
  ``ledger-rows - rows`` rows over 100 merchants, then a dedicated merchant (``898999990000001``, of its own acquirer
  ``48029998`` so the issue-3 benchmarks are not disturbed) gets ``rows`` successful payments on one settlement day,
  COPYed once and reused.
* File: ``INN{YYMMDD}88ZM_898999990000001`` written from those ledger rows with the shared codec (fees from the
  settlement fee rules, so every line matches), once, under ``var/bench/<db>/``.
* ``copy_s``: ``COPY bench_recon_copy (line) FROM STDIN`` of the file as-is (one text column, one row a line) through
  psycopg, after a warm-up COPY (file in the page cache).
* ``import_match_s``: ``reconciliation_import(path=...)`` (the ``reconciliation_import`` command's service: hash,
  parse, load, match, fee comparison, totals, audit) in a child process. ``peak_mb``: the larger peak RSS (VmHWM) of
  that process (``django_peak_mb``) and of its PostgreSQL backend (``pg_backend_peak_mb``). Earlier runs of the bench
  merchant are deleted first (the same file is refused as a duplicate otherwise), and their tables vacuumed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

MER_ID = "898999990000001"
ACQUIRER = "48029998"
SETTLE_DAY = date(2025, 7, 15)


def _bench_merchant():
    from portal.accounts.models import Organisation, OrganisationKind

    acquirer, _ = Organisation.objects.get_or_create(
        code=ACQUIRER,
        defaults={"kind": OrganisationKind.ACQUIRER, "name_zh": "对账基准收单机构", "name_en": "Recon bench acquirer"},
    )
    merchant, _ = Organisation.objects.get_or_create(
        code=MER_ID,
        defaults={
            "kind": OrganisationKind.MERCHANT,
            "name_zh": "对账基准商户",
            "name_en": "Recon bench merchant",
            "acquirer": acquirer,
            "mcc": "5311",
        },
    )
    from reconciliation.choices import CardClass
    from reconciliation.models import FeeRate

    # The merchant's own rates (so the fee comparison has real fees), leaving other merchants' rates alone.
    for card_class, bp in ((CardClass.DEBIT, 38), (CardClass.CREDIT, 60), (CardClass.OTHER, 60)):
        FeeRate.objects.get_or_create(merchant=merchant, card_class=card_class, defaults={"rate_bp": bp})
    return merchant


def _ensure_day(merchant, rows: int) -> None:
    """``rows`` successful payments of the bench merchant on SETTLE_DAY (COPY, once)."""
    from django.db import connection, transaction
    from django.utils import timezone

    from payments.models import Transaction
    from payments.settlement import business_tz

    have = Transaction.objects.filter(merchant=merchant).count()
    if have == rows:
        common.log(f"bench merchant day: {rows:,} rows already loaded, reused")
        return
    common.log(f"bench merchant day: loading {rows:,} ledger rows (COPY)")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM payments_transaction WHERE merchant_id = %s", [merchant.pk])
    tz = business_tz()
    start = datetime(SETTLE_DAY.year, SETTLE_DAY.month, SETTLE_DAY.day, tzinfo=tz) - timedelta(hours=1)
    step = (24 * 3600 - 2) / rows
    now = timezone.now()
    cols = (
        "merchant_id, acquirer_id, order_id, txn_time, txn_type, txn_sub_type, biz_type, channel_type, access_type, "
        "amount, currency, status, resp_code, resp_msg, query_id, trace_no, trace_time, settle_date, orig_query_id, "
        "card_masked, card_hash, card_type, req_reserved, refunded_amount, source, created_at, updated_at"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY payments_transaction ({cols}) FROM STDIN") as copy:
            for i in range(rows):
                when = start + timedelta(seconds=1 + i * step)
                local = when.astimezone(tz)
                amount = 100 + (i * 7919) % 500_000
                copy.write_row(
                    (merchant.pk, merchant.acquirer_id, f"RB{SETTLE_DAY:%Y%m%d}{i:012d}", when, "01", "01", "000201",
                     "07", "0", amount, "156", "success", "00", "成功[0000000]", f"9{SETTLE_DAY:%Y%m%d}{i:012d}",
                     f"{i % 1_000_000:06d}", local.strftime("%m%d%H%M%S"), SETTLE_DAY, "", "622202******0128",
                     "", "01" if i % 3 else "02", "", 0, "import", now, now)
                )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE payments_transaction")


def _ensure_file(merchant, rows: int, directory: Path) -> Path:
    from payments.gateway.acp.reconfiles import ZMRecord, iter_zm_lines, zm_name
    from payments.models import Transaction
    from reconciliation.upstream.fees import ledger_fees

    path = directory / zm_name(SETTLE_DAY, MER_ID)
    if path.exists() and path.stat().st_size == rows * 609:
        common.log(f"upstream file {path.name} reused")
        return path
    common.log(f"writing the upstream file {path.name} ({rows:,} lines)")
    fees = dict(ledger_fees(merchant, SETTLE_DAY))
    qs = Transaction.objects.filter(merchant=merchant).order_by("id")

    def records():
        for t in qs.iterator(chunk_size=5000):
            fee = fees[t.pk]
            yield ZMRecord(
                txn_code="S22", acquirer_code="00049992", sender_code="00049992", trace_no=t.trace_no,
                trans_time=t.trace_time, pan=t.card_masked, amount=t.amount, mcc="5311", terminal_type="07",
                query_id=t.query_id, order_id=t.order_id, pay_card_type=t.card_type, merchant_fee=fee,
                settle_amount=t.amount + fee, txn_type="01", txn_sub_type="01", biz_type="000201", mer_id=MER_ID,
            )  # fmt: skip

    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as out:
        for line in iter_zm_lines(records()):
            out.write(line)
    tmp.replace(path)
    return path


def _copy_baseline(db_name: str, path: Path) -> float:
    with common.pg_connect(db_name) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_recon_copy")
        conn.execute("CREATE TABLE bench_recon_copy (line text)")
        seconds = 0.0
        for _attempt in range(2):  # the first one warms the page cache; the second is measured
            conn.execute("TRUNCATE bench_recon_copy")
            began = time.perf_counter()
            with conn.cursor() as cursor, cursor.copy("COPY bench_recon_copy (line) FROM STDIN") as copy:
                with path.open("rb") as stream:
                    while chunk := stream.read(1024 * 1024):
                        copy.write(chunk)
            seconds = time.perf_counter() - began
        conn.execute("DROP TABLE bench_recon_copy")
    return seconds


def _clean_runs(merchant) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM recon_upstream_reconciliationrun WHERE merchant_id = %s", [merchant.pk])
        runs = [r[0] for r in cursor.fetchall()]
        if not runs:
            return
        for table in ("recon_upstream_discrepancy", "recon_upstream_ledgerfee", "recon_upstream_upstreamrecord"):
            cursor.execute(f"DELETE FROM {table} WHERE run_id = ANY(%s)", [runs])
        cursor.execute(
            "UPDATE recon_upstream_reconciliationrun SET earlier_run_id = NULL WHERE earlier_run_id = ANY(%s)", [runs]
        )
        cursor.execute("DELETE FROM recon_upstream_reconciliationrun WHERE id = ANY(%s)", [runs])
        # As refund_ingest does: without it the measured import meets the last run's million dead records (and their
        # index entries), and autovacuum may start on them in the middle of the measurement.
        for table in ("recon_upstream_discrepancy", "recon_upstream_ledgerfee", "recon_upstream_upstreamrecord"):
            cursor.execute(f"VACUUM (ANALYZE) {table}")


def _backend_peak_mb() -> float:
    """Peak resident memory (VmHWM) of the import's PostgreSQL backend (shared buffers it touched included)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        return common.peak_rss_mb(pid)
    except OSError:  # a server on another machine
        return float("nan")


def child(db_name: str, path: str) -> None:
    """The measured import, alone in its process (``--child``): prints one JSON line."""
    common.django_setup(db_name)
    from reconciliation.upstream.choices import RunSource
    from reconciliation.upstream.importer import reconciliation_import

    began = time.perf_counter()
    run = reconciliation_import(actor=None, source=RunSource.COMMAND, path=path)
    seconds = time.perf_counter() - began
    out = {
        "seconds": seconds,
        "status": run.status,
        "error": run.error,
        "records": run.record_count,
        "errors": run.error_count,
        "classes": run.class_totals,
        "peak_mb": common.peak_rss_mb(),
        "backend_peak_mb": _backend_peak_mb(),
    }
    print(json.dumps(out), flush=True)


def main(rows: int, ledger_rows: int) -> str:
    db_name = common.database_name(ledger_rows)
    common.ensure_database(db_name)
    common.ensure_rows(db_name, max(ledger_rows - rows, 1))
    common.django_setup(db_name)
    merchant = _bench_merchant()
    _ensure_day(merchant, rows)
    directory = common.VAR / db_name
    directory.mkdir(parents=True, exist_ok=True)
    path = _ensure_file(merchant, rows, directory)
    _clean_runs(merchant)
    from django.db import connection

    connection.close()
    common.log("baseline: COPY of the file into a bare table")
    copy_s = _copy_baseline(db_name, path)
    common.log(f"copy {copy_s:.2f} s; import + match in a child process")
    proc = subprocess.run(
        [common.PYTHON, __file__, "--child", db_name, str(path)],
        cwd=common.ROOT,
        env=common.bench_env(db_name),
        check=True,
        capture_output=True,
        text=True,
    )
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if out["status"] != "completed" or out["records"] != rows or out["classes"]["matched"]["count"] != rows:
        raise SystemExit(f"import did not match every line: {out}")
    total = common.ledger_rows(db_name)
    return common.result(
        "recon_match",
        rows=rows,
        ledger_rows=total,
        import_match_s=out["seconds"],
        copy_s=copy_s,
        ratio=out["seconds"] / copy_s,
        peak_mb=max(out["peak_mb"], out["backend_peak_mb"]),
        django_peak_mb=out["peak_mb"],
        pg_backend_peak_mb=out["backend_peak_mb"],
    )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="lines of the upstream file (default 1,000,000)")
    parser.add_argument("--ledger-rows", type=int, default=common.FULL_ROWS, help="ledger rows (default 10,000,000)")
    args = parser.parse_args()
    main(args.rows, args.ledger_rows)
