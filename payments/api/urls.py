from rest_framework.routers import SimpleRouter

from .views import ExportJobViewSet, MerchantViewSet, TransactionViewSet

router = SimpleRouter()
router.register("transactions", TransactionViewSet, basename="transaction")
router.register("merchants", MerchantViewSet, basename="merchant")
router.register("exports", ExportJobViewSet, basename="export")
urlpatterns = router.urls
