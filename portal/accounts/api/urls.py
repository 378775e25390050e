from django.urls import path
from rest_framework.routers import SimpleRouter

from .otp import OtpSendView
from .views import UserViewSet

router = SimpleRouter()
router.register("users", UserViewSet, basename="user")
urlpatterns = [*router.urls, path("otp/send/", OtpSendView.as_view(), name="otp-send")]
