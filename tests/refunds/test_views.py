"""Refund pages: access rules on every page, the refund / void form, the refund page with its review,
the batch page, the format page and the templates."""

from __future__ import annotations

import io
from unittest import mock

import pytest
from django.test import Client, TestCase
from django.urls import reverse
from openpyxl import load_workbook

from portal.audit.models import AuditEvent
from portal.batches.services import batch_upload
from refunds.formats.parse import parse
from refunds.models import Refund
from refunds.services import refund_request
from tests.factories import UserFactory, login_password_only

from .conftest import text_batch, text_file

pytestmark = pytest.mark.django_db


@pytest.fixture
def payment(make_payment, merchant_a):
    return make_payment(merchant_a, amount=10000)


@pytest.fixture
def refund(operator_a, payment):
    with mock.patch("refunds.tasks.send_refund.delay"):
        return refund_request(actor=operator_a, original=payment, amount=2500, reason="damaged")


@pytest.fixture
def batch(operator_a, payment):
    with TestCase.captureOnCommitCallbacks(execute=True):
        b = batch_upload(
            actor=operator_a,
            kind="refund",
            uploaded_file=text_file(text_batch([("RFV000000001", 100, payment.query_id, "x")])),
        )
    return b


@pytest.fixture
def operator_b(merchant_b):
    return UserFactory(organisation=merchant_b, username="b.operator", roles=["merchant_operator", "merchant_reviewer"])


def _object_urls(refund, payment, batch):
    return [
        reverse("refunds:detail", args=[refund.pk]),
        reverse("refunds:create", args=[payment.pk]),
        reverse("refunds:batch_detail", args=[batch.pk]),
    ]


def _all_urls(refund, payment, batch):
    return [
        reverse("refunds:index"),
        reverse("refunds:index") + "?tab=batches",
        reverse("refunds:format_help"),
        reverse("refunds:template", args=["zh", "txt"]),
        *_object_urls(refund, payment, batch),
    ]


