"""Benchmark ``recon_files`` (issue 5 §6): the ZM file of a merchant day of N transactions vs ``COPY … TO STDOUT``.

``python bench/recon_files.py [--rows N] [--repeat K]`` (default 1,000,000 rows, the issue's size), or
``python bench/run.py recon_files --rows N``. Prints ``RESULT recon_files rows=… zm_s=… copy_s=… ratio=… zip_s=…``.

Database ``portal_bench_recon`` (``portal_bench_recon_<N>`` for another N) holds ONE merchant with N settled
transactions (payments, voids and refunds) on ONE settlement day, plus 5 % failed ones that the file leaves out;
loaded once by SQL (``INSERT … SELECT`` over ``generate_series``) in time order, as a real ledger fills, and reused
(a database loaded in id order with random times, by an earlier version, is loaded again).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

ROWS = 1_000_000
DAY = date(2026, 1, 15)
MERCHANT_CODE = "898990099000001"
ACQUIRER_CODE = "48020099"
# The columns of the ledger rows that a ZM line is made of (the baseline COPY reads exactly these).
BASELINE_COLUMNS = (
    "id, acquirer_id, txn_time, txn_type, txn_sub_type, biz_type, channel_type, amount, query_id, trace_no, "
    "trace_time, orig_query_id, orig_id, card_masked, card_type, order_id, req_reserved"
)


def database_name(rows: int) -> str:
    return "portal_bench_recon" if rows == ROWS else f"portal_bench_recon_{rows}"


def _organisations():
    from portal.accounts.models import Organisation
    from reconciliation.models import FeeRate

    acquirer, _ = Organisation.objects.get_or_create(
        code=ACQUIRER_CODE, defaults={"kind": "acquirer", "name_zh": "对账文件基准收单机构", "name_en": "Recon bench"}
    )
    merchant, _ = Organisation.objects.get_or_create(
        code=MERCHANT_CODE,
        defaults={"kind": "merchant", "name_zh": "对账文件基准商户", "name_en": "Recon bench merchant",
                  "acquirer": acquirer, "mcc": "5311"},
    )  # fmt: skip
    if not FeeRate.objects.exists():
        FeeRate.objects.create(card_class="debit", rate_bp=38, min_fee=10, max_fee=2000)
        FeeRate.objects.create(card_class="credit", rate_bp=60, min_fee=0, max_fee=5000)
        FeeRate.objects.create(card_class="other", rate_bp=100, min_fee=0, max_fee=None)
        FeeRate.objects.create(merchant=merchant, card_class="credit", rate_bp=55, min_fee=5, max_fee=None)
    return merchant


# Payments (96 %), voids and refunds of random payments (4 %) and failed payments (5 % more, not in the file), with
# random times within the settlement day (T-1 23:00 to T 23:00 Beijing; reversals in its last ten minutes). Inserted
# as a real ledger is filled, in time order (notifications arrive as payments happen): ids and heap order follow
# txn_time, so the file's order (txn_time, id) reads the heap almost sequentially, as on a production ledger.
# Card types 60 % debit, 33 % credit, 4 % quasi-credit, 3 % blank; amounts log-normal (median ~100 yuan); 10 % of
# the payments carry an ASCII reqReserved, 1 in 10,000 a Chinese one (a row the SQL hands to Python).
LOAD_SQL = """
SELECT setseed(0.5);
CREATE TEMP TABLE recon_gen ON COMMIT DROP AS
SELECT g AS k, %(start)s::timestamptz + random() * interval '86399 seconds' AS ts, NULL::bigint AS orig_k,
       '01' AS txn_type, 'success' AS status, random() AS r_card, random() AS r_memo,
       greatest(1, floor(exp(9.2 + 1.3 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()))))::bigint AS amount,
       NULL::float8 AS r
FROM generate_series(0, %(payments)s - 1) g
UNION ALL
SELECT %(payments)s + k, %(end)s::timestamptz - random() * interval '600 seconds',
       floor(random() * %(payments)s)::bigint, CASE WHEN k %% 3 = 0 THEN '31' ELSE '04' END, 'success', NULL, NULL,
       NULL, random()
FROM generate_series(0, %(reversals)s - 1) k
UNION ALL
SELECT %(payments)s + %(reversals)s + j, %(start)s::timestamptz + random() * interval '86399 seconds', NULL, '01',
       'failed', NULL, NULL, 1000, NULL
FROM generate_series(0, %(failed)s - 1) j;
CREATE TEMP TABLE recon_id ON COMMIT DROP AS
SELECT k, %(base)s + row_number() OVER (ORDER BY ts, k) - 1 AS id FROM recon_gen;
INSERT INTO payments_transaction (id, merchant_id, acquirer_id, order_id, txn_time, txn_type, txn_sub_type, biz_type,
    channel_type, access_type, amount, currency, status, resp_code, resp_msg, query_id, trace_no, trace_time,
    settle_date, orig_query_id, orig_id, card_masked, card_hash, card_type, req_reserved, refunded_amount, source,
    created_at, updated_at)
