from rest_framework.routers import SimpleRouter

from .views import ReconciliationFileViewSet, SettlementViewSet

router = SimpleRouter()
router.register("settlements", SettlementViewSet, basename="settlement")
router.register("reconciliation-files", ReconciliationFileViewSet, basename="reconciliation-file")
urlpatterns = [
    *router.urls,
    # Upstream runs and discrepancies (reconciliation.upstream.api) plug in below.
]
