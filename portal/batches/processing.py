"""The background half of the batch services: processing an approved batch in chunks.

``batch_process`` moves ``approved`` → ``processing`` and enqueues one task per chunk (chunk n: the
valid lines numbered n × ``Batch.chunk_size`` to (n + 1) × ``chunk_size`` − 1, read through the
``(batch, line_no)`` index), so several workers share the work.
``batch_process_chunk`` claims each line with a guarded update (``valid`` → ``processing``) before
calling the kind, records the outcome forward only, and never sends a line found ``processing``
again: such a line (a killed worker, a retried task) goes through the kind's ``recover_line``, which
asks the gateway by the line's stable order id. Running a chunk twice, or two copies at once,
sends each line at most once.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from .choices import BatchStatus, LineStatus
from .models import Batch, BatchLine
from .registry import LineResult, get_kind
from .services import _audit, _enqueue, batch_finish_if_done, batch_line_record, batch_transition

logger = logging.getLogger(__name__)

UNKNOWN_OUTCOME = {"needs_query": True}


def batch_process(*, batch_id: int) -> bool:
    """Start processing an approved batch (the ``process_batch`` task). A duplicate call on a batch
    already processing enqueues the chunks again (each chunk is idempotent). False when the batch
    is in neither state."""
    with transaction.atomic():
        left = batch_transition(
            batch_id=batch_id,
            old={BatchStatus.APPROVED},
            new=BatchStatus.PROCESSING,
            processing_started_at=timezone.now(),
        )
        batch = Batch.objects.select_related("organisation").get(pk=batch_id)
        if left is None and batch.status != BatchStatus.PROCESSING:
            return False
        if left is not None:
            _audit("batch.processing", batch, chunks=batch.chunk_count)
        chunks = batch.chunk_count
        if chunks:
            transaction.on_commit(lambda: [_enqueue("process_batch_chunk", batch_id, n) for n in range(chunks)])
        else:
            transaction.on_commit(lambda: batch_finish_if_done(batch_id=batch_id))
    return True


def batch_process_chunk(*, batch_id: int, chunk_no: int) -> int:
    """Process chunk ``chunk_no`` of a processing batch (the ``process_batch_chunk`` task); returns how
    many lines this call sent. An exception from the kind's ``process_line`` leaves that line
    ``processing`` and propagates (infrastructure fault: the task retries and recovers it)."""
    batch = Batch.objects.select_related("organisation", "merchant").filter(pk=batch_id).first()
    if batch is None or batch.status != BatchStatus.PROCESSING:
        return 0
    kind = get_kind(batch.kind)
    sent = 0
    size = batch.chunk_size
    todo = list(
        BatchLine.objects.filter(
            batch_id=batch_id,
            line_no__gte=chunk_no * size,
            line_no__lt=(chunk_no + 1) * size,
            status__in=[LineStatus.VALID, LineStatus.PROCESSING],
        )
        .order_by("line_no")
        .values_list("pk", "status")
    )
    for pk, status in todo:
        line = BatchLine.objects.get(pk=pk)
        if status == LineStatus.PROCESSING or line.status == LineStatus.PROCESSING:
            _recover(batch, kind, line)
            continue
        if not BatchLine.objects.filter(pk=pk, status=LineStatus.VALID).update(
            status=LineStatus.PROCESSING, updated_at=timezone.now()
        ):
            continue  # another worker has it
        line.status = LineStatus.PROCESSING
        outcome = kind.process_line(batch, line)
        sent += 1
        batch_line_record(line=line, outcome=outcome)
    batch_finish_if_done(batch_id=batch_id)
    return sent


def _recover(batch: Batch, kind, line: BatchLine) -> None:
    outcome = kind.recover_line(batch, line) if kind.recover_line else None
    if outcome is None:
        outcome = LineResult(status=LineStatus.SENT, result=dict(UNKNOWN_OUTCOME))
    logger.info("batch %s line %s recovered as %s", batch.pk, line.line_no, outcome.status)
    batch_line_record(line=line, outcome=outcome)
