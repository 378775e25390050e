"""Background detail downloads: request, the idempotent job, My downloads, the file, the purge, the API."""

import csv
import hashlib
import io
import json
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from openpyxl import load_workbook

from payments import exports, services
from payments.choices import ExportStatus
from payments.context_processors import PENDING_SESSION_KEY
from payments.filtersets import make_card_ref
from payments.models import ExportJob
from portal.audit.models import AuditEvent
from tests.factories import UserFactory, login_password_only

from .conftest import PAN_B, bj

pytestmark = pytest.mark.django_db

NOW = bj(2026, 3, 10, 15, 0, 0)
EXPORT = "/transactions/export/"
DOWNLOADS = "/transactions/downloads/"


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture(autouse=True)
def small_limits(settings, tmp_path):
    settings.TRANSACTIONS_EXPORT_STREAM_LIMIT = 2
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def enqueued(monkeypatch):
    """Replace the broker: record the job ids ``run_export.delay`` is called with."""
    from payments import tasks

    calls: list[str] = []
    monkeypatch.setattr(tasks.run_export, "delay", lambda job_id: calls.append(job_id))
    return calls


@pytest.fixture
def ledger(merchant_a, merchant_b, make_txn):
    make_txn(merchant_a, order_id="PAID0001", amount=12345, txn_time=bj(2026, 3, 9, 10, 0))
    make_txn(merchant_a, order_id="PAID0002", amount=1, pan=PAN_B, txn_time=bj(2026, 3, 9, 11, 0))
    make_txn(merchant_a, order_id="FAIL0001", amount=500, status="failed", txn_time=bj(2026, 3, 9, 12, 0))
    make_txn(merchant_a, order_id="=HYPERLINK1", amount=700, txn_time=bj(2026, 3, 9, 13, 0))
    make_txn(merchant_a, order_id="OLD00001", amount=900, txn_time=bj(2026, 2, 1, 13, 0))
    make_txn(merchant_b, order_id="OTHER001", amount=800, txn_time=bj(2026, 3, 9, 13, 0))


def _request_job(client, **params) -> ExportJob:
    response = client.get(EXPORT, {"file_format": "csv", **params})
    assert response.status_code == 302
    assert response["Location"] == DOWNLOADS
    return ExportJob.objects.get()


def _csv_rows(job: ExportJob, encoding="utf-8-sig") -> list[list[str]]:
    return list(csv.reader(io.StringIO(job.path.read_bytes().decode(encoding))))


# --- request ---------------------------------------------------------------------------------------


def test_more_rows_than_stream_at_once_queue_a_job(
    client_for, operator_a, ledger, enqueued, django_capture_on_commit_callbacks
):
    client = client_for(operator_a)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.get(EXPORT, {"file_format": "csv", "scope": "history"}, follow=True)
    job = ExportJob.objects.get()
    assert response.redirect_chain == [(DOWNLOADS, 302)]
    assert "being prepared in the background" in response.content.decode()
    assert (job.user, job.organisation, job.status, job.file_format) == (
        operator_a,
        operator_a.organisation,
        "queued",
        "csv_utf8",
    )
    assert job.rows_total == 4
    assert job.params == {"date_from": "2026-03-04", "date_to": "2026-03-10", "sort": "-txn_time"}
    assert enqueued == [str(job.pk)]
    event = AuditEvent.objects.get(action="transaction.export_requested")
    assert (event.actor, event.object_id, event.details["rows"]) == (operator_a, str(job.pk), 4)
    # Nothing was downloaded yet.
    assert not AuditEvent.objects.filter(action__in=["transaction.export", "transaction.export_download"]).exists()


def test_up_to_the_limit_still_streams(client_for, operator_a, ledger):
    response = client_for(operator_a).get(EXPORT, {"file_format": "csv", "status": "success", "order_id": "PAID0001"})
    assert response.status_code == 200
    assert not ExportJob.objects.exists()