SELECT i.id, %(merchant)s, %(acquirer)s,
       CASE WHEN x.status = 'failed' THEN 'RX' WHEN x.orig_k IS NULL THEN 'RF' ELSE 'RV' END
           || lpad(i.id::text, 14, '0'),
       x.ts, x.txn_type, CASE WHEN x.orig_k IS NULL THEN '01' ELSE '00' END, '000201', '07', '0',
       CASE WHEN x.orig_k IS NULL THEN x.amount WHEN x.txn_type = '31' OR x.r < 0.5 THEN o.amount
            ELSE greatest(1, o.amount / 2) END,
       '156', x.status, CASE WHEN x.status = 'failed' THEN '61' ELSE '00' END,
       CASE WHEN x.status = 'failed' THEN '交易失败' ELSE '成功[0000000]' END,
       CASE WHEN x.status = 'failed' THEN NULL ELSE '20260115' || lpad(i.id::text, 13, '0') END,
       lpad((i.id %% 1000000)::text, 6, '0'), to_char(x.ts AT TIME ZONE 'Asia/Shanghai', 'MMDDHH24MISS'), %(day)s,
       coalesce('20260115' || lpad(oi.id::text, 13, '0'), ''), oi.id,
       CASE WHEN x.status = 'failed' THEN '622202*********0000'
            ELSE '622202*********' || lpad((coalesce(oi.id, i.id) %% 10000)::text, 4, '0') END,
       md5(coalesce(oi.id, i.id)::text) || md5(coalesce(oi.id, i.id)::text),
       CASE WHEN x.status = 'failed' THEN '01'
            WHEN coalesce(o.r_card, x.r_card) < 0.60 THEN '01' WHEN coalesce(o.r_card, x.r_card) < 0.93 THEN '02'
            WHEN coalesce(o.r_card, x.r_card) < 0.97 THEN '03' ELSE '' END,
       CASE WHEN x.r_memo < 0.0001 THEN '备注:' || i.id WHEN x.r_memo < 0.1 THEN 'memo=' || i.id ELSE '' END,
       0, 'import', now(), now()
FROM recon_gen x
JOIN recon_id i ON i.k = x.k
LEFT JOIN recon_gen o ON o.k = x.orig_k
LEFT JOIN recon_id oi ON oi.k = x.orig_k
ORDER BY i.id;
"""


def file_rows(merchant) -> int:
    from payments.models import Transaction

    return Transaction.objects.filter(
        merchant=merchant, settle_date=DAY, status="success", txn_type__in=["01", "03", "04", "31", "33"]
    ).count()


def in_time_order() -> bool:
    """True when the ledger's heap follows txn_time (the load below); an older bench database was filled in id order
    with random times, which made reading the day in file order a random heap access per row."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT correlation FROM pg_stats WHERE tablename = 'payments_transaction' AND attname = 'txn_time'"
        )
        row = cursor.fetchone()
    return row is not None and row[0] is not None and row[0] > 0.99


def ensure_day(db_name: str, rows: int):
    """The benchmark merchant with ``rows`` settled transactions on DAY (loaded once, in time order)."""
    from django.db import connection, transaction

    from payments.settlement import settlement_window

    merchant = _organisations()
    have = file_rows(merchant)
    if have == rows and in_time_order():
        common.log(f"{db_name}: {rows:,} rows of the merchant day already loaded, reused")
        return merchant
    common.log(f"{db_name}: loading {rows:,} rows for one merchant day in time order (INSERT … SELECT)")
    began = time.monotonic()
    reversals = rows * 4 // 100
    payments, failed = rows - reversals, rows * 5 // 100
    start, end = settlement_window(DAY)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM payments_transaction WHERE merchant_id = %s", [merchant.pk])
        deleted = cursor.rowcount
        cursor.execute("SELECT pg_get_serial_sequence('payments_transaction', 'id')")
        seq = cursor.fetchone()[0]
        total = payments + reversals + failed
        cursor.execute("SELECT setval(%s, nextval(%s) + %s)", [seq, seq, total])
        base = cursor.fetchone()[0] - total + 1
        params = {"base": base, "start": start, "end": end, "day": DAY, "payments": payments, "failed": failed,
                  "reversals": reversals, "merchant": merchant.pk, "acquirer": merchant.acquirer_id}  # fmt: skip
        for statement in LOAD_SQL.split(";\n"):
            if statement.strip():
                cursor.execute(statement, params)
    with common.pg_connect(db_name) as conn:
        # After a reload, FULL drops the old rows' space (kept in heap order), so that no scan reads dead pages.
        conn.execute(f"VACUUM ({'FULL, ' if deleted else ''}ANALYZE) payments_transaction")
    common.log(f"loaded in {time.monotonic() - began:.0f} s")
    return merchant


