from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def ensure_chain_head(sender, using="default", **kwargs):
    """The chain head row must exist before the first event is appended. Migration 0002 creates
    it; this puts it back after ``flush`` (which empties every table, as test teardown does)."""
    from django.db import connections

    from .models import AuditChainHead

    if AuditChainHead._meta.db_table in connections[using].introspection.table_names():
        AuditChainHead.objects.using(using).get_or_create(pk=1)


class AuditConfig(AppConfig):
    name = "portal.audit"
    label = "audit"
    verbose_name = _("Audit trail")

    def ready(self):
        post_migrate.connect(ensure_chain_head, sender=self, dispatch_uid="audit_ensure_chain_head")
