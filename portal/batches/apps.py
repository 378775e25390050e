from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BatchesConfig(AppConfig):
    """The one uploaded-file pipeline. Domain apps register their kinds from their own ``ready()``
    with ``portal.batches.registry.register_batch_kind``; this app imports none of them."""

    name = "portal.batches"
    label = "batches"
    verbose_name = _("Batch files")
