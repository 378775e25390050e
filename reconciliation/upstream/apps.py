from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class UpstreamReconciliationConfig(AppConfig):
    name = "reconciliation.upstream"
    label = "recon_upstream"
    verbose_name = _("Upstream reconciliation")

    def ready(self) -> None:
        from . import approvals, sandbox

        approvals.register()
        sandbox.register()