def test_zero_rows_queue_nothing(client_for, operator_a, ledger):
    client_for(operator_a).get(EXPORT, {"file_format": "csv", "order_id": "NOSUCH"})
    assert not ExportJob.objects.exists()
    assert not AuditEvent.objects.filter(action="transaction.export_requested").exists()


def test_full_card_number_never_reaches_the_job(client_for, operator_a, ledger, frozen, settings):
    settings.TRANSACTIONS_EXPORT_STREAM_LIMIT = 0  # every download goes to the background
    job = _request_job(client_for(operator_a), card_ref=make_card_ref(PAN_B), status="success")
    assert PAN_B not in json.dumps(job.params) and PAN_B not in json.dumps(job.description)
    assert job.description["card"] == "625807*********3337"
    # The signed search token outlives its 12 hours while the job waits in the queue.
    frozen.shift(timedelta(hours=13))
    assert services.export_run(job_id=job.pk) == ExportStatus.READY
    job.refresh_from_db()
    assert [r[3] for r in _csv_rows(job)[1:]] == ["PAID0002"]


def test_service_refuses_a_card_number_in_params(operator_a):
    with pytest.raises(ValueError, match="card number"):
        services.export_request(actor=operator_a, params={"card": PAN_B}, fmt="csv_utf8")
    assert not ExportJob.objects.exists()


# --- the job -----------------------------------------------------------------------------------------


def test_job_writes_exactly_the_filtered_rows(client_for, operator_a, ledger):
    job = _request_job(client_for(operator_a), status="success")
    assert services.export_run(job_id=job.pk) == ExportStatus.READY
    job.refresh_from_db()
    rows = _csv_rows(job)
    assert rows[0][3] == "Order ID"
    assert sorted(r[3] for r in rows[1:]) == ["'=HYPERLINK1", "PAID0001", "PAID0002"]
    assert {r[3]: r[7] for r in rows[1:]}["PAID0001"] == "123.45"
    raw = job.path.read_bytes()
    assert (job.status, job.rows_total, job.rows_done, job.percent) == ("ready", 3, 3, 100)
    assert (job.size, job.sha256) == (len(raw), hashlib.sha256(raw).hexdigest())
    assert job.path == job.path.parent / str(job.pk) and job.path.parent.name == "exports"
    assert job.finished_at == NOW and job.expires_at == NOW + timedelta(days=7)
    event = AuditEvent.objects.get(action="transaction.export_ready")
    assert (event.actor, event.actor_repr, event.details["rows"]) == (None, "job:export", 3)
    assert list(job.path.parent.iterdir()) == [job.path]  # no temporary file left behind


def test_gbk_job_has_chinese_headers(client_for, operator_a, ledger):
    client = client_for(operator_a)
    response = client.get(EXPORT, {"file_format": "csv", "encoding": "gbk"}, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 302
    job = ExportJob.objects.get()
    assert (job.file_format, job.language) == ("csv_gbk", "zh-hans")
    services.export_run(job_id=job.pk)
    job.refresh_from_db()
    raw = job.path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("gbk"))))
    assert rows[0][3] == "订单号"
    assert len(rows) == 5


def test_xlsx_job_reads_back(client_for, operator_a, ledger):
    job = _request_job(client_for(operator_a), file_format="xlsx")
    assert job.file_format == "xlsx"
    services.export_run(job_id=job.pk)
    job.refresh_from_db()
    wb = load_workbook(io.BytesIO(job.path.read_bytes()), read_only=True)
    rows = list(wb.active.iter_rows(values_only=True))
    assert len(rows) == 5
    assert {r[3]: r[7] for r in rows[1:]}["PAID0001"] == pytest.approx(123.45)
    assert job.download_name == "transactions_20260310150000.xlsx"


