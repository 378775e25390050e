"""Hooks into django-axes: a lockout becomes an audit event."""

from axes.signals import user_locked_out
from django.dispatch import receiver


@receiver(user_locked_out)
def audit_lockout(sender, request=None, username=None, ip_address=None, **kwargs):
    from portal.audit.services import audit_record

    from .models import User

    user = User.objects.filter(username=username).first() if username else None
    audit_record(
        action="auth.lockout",
        actor=user,
        actor_repr=username or "",
        outcome="failure",
        details={"ip": ip_address},
    )
