"""``notify``: signed ACP notifications per second through ``POST /gateway/acp/notify/``.

One gunicorn with 2 sync workers serves the portal; the portal trusts a CA made for the run with
``payments.gateway.acp.testing.generate_ca`` (``ACP_ROOT_CERT_PATHS`` / ``ACP_MIDDLE_CERT_PATHS`` /
``ACP_VERIFY_CERT_PATHS``). N notifications (5.1.0, SHA256withRSA with ``signPubKeyCert``, successful
consumption of distinct orders of the benchmark merchants) are signed beforehand and posted by 8 threads; each
is verified (chain, owner, validity, signature) and recorded in the ledger. The baseline is the same gunicorn
command line serving ``bench/bare_wsgi.py``, which parses the form body and answers 200.
"""

from __future__ import annotations

import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from . import common

THREADS = 8
WARMUP = 50


def build_notifications(ca_dir, merchant_codes: list[str], count: int, run_id: str) -> list[bytes]:
    from payments.gateway.acp.codec import encode_request
    from payments.gateway.acp.messages import format_txn_time
    from payments.gateway.acp.testing import generate_ca
    from payments.settlement import settlement_date_for

    signer = generate_ca(ca_dir).signer()
    now = datetime.now(UTC)
    settle = settlement_date_for(now).strftime("%m%d")
    bodies = []
    for i in range(count):
        stamp = format_txn_time(now)
        fields = {
            "version": "5.1.0",
            "encoding": "UTF-8",
            "signMethod": "01",
            "txnType": "01",
            "txnSubType": "01",
            "bizType": "000201",
            "accessType": "0",
            "channelType": "07",
            "merId": merchant_codes[i % len(merchant_codes)],
            "orderId": f"N{run_id}{i:08d}",
            "txnTime": stamp,
            "txnAmt": str(100 + i % 50_000),
            "currencyCode": "156",
            "settleAmt": str(100 + i % 50_000),
            "settleCurrencyCode": "156",
            "settleDate": settle,
            "queryId": f"Q{run_id}{i:08d}",
            "traceNo": f"{i % 1_000_000:06d}",
            "traceTime": stamp[4:],
            "accNo": "622202******0018",
            "payCardType": "01",
            "payType": "0001",
            "respCode": "00",
            "respMsg": "成功[0000000]",
        }
        bodies.append(encode_request(signer.sign(fields, include_cert=True)))
    return bodies


def post_all(url: str, bodies: list[bytes]) -> tuple[float, dict[int, int]]:
    """Post every body with ``THREADS`` concurrent clients; (seconds, {status: count})."""
    import httpx

    headers = {"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"}
    limits = httpx.Limits(max_connections=THREADS, max_keepalive_connections=THREADS)
    statuses: dict[int, int] = {}
    with httpx.Client(timeout=30, limits=limits) as client:

        def post(body: bytes) -> int:
            return client.post(url, content=body, headers=headers).status_code

        with ThreadPoolExecutor(THREADS) as pool:
            began = time.perf_counter()
            for status in pool.map(post, bodies):
                statuses[status] = statuses.get(status, 0) + 1
            seconds = time.perf_counter() - began
    return seconds, statuses


def main(rows: int, count: int) -> str:
    db_name = common.database_name(rows)
    common.ensure_database(db_name)
    loaded = common.ensure_rows(db_name, rows)
    ca_dir = common.VAR / db_name / "notify-ca"
    acp_env = {
        "ACP_ROOT_CERT_PATHS": str(ca_dir / "root.crt"),
        "ACP_MIDDLE_CERT_PATHS": str(ca_dir / "middle.crt"),
        "ACP_VERIFY_CERT_PATHS": str(ca_dir / "sign.crt"),
    }
    common.django_setup(db_name, **acp_env)
    from payments.models import Transaction
    from portal.accounts.models import Organisation

    (common.VAR / db_name / "queue" / "processed").mkdir(parents=True, exist_ok=True)
    merchants = list(Organisation.objects.filter(kind="merchant").order_by("code").values_list("code", flat=True))
    run_id = f"{int(time.time()) % 10**8:08d}{secrets.randbelow(100):02d}"
    common.log(f"signing {count + WARMUP} notifications")
    bodies = build_notifications(ca_dir, merchants, count + WARMUP, run_id)
    warmup, bodies = bodies[:WARMUP], bodies[WARMUP:]

    env = common.bench_env(db_name, **acp_env)
    with common.gunicorn("portal.wsgi:application", env, workers=2) as server:
        url = server.url + "/gateway/acp/notify/"
        post_all(url, warmup)
        seconds, statuses = post_all(url, bodies)
        common.log(f"portal: {count} in {seconds:.2f} s, statuses {statuses}")
        repeat_seconds, repeat_statuses = post_all(url, bodies[: count // 4])  # replays: must change nothing
    recorded = Transaction.objects.filter(order_id__startswith=f"N{run_id}").count()
    if statuses != {200: count} or recorded != count + WARMUP or repeat_statuses != {200: count // 4}:
        raise RuntimeError(f"notify: statuses {statuses}, replays {repeat_statuses}, recorded {recorded}")

    bare_env = common.bench_env(db_name)
    with common.gunicorn("bench.bare_wsgi:application", bare_env, workers=2) as server:
        url = server.url + "/gateway/acp/notify/"
        post_all(url, warmup)
        bare_seconds, bare_statuses = post_all(url, bodies)
    if bare_statuses != {200: count}:
        raise RuntimeError(f"bare server answered {bare_statuses}")
    per_s, bare_per_s = count / seconds, count / bare_seconds
    return common.result(
        "notify",
        per_s=per_s,
        bare_per_s=bare_per_s,
        ratio=per_s / bare_per_s,
        replay_per_s=(count // 4) / repeat_seconds,
        notifications=count,
        workers=2,
        threads=THREADS,
        ledger_rows=loaded,
    )
