"""The batch pipeline's services with the demo kind: upload, validation, processing, cancel."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from portal.audit.models import AuditEvent
from portal.batches import storage
from portal.batches.choices import BatchStatus, LineStatus
from portal.batches.ingest import batch_validate
from portal.batches.models import Batch, BatchLine, BatchOrderId, BatchStatusChange
from portal.batches.processing import batch_process, batch_process_chunk
from portal.batches.services import BatchError, batch_cancel, batch_submit, batch_upload

from .conftest import CALLS, RECOVERED, text_file, xlsx_bytes

pytestmark = pytest.mark.django_db

GOOD = ["A0001|100", "A0002|200", "A0003|300", "A0004|413", "A0005|500"]


def upload(actor, lines, name="refunds.txt", capture=None):
    if capture is None:
        return batch_upload(actor=actor, kind="demo", uploaded_file=text_file(lines, name))
    with capture(execute=True):
        return batch_upload(actor=actor, kind="demo", uploaded_file=text_file(lines, name))


def test_upload_validates_in_the_background_with_counts(operator_a, django_capture_on_commit_callbacks):
    # given a file with good lines, a non-numeric amount, a too-big amount and a ragged line
    lines = [*GOOD, "B0001|abc", "B0002|2000000", "B0003|1|2"]
    # when it is uploaded (validation runs on commit, eagerly here)
    batch = upload(operator_a, lines, capture=django_capture_on_commit_callbacks)
    batch.refresh_from_db()
    # then it is validated with exact counts and amounts
    assert batch.status == BatchStatus.VALIDATED
    assert (batch.total_lines, batch.valid_lines, batch.invalid_lines) == (8, 5, 3)
    assert batch.valid_amount == 1513
    assert batch.total_amount == 1513 + 2000000  # the ragged line has no amount
    assert batch.chunk_count == 2  # lines 1-5 in chunks of 3 line numbers: 0-2, 3-5
    assert batch.merchant_id == operator_a.organisation_id
    errors = {
        ln.line_no: (ln.error_code, ln.error_column) for ln in BatchLine.objects.filter(batch=batch, status="invalid")
    }
    assert errors == {6: ("demo_amount", "amount"), 7: ("demo_too_big", "amount"), 8: ("demo_columns", "")}
    assert list(
        BatchLine.objects.filter(batch=batch, status="valid").order_by("line_no").values_list("chunk_no", flat=True)
    ) == [0, 0, 1, 1, 1]
    assert [c.to_status for c in BatchStatusChange.objects.filter(batch=batch)] == [
        "uploaded",
        "validating",
        "validated",
    ]
    assert list(
        AuditEvent.objects.filter(object_id=str(batch.pk)).order_by("sequence").values_list("action", flat=True)
    ) == [
        "batch.upload",
        "batch.validated",
    ]


def test_validation_is_enqueued_on_commit(operator_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        batch = upload(operator_a, GOOD)
    assert len(callbacks) == 1
    assert Batch.objects.get(pk=batch.pk).status == BatchStatus.UPLOADED


def test_xlsx_upload_is_parsed(operator_a, django_capture_on_commit_callbacks):
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = xlsx_bytes([("X1", 100), ("X2", "bad")])
    with django_capture_on_commit_callbacks(execute=True):
        batch = batch_upload(actor=operator_a, kind="demo", uploaded_file=SimpleUploadedFile("f.xlsx", data))
    batch.refresh_from_db()
    assert (batch.file_format, batch.status, batch.valid_lines, batch.invalid_lines) == ("xlsx", "validated", 1, 1)


def test_file_level_error_makes_the_batch_invalid_without_lines(operator_a, django_capture_on_commit_callbacks):
    batch = upload(operator_a, ["A1|100", "FILEERR"], capture=django_capture_on_commit_callbacks)
    batch.refresh_from_db()
    assert (batch.status, batch.error_code, batch.total_lines) == ("invalid", "demo_bad_file", 0)
    assert not BatchLine.objects.filter(batch=batch).exists()
    assert not BatchOrderId.objects.filter(batch=batch).exists()


def test_too_many_lines_fails_the_file(operator_a, django_capture_on_commit_callbacks, demo_kind, monkeypatch):
    from dataclasses import replace

    from portal.batches.registry import register_batch_kind

    register_batch_kind(replace(demo_kind, max_lines=3))
    batch = upload(operator_a, GOOD, capture=django_capture_on_commit_callbacks)
    batch.refresh_from_db()
    assert (batch.status, batch.error_code, batch.error_params) == ("invalid", "too_many_lines", {"limit": 3})


def test_no_valid_line_is_invalid(operator_a, django_capture_on_commit_callbacks):
    batch = upload(operator_a, ["A1|x"], capture=django_capture_on_commit_callbacks)
    batch.refresh_from_db()
    assert (batch.status, batch.error_code, batch.invalid_lines) == ("invalid", "no_valid_lines", 1)


def test_rerun_of_a_crashed_validation_starts_over(operator_a):
    # given a batch whose validation crashed half-way (status validating, some lines written)
    batch = upload(operator_a, GOOD)
    Batch.objects.filter(pk=batch.pk).update(status="validating", work_token="dead", valid_lines=2)
    BatchLine.objects.create(batch=batch, line_no=1, order_id="A0001", amount=100, status="valid")
    # when the task runs again
    assert batch_validate(batch_id=batch.pk) == "validated"
    # then the lines are written once and the counters are exact
    batch.refresh_from_db()
    assert (batch.total_lines, batch.valid_lines) == (5, 5)
    assert BatchLine.objects.filter(batch=batch).count() == 5
    # and a duplicated task on a finished batch does nothing
    assert batch_validate(batch_id=batch.pk) is None


def test_same_file_is_refused_even_renamed_pointing_at_the_first(
    operator_a, django_capture_on_commit_callbacks, settings
):
    first = upload(operator_a, GOOD, capture=django_capture_on_commit_callbacks)
    with pytest.raises(BatchError) as exc:
        upload(operator_a, GOOD, name="renamed.csv")
    assert (exc.value.code, exc.value.batch_id, exc.value.status) == ("file_duplicate", first.pk, 409)
    assert str(first.pk) in exc.value.message
    assert Batch.objects.count() == 1
    assert len(list((settings.MEDIA_ROOT / "batches").iterdir())) == 1
    # once the first is cancelled, the same content may come again
    batch_cancel(actor=operator_a, batch=first)
    assert upload(operator_a, GOOD).pk != first.pk


def test_another_organisation_may_upload_the_same_content(operator_a, merchant_b):
    from tests.factories import UserFactory

    operator_b = UserFactory(organisation=merchant_b, roles=["merchant_operator"])
    upload(operator_a, GOOD)
    assert upload(operator_b, GOOD).organisation_id == merchant_b.pk


def test_order_id_used_in_an_earlier_batch_is_refused(operator_a, django_capture_on_commit_callbacks):
    first = upload(operator_a, GOOD, capture=django_capture_on_commit_callbacks)
    second = upload(operator_a, ["A0003|999", "N0001|100", "N0001|200"], capture=django_capture_on_commit_callbacks)
    second.refresh_from_db()
    assert (second.valid_lines, second.invalid_lines) == (1, 2)
    lines = {ln.line_no: (ln.status, ln.error_code, ln.error_params) for ln in BatchLine.objects.filter(batch=second)}
    assert lines[1] == ("invalid", "duplicate_order_id", {"order_id": "A0003", "batch_id": first.pk, "line_no": 3})
    assert lines[2] == ("valid", "", {})
    assert lines[3] == ("invalid", "duplicate_order_id_in_file", {"order_id": "N0001", "line_no": 2})


def test_duplicate_order_id_in_a_later_chunk_of_the_same_file(operator_a, django_capture_on_commit_callbacks):
    # validate chunks hold 4 lines: line 6 repeats line 1 across chunks
    batch = upload(operator_a, [*GOOD, "A0001|1"], capture=django_capture_on_commit_callbacks)
    line = BatchLine.objects.get(batch=batch, line_no=6)
    assert (line.status, line.error_code, line.error_params) == (
        "invalid",
        "duplicate_order_id_in_file",
        {"order_id": "A0001", "line_no": 1},
    )


def test_cancel_releases_order_ids(operator_a, django_capture_on_commit_callbacks):
    first = upload(operator_a, GOOD, capture=django_capture_on_commit_callbacks)
    batch_cancel(actor=operator_a, batch=first, reason="wrong file")
    second = upload(operator_a, ["A0001|100"], capture=django_capture_on_commit_callbacks)
    second.refresh_from_db()
    assert second.valid_lines == 1
    assert AuditEvent.objects.filter(action="batch.cancel", object_id=str(first.pk)).count() == 1


def _approved(operator_a, capture, lines=GOOD):
    batch = upload(operator_a, lines, capture=capture)
    batch_submit(actor=operator_a, batch=batch)  # the demo kind needs no review: approved at once
    batch.refresh_from_db()
    return batch


def test_submit_without_review_approves_and_processing_runs_every_line_once(
    operator_a, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        batch = _approved(operator_a, django_capture_on_commit_callbacks)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.PARTIALLY_COMPLETED  # A0004 (413 fen) is declined by the demo gateway
    assert sorted(CALLS) == ["A0001", "A0002", "A0003", "A0004", "A0005"]
    assert (batch.processed_lines, batch.succeeded_lines, batch.failed_lines, batch.succeeded_amount) == (5, 4, 1, 1100)
    # running every chunk again (a duplicated task) sends nothing more
    for chunk in range(batch.chunk_count):
        assert batch_process_chunk(batch_id=batch.pk, chunk_no=chunk) == 0
    assert len(CALLS) == 5
    # and the result file was written, encrypted, in the upload's format
    with storage.open_plaintext(batch.result_name) as fh:
        result = fh.read().decode()
    assert result.splitlines()[1:] == [
        "A0001|100|succeeded|00",
        "A0002|200|succeeded|00",
        "A0003|300|succeeded|00",
        "A0004|413|failed|61",
        "A0005|500|succeeded|00",
    ]
    assert AuditEvent.objects.filter(action="batch.completed", object_id=str(batch.pk)).count() == 1


def test_chunk_task_run_twice_processes_each_line_once(operator_a, django_capture_on_commit_callbacks):
    batch = upload(operator_a, GOOD, capture=django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False):
        batch_submit(actor=operator_a, batch=batch)
        assert batch_process(batch_id=batch.pk)
    assert batch_process_chunk(batch_id=batch.pk, chunk_no=0) == 2  # lines 1 and 2 (chunk 0: line numbers 0-2)
    assert batch_process_chunk(batch_id=batch.pk, chunk_no=0) == 0
    assert CALLS == ["A0001", "A0002"]
    assert Batch.objects.get(pk=batch.pk).status == "processing"
    assert batch_process_chunk(batch_id=batch.pk, chunk_no=1) == 3
    batch.refresh_from_db()
    assert batch.status == BatchStatus.PARTIALLY_COMPLETED


def test_line_left_processing_by_a_killed_worker_is_recovered_not_resent(
    operator_a, django_capture_on_commit_callbacks
):
    batch = upload(operator_a, ["A0001|100", "A0002|200"], capture=django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False):
        batch_submit(actor=operator_a, batch=batch)
        batch_process(batch_id=batch.pk)
    # the worker claimed line 1 and died before recording the outcome
    BatchLine.objects.filter(batch=batch, line_no=1).update(status=LineStatus.PROCESSING)
    assert batch_process_chunk(batch_id=batch.pk, chunk_no=0) == 1
    assert CALLS == ["A0002"]
    assert RECOVERED == ["A0001"]
    line = BatchLine.objects.get(batch=batch, line_no=1)
    assert (line.status, line.result) == ("succeeded", {"respCode": "00", "recovered": True})
    batch.refresh_from_db()
    assert (batch.status, batch.succeeded_lines, batch.processed_lines) == ("completed", 2, 2)


def test_process_line_crash_leaves_the_line_processing_then_recovers(
    operator_a, django_capture_on_commit_callbacks, demo_kind
):
    from dataclasses import replace

    from portal.batches.registry import register_batch_kind

    def boom(batch, line):
        raise ConnectionError("gateway down")

    batch = upload(operator_a, ["A0001|100"], capture=django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False):
        batch_submit(actor=operator_a, batch=batch)
        batch_process(batch_id=batch.pk)
    register_batch_kind(replace(demo_kind, process_line=boom))
    with pytest.raises(ConnectionError):
        batch_process_chunk(batch_id=batch.pk, chunk_no=0)
    assert BatchLine.objects.get(batch=batch).status == "processing"
    register_batch_kind(demo_kind)
    batch_process_chunk(batch_id=batch.pk, chunk_no=0)
    assert (CALLS, RECOVERED) == ([], ["A0001"])
    assert Batch.objects.get(pk=batch.pk).status == "completed"


def test_unknown_outcome_without_recover_is_left_sent(operator_a, django_capture_on_commit_callbacks, demo_kind):
    from dataclasses import replace

    from portal.batches.registry import register_batch_kind
    from portal.batches.services import batch_line_record_outcome

    register_batch_kind(replace(demo_kind, recover_line=None))
    batch = upload(operator_a, ["A0001|100"], capture=django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False):
        batch_submit(actor=operator_a, batch=batch)
        batch_process(batch_id=batch.pk)
    BatchLine.objects.filter(batch=batch).update(status=LineStatus.PROCESSING)
    batch_process_chunk(batch_id=batch.pk, chunk_no=0)
    line = BatchLine.objects.get(batch=batch)
    assert (line.status, line.result, CALLS) == ("sent", {"needs_query": True}, [])
    assert Batch.objects.get(pk=batch.pk).status == "processing"
    # the outcome arrives later: the batch finishes
    assert batch_line_record_outcome(line_id=line.pk, status="failed", result={"respCode": "61"})
    assert Batch.objects.get(pk=batch.pk).status == "failed"
    # forward only: a late duplicate outcome is ignored
    assert not batch_line_record_outcome(line_id=line.pk, status="succeeded")


def test_all_succeeded_is_completed(operator_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        batch = _approved(operator_a, django_capture_on_commit_callbacks, lines=["A1|100", "A2|200"])
    assert Batch.objects.get(pk=batch.pk).status == "completed"


def test_all_failed_is_failed(operator_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        batch = _approved(operator_a, django_capture_on_commit_callbacks, lines=["A1|113", "A2|213"])
    assert Batch.objects.get(pk=batch.pk).status == "failed"


def test_cancel_after_approval_is_refused(operator_a, django_capture_on_commit_callbacks):
    batch = upload(operator_a, GOOD, capture=django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False):
        batch_submit(actor=operator_a, batch=batch)
    with pytest.raises(BatchError) as exc:
        batch_cancel(actor=operator_a, batch=batch)
    assert exc.value.code == "not_cancellable"
    assert Batch.objects.get(pk=batch.pk).status == "approved"
    assert not AuditEvent.objects.filter(action="batch.cancel").exists()


def test_submit_only_a_validated_batch(operator_a):
    batch = upload(operator_a, GOOD)
    with pytest.raises(BatchError) as exc:
        batch_submit(actor=operator_a, batch=batch)
    assert exc.value.code == "not_submittable"


def test_services_check_scope_and_permission(operator_a, reviewer_a, admin_b, django_capture_on_commit_callbacks):
    batch = upload(operator_a, GOOD, capture=django_capture_on_commit_callbacks)
    with pytest.raises(BatchError) as exc:
        batch_cancel(actor=admin_b, batch=batch)
    assert exc.value.status == 404
    with pytest.raises(PermissionDenied):
        batch_cancel(actor=reviewer_a, batch=batch)
    with pytest.raises(PermissionDenied):
        upload(reviewer_a, GOOD)
    assert Batch.objects.get(pk=batch.pk).status == "validated"


def test_raw_upload_is_purged_after_retention(operator_a, django_capture_on_commit_callbacks, settings):
    import time_machine
    from django.utils import timezone

    from portal.batches.services import batch_purge_raw

    batch = upload(operator_a, GOOD, capture=django_capture_on_commit_callbacks)
    assert batch_purge_raw() == 0
    with (
        time_machine.travel(timezone.now() + timezone.timedelta(days=31)),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert batch_purge_raw() == 1
    assert not storage.exists(batch.stored_name)
    assert Batch.objects.get(pk=batch.pk).raw_deleted_at is not None
