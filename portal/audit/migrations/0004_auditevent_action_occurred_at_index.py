"""An index on (action, occurred_at) for the sign-in failure alert (portal.audit.alerts), which counts
the failures of the last minutes as each one is recorded. A plain CREATE INDEX: SQLite does not
rebuild the table for it, so the append-only triggers of 0002/0003 stay in place, and PostgreSQL's
triggers are per table anyway."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0001_initial'),
        ('audit', '0003_keep_events_of_deleted_actors'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(fields=['action', 'occurred_at'], name='audit_audit_action_7e10a4_idx'),
        ),
    ]
