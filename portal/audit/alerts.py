"""Automated review of the audit trail (security.md D8; PCI DSS 10.4.1.1): a burst of failed sign-ins.

Rule: when the failed sign-in events (``auth.login_failure``: a wrong password, an unknown or locked
username; ``auth.otp_failure``: a wrong or throttled second-factor code) reach
``SECURITY_ALERT_FAILURES`` within ``SECURITY_ALERT_WINDOW_SECONDS`` across all usernames, or
``SECURITY_ALERT_IP_FAILURES`` within ``SECURITY_ALERT_IP_WINDOW_SECONDS`` from one client IP, a
``security.alert`` audit event is written (no actor: the system) and an ERROR is logged on
``portal.security`` after commit, at most once per rule key (rule and IP, or "all") per window.

Why on each failure rather than a periodic job: the alert is raised by the very request that
crosses the threshold (no minute of delay, nothing to miss when the Celery beat or the broker is
down, which an attacker could also cause), and the cost is one aggregate query over the
(action, occurred_at) index on failure paths only. The check runs inside the failure's transaction,
after ``audit_record`` has appended the failure, so it holds the audit chain head's lock (the row
lock on PostgreSQL, the write lock on SQLite) until commit: every writer of the audit log is
serialised there, and under READ COMMITTED the de-duplication query sees any alert another
request committed before, so two concurrent failures cannot both raise the alert.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max, Min, Q

from .models import AuditEvent
from .services import audit_record

FAILURE_ACTIONS = ("auth.login_failure", "auth.otp_failure")
ALERT_ACTION = "security.alert"
RULE_ALL = "sign_in_failure_burst"
RULE_IP = "sign_in_failure_burst_per_ip"
ALL = "all"
SYSTEM_ACTOR = "system"

security_logger = logging.getLogger("portal.security")


def sign_in_failure_alert_check(*, failure: AuditEvent) -> list[AuditEvent]:
    """Run the burst rule right after ``failure`` (a failed sign-in event) was recorded, in its
    transaction. Returns the ``security.alert`` events written (usually none).

    Never breaks the caller: an error of the rule itself is rolled back to a savepoint and logged
    at ERROR on ``portal.security``, and the failure stays recorded.
    """
    try:
        with transaction.atomic():
            return _check(failure)
    except Exception:
        security_logger.exception("The sign-in failure alert rule failed after audit event #%s", failure.sequence)
        return []


def _check(failure: AuditEvent) -> list[AuditEvent]:
    now = failure.occurred_at
    window_all = settings.SECURITY_ALERT_WINDOW_SECONDS
    window_ip = settings.SECURITY_ALERT_IP_WINDOW_SECONDS
    since_all = now - timedelta(seconds=window_all)
    since_ip = now - timedelta(seconds=window_ip)
    in_all = Q(occurred_at__gt=since_all)
    in_ip = Q(occurred_at__gt=since_ip, ip=failure.ip) if failure.ip else Q(pk__in=[])
    counts = AuditEvent.objects.filter(
        action__in=FAILURE_ACTIONS, occurred_at__gt=min(since_all, since_ip), occurred_at__lte=now
    ).aggregate(
        all_count=Count("pk", filter=in_all),
        all_first=Min("sequence", filter=in_all),
        all_last=Max("sequence", filter=in_all),
        ip_count=Count("pk", filter=in_ip),
        ip_first=Min("sequence", filter=in_ip),
        ip_last=Max("sequence", filter=in_ip),
    )
    rules = [
        (RULE_ALL, ALL, window_all, settings.SECURITY_ALERT_FAILURES, "all"),
        (RULE_IP, failure.ip, window_ip, settings.SECURITY_ALERT_IP_FAILURES, "ip"),
    ]
    alerts = []
    for rule, key, window, threshold, prefix in rules:
        count = counts[f"{prefix}_count"]
        if not key or count < threshold:
            continue
        already = AuditEvent.objects.filter(
            action=ALERT_ACTION,
            occurred_at__gt=now - timedelta(seconds=window),
            details__rule=rule,
            details__ip=key,
        ).exists()
        if already:
            continue
        details = {
            "rule": rule,
            "count": count,
            "threshold": threshold,
            "window": window,
            "ip": key,
            "first_sequence": counts[f"{prefix}_first"],
            "last_sequence": counts[f"{prefix}_last"],
        }
        alert = audit_record(action=ALERT_ACTION, actor=None, actor_repr=SYSTEM_ACTOR, details=details)
        transaction.on_commit(_page(alert.sequence, details), robust=True)
        alerts.append(alert)
    return alerts


def _page(sequence: int, details: dict):
    def log_security_alert() -> None:
        security_logger.error(
            "Security alert %s: %s failed sign-ins in %s s from %s (audit events #%s to #%s; alert #%s)",
            details["rule"],
            details["count"],
            details["window"],
            details["ip"],
            details["first_sequence"],
            details["last_sequence"],
            sequence,
            extra={"audit_sequence": sequence, "security_alert": details["rule"]},
        )

    return log_security_alert