def test_running_the_job_twice_changes_nothing(client_for, operator_a, ledger):
    job = _request_job(client_for(operator_a))
    assert services.export_run(job_id=job.pk) == ExportStatus.READY
    job.refresh_from_db()
    first = (job.sha256, job.finished_at)
    assert services.export_run(job_id=job.pk) == "skipped"
    job.refresh_from_db()
    assert (job.sha256, job.finished_at) == first
    assert AuditEvent.objects.filter(action="transaction.export_ready").count() == 1


def test_a_running_job_is_not_claimed_twice_unless_its_worker_died(client_for, operator_a, ledger, frozen):
    job = _request_job(client_for(operator_a))
    ExportJob.objects.filter(pk=job.pk).update(status="running", heartbeat_at=NOW - timedelta(minutes=5))
    assert services.export_run(job_id=job.pk) == "skipped"
    ExportJob.objects.filter(pk=job.pk).update(heartbeat_at=NOW - timedelta(hours=2))
    assert services.export_run(job_id=job.pk) == ExportStatus.READY


def test_progress_is_saved_while_rows_are_written(client_for, operator_a, ledger, monkeypatch):
    # the Python writer's progress (on PostgreSQL a CSV comes from COPY, whose progress is saved when it ends)
    monkeypatch.setattr(exports, "_uses_copy", lambda qs: False)
    job = _request_job(client_for(operator_a))
    monkeypatch.setattr(exports, "PROGRESS_EVERY", 1)
    seen = []
    real_iter_rows = exports.iter_rows

    def spying_iter_rows(qs, sort):
        for row in real_iter_rows(qs, sort):
            seen.append(ExportJob.objects.values_list("status", "rows_done", "rows_total").get(pk=job.pk))
            yield row

    monkeypatch.setattr(exports, "iter_rows", spying_iter_rows)
    services.export_run(job_id=job.pk)
    assert seen == [("running", 0, 4), ("running", 1, 4), ("running", 2, 4), ("running", 3, 4)]


def test_write_file_reports_progress_every_n_rows(merchant_a, make_txn, tmp_path, monkeypatch):
    monkeypatch.setattr(exports, "_uses_copy", lambda qs: False)  # the Python writer's progress, on any database
    for i in range(5):
        make_txn(merchant_a, order_id=f"P{i}")
    from payments.models import Transaction

    for fmt in ("csv_utf8", "xlsx"):
        calls = []
        rows = exports.write_file(
            Transaction.objects.all(), tmp_path / fmt, file_format=fmt, progress=calls.append, every=2
        )
        assert rows == 5
        assert calls[:2] == [2, 4]


