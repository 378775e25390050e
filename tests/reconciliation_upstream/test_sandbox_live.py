"""A sandbox day end to end over real HTTP: sandbox_traffic fills the ledger through notifications, the hourly fetch
asks the sandbox for the upstream zip (file transfer, txnType 76; the sandbox builds it from its own transactions),
imports it, and the day matches with zero discrepancies."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from payments.models import Transaction
from payments.settlement import business_today
from portal.celery import app as celery_app
from reconciliation.upstream.fetch import upstream_fetch_due
from reconciliation.upstream.models import Discrepancy, ReconciliationRun
from tests.sandbox.fixtures import acp_settings, sandbox_dir  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def live(acp_settings, live_server):  # noqa: F811
    acp_settings.ACP_BASE_URL = live_server.url + "/sandbox/acp"
    acp_settings.ACP_BACK_URL = live_server.url + "/gateway/acp/notify/"
    acp_settings.CELERY_TASK_ALWAYS_EAGER = True
    acp_settings.RECON_FETCH_LOOKBACK_DAYS = 3
    before = celery_app.conf.task_always_eager
    celery_app.conf.update(task_always_eager=True)
    yield live_server
    celery_app.conf.update(task_always_eager=before)


def test_sandbox_day_matches_the_ledger_with_zero_discrepancies(live, merchant_a):
    call_command(
        "sandbox_traffic",
        "--days",
        "4",
        "--per-day",
        "6",
        "--merchant",
        merchant_a.code,
        "--seed",
        "5",
        "--concurrency",
        "1",
        stdout=StringIO(),
    )
    assert Transaction.objects.filter(merchant=merchant_a).count() == 24
    now = timezone.now()

    created = upstream_fetch_due(now=now)

    runs = ReconciliationRun.objects.filter(pk__in=created)
    assert runs.count() >= 2
    for run in runs:
        assert run.status == "completed" and run.source == "file_transfer", run.error
        ledger = Transaction.objects.filter(merchant=merchant_a, settle_date=run.settle_date, status="success")
        assert run.record_count == ledger.count() > 0
        assert run.class_totals["matched"]["count"] == run.record_count
    assert Discrepancy.objects.count() == 0
    # Idempotent: a second pass asks nothing again.
    assert upstream_fetch_due(now=now) == []
    assert business_today(now) - timedelta(days=2) in set(runs.values_list("settle_date", flat=True))
