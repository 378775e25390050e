"""Batch pages: access rules, upload, progress, downloads, submit and cancel."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from portal.audit.models import AuditEvent
from portal.batches.models import Batch
from portal.batches.services import batch_submit, batch_upload
from tests.factories import UserFactory, login_password_only

from .conftest import text_file

pytestmark = pytest.mark.django_db

LINES = ["A0001|100", "A0002|x", "A0003|=cmd"]


@pytest.fixture
def batch(operator_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        b = batch_upload(actor=operator_a, kind="demo", uploaded_file=text_file(LINES))
    b.refresh_from_db()
    return b


@pytest.fixture
def operator_b(merchant_b):
    return UserFactory(organisation=merchant_b, username="b.operator", roles=["merchant_operator"])


def _urls(batch):
    return [
        reverse("batches:detail", args=[batch.pk]),
        reverse("batches:progress", args=[batch.pk]),
        reverse("batches:error_report", args=[batch.pk]),
        reverse("batches:result", args=[batch.pk]),
    ]


def test_anonymous_is_sent_to_login(batch):
    for url in [reverse("batches:list"), reverse("batches:upload", args=["demo"]), *_urls(batch)]:
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url


def test_password_only_is_sent_to_the_second_factor(batch, operator_a):
    client = Client()
    login_password_only(client, operator_a)
    for url in [reverse("batches:list"), *_urls(batch)]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/verify/"), url


def test_another_organisation_gets_404_and_no_audit(batch, operator_b, client_for):
    client = client_for(operator_b)
    before = AuditEvent.objects.count()
    for url in _urls(batch):
        assert client.get(url).status_code == 404, url
    for name in ("batches:submit", "batches:cancel"):
        assert client.post(reverse(name, args=[batch.pk])).status_code == 404
    assert AuditEvent.objects.count() == before
    assert Batch.objects.get(pk=batch.pk).status == "validated"
    assert batch.pk not in [b.pk for b in client.get(reverse("batches:list")).context["page"]]


def test_missing_permission_is_403(batch, admin_a, reviewer_a, client_for):
    client = client_for(admin_a)  # merchant admin: no batch permission
    assert client.get(reverse("batches:list")).status_code == 403
    assert client.get(reverse("batches:detail", args=[batch.pk])).status_code == 403
    reviewer = client_for(reviewer_a)  # may view, may not upload or cancel
    before = AuditEvent.objects.count()
    assert reviewer.get(reverse("batches:upload", args=["demo"])).status_code == 403
    assert reviewer.post(reverse("batches:cancel", args=[batch.pk])).status_code == 403
    assert Batch.objects.get(pk=batch.pk).status == "validated"
    assert AuditEvent.objects.count() == before


def test_unknown_kind_is_404(operator_a, client_for):
    assert client_for(operator_a).get(reverse("batches:upload", args=["nope"])).status_code == 404


def test_upload_page_then_redirect_to_the_detail(operator_a, client_for, django_capture_on_commit_callbacks):
    client = client_for(operator_a)
    assert client.get(reverse("batches:upload", args=["demo"])).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("batches:upload", args=["demo"]), {"file": text_file(["A1|100"])})
    batch = Batch.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("batches:detail", args=[batch.pk])
    assert (batch.status, batch.uploaded_by_id) == ("validated", operator_a.pk)


def test_upload_refusal_shows_the_message_and_keeps_nothing(operator_a, client_for, settings):
    settings.UPLOAD_MAX_BYTES = 5
    response = client_for(operator_a).post(
        reverse("batches:upload", args=["demo"]), {"file": SimpleUploadedFile("a.txt", b"A1|100\n")}
    )
    assert response.status_code == 413
    assert "larger than the limit" in response.content.decode()
    assert not Batch.objects.exists()
    assert not AuditEvent.objects.filter(action="batch.upload").exists()


def test_duplicate_upload_points_at_the_earlier_batch(batch, operator_a, client_for):
    response = client_for(operator_a).post(
        reverse("batches:upload", args=["demo"]), {"file": text_file(LINES, "x.csv")}
    )
    assert response.status_code == 409
    assert reverse("batches:detail", args=[batch.pk]) in response.content.decode()


def test_detail_shows_summary_errors_sample_and_htmx_under_csp(batch, operator_a, client_for):
    response = client_for(operator_a).get(reverse("batches:detail", args=[batch.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="valid-lines">1<' in html and 'data-testid="invalid-lines">2<' in html
    assert "Amount must be digits" in html
    nonce = response.context["csp_nonce"]
    assert f'nonce="{nonce}"' in html and "htmx" in html
    assert 'data-testid="submit-batch"' in html and 'data-testid="cancel-batch"' in html
    assert "hx-trigger" not in html  # not running: no polling


def test_progress_fragment_polls_while_running(operator_a, client_for):
    batch = batch_upload(actor=operator_a, kind="demo", uploaded_file=text_file(["A1|1"]))  # not validated yet
    html = client_for(operator_a).get(reverse("batches:progress", args=[batch.pk])).content.decode()
    assert 'hx-trigger="every 2s"' in html and "<progress" in html


def test_error_report_download(batch, operator_a, client_for):
    response = client_for(operator_a).get(reverse("batches:error_report", args=[batch.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"] == f'attachment; filename="batch-{batch.pk}-errors.csv"'
    body = b"".join(response.streaming_content).decode("utf-8-sig").splitlines()
    assert body == ["Line,Column,Error code,Message,Order ID", "2,Amount,demo_amount,Amount must be digits,A0002",
                    "3,Amount,demo_amount,Amount must be digits,A0003"]  # fmt: skip
    assert AuditEvent.objects.filter(action="batch.download_errors", object_id=str(batch.pk)).count() == 1


def test_error_report_in_chinese(batch, operator_a, client_for):
    operator_a.language = "zh-hans"
    operator_a.save()
    response = client_for(operator_a).get(
        reverse("batches:error_report", args=[batch.pk]), HTTP_ACCEPT_LANGUAGE="zh-hans"
    )
    assert response.status_code == 200


def test_submit_cancel_and_result_download(batch, operator_a, client_for, django_capture_on_commit_callbacks):
    client = client_for(operator_a)
    assert client.get(reverse("batches:result", args=[batch.pk])).status_code == 404  # not yet written
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("batches:submit", args=[batch.pk]))
    assert response.status_code == 302
    batch.refresh_from_db()
    assert batch.status == "completed"
    response = client.get(reverse("batches:result", args=[batch.pk]))
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == f'attachment; filename="batch-{batch.pk}-result.txt"'
    assert b"".join(response.streaming_content).splitlines()[1] == b"A0001|100|succeeded|00"
    assert AuditEvent.objects.filter(action="batch.download_result").count() == 1
    # cancel after approval is refused with a message, nothing changes
    response = client.post(reverse("batches:cancel", args=[batch.pk]), follow=True)
    assert "can no longer be cancelled" in response.content.decode()
    assert Batch.objects.get(pk=batch.pk).status == "completed"
    # GET on an action is not allowed
    assert client.get(reverse("batches:submit", args=[batch.pk])).status_code == 405


def test_cancel_view(batch, operator_a, client_for):
    response = client_for(operator_a).post(reverse("batches:cancel", args=[batch.pk]), {"reason": "oops"})
    assert response.status_code == 302
    assert Batch.objects.get(pk=batch.pk).status == "cancelled"
    assert AuditEvent.objects.get(action="batch.cancel").details["reason"] == "oops"


def test_acquirer_uploads_for_its_merchant_and_the_merchant_sees_it(
    acquirer_reviewer, merchant_a, operator_a, client_for, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(acquirer_reviewer).post(
            reverse("batches:upload", args=["demo"]), {"file": text_file(["Z1|100"]), "merchant": merchant_a.pk}
        )
    assert response.status_code == 302
    batch = Batch.objects.get()
    assert (batch.organisation_id, batch.merchant_id) == (acquirer_reviewer.organisation_id, merchant_a.pk)
    assert client_for(operator_a).get(reverse("batches:detail", args=[batch.pk])).status_code == 200


def test_list_page_query_count_is_flat(batch, operator_a, client_for, django_assert_max_num_queries):
    client = client_for(operator_a)
    with django_assert_max_num_queries(20):
        response = client.get(reverse("batches:list"))
    assert response.status_code == 200
    assert len(response.context["page"]) == 1


def test_batch_serializer_fields(batch):
    from portal.batches.api.serializers import BatchSerializer

    data = BatchSerializer(batch).data
    assert data["status"] == "validated"
    assert {k: data[k] for k in ("total_lines", "valid_lines", "invalid_lines", "valid_amount")} == {
        "total_lines": 3,
        "valid_lines": 1,
        "invalid_lines": 2,
        "valid_amount": 100,
    }
    assert set(data) >= {"processed_lines", "succeeded_lines", "failed_lines", "total_amount", "succeeded_amount"}


@pytest.fixture
def reviewed_demo(settings, demo_kind):
    from dataclasses import replace

    from portal.batches.registry import register_batch_kind

    settings.APPROVAL_DEFAULT_POLICIES = {"demo.batch": [{"role": "merchant_reviewer", "org": "merchant"}]}
    register_batch_kind(replace(demo_kind, approval_kind="demo.batch"))


def test_approval_by_a_reviewer_processes_the_batch(
    operator_a, reviewer_a, reviewed_demo, django_capture_on_commit_callbacks
):
    import time

    from portal.approvals.models import ApprovalRequest
    from portal.approvals.services import approval_decide
    from portal.batches.approval import batch_content_hash

    with django_capture_on_commit_callbacks(execute=True):
        b = batch_upload(actor=operator_a, kind="demo", uploaded_file=text_file(["R1|100", "R2|213"]))
    b = batch_submit(actor=operator_a, batch=b)
    request = ApprovalRequest.objects.get()
    assert request.content_hash == batch_content_hash(b)
    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(
            actor=reviewer_a,
            request_id=request.pk,
            decision="approve",
            seen_content_hash=request.content_hash,
            otp_verified_at=time.time(),
        )
    b.refresh_from_db()
    assert (b.status, b.succeeded_lines, b.failed_lines) == ("partially_completed", 1, 1)
    assert [c.to_status for c in b.status_changes.all()] == [
        "uploaded", "validating", "validated", "pending_review", "approved", "processing", "partially_completed"
    ]  # fmt: skip


def test_submit_goes_through_the_approval_engine(operator_a, reviewed_demo, django_capture_on_commit_callbacks):

    from portal.approvals.models import ApprovalRequest
    from portal.batches.services import batch_cancel

    with django_capture_on_commit_callbacks(execute=True):
        b = batch_upload(actor=operator_a, kind="demo", uploaded_file=text_file(["R1|100"]))
    b = batch_submit(actor=operator_a, batch=b)
    request = ApprovalRequest.objects.get()
    assert (b.status, b.approval_id, request.object_id, request.amount) == (
        "pending_review",
        request.pk,
        str(b.pk),
        100,
    )
    batch_cancel(actor=operator_a, batch=b)
    request.refresh_from_db()
    assert (request.status, Batch.objects.get(pk=b.pk).status) == ("voided", "cancelled")
