"""A covering index for the history page's totals line (issue 3, §6 ``query``).

``(merchant_id, txn_time DESC, id DESC) INCLUDE (amount, status)`` lets PostgreSQL answer the totals
query (count and sum of a merchant's date range, split by status) with an index-only scan instead of
a bitmap heap scan of every matching row. PostgreSQL only (``INCLUDE``); built ``CONCURRENTLY`` so
that the ledger stays writable, hence a non-atomic migration. No model state changes: the index is
an implementation detail of PostgreSQL deployments and other databases skip it.
"""

from django.db import migrations

INDEX = "txn_merchant_time_totals"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} ON payments_transaction "
        "(merchant_id, txn_time DESC, id DESC) INCLUDE (amount, status)"
    )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("payments", "0002_exportjob_merchantprofile"),
    ]

    operations = [
        migrations.RunPython(create_index, drop_index, elidable=False),
    ]