def test_a_failing_job_ends_failed_with_a_reason_and_no_file(client_for, operator_a, ledger, monkeypatch):
    job = _request_job(client_for(operator_a))

    def broken(qs, path, **kwargs):
        path.write_bytes(b"half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(exports, "write_file", broken)
    assert services.export_run(job_id=job.pk) == ExportStatus.FAILED
    job.refresh_from_db()
    assert (job.status, job.error) == ("failed", "internal")
    assert job.expires_at == NOW + timedelta(days=7)
    assert list(job.path.parent.iterdir()) == []
    event = AuditEvent.objects.get(action="transaction.export_failed")
    assert (event.outcome, event.details["reason"]) == ("failure", "internal")
    # A failed job is final: running it again does nothing.
    assert services.export_run(job_id=job.pk) == "skipped"


def test_a_deactivated_user_gets_no_file(client_for, operator_a, ledger):
    job = _request_job(client_for(operator_a))
    type(operator_a).objects.filter(pk=operator_a.pk).update(is_active=False)
    assert services.export_run(job_id=job.pk) == ExportStatus.FAILED
    job.refresh_from_db()
    assert job.error == "permission"
    assert not job.path.exists()


# --- My downloads and the file -------------------------------------------------------------------------


@pytest.fixture
def ready_job(client_for, operator_a, ledger):
    job = _request_job(client_for(operator_a))
    services.export_run(job_id=job.pk)
    job.refresh_from_db()
    return job


def test_my_downloads_lists_own_jobs_with_a_link(client_for, operator_a, reviewer_a, ready_job):
    other = services.export_request(actor=reviewer_a, params={"sort": "-txn_time"}, fmt="xlsx")
    response = client_for(operator_a).get(DOWNLOADS)
    body = response.content.decode()
    assert response.status_code == 200
    assert [j.pk for j in response.context["jobs"]] == [ready_job.pk]
    assert str(other.pk) not in body
    assert f"{DOWNLOADS}{ready_job.pk}/" in body
    assert response.context["polling"] is False and "hx-trigger" not in body


def test_my_downloads_polls_while_a_job_runs(client_for, operator_a, ledger):
    client = client_for(operator_a)
    job = _request_job(client)
    ExportJob.objects.filter(pk=job.pk).update(status="running", rows_done=1)
    body = client.get(DOWNLOADS).content.decode()
    assert 'hx-trigger="every 2s"' in body and '<progress max="100" value="25"' in body
    assert "htmx" in body and "nonce=" in body
    fragment = client.get(DOWNLOADS, HTTP_HX_REQUEST="true")
    assert fragment.content.decode().lstrip().startswith('<tbody id="download-rows"')
    assert "<html" not in fragment.content.decode()


def test_download_of_a_ready_file(client_for, operator_a, ready_job):
    response = client_for(operator_a).get(f"{DOWNLOADS}{ready_job.pk}/")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="transactions_20260310150000.csv"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert b"".join(response.streaming_content) == ready_job.path.read_bytes()
    event = AuditEvent.objects.get(action="transaction.export_download")
    assert (event.actor, event.object_id, event.details["sha256"]) == (operator_a, str(ready_job.pk), ready_job.sha256)


@pytest.fixture
def operator_b(merchant_b):
    return UserFactory(organisation=merchant_b, username="b.operator", roles=["merchant_operator"])


@pytest.mark.parametrize("who", ["reviewer_a", "operator_b", "acquirer_reviewer"])
def test_somebody_elses_file_is_404(request, client_for, ready_job, who):
    user = request.getfixturevalue(who)
    response = client_for(user).get(f"{DOWNLOADS}{ready_job.pk}/")
    assert response.status_code == 404
    assert not AuditEvent.objects.filter(action="transaction.export_download").exists()


def test_download_needs_the_export_permission(client_for, admin_a, ready_job):
    assert client_for(admin_a).get(f"{DOWNLOADS}{ready_job.pk}/").status_code == 403
    assert client_for(admin_a).get(DOWNLOADS).status_code == 403
    assert not AuditEvent.objects.filter(action="transaction.export_download").exists()


@pytest.mark.parametrize("path", ["list", "file"])
def test_anonymous_and_password_only_are_turned_away(operator_a, ready_job, path):
    url = DOWNLOADS if path == "list" else f"{DOWNLOADS}{ready_job.pk}/"
    anonymous = Client().get(url)
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    client = Client()
    login_password_only(client, operator_a)
    half = client.get(url)
    assert half.status_code == 302 and "/accounts/verify/" in half["Location"]
    assert not AuditEvent.objects.filter(action="transaction.export_download").exists()


def test_a_job_not_ready_yet_is_404(client_for, operator_a, ledger):
    job = _request_job(client_for(operator_a))
    assert client_for(operator_a).get(f"{DOWNLOADS}{job.pk}/").status_code == 404


def test_ready_notification_on_the_next_page(client_for, operator_a, ledger):
    client = client_for(operator_a)
    job = _request_job(client)
    assert client.session[PENDING_SESSION_KEY] == [str(job.pk)]
    client.get(DOWNLOADS)  # still queued: no banner yet
    services.export_run(job_id=job.pk)
    body = client.get("/").content.decode()
    assert "Your download is ready" in body
    assert PENDING_SESSION_KEY not in client.session
    assert "Your download is ready" not in client.get("/").content.decode()


# --- purge -----------------------------------------------------------------------------------------


def test_files_are_purged_after_seven_days(
    client_for, operator_a, ready_job, frozen, django_capture_on_commit_callbacks
):
    assert services.export_purge_expired() == 0
    frozen.shift(timedelta(days=7, seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.export_purge_expired() == 1
    ready_job.refresh_from_db()
    assert ready_job.status == "expired"
    assert not ready_job.path.exists()
    event = AuditEvent.objects.get(action="transaction.export_expired")
    assert event.object_id == str(ready_job.pk)
    assert services.export_purge_expired() == 0
    response = client_for(operator_a).get(f"{DOWNLOADS}{ready_job.pk}/", follow=True)
    assert "This download has expired" in response.content.decode()
    assert not AuditEvent.objects.filter(action="transaction.export_download").exists()


def test_purge_task_is_scheduled(settings):
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "payments.purge_expired_exports" in tasks


def test_the_tasks_call_the_services(client_for, operator_a, ledger):
    from payments.tasks import purge_expired_exports, run_export

    job = _request_job(client_for(operator_a))
    assert run_export(str(job.pk)) == "ready"
    assert run_export(str(job.pk)) == "skipped"
    assert purge_expired_exports() == 0


# --- API -----------------------------------------------------------------------------------------


def test_api_post_over_the_limit_answers_202_with_the_job(client_for, operator_a, ledger, enqueued):
    client = client_for(operator_a)
    response = client.post("/api/v1/transactions/export/?file_format=csv&status=success")
    assert response.status_code == 202
    job = ExportJob.objects.get()
    assert response.json()["id"] == str(job.pk)
    assert response.json()["status"] == "queued" and response.json()["rows_total"] == 3
    assert job.params["status"] == "success"
    status = client.get(f"/api/v1/exports/{job.pk}/")
    assert status.status_code == 200 and status.json()["download_url"] is None
    services.export_run(job_id=job.pk)
    done = client.get(f"/api/v1/exports/{job.pk}/").json()
    assert (done["status"], done["rows_done"], done["percent"]) == ("ready", 3, 100)
    assert done["download_url"].endswith(f"/api/v1/exports/{job.pk}/download/")
    file = client.get(f"/api/v1/exports/{job.pk}/download/")
    assert file.status_code == 200
    assert AuditEvent.objects.filter(action="transaction.export_download").count() == 1


def test_api_get_over_the_limit_is_a_400_and_queues_nothing(client_for, operator_a, ledger):
    response = client_for(operator_a).get("/api/v1/transactions/export/?file_format=csv")
    assert response.status_code == 400
    assert not ExportJob.objects.exists()


def test_api_post_within_the_limit_streams(client_for, operator_a, ledger):
    response = client_for(operator_a).post("/api/v1/transactions/export/?file_format=csv&order_id=PAID0001")
    assert response.status_code == 200
    assert not ExportJob.objects.exists()


def test_api_job_of_somebody_else_is_404(client_for, operator_a, reviewer_a, ready_job):
    client = client_for(reviewer_a)
    assert client.get(f"/api/v1/exports/{ready_job.pk}/").status_code == 404
    assert client.get(f"/api/v1/exports/{ready_job.pk}/download/").status_code == 404
    assert client.get("/api/v1/exports/").json()["results"] == []


def test_api_exports_need_the_permission(client_for, admin_a, ready_job):
    assert client_for(admin_a).get(f"/api/v1/exports/{ready_job.pk}/").status_code == 403
    assert client_for(admin_a).post("/api/v1/transactions/export/?file_format=csv").status_code == 403


def test_api_anonymous_is_refused(ready_job):
    assert Client().get(f"/api/v1/exports/{ready_job.pk}/").status_code in (401, 403)


def test_export_job_needs_a_known_user(merchant_a):
    user = UserFactory(organisation=merchant_a, username="a.op2", roles=["merchant_operator"])
    job = services.export_request(actor=user, params={"status": "success"}, fmt="xlsx")
    assert (job.organisation, job.status, job.kind) == (merchant_a, "queued", "transactions")
