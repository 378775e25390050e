from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RefundsConfig(AppConfig):
    name = "refunds"
    verbose_name = _("Refunds")

    def ready(self) -> None:
        from payments.hooks import register_refund_holds
        from portal.batches.registry import register_batch_kind

        from . import approval, selectors
        from .batch import refund_batch_kind

        approval.register()
        register_batch_kind(refund_batch_kind())
        approval.point_batch_reviews_here()
        # The ledger's detail page and API subtract what refunds and batch lines in flight hold.
        register_refund_holds("refunds", held=selectors.reserved_fen, in_flight=selectors.refunds_in_flight)
