from rest_framework.routers import SimpleRouter

from .views import DiscrepancyViewSet, RunViewSet

router = SimpleRouter()
router.register("reconciliation/runs", RunViewSet, basename="reconciliation-run")
router.register("reconciliation/discrepancies", DiscrepancyViewSet, basename="reconciliation-discrepancy")
urlpatterns = router.urls
