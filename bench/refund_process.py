"""``refund_process``: lines per second of an approved refund batch through the sandbox gateway, with 1, 2
and 4 Celery workers.

``python bench/refund_process.py [--rows 2000] [--workers 1,2,4] [--ledger-rows 100000]`` prints
``RESULT refund_process workers=1 lines_per_s=... workers=2 lines_per_s=... workers=4 lines_per_s=...``.
See bench/README.md.

The sandbox acquirer is the portal's own (``/sandbox/acp/``) served by gunicorn (4 sync workers) on a free
port; the Celery workers (``celery -A portal worker --pool=prefork -c N``) reach it through ``ACP_BASE_URL``
and take their tasks from Redis. For each worker count a fresh file of ``--rows`` lines (100 fen each, refunds
of distinct payments as far as they go) is uploaded and validated (by the worker), moved to ``approved`` with
the pipeline's own hook (the review itself is not timed) and processed: ``lines_per_s`` = valid lines / (time
from the approval's commit to the batch's ``processed_at``).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, refund_common

BROKER = "redis://127.0.0.1:6379/13"
LINE_FEN = 100
# Lines per processing chunk (one task each): 2,000 lines make 20 tasks, enough to keep 4 workers busy to the end.
CHUNK = 100
FINAL = {"completed", "partially_completed", "failed"}


def mirror_in_sandbox(db_name: str, merchant_id: int) -> int:
    """The sandbox network must know the payments being refunded: copy the merchant's successful payments
    from the ledger into the sandbox's table (once; ``query_id`` is unique there)."""
    sql = """
        INSERT INTO sandbox_sandboxtransaction (mer_id, order_id, txn_time, txn_type, txn_sub_type, biz_type,
            channel_type, access_type, amount, currency, status, resp_code, query_id, orig_query_id, settle_date,
            trace_no, trace_time, card_masked, card_hash, card_type, refunded_amount, req_reserved, back_url,
            notify_attempts, created_at)
        SELECT o.code, t.order_id, t.txn_time, t.txn_type, t.txn_sub_type, t.biz_type, t.channel_type,
            t.access_type, t.amount, t.currency, 'success', '00', t.query_id, '', t.settle_date, t.trace_no,
            t.trace_time, t.card_masked, t.card_hash, t.card_type, t.refunded_amount, '', '', 0, now()
        FROM payments_transaction t JOIN accounts_organisation o ON o.id = t.merchant_id
        WHERE t.merchant_id = %s AND t.status = 'success' AND t.txn_type IN ('01', '03') AND t.query_id IS NOT NULL
        ON CONFLICT (query_id) DO NOTHING
    """
    with common.pg_connect(db_name) as conn:
        return conn.execute(sql, [merchant_id]).rowcount


def plan(originals: list[tuple[str, int]], lines: int, tag: str):
    """``lines`` refunds of ``LINE_FEN`` each, round-robin over the payments that can take them."""
    usable = [q for q, a in originals if a > LINE_FEN]
    per = -(-lines // max(1, len(usable)))
    usable = [q for q, a in originals if a > LINE_FEN * per]
    if len(usable) * per < lines:
        raise SystemExit(f"not enough refundable payments for {lines} lines")
    produced = 0
    for _pass in range(per):
        for qid in usable:
            if produced == lines:
                return
            yield refund_common.order_id(tag, produced), LINE_FEN, qid
            produced += 1


def start_workers(env: dict[str, str], concurrency: int, name: str) -> subprocess.Popen:
    log = open(common.VAR / f"celery-{name}.log", "wb")
    cmd = [sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool=prefork", "-c", str(concurrency),
           "-l", "WARNING", "-n", f"{name}@localhost", "--without-gossip", "--without-mingle"]  # fmt: skip
    process = subprocess.Popen(cmd, cwd=common.ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)  # fmt: skip
    log.close()
    from portal.celery import app

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"celery exited with {process.returncode}; see var/bench/celery-{name}.log")
        if app.control.inspect(destination=[f"{name}@localhost"], timeout=1.0).ping():
            return process
    raise RuntimeError("the Celery worker did not answer a ping within 60 s")


