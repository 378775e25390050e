from rest_framework.routers import SimpleRouter

from .views import MerchantViewSet, TransactionViewSet

router = SimpleRouter()
router.register("transactions", TransactionViewSet, basename="transaction")
router.register("merchants", MerchantViewSet, basename="merchant")
urlpatterns = router.urls
