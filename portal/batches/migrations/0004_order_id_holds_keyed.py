"""The order-id holds keyed by (family, merchant, order id) as their primary key, without the surrogate
``id`` and its index (one index less for each line a batch holds). Django does not change a primary key
into a composite one in place: the holds move to a new table, which then takes the old one's name."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_user_unique_verified_phone"),
        ("batches", "0003_lean_lines"),
    ]

    operations = [
        migrations.CreateModel(
            name="BatchOrderIdKeyed",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "family", "merchant", "order_id", blank=True, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("family", models.CharField(max_length=32)),
                ("order_id", models.CharField(max_length=64)),
                ("line_no", models.PositiveIntegerField()),
                (
                    "batch",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="batches.batch",
                    ),
                ),
                (
                    "merchant",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="accounts.organisation",
                    ),
                ),
            ],
        ),
        migrations.RunSQL(
            "INSERT INTO batches_batchorderidkeyed (family, merchant_id, order_id, batch_id, line_no) "
            "SELECT family, merchant_id, order_id, batch_id, line_no FROM batches_batchorderid",
            "INSERT INTO batches_batchorderid (family, merchant_id, order_id, batch_id, line_no) "
            "SELECT family, merchant_id, order_id, batch_id, line_no FROM batches_batchorderidkeyed",
        ),
        migrations.DeleteModel(name="BatchOrderId"),
        migrations.RenameModel(old_name="BatchOrderIdKeyed", new_name="BatchOrderId"),
    ]
