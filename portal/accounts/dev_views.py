"""Developer pages, mounted under /dev/ only when DEBUG is on (see ``portal/urls.py``)."""

from django.conf import settings
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from portal.accounts.models import SmsMessage
from portal.core.mixins import public_view

OUTBOX_SIZE = 50


@public_view
@never_cache
@require_GET
def sms_outbox(request):
    """The newest SMS messages, newest first. Public on purpose: a developer needs the code to
    sign in. Refuses to exist (404) unless DEBUG is on, even if mounted by mistake."""
    if not settings.DEBUG:
        raise Http404
    messages = SmsMessage.objects.order_by("-created_at", "-id")[:OUTBOX_SIZE]
    context = {
        "sms_messages": messages,
        "outbox_size": OUTBOX_SIZE,
        "business_time_zone": settings.BUSINESS_TIME_ZONE,
    }
    return render(request, "accounts/dev/sms_outbox.html", context)
