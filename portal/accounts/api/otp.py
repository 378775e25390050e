"""``POST /api/v1/otp/send/``: send a fresh SMS code for step-up (approving, rejecting) to the caller.

The code is bound to the caller's session, valid for 5 minutes, and a new one can be asked for
only after the cooldown (60 s): then 429 with ``wait_seconds``. The answer shows the phone masked.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import auth_services
from ..auth_services import PURPOSE_STEP_UP
from ..phones import mask_phone
from ..second_factor import session_challenge
from ..sms import SmsDailyCapExceeded, SmsIpCapExceeded


class OtpSendView(APIView):
    any_signed_in_user = True

    @extend_schema(request=None, responses={200: dict}, summary="Send a step-up SMS code")
    def post(self, request):
        user = request.user
        if not auth_services.sms_factor_phone(user):  # an unconfirmed phone is no step-up factor (A8)
            return Response(
                {"error": {"code": "no_phone", "message": _("No verified phone number: use your authenticator app.")}},
                status=400,
            )
        try:
            auth_services.sms_code_send(
                user=user, purpose=PURPOSE_STEP_UP, phone=user.phone, challenge=session_challenge(request._request)
            )
        except auth_services.CodeCooldown as exc:
            return Response(
                {
                    "error": {
                        "code": "cooldown",
                        "message": _("Wait %(seconds)d seconds before asking for another code.")
                        % {"seconds": exc.wait_seconds},
                        "wait_seconds": exc.wait_seconds,
                    }
                },
                status=429,
            )
        except SmsIpCapExceeded:
            return Response(
                {
                    "error": {
                        "code": "daily_cap_ip",
                        "message": _("Too many codes were requested from your network today."),
                    }
                },
                status=429,
            )
        except SmsDailyCapExceeded:
            return Response(
                {"error": {"code": "daily_cap", "message": _("Too many codes were sent to this phone today.")}},
                status=429,
            )
        return Response({"sent": True, "phone": mask_phone(user.phone)})
