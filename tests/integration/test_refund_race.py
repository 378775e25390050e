"""Refund cap under concurrent requests on PostgreSQL: many threads refunding one payment never
hold or refund more than its amount (row lock on the original)."""

from __future__ import annotations

import threading
from unittest import mock

import pytest
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from payments.models import Transaction
from payments.settlement import settlement_date_for
from refunds.errors import RefundError
from refunds.models import Refund
from refunds.services import refund_request

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("pg_transactional_db")]

THREADS = 12


def test_concurrent_refunds_never_exceed_the_payment(operator_a):
    when = timezone.now() - timezone.timedelta(days=2)
    payment = Transaction.objects.create(
        merchant=operator_a.organisation,
        acquirer_id=operator_a.organisation.acquirer_id,
        order_id="RACEPAY00000001",
        txn_time=when,
        txn_type="01",
        amount=10000,
        status="success",
        query_id="202603101200009999999",
        settle_date=settlement_date_for(when),
        source="sandbox",
    )
    barrier = threading.Barrier(THREADS)
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker():
        try:
            barrier.wait()
            with mock.patch("refunds.tasks.send_refund.delay"):
                refund_request(actor=operator_a, original=payment, amount=3000, reason="race")
            result = "ok"
        except RefundError as exc:
            result = exc.code
        finally:
            connection.close()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert sorted(outcomes) == ["amount_exceeds"] * (THREADS - 3) + ["ok"] * 3
    assert Refund.objects.filter(original=payment).aggregate(s=Sum("amount"))["s"] == 9000
