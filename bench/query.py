"""``query``: a merchant's 30-day history page (first page of 50 rows with totals) through HTTP.

p95 latency of the page from a gunicorn server, against the p95 of the same SQL (every statement the page
issues, captured from an in-process run of the same view: the session, user, second-factor device and role
reads, the list and the totals) executed directly with psycopg; ``ledger_sql_p95_ms`` and ``ledger_ratio``
give the same for the two ledger statements alone. ``floor_p95_ms``: a signed-in page of the same layout
with no ledger statement (the help index) from the same server, what any page costs before its own work.
``server_cpu_ms``: CPU time (user + system) the gunicorn workers spent per page request. The number of SQL
queries per page comes from the in-process run.
"""

from __future__ import annotations

import statistics
import time
from datetime import timedelta
from urllib.parse import urlencode

from . import common

WARMUP = 10
FLOOR_URL = "/help/"
RUNS = 200


def history_url() -> str:
    from payments import settlement

    today = settlement.business_today()
    params = {"date_from": (today - timedelta(days=29)).isoformat(), "date_to": today.isoformat()}
    return "/transactions/history/?" + urlencode(params)


def capture_page_queries(session_key: str, url: str) -> list[str]:
    """The SQL statements one request of ``url`` runs in-process (after a warm-up request)."""
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")
    client.cookies[settings.SESSION_COOKIE_NAME] = session_key
    first = client.get(url)
    if first.status_code != 200:
        raise RuntimeError(f"in-process page answered {first.status_code} ({first.get('Location', '')})")
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    if response.status_code != 200 or b"<table" not in response.content:
        raise RuntimeError(f"in-process page answered {response.status_code} without a table")
    return [q["sql"] for q in captured.captured_queries]


def time_http(url: str, session_key: str) -> list[float]:
    import httpx

    samples = []
    with httpx.Client(cookies={common.SESSION_COOKIE: session_key}, timeout=60) as client:
        for i in range(WARMUP + RUNS):
            began = time.perf_counter()
            response = client.get(url)
            elapsed = time.perf_counter() - began
            if response.status_code != 200:
                raise RuntimeError(f"HTTP page answered {response.status_code}")
            if i >= WARMUP:
                samples.append(elapsed)
    return samples


def time_sql(db_name: str, statements: list[str]) -> list[float]:
    samples = []
    with common.pg_connect(db_name) as conn:
        for i in range(WARMUP + RUNS):
            began = time.perf_counter()
            for sql in statements:
                conn.execute(sql).fetchall()
            elapsed = time.perf_counter() - began
            if i >= WARMUP:
                samples.append(elapsed)
    return samples


def explain_to(db_name: str, statements: list[str], path) -> None:
    """Write the plans (EXPLAIN ANALYZE, BUFFERS) of the replayed statements next to the data, for the record."""
    with common.pg_connect(db_name) as conn:
        plans = []
        for sql in statements:
            lines = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}").fetchall()
            plans.append(sql + "\n" + "\n".join(line[0] for line in lines))
    path.write_text("\n\n".join(plans) + "\n")
    common.log(f"plans written to {path}")


def main(rows: int) -> str:
    db_name = common.database_name(rows)
    common.ensure_database(db_name)
    loaded = common.ensure_rows(db_name, rows)
    common.django_setup(db_name)
    user = common.bench_user(common.MERCHANT_USER, merchant=True)
    session_key = common.signed_in_session(user)
    url = history_url()
    statements = capture_page_queries(session_key, url)
    ledger = [sql for sql in statements if '"payments_transaction"' in sql]
    replay = [sql for sql in statements if sql.lstrip().upper().startswith(("SELECT", "WITH"))]
    common.log(f"page runs {len(statements)} queries, {len(ledger)} on the ledger")
    for sql in ledger:
        common.log(f"  {sql[:160]}...")
    with common.pg_connect(db_name) as conn:
        totals = [sql for sql in ledger if "COUNT(" in sql.upper()]
        matched = conn.execute(totals[0]).fetchone()[0] if totals else -1
    env = common.bench_env(db_name)
    with common.gunicorn("portal.wsgi:application", env, workers=2) as server:
        workers = server.worker_pids()
        cpu_before = common.cpu_seconds(workers)
        http = time_http(server.url + url, session_key)
        server_cpu_ms = (common.cpu_seconds(workers) - cpu_before) / (WARMUP + RUNS) * 1000
        # The floor: a signed-in page of the same layout without ledger statements (the help index).
        floor = time_http(server.url + FLOOR_URL, session_key)
    sql = time_sql(db_name, replay)
    ledger_sql = time_sql(db_name, ledger)
    explain_to(db_name, ledger, common.VAR / db_name / "query-explain.txt")
    page_p95, sql_p95 = common.p95(http) * 1000, common.p95(sql) * 1000
    ledger_p95 = common.p95(ledger_sql) * 1000
    return common.result(
        "query",
        p95_ms=page_p95,
        sql_p95_ms=sql_p95,
        ratio=page_p95 / sql_p95,
        ledger_sql_p95_ms=ledger_p95,
        ledger_ratio=page_p95 / ledger_p95,
        p50_ms=statistics.median(http) * 1000,
        server_cpu_ms=server_cpu_ms,
        floor_p95_ms=common.p95(floor) * 1000,
        floor_p50_ms=statistics.median(floor) * 1000,
        sql_p50_ms=statistics.median(sql) * 1000,
        statements=len(replay),
        queries=len(statements),
        rows=loaded,
        matched=matched,
    )
