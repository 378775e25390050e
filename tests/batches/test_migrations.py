"""The batches migrations that move data: the order-id holds into their keyed table (0004) and the lines of
batches still to be processed numbered into chunks by line number (0005)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("batches", "0003_lean_lines")]
AFTER = [("batches", "0005_chunks_by_line_number")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def old_apps(operator_a):
    apps = _migrate(BEFORE)
    yield apps
    _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())  # the tables as the other tests expect


def test_holds_and_chunks_are_carried_over(old_apps, operator_a, settings):
    settings.BATCH_CHUNK_SIZE = 3
    Batch = old_apps.get_model("batches", "Batch")
    BatchLine = old_apps.get_model("batches", "BatchLine")
    BatchOrderId = old_apps.get_model("batches", "BatchOrderId")
    merchant = operator_a.organisation_id

    def batch(status, sha):
        return Batch.objects.create(
            kind="refund",
            organisation_id=merchant,
            merchant_id=merchant,
            uploaded_by_id=operator_a.pk,
            original_name="a.txt",
            stored_name=f"stored-{sha}",
            file_format="text",
            size=1,
            sha256=sha,
            status=status,
            chunk_count=2,
        )

    live, done = batch("approved", "a"), batch("completed", "b")
    # chunks by rank before: the valid lines 3, 4, 6 in chunk 0, 7 and 8 in chunk 1
    for line_no, chunk, status in [(3, 0, "valid"), (4, 0, "valid"), (5, None, "invalid"), (6, 0, "valid"),
                                   (7, 1, "valid"), (8, 1, "processing")]:  # fmt: skip
        BatchLine.objects.create(
            batch_id=live.pk, line_no=line_no, status=status, chunk_no=chunk, order_id=f"O{line_no}"
        )
    BatchLine.objects.create(batch_id=done.pk, line_no=3, status="succeeded", chunk_no=0, order_id="D3")
    for line_no in (3, 4, 6, 7, 8):
        BatchOrderId.objects.create(
            family="refund", merchant_id=merchant, order_id=f"O{line_no}", batch_id=live.pk, line_no=line_no
        )

    apps = _migrate(AFTER)

    Batch, BatchLine = apps.get_model("batches", "Batch"), apps.get_model("batches", "BatchLine")
    held = apps.get_model("batches", "BatchOrderId").objects.order_by("line_no")
    assert [(h.family, h.merchant_id, h.order_id, h.batch_id, h.line_no) for h in held] == [
        ("refund", merchant, f"O{n}", live.pk, n) for n in (3, 4, 6, 7, 8)
    ]
    assert list(BatchLine.objects.filter(batch_id=live.pk).order_by("line_no").values_list("line_no", "chunk_no")) == [
        (3, 1), (4, 1), (5, None), (6, 2), (7, 2), (8, 2),
    ]  # fmt: skip
    assert (Batch.objects.get(pk=live.pk).chunk_size, Batch.objects.get(pk=live.pk).chunk_count) == (3, 3)
    # a finished batch is left as it was
    assert BatchLine.objects.get(batch_id=done.pk).chunk_no == 0
    assert Batch.objects.get(pk=done.pk).chunk_count == 2
