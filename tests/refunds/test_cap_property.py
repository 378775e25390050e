"""Property: whatever sequence of single refund requests and batch lines (several files) targets one
payment, what is held or refunded never exceeds the payment's amount (security.md H3)."""

from __future__ import annotations

import itertools
from unittest import mock

import pytest
from django.db.models import Sum
from django.test import TestCase
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal.batches.models import BatchLine
from portal.batches.services import batch_upload
from refunds.errors import RefundError
from refunds.models import Refund
from refunds.services import refund_request

from .conftest import text_batch, text_file

pytestmark = pytest.mark.django_db
_ids = itertools.count(1)

action = st.one_of(
    st.tuples(st.just("single"), st.integers(min_value=1, max_value=6000)),
    st.tuples(st.just("batch"), st.lists(st.integers(min_value=1, max_value=6000), min_size=1, max_size=5)),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(actions=st.lists(action, min_size=1, max_size=6), refunded=st.integers(min_value=0, max_value=5000))
def test_refunds_and_batch_lines_never_exceed_the_payment(operator_a, make_payment, actions, refunded):
    payment = make_payment(operator_a.organisation, amount=10000, refunded_amount=refunded)
    with mock.patch("refunds.tasks.send_refund.delay"):
        for kind, value in actions:
            if kind == "single":
                try:
                    refund_request(actor=operator_a, original=payment, amount=value, reason="p")
                except RefundError:
                    pass
            else:
                rows = [(f"RFH{next(_ids):010d}", amount, payment.query_id, "p") for amount in value]
                with TestCase.captureOnCommitCallbacks(execute=True):
                    batch_upload(actor=operator_a, kind="refund", uploaded_file=text_file(text_batch(rows)))

            held = Refund.objects.filter(original=payment).aggregate(s=Sum("amount"))["s"] or 0
            lines = BatchLine.objects.filter(ref=str(payment.pk), status="valid").aggregate(s=Sum("amount"))["s"] or 0
            assert refunded + held + lines <= payment.amount
