from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RefundsConfig(AppConfig):
    name = "refunds"
    verbose_name = _("Refunds")

    def ready(self) -> None:
        from portal.batches.registry import register_batch_kind

        from . import approval
        from .batch import refund_batch_kind

        approval.register()
        register_batch_kind(refund_batch_kind())
        approval.point_batch_reviews_here()
