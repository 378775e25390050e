"""Downloading a batch's uploaded file: decrypted, streamed, under its sanitised name, audited; refused to
other organisations and to viewers without the upload or review permission; gone after the retention purge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from portal.audit.models import AuditEvent
from portal.batches import storage
from portal.batches.models import Batch
from portal.batches.services import batch_purge_raw, batch_upload
from tests.factories import UserFactory, login_password_only

from .conftest import xlsx_bytes

pytestmark = pytest.mark.django_db

CONTENT = "A0001|100\r\nA0002|x\r\n退款|200\r\n".encode()
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def upload(user, content: bytes, name: str, capture) -> Batch:
    with capture(execute=True):
        batch = batch_upload(actor=user, kind="demo", uploaded_file=SimpleUploadedFile(name, content))
    batch.refresh_from_db()
    return batch


@pytest.fixture
def batch(operator_a, django_capture_on_commit_callbacks):
    return upload(operator_a, CONTENT, "退款 March.txt", django_capture_on_commit_callbacks)


@pytest.fixture
def operator_b(merchant_b):
    return UserFactory(organisation=merchant_b, username="b.operator", roles=["merchant_operator"])


def _url(batch) -> str:
    return reverse("batches:original", args=[batch.pk])


def _events(batch):
    return AuditEvent.objects.filter(action="batch.download_original", object_id=str(batch.pk))


def test_the_uploaded_bytes_come_back_decrypted_under_the_original_name(batch, operator_a, client_for):
    # the stored file is not the upload in clear
    assert storage.path_for(batch.stored_name).read_bytes() != CONTENT
    response = client_for(operator_a).get(_url(batch))
    assert response.status_code == 200
    assert response.streaming
    assert b"".join(response.streaming_content) == CONTENT
    assert response["Content-Type"] == "application/octet-stream"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "no-store"
    assert response["Content-Disposition"] == ("attachment; filename*=utf-8''%E9%80%80%E6%AC%BE%20March.txt")


def test_the_decrypted_stream_is_closed_with_the_response(batch, operator_a, client_for, monkeypatch):
    opened = []
    real_open = storage.open_plaintext
    monkeypatch.setattr(storage, "open_plaintext", lambda name: opened.append(real_open(name)) or opened[-1])
    response = client_for(operator_a).get(_url(batch))
    assert len(opened) == 1 and not opened[0].closed
    response.close()  # as the server does once sent, or when the client went away
    assert opened[0].closed


def test_each_download_is_an_audit_event_without_the_content(batch, operator_a, client_for):
    client = client_for(operator_a)
    for _ in range(2):
        b"".join(client.get(_url(batch)).streaming_content)
    events = list(_events(batch).order_by("pk"))
    assert len(events) == 2
    event = events[0]
    assert event.actor_id == operator_a.pk and event.organisation_id == batch.organisation_id
    assert event.details == {
        "kind": "demo",
        "status": batch.status,
        "file_name": "退款 March.txt",
        "size": len(CONTENT),
        "sha256": batch.sha256,
    }
    assert "A0001" not in str(event.details)


def test_an_xlsx_upload_comes_back_as_the_same_workbook(operator_a, client_for, django_capture_on_commit_callbacks):
    content = xlsx_bytes([["A1", "100"], ["A2", "200"]])
    batch = upload(operator_a, content, "book.xlsx", django_capture_on_commit_callbacks)
    response = client_for(operator_a).get(_url(batch))
    assert b"".join(response.streaming_content) == content
    assert response["Content-Type"] == XLSX_TYPE
    assert response["Content-Disposition"] == 'attachment; filename="book.xlsx"'


def test_a_hostile_name_is_sanitised_in_the_header(operator_a, client_for, django_capture_on_commit_callbacks):
    batch = upload(operator_a, b"B1|1\n", '..\\evil"\r\nSet-Cookie: x=1\u202e.txt', django_capture_on_commit_callbacks)
    response = client_for(operator_a).get(_url(batch))
    header = response["Content-Disposition"]
    assert header == 'attachment; filename="evilSet-Cookie: x=1.txt"'
    assert b"".join(response.streaming_content) == b"B1|1\n"


def test_a_reviewer_may_download_a_viewer_may_not(batch, reviewer_a, merchant_auditor, admin_a, client_for):
    assert client_for(reviewer_a).get(_url(batch)).status_code == 200  # the review permission
    before = AuditEvent.objects.count()
    assert client_for(merchant_auditor).get(_url(batch)).status_code == 403  # may see the batch, not the file
    assert client_for(admin_a).get(_url(batch)).status_code == 403  # no batch permission at all
    assert AuditEvent.objects.count() == before


def test_the_batch_page_offers_the_download_to_those_who_may(batch, operator_a, merchant_auditor, client_for):
    detail = reverse("batches:detail", args=[batch.pk])
    html = client_for(operator_a).get(detail).content.decode()
    assert f'href="{_url(batch)}" data-testid="download-original"' in html
    html = client_for(merchant_auditor).get(detail).content.decode()
    assert 'data-testid="download-original"' not in html
    assert "退款 March.txt" in html


def test_another_organisation_gets_404_and_no_audit(batch, operator_b, client_for):
    before = AuditEvent.objects.count()
    assert client_for(operator_b).get(_url(batch)).status_code == 404
    assert AuditEvent.objects.count() == before


def test_access_rules(batch, operator_a):
    response = Client().get(_url(batch))
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    client = Client()
    login_password_only(client, operator_a)
    response = client.get(_url(batch))
    assert response.status_code == 302 and response["Location"].startswith("/accounts/verify/")
    assert not _events(batch).exists()


def test_after_the_retention_purge_the_page_says_when_and_the_download_is_gone(
    batch, operator_a, client_for, settings, django_capture_on_commit_callbacks
):
    # given the retention purge ran on 2031-03-04 at 17:30 UTC (01:30 on the 5th in Beijing)
    purged_at = datetime(2031, 3, 4, 17, 30, tzinfo=UTC)
    with django_capture_on_commit_callbacks(execute=True):
        assert batch_purge_raw(now=purged_at) == 1
    batch.refresh_from_db()
    assert batch.raw_deleted_at == purged_at and not storage.exists(batch.stored_name)
    client = client_for(operator_a)
    before = AuditEvent.objects.count()
    # then the download is a 404, not audited
    assert client.get(_url(batch)).status_code == 404
    assert AuditEvent.objects.count() == before
    # and the page says when the file was deleted, in Beijing time, instead of offering it
    html = client.get(reverse("batches:detail", args=[batch.pk])).content.decode()
    assert "Deleted on 2031-03-05 after the retention period" in html
    assert 'data-testid="download-original"' not in html


def test_the_deleted_note_in_chinese(batch, operator_a, client_for):
    Batch.objects.filter(pk=batch.pk).update(raw_deleted_at=datetime(2031, 3, 4, 12, 0, tzinfo=UTC))
    operator_a.language = "zh-hans"
    operator_a.save(update_fields=["language"])
    html = (
        client_for(operator_a)
        .get(reverse("batches:detail", args=[batch.pk]), HTTP_ACCEPT_LANGUAGE="zh-hans")
        .content.decode()
    )
    assert "已于 2031-03-04 超过保留期限后删除" in html
    assert "上传的文件" in html


def test_the_chinese_page_offers_the_download(batch, operator_a, client_for):
    operator_a.language = "zh-hans"
    operator_a.save(update_fields=["language"])
    html = (
        client_for(operator_a)
        .get(reverse("batches:detail", args=[batch.pk]), HTTP_ACCEPT_LANGUAGE="zh-hans")
        .content.decode()
    )
    assert "下载上传的文件" in html


def test_a_file_missing_from_storage_is_404_and_not_audited(batch, operator_a, client_for):
    storage.delete(batch.stored_name)
    assert client_for(operator_a).get(_url(batch)).status_code == 404
    assert not _events(batch).exists()


def test_a_purge_marked_but_not_yet_deleted_file_is_not_served(batch, operator_a, client_for):
    # the purge marks the batch first and deletes the file after its commit: the mark alone closes the door
    Batch.objects.filter(pk=batch.pk).update(raw_deleted_at=datetime.now(UTC) - timedelta(seconds=1))
    assert storage.exists(batch.stored_name)
    assert client_for(operator_a).get(_url(batch)).status_code == 404
    assert not _events(batch).exists()