def time_copy(merchant, out: Path, *, ordered: bool) -> float:
    """The baseline: ``COPY (SELECT <the ZM rows' columns> …) TO STDOUT``, drained into a file with the reader the
    ZM path uses (``portal.core.pgcopy``: rows taken from libpq a batch at a time)."""
    from django.db import connection

    from portal.core.pgcopy import copy_out_batches

    sql = (
        f"COPY (SELECT {BASELINE_COLUMNS} FROM payments_transaction WHERE merchant_id = %(m)s AND settle_date = %(d)s"
        f" AND status = 'success' AND txn_type IN ('01', '03', '04', '31', '33')"
        f"{' ORDER BY txn_time, id' if ordered else ''}) TO STDOUT"
    )
    out.unlink(missing_ok=True)  # a new file, as the ZM run writes (truncating a large old one costs time)
    began = time.perf_counter()
    with open(out, "wb") as sink, connection.cursor() as cursor:
        for batch in copy_out_batches(cursor.cursor, sql, {"m": merchant.pk, "d": DAY}):
            sink.write(b"".join(batch))
    return time.perf_counter() - began


def time_zm(merchant, out: Path) -> float:
    from reconciliation.producers.network import write_zm_file

    out.unlink(missing_ok=True)
    began = time.perf_counter()
    with open(out, "wb") as sink:
        write_zm_file(merchant, DAY, sink)
    return time.perf_counter() - began


def time_zip(merchant, out: Path) -> float:
    from reconciliation.producers.network import write_merchant_zip

    began = time.perf_counter()
    with open(out, "wb") as sink:
        write_merchant_zip(merchant, DAY, sink)
    return time.perf_counter() - began


def check_zm(merchant, path: Path, rows: int) -> None:
    """The file holds ``rows`` lines of 607 bytes with CRLF, and its totals equal the settlement summary."""
    from payments.gateway.acp.reconfiles import parse_zm, totals
    from reconciliation.services.close import settlement_compute_day

    size = path.stat().st_size
    if size != rows * 609:
        raise SystemExit(f"ZM file is {size} bytes, expected {rows} lines of 607 + CRLF")
    with open(path, "rb") as f:
        t = totals(parse_zm(f, strict=True))
    summary = settlement_compute_day(day=DAY).merchants[merchant.pk]
    expected = (
        summary["payment_count"] + summary["void_count"] + summary["refund_count"],
        summary["payment_amount"] + summary["void_amount"] + summary["refund_amount"],
        -summary["fee"],
        summary["net"],
    )
    if (t.count, t.amount, t.fee, t.settlement) != expected:
        raise SystemExit(f"ZM totals {t} differ from the settlement summary {expected}")


def main(rows: int | None = None, repeat: int = 3, check: bool = False) -> str:
    rows = rows or ROWS
    db_name = database_name(rows)
    common.ensure_database(db_name)
    common.django_setup(db_name)
    merchant = ensure_day(db_name, rows)
    from reconciliation.producers import network_pg

    if not network_pg.available():
        raise SystemExit("the ZM fast path is not available on this database")
    work = common.VAR / db_name
    work.mkdir(parents=True, exist_ok=True)
    copy_path, zm_path, zip_path = work / "baseline.copy", work / "zm.txt", work / "recon.zip"
    time_copy(merchant, copy_path, ordered=False)  # warm-up: the day's pages in shared buffers / the page cache
    time_zm(merchant, zm_path)
    copy_s, copy_ordered_s, zm_s = [], [], []
    for run in range(repeat):  # interleaved, so that the shared machine's load weighs on both alike
        copy_s.append(time_copy(merchant, copy_path, ordered=False))
        copy_ordered_s.append(time_copy(merchant, copy_path, ordered=True))
        zm_s.append(time_zm(merchant, zm_path))
        common.log(
            f"run {run + 1}: copy {copy_s[-1]:.2f} s, ordered copy {copy_ordered_s[-1]:.2f} s, zm {zm_s[-1]:.2f} s"
        )
    if check or rows <= 100_000:
        check_zm(merchant, zm_path, rows)
    zip_s = time_zip(merchant, zip_path)
    median_copy, median_zm = statistics.median(copy_s), statistics.median(zm_s)
    median_ordered = statistics.median(copy_ordered_s)
    return common.result(
        "recon_files",
        rows=rows,
        zm_s=median_zm,
        copy_s=median_copy,
        ratio=median_zm / median_copy,
        copy_ordered_s=median_ordered,
        ordered_ratio=median_zm / median_ordered,
        zip_s=zip_s,
        zm_mb=zm_path.stat().st_size / 1e6,
        zip_mb=zip_path.stat().st_size / 1e6,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS, help="transactions of the merchant day (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each (median)")
    parser.add_argument("--check", action="store_true", help="parse the ZM file and check its totals (slow)")
    args = parser.parse_args()
    main(args.rows, args.repeat, args.check)
