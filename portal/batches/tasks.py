"""Celery tasks of the batch pipeline: thin, idempotent wrappers taking ids (see services)."""

from celery import shared_task
from django.db import DatabaseError

from . import services

# Infrastructure faults (database, gateway connection) retry; bad input ends in a recorded status.
_RETRY = {
    "autoretry_for": (DatabaseError, ConnectionError, TimeoutError, OSError),
    "retry_backoff": True,
    "max_retries": 8,
}


@shared_task(name="batches.validate_batch", acks_late=True, **_RETRY)
def validate_batch(batch_id: int) -> None:
    services.batch_validate(batch_id=batch_id)


@shared_task(name="batches.process_batch", acks_late=True, **_RETRY)
def process_batch(batch_id: int) -> None:
    services.batch_process(batch_id=batch_id)


@shared_task(name="batches.process_batch_chunk", acks_late=True, **_RETRY)
def process_batch_chunk(batch_id: int, chunk_no: int) -> None:
    services.batch_process_chunk(batch_id=batch_id, chunk_no=chunk_no)


@shared_task(name="batches.purge_raw_batch_files")
def purge_raw_batch_files() -> None:
    services.batch_purge_raw()
