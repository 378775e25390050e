"""The "your download is ready" notification, shown as a message on the next page load.

Only a session that queued a background download pays for a query: the pending job ids sit in
the session until the jobs end, then each becomes one message (ready or failed).
"""

from __future__ import annotations

from django.contrib import messages
from django.utils.translation import gettext as _

PENDING_SESSION_KEY = "payments.pending_exports"


def remember_pending_export(request, job_id) -> None:
    pending = list(request.session.get(PENDING_SESSION_KEY, []))
    pending.append(str(job_id))
    request.session[PENDING_SESSION_KEY] = pending[-20:]


def downloads(request) -> dict:
    session = getattr(request, "session", None)
    user = getattr(request, "user", None)
    if session is None or user is None or not user.is_authenticated or request.headers.get("HX-Request"):
        return {}
    pending = session.get(PENDING_SESSION_KEY)
    if not pending:
        return {}
    from .choices import ExportStatus
    from .models import ExportJob

    statuses = dict(ExportJob.objects.visible_to(user).filter(pk__in=pending).values_list("pk", "status"))
    still = []
    for job_id in pending:
        status = next((s for pk, s in statuses.items() if str(pk) == job_id), None)
        if status in (ExportStatus.QUEUED, ExportStatus.RUNNING):
            still.append(job_id)
        elif status == ExportStatus.READY:
            messages.success(request, _("Your download is ready. You will find it under My downloads."))
        elif status == ExportStatus.FAILED:
            messages.error(request, _("A download could not be prepared. See My downloads for details."))
    if still:
        session[PENDING_SESSION_KEY] = still
    else:
        session.pop(PENDING_SESSION_KEY, None)
    return {}
