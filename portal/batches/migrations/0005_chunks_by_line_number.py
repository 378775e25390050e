"""Processing chunks by line number: chunk n holds the valid lines numbered n × ``chunk_size`` to
(n + 1) × ``chunk_size`` − 1, read through the ``(batch, line_no)`` index, so the lines need no index of
their own on ``(batch, chunk_no)`` (one index less for each line a validation writes).

The lines of batches still to be processed are numbered again the new way. A batch already
``processing`` while this runs should have its chunks enqueued again afterwards (``batch_process`` on a
processing batch does that; each chunk is idempotent)."""

from django.conf import settings
from django.db import migrations, models

LIVE = ("validated", "pending_review", "approved", "processing")


def renumber(apps, schema_editor):
    size = int(settings.BATCH_CHUNK_SIZE)
    placeholders = ", ".join(["%s"] * len(LIVE))
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE batches_batchline SET chunk_no = line_no / {size} WHERE chunk_no IS NOT NULL "
            f"AND batch_id IN (SELECT id FROM batches_batch WHERE status IN ({placeholders}))",
            LIVE,
        )
        cursor.execute(
            f"UPDATE batches_batch SET chunk_size = {size}, chunk_count = coalesce((SELECT max(l.line_no) / {size} + 1 "
            "FROM batches_batchline l WHERE l.batch_id = batches_batch.id AND l.chunk_no IS NOT NULL), 0) "
            f"WHERE status IN ({placeholders})",
            LIVE,
        )


class Migration(migrations.Migration):
    dependencies = [
        ("batches", "0004_order_id_holds_keyed"),
    ]

    operations = [
        migrations.AddField(
            model_name="batch",
            name="chunk_size",
            field=models.PositiveIntegerField(default=500),
        ),
        migrations.RunPython(renumber, migrations.RunPython.noop),
        migrations.RemoveIndex(
            model_name="batchline",
            name="batchline_batch_chunk",
        ),
    ]
