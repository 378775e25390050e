"""Shared machinery of the refund batch benchmarks (issue 4, §6): the files, the measured run, the cleanup.

The refund file is generated from the ledger of the benchmark merchant (``bench_operator``'s merchant):
successful payments still inside the refund window with something left to refund, each named by its
``origQryId`` in ``k`` lines (``k`` = lines / eligible payments, rounded up) of ``(amount - refunded) // k``
fen, in round-robin order (pass 1 names every payment once, pass 2 again, ...), so every line is valid
and the cap check of each chunk meets the earlier chunks' lines of the same payments.

A measured run is a fresh Python process (``python bench/refund_common.py measure ...``) that uploads the
file through ``batches.services.batch_upload`` with ``CELERY_TASK_ALWAYS_EAGER=1``, so that the
validation task runs in the same process at commit, and prints one JSON line: wall time from upload to
``validated``, the batch's counters and the peak RSS of the process (``ru_maxrss``) and of its
PostgreSQL backend (``VmHWM``). The batch is deleted afterwards so that the next run meets a clean table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

ORDER_PREFIX = "RB"
WINDOW_MARGIN_DAYS = 10


def order_id(run_tag: str, index: int) -> str:
    """A refund order id (letters and digits, 8–32): ``RB`` + run tag + the line's index in base 36."""
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = ""
    while True:
        index, rem = divmod(index, 36)
        out = digits[rem] + out
        if not index:
            break
    return f"{ORDER_PREFIX}{run_tag}{out.rjust(5, '0')}"


def prepare(db_name: str) -> tuple[int, int]:
    """Django set up on ``db_name``; the benchmark operator and its merchant (ids)."""
    common.django_setup(db_name)
    user = common.bench_user(common.MERCHANT_USER, merchant=True)
    return user.pk, user.organisation_id


def eligible_originals(db_name: str, merchant_id: int, limit: int | None = None) -> list[tuple[str, int]]:
    """``(query_id, refundable fen)`` of the merchant's refundable payments, oldest first."""
    from payments.selectors import merchant_refund_window_days
    from portal.accounts.models import Organisation

    window = merchant_refund_window_days(Organisation.objects.get(pk=merchant_id)) - WINDOW_MARGIN_DAYS
    sql = (
        "SELECT query_id, amount - refunded_amount FROM payments_transaction t "
        "WHERE merchant_id = %s AND status = 'success' AND txn_type IN ('01', '03') AND query_id IS NOT NULL "
        "AND refunded_amount < amount AND txn_time > now() - make_interval(days => %s) "
        "AND NOT EXISTS (SELECT 1 FROM refunds_refund r WHERE r.original_id = t.id) ORDER BY id"
    )
    if limit:
        sql += f" LIMIT {int(limit)}"
    with common.pg_connect(db_name) as conn:
        return [(q, int(a)) for q, a in conn.execute(sql, [merchant_id, window]).fetchall()]


