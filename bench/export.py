"""``export``: a 1,000,000-row detail download against PostgreSQL ``COPY (the same query) TO STDOUT``.

The set is an acquirer's history over the last N Beijing days, N chosen so that it holds at least the target
row count (a tenth of the ledger: 1,000,000 of 10,000,000).

- ``csv_s``: the CSV downloaded through HTTP from gunicorn (``TRANSACTIONS_EXPORT_STREAM_LIMIT`` raised by
  ``bench/settings_export.py`` so that the view streams it instead of queuing a job), request to last byte.
- ``copy_s``: ``COPY (<the SQL the export runs>) TO STDOUT WITH CSV`` through psycopg, drained.
- ``job_csv_s``: the same CSV written by the background job (``export_request`` + ``export_run``), which is
  what the portal does at this size with the default settings.
- ``xlsx_s`` / ``xlsx_peak_mb``: the XLSX written by the background job in its own process, and that
  process's peak resident memory (VmHWM, Django included).
"""

from __future__ import annotations

import json
import subprocess
import time
from datetime import timedelta
from urllib.parse import urlencode

from . import common


def pick_range(target: int) -> tuple[str, str, int]:
    """The last N Beijing days (ending today) whose rows first reach ``target``: (from, to, rows)."""
    from django.db.models import Count
    from django.db.models.functions import TruncDate

    from payments import settlement
    from payments.models import Transaction

    tz = settlement.business_tz()
    per_day = dict(
        Transaction.objects.annotate(day=TruncDate("txn_time", tzinfo=tz))
        .order_by()
        .values("day")
        .annotate(n=Count("id"))
        .values_list("day", "n")
    )
    today = settlement.business_today()
    day, total = today, 0
    while total < target and day >= min(per_day, default=today):
        total += per_day.get(day, 0)
        day -= timedelta(days=1)
    return (day + timedelta(days=1)).isoformat(), today.isoformat(), total


def export_sql(user, date_from: str, date_to: str) -> tuple[str, int]:
    """The SQL the export runs for this filter (as ``exports.iter_rows`` builds it), literal, and its row count."""
    from types import SimpleNamespace

    import psycopg
    from django.db import connection
    from django.http import QueryDict

    from payments import exports
    from payments.filtersets import TransactionFilterSet
    from payments.models import Transaction

    data = QueryDict(mutable=True)
    data.update({"date_from": date_from, "date_to": date_to})
    filterset = TransactionFilterSet(
        data, queryset=Transaction.objects.visible_to(user), request=SimpleNamespace(user=user), mode="history"
    )
    if not filterset.is_valid():
        raise RuntimeError(f"filter invalid: {filterset.errors}")
    qs = filterset.qs
    rows = qs.count()
    sort = filterset.sort_order
    export_qs = qs.order_by(sort, "-id" if sort.startswith("-") else "id").values_list(*exports._FIELDS)
    sql, params = export_qs.query.sql_with_params()
    connection.ensure_connection()
    literal = psycopg.ClientCursor(connection.connection).mogrify(sql, params)
    return literal, rows


def time_copy(db_name: str, sql: str) -> tuple[float, int]:
    size = 0
    with common.pg_connect(db_name) as conn:
        cursor = conn.cursor()
        began = time.perf_counter()
        with cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy:
            for block in copy:
                size += len(block)
        return time.perf_counter() - began, size


def time_http_csv(server_url: str, session_key: str, date_from: str, date_to: str) -> tuple[float, int, int]:
    import httpx

    query = urlencode(
        {"file_format": "csv", "encoding": "utf-8", "scope": "history", "date_from": date_from, "date_to": date_to}
    )
    size = lines = 0
    with httpx.Client(cookies={common.SESSION_COOKIE: session_key}, timeout=900) as client:
        began = time.perf_counter()
        with client.stream("GET", f"{server_url}/transactions/export/?{query}") as response:
            if response.status_code != 200 or not response.headers["content-type"].startswith("text/csv"):
                raise RuntimeError(f"export answered {response.status_code} {response.headers.get('location', '')}")
            for block in response.iter_bytes():
                size += len(block)
                lines += block.count(b"\n")
        return time.perf_counter() - began, size, lines - 1


def run_job(db_name: str, fmt: str, date_from: str, date_to: str) -> dict:
    out = common.run(
        [common.PYTHON, "bench/export_job.py", db_name, fmt, date_from, date_to],
        env=common.bench_env(db_name),
        capture_output=True,
        text=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["status"] != "ready":
        raise RuntimeError(f"export job ended {result['status']}")
    return result


def main(rows: int) -> str:
    db_name = common.database_name(rows)
    common.ensure_database(db_name)
    loaded = common.ensure_rows(db_name, rows)
    common.django_setup(db_name)
    user = common.bench_user(common.ACQUIRER_USER, merchant=False)
    session_key = common.signed_in_session(user)
    date_from, date_to, _approx = pick_range(loaded // 10)
    sql, matched = export_sql(user, date_from, date_to)
    common.log(f"export of {matched:,} rows ({date_from} .. {date_to})")

    copy_s, copy_bytes = time_copy(db_name, sql)  # warms the cache for both sides alike
    copy_s, copy_bytes = time_copy(db_name, sql)
    common.log(f"COPY: {copy_s:.2f} s, {copy_bytes / 1e6:.0f} MB")

    env = common.bench_env(
        db_name, DJANGO_SETTINGS_MODULE="bench.settings_export", BENCH_EXPORT_STREAM_LIMIT=str(matched + 1)
    )
    with common.gunicorn("portal.wsgi:application", env, workers=2) as server:
        csv_s, csv_bytes, csv_rows = time_http_csv(server.url, session_key, date_from, date_to)
        worker_peaks = [common.peak_rss_mb(pid) for pid in server.worker_pids()]
    common.log(f"HTTP CSV: {csv_s:.2f} s, {csv_bytes / 1e6:.0f} MB, {csv_rows:,} rows, workers peak {worker_peaks}")
    if csv_rows != matched:
        raise RuntimeError(f"the CSV holds {csv_rows} rows, the filter {matched}")

    job_csv = run_job(db_name, "csv_utf8", date_from, date_to)
    common.log(f"job CSV: {job_csv}")
    xlsx = run_job(db_name, "xlsx", date_from, date_to)
    common.log(f"job XLSX: {xlsx}")
    for path in (job_csv["path"], xlsx["path"]):
        subprocess.run(["rm", "-f", path], check=False)
    return common.result(
        "export",
        csv_s=csv_s,
        copy_s=copy_s,
        ratio=csv_s / copy_s,
        job_csv_s=job_csv["seconds"],
        job_ratio=job_csv["seconds"] / copy_s,
        xlsx_s=xlsx["seconds"],
        xlsx_peak_mb=xlsx["peak_mb"],
        rows=matched,
        ledger_rows=loaded,
    )
