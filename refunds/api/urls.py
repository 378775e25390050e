from rest_framework.routers import SimpleRouter

from .views import RefundBatchViewSet, RefundViewSet

router = SimpleRouter()
router.register("refunds", RefundViewSet, basename="refund")
router.register("refund-batches", RefundBatchViewSet, basename="refund-batch")
urlpatterns = router.urls