def plan_lines(originals: list[tuple[str, int]], lines: int, run_tag: str):
    """``(order_id, fen, query_id)`` for ``lines`` lines over ``originals`` (round-robin, see the module)."""
    usable = [(q, a) for q, a in originals if a >= 1]
    per = -(-lines // max(1, len(usable)))
    usable = [(q, a) for q, a in usable if a >= per]
    per = -(-lines // max(1, len(usable)))
    if not usable or per * len(usable) < lines:
        raise SystemExit(f"not enough refundable payments for {lines} lines ({len(usable)} usable)")
    produced = 0
    for _pass in range(per):
        for qid, refundable in usable:
            if produced == lines:
                return
            yield order_id(run_tag, produced), refundable // per, qid
            produced += 1


def write_text_file(path: Path, planned) -> tuple[int, int]:
    """The ACP batch text layout (LF), amounts in fen; returns (lines, total fen)."""
    body = path.with_suffix(".body")
    count = total = 0
    with open(body, "w", encoding="ascii", newline="\n") as out:
        for oid, fen, qid in planned:
            out.write(f"{oid}|{fen}|{qid}\n")
            count += 1
            total += fen
    with open(path, "wb") as out, open(body, "rb") as src:
        out.write(f"5.0.0|{total}|{count}||\norderId|txnAmt|origQryId\n".encode())
        while block := src.read(1 << 20):
            out.write(block)
    body.unlink()
    return count, total


def run_tag() -> str:
    return time.strftime("%m%d%H%M%S")


# --- the measured run (a fresh process) -----------------------------------------------------------------------


def measure(db_name: str, path: Path, *, user_id: int, extra_env: dict | None = None) -> dict:
    """Run ``measure`` in a fresh Python process; its JSON answer."""
    env = common.bench_env(db_name, CELERY_TASK_ALWAYS_EAGER="1", **(extra_env or {}))
    cmd = [sys.executable, str(Path(__file__).resolve()), "measure", "--db", db_name, "--file", str(path),
           "--user", str(user_id)]  # fmt: skip
    done = subprocess.run(cmd, cwd=common.ROOT, env=env, check=True, stdout=subprocess.PIPE)
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


def _backend_peak_mb(connection) -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        return common.peak_rss_mb(pid)
    except OSError:
        return float("nan")


class _BackendPeaks(threading.Thread):
    """Polls the peak memory (VmHWM) of every PostgreSQL backend of the database while the run goes on:
    the pipeline may work on a second connection, whose backend ends before the run does."""

    def __init__(self, db_name: str) -> None:
        super().__init__(daemon=True)
        self.db_name, self.peak = db_name, 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        with common.pg_connect(self.db_name) as conn:
            while not self.stop.wait(0.05):
                pids = conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ).fetchall()
                for (pid,) in pids:
                    with contextlib.suppress(OSError, ValueError):
                        self.peak = max(self.peak, common.peak_rss_mb(pid))


def _measure_main(db_name: str, path: Path, user_id: int) -> None:
    import resource

    common.django_setup(db_name, CELERY_TASK_ALWAYS_EAGER="1")
    from django.core.files import File
    from django.db import connection

    from portal.accounts.models import User
    from portal.batches.services import batch_upload

    user = User.objects.select_related("organisation").get(pk=user_id)
    timings: dict[str, list] = {}
    if os.environ.get("BENCH_QUERY_TIMES"):
        # Diagnostics: time per statement shape (first 90 characters), summed, on stderr at the end.
        def timer(execute, sql, params, many, context):
            began = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                slot = timings.setdefault(sql[:90], [0, 0.0])
                slot[0] += 1
                slot[1] += time.perf_counter() - began

        connection.execute_wrappers.append(timer)
    checkpoint(connection)
    backends = _BackendPeaks(db_name)
    backends.start()
    with open(path, "rb") as fh:
        upload = File(fh, name=path.name)
        began = time.perf_counter()
        batch = batch_upload(actor=user, kind="refund", uploaded_file=upload)
        elapsed = time.perf_counter() - began
    backends.stop.set()
    backends.join()
    for shape, (n, secs) in sorted(timings.items(), key=lambda kv: -kv[1][1])[:15]:
        print(f"{secs:8.2f} s {n:6} x {shape}", file=sys.stderr)
    batch.refresh_from_db()
    answer = {
        "seconds": elapsed,
        "status": batch.status,
        "error": batch.error_code,
        "total_lines": batch.total_lines,
        "valid_lines": batch.valid_lines,
        "invalid_lines": batch.invalid_lines,
        "valid_amount": batch.valid_amount,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "backend_peak_mb": max(_backend_peak_mb(connection), backends.peak),
        "batch_id": batch.pk,
    }
    if batch.invalid_lines:
        from portal.batches.models import BatchLine

        answer["sample_errors"] = list(
            BatchLine.objects.filter(batch=batch, status="invalid").values_list("line_no", "error_code")[:5]
        )
    if not os.environ.get("BENCH_KEEP_BATCH"):  # kept for a look at the validated batch (delete_batch after)
        delete_batch(batch.pk)
    print(json.dumps(answer), flush=True)


def checkpoint(connection) -> None:
    """Write out what earlier steps of the run left dirty (the previous batch's deletion, the baseline's
    table), so that the timed step does not pay for it in a checkpoint that falls inside it."""
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")


def delete_batch(batch_id: int) -> None:
    """Drop a benchmark batch with its lines, order ids and status rows (raw SQL: no per-row signals)."""
    from django.db import connection, transaction

    from portal.batches import storage
    from portal.batches.models import Batch

    names = list(Batch.objects.filter(pk=batch_id).values_list("stored_name", "result_name"))
    with transaction.atomic(), connection.cursor() as cursor:
        for table in ("batches_batchline", "batches_batchorderid", "batches_batchstatuschange"):
            cursor.execute(f"DELETE FROM {table} WHERE batch_id = %s", [batch_id])
        cursor.execute("DELETE FROM batches_batch WHERE id = %s", [batch_id])
    # The next run must meet the same tables, not a million dead rows in each (and their index entries).
    with connection.cursor() as cursor:
        cursor.execute("VACUUM batches_batchline, batches_batchorderid")
    for stored, result in names:
        storage.delete(stored)
        storage.delete(result)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--db", required=True)
    m.add_argument("--file", required=True, type=Path)
    m.add_argument("--user", required=True, type=int)
    args = parser.parse_args(argv)
    if os.environ.get("BENCH_PROFILE"):
        import cProfile

        cProfile.runctx(
            "_measure_main(args.db, args.file, args.user)", globals(), locals(), os.environ["BENCH_PROFILE"]
        )
    else:
        _measure_main(args.db, args.file, args.user)
    return 0


if __name__ == "__main__":
    sys.exit(main())