def test_anonymous_is_sent_to_login(refund, payment, batch):
    client = Client()
    for url in _all_urls(refund, payment, batch) + [reverse("refunds:cancel", args=[refund.pk])]:
        response = client.get(url) if "cancel" not in url else client.post(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url


def test_password_only_is_sent_to_the_second_factor(operator_a, refund, payment, batch):
    client = Client()
    login_password_only(client, operator_a)
    for url in _all_urls(refund, payment, batch):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/verify/"), url
    response = client.post(reverse("refunds:create", args=[payment.pk]), {"amount": "1.00", "reason": "x"})
    assert response.status_code == 302
    assert Refund.objects.count() == 1


def test_other_organisation_gets_404_and_changes_nothing(client_for, operator_b, refund, payment, batch):
    client = client_for(operator_b)
    audit_before = AuditEvent.objects.count()
    for url in _object_urls(refund, payment, batch):
        assert client.get(url).status_code == 404, url
    assert (
        client.post(reverse("refunds:create", args=[payment.pk]), {"amount": "1.00", "reason": "x"}).status_code == 404
    )
    assert client.post(reverse("refunds:cancel", args=[refund.pk])).status_code == 404
    assert Refund.objects.count() == 1
    assert AuditEvent.objects.count() == audit_before
    assert refund.order_id not in client.get(reverse("refunds:index")).content.decode()


def test_missing_permission_is_403(client_for, admin_a, reviewer_a, refund, payment, batch):
    admin = client_for(admin_a)
    for url in _all_urls(refund, payment, batch):
        assert admin.get(url).status_code == 403, url
    reviewer = client_for(reviewer_a)
    assert reviewer.get(reverse("refunds:create", args=[payment.pk])).status_code == 403
    assert (
        reviewer.post(reverse("refunds:create", args=[payment.pk]), {"amount": "1", "reason": "x"}).status_code == 403
    )
    assert Refund.objects.count() == 1


def test_form_prefills_the_refundable_amount_and_says_refund(client_for, operator_a, payment, refund):
    response = client_for(operator_a).get(reverse("refunds:create", args=[payment.pk]))

    page = response.content.decode()
    assert response.status_code == 200
    assert 'value="75.00"' in page
    assert "This will be a refund (退货)" in page


def test_form_submits_and_shows_the_refund(client_for, operator_a, payment):
    client = client_for(operator_a)

    response = client.post(reverse("refunds:create", args=[payment.pk]), {"amount": "12.34", "reason": "damaged"})

    refund = Refund.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("refunds:detail", args=[refund.pk])
    assert (refund.amount, refund.kind, refund.maker) == (1234, "refund", operator_a)
    page = client.get(response["Location"]).content.decode()
    assert "12.34" in page and "Waiting for review" in page
    assert 'data-testid="approval-decide"' not in page  # the maker cannot decide


def test_form_refusal_is_shown_in_the_users_language(client_for, operator_a, payment):
    response = client_for(operator_a).post(
        reverse("refunds:create", args=[payment.pk]), {"amount": "100.01", "reason": "x"}, HTTP_ACCEPT_LANGUAGE="en"
    )

    assert response.status_code == 400
    assert "The amount (100.01 yuan) is more than what can still be refunded of this payment: 100.00 yuan." in (
        response.content.decode()
    )
    assert Refund.objects.count() == 0


def test_reviewer_sees_the_decision_form_and_approves(client_for, reviewer_a, refund):
    client = client_for(reviewer_a)
    page = client.get(reverse("refunds:detail", args=[refund.pk])).content.decode()
    assert 'data-testid="approval-decide"' in page

    from portal.approvals.models import ApprovalRequest

    approval = ApprovalRequest.objects.get(pk=refund.approval_id)
    with mock.patch("refunds.tasks.send_refund.delay"):
        response = client.post(
            reverse("approvals:decide", args=[approval.pk]),
            {"decision": "approve", "seen_content_hash": approval.content_hash, "stage_index": 0, "reason": ""},
        )
    assert response.status_code == 302
    refund.refresh_from_db()
    assert refund.status == "approved"


def test_maker_cancels_from_the_page(client_for, operator_a, refund):
    response = client_for(operator_a).post(reverse("refunds:cancel", args=[refund.pk]), {"reason": "typo"})

    refund.refresh_from_db()
    assert response.status_code == 302
    assert refund.status == "cancelled"


def test_transaction_page_links_to_the_refund_form(client_for, operator_a, reviewer_a, payment):
    url = reverse("payments:detail", args=[payment.pk])
    assert 'data-testid="refund-action"' in client_for(operator_a).get(url).content.decode()
    assert 'data-testid="refund-action"' not in client_for(reviewer_a).get(url).content.decode()


def test_lists_show_refunds_and_batches(client_for, operator_a, refund, batch):
    client = client_for(operator_a)
    assert refund.order_id in client.get(reverse("refunds:index")).content.decode()
    page = client.get(reverse("refunds:index") + "?tab=batches").content.decode()
    assert reverse("refunds:batch_detail", args=[batch.pk]) in page
    detail = client.get(reverse("refunds:batch_detail", args=[batch.pk]))
    assert detail.status_code == 200 and 'data-testid="approval-history"' in detail.content.decode()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_templates_download_and_parse_as_valid_files(client_for, operator_a, lang):
    client = client_for(operator_a)
    text = client.get(reverse("refunds:template", args=[lang, "txt"]))
    xlsx = client.get(reverse("refunds:template", args=[lang, "xlsx"]))

    assert text.status_code == 200 and "attachment" in text["Content-Disposition"]
    text_items = list(parse(io.BytesIO(text.content), "text"))
    xlsx_items = list(parse(io.BytesIO(xlsx.content), "xlsx"))
    assert [(i.order_id, i.amount) for i in text_items] == [("RF2026031000000001", 1000), ("RF2026031000000002", 2550)]
    assert [(i.order_id, i.amount) for i in xlsx_items] == [("RF2026031000000001", 1000), ("RF2026031000000002", 2550)]
    header = [c.value for c in load_workbook(io.BytesIO(xlsx.content)).worksheets[0][1]]
    assert header[0] == ("订单号" if lang == "zh" else "orderId")


def test_format_page_documents_columns(client_for, operator_a):
    page = client_for(operator_a).get(reverse("refunds:format_help")).content.decode()
    for name in ("origQryId", "原交易查询流水号", "退货金额(元)", "respCode", "version|totalAmt|totalQty"):
        assert name in page


def test_inbox_links_refund_batches_to_the_refund_batch_page(operator_a, batch):
    from portal.approvals.registry import describe_request
    from portal.batches.services import batch_submit

    batch.refresh_from_db()
    batch_submit(actor=operator_a, batch=batch)
    batch.refresh_from_db()
    from portal.approvals.models import ApprovalRequest

    assert describe_request(ApprovalRequest.objects.get(pk=batch.approval_id))["url"] == reverse(
        "refunds:batch_detail", args=[batch.pk]
    )


def test_refund_list_query_count_does_not_grow(client_for, operator_a, payment, django_assert_max_num_queries):
    client = client_for(operator_a)
    with mock.patch("refunds.tasks.send_refund.delay"):
        for _ in range(3):
            refund_request(actor=operator_a, original=payment, amount=100, reason="x")
    client.get(reverse("refunds:index"))
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as three:
        client.get(reverse("refunds:index"))
    with mock.patch("refunds.tasks.send_refund.delay"):
        for _ in range(3):
            refund_request(actor=operator_a, original=payment, amount=100, reason="x")
    with django_assert_max_num_queries(len(three)):
        client.get(reverse("refunds:index"))