def stop_workers(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_status(batch_id: int, wanted: set[str], timeout: float) -> str:
    from portal.batches.models import Batch

    deadline = time.monotonic() + timeout
    while True:
        status = Batch.objects.filter(pk=batch_id).values_list("status", flat=True).first()
        if status in wanted or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        try:
            todo += [int(c) for c in Path(f"/proc/{current}/task/{current}/children").read_text().split()]
        except OSError:
            pass
    return out


def _cpu(groups: dict[str, list[int]]) -> dict[str, float]:
    answer = {}
    for name, pids in groups.items():
        total = 0.0
        for pid in pids:
            try:
                total += common.cpu_seconds([pid])
            except (OSError, IndexError):
                pass  # ended meanwhile
        answer[name] = total
    return answer


def one_run(
    db_name: str, user_id: int, merchant_id: int, lines: int, concurrency: int, env: dict, server: common.Server
) -> dict:
    from django.core.files import File
    from django.db import transaction

    from portal.accounts.models import User
    from portal.batches.choices import BatchStatus
    from portal.batches.models import Batch
    from portal.batches.services import batch_on_approved, batch_transition, batch_upload

    originals = refund_common.eligible_originals(db_name, merchant_id)
    path = common.VAR / db_name / f"refund_process_{lines}_{concurrency}.txt"
    refund_common.write_text_file(path, plan(originals, lines, refund_common.run_tag()))
    name = f"bench-refund-{os.getpid()}-{concurrency}"
    workers = start_workers(env, concurrency, name)
    try:
        user = User.objects.select_related("organisation").get(pk=user_id)
        with open(path, "rb") as fh:
            batch = batch_upload(actor=user, kind="refund", uploaded_file=File(fh, name=path.name))
        status = wait_status(batch.pk, {"validated", "invalid"}, timeout=600)
        batch.refresh_from_db()
        if status != "validated" or batch.valid_lines != lines:
            raise SystemExit(f"batch {batch.pk} did not validate: {status} {batch.valid_lines}/{lines}")
        groups = {"worker": _tree(workers.pid), "sandbox_and_portal": server.worker_pids()}
        cpu_before = _cpu(groups)
        with transaction.atomic():
            batch_transition(batch_id=batch.pk, old={BatchStatus.VALIDATED}, new=BatchStatus.PENDING_REVIEW)
            batch_on_approved(batch_id=batch.pk, approval=None)
        began = time.time()
        status = wait_status(batch.pk, FINAL, timeout=3600)
        batch = Batch.objects.get(pk=batch.pk)
        elapsed = (batch.processed_at.timestamp() if batch.processed_at else time.time()) - began
        cpu_after = _cpu(groups)
    finally:
        stop_workers(workers)
        path.unlink(missing_ok=True)
    answer = {
        "workers": concurrency,
        "status": status,
        "lines": batch.valid_lines,
        "succeeded": batch.succeeded_lines,
        "failed": batch.failed_lines,
        "seconds": elapsed,
        "lines_per_s": batch.valid_lines / elapsed,
        # CPU per line (ms): the Celery worker's processes, and the gunicorn serving the sandbox acquirer and the
        # portal's notification receiver (PostgreSQL's backends come and go: not counted).
        "cpu_ms_per_line": {k: round((cpu_after[k] - cpu_before[k]) / lines * 1000, 1) for k in groups},
    }
    common.log(f"batch {batch.pk}: {answer}")
    if batch.succeeded_lines != lines:
        raise SystemExit(f"not every line succeeded: {answer}")
    return answer


def main(rows: int, worker_counts: list[int], ledger_rows: int = 100_000) -> str:
    db_name = common.database_name(ledger_rows)
    common.ensure_database(db_name)
    common.ensure_rows(db_name, ledger_rows)
    with common.gunicorn("portal.wsgi:application", common.bench_env(db_name), workers=4) as server:
        env = common.bench_env(
            db_name,
            BATCH_CHUNK_SIZE=str(CHUNK),
            CELERY_BROKER_URL=BROKER,
            CELERY_TASK_ALWAYS_EAGER="0",
            ACP_BASE_URL=server.url + "/sandbox/acp",
            ACP_BACK_URL=server.url + "/gateway/acp/notify/",
        )
        keys = ("BATCH_CHUNK_SIZE", "CELERY_BROKER_URL", "CELERY_TASK_ALWAYS_EAGER", "ACP_BASE_URL", "ACP_BACK_URL")
        common.django_setup(db_name, **{k: env[k] for k in keys})
        from payments.gateway.config import ensure_sandbox_material

        ensure_sandbox_material()
        user = common.bench_user(common.MERCHANT_USER, merchant=True)
        mirrored = mirror_in_sandbox(db_name, user.organisation_id)
        common.log(f"{mirrored:,} payments copied into the sandbox network")
        import redis

        redis.Redis.from_url(BROKER).flushdb()
        results = [one_run(db_name, user.pk, user.organisation_id, rows, c, env, server) for c in worker_counts]
    line = "RESULT refund_process rows=%d" % rows
    for answer in results:
        line += f" workers={answer['workers']} lines_per_s={answer['lines_per_s']:.1f}"
    base = results[0]["lines_per_s"]
    line += " scaling=" + "/".join(f"{a['lines_per_s'] / base:.2f}" for a in results)
    cpu = results[0]["cpu_ms_per_line"]
    line += " " + " ".join(f"cpu_ms_per_line_{k}={v}" for k, v in cpu.items())
    print(line, flush=True)
    return line


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000, help="lines of each batch")
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated")
    parser.add_argument("--ledger-rows", type=int, default=100_000, help="ledger rows (database)")
    args = parser.parse_args()
    main(args.rows, [int(n) for n in args.workers.split(",")], args.ledger_rows)
