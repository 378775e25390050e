"""Reads of the approval engine: the inbox, the count in the navigation, an object's history."""

from __future__ import annotations

from django.db.models import OuterRef, Prefetch, QuerySet, Subquery
from django.utils import timezone

from .choices import StageStatus
from .models import ApprovalRequest, ApprovalStage
from .policies import APPROVER_PERMS
from .registry import edited_by_lookups, get_approvable


def is_reviewer(user) -> bool:
    """Whether ``user`` holds a role with an approve permission (the inbox and the nav count need one)."""
    return bool(getattr(user, "is_authenticated", False) and any(user.has_portal_perm(perm) for perm in APPROVER_PERMS))


def approvals_visible_to(user) -> QuerySet[ApprovalRequest]:
    """Every request of the organisations ``user`` may see, newest first."""
    return ApprovalRequest.objects.visible_to(user).select_related("organisation", "maker")


def approvals_waiting_for(user) -> QuerySet[ApprovalRequest]:
    """Pending, unexpired requests whose current stage ``user`` could decide: the stage's role and
    organisation match, ``user`` is not the maker, no editor of the object (as far as its kind can say in a
    query: ``edited_by``) and decided no earlier stage. Oldest deadline first. (Editors are refused again
    at decision time.)"""
    if not getattr(user, "is_authenticated", False) or not user.is_active or not user.role_codes:
        return ApprovalRequest.objects.none()
    current = ApprovalStage.objects.filter(request=OuterRef("pk"), status=StageStatus.PENDING).order_by("index")
    qs = ApprovalRequest.objects.visible_to(user).pending().filter(expires_at__gt=timezone.now()).exclude(maker=user)
    for kind, edited_by in edited_by_lookups():
        qs = qs.exclude(kind=kind, object_id__in=edited_by(user))
    return (
        qs.annotate(
            current_role=Subquery(current.values("role")[:1]),
            current_org=Subquery(current.values("org_id")[:1]),
            current_index=Subquery(current.values("index")[:1]),
        )
        .filter(current_role__in=list(user.role_codes), current_org=user.organisation_id)
        .exclude(pk__in=ApprovalStage.objects.filter(decided_by=user).values("request_id"))
        .select_related("organisation", "maker")
        .order_by("expires_at", "pk")
    )


def approvals_waiting_count(user) -> int:
    """How many requests wait for ``user`` (0 for a user who reviews nothing, without a query)."""
    if not is_reviewer(user):
        return 0
    return approvals_waiting_for(user).count()


def approval_history_for(obj_type: str, obj_id, *, user=None) -> QuerySet[ApprovalRequest]:
    """Every request ever opened for the object, newest first, with their stages and deciders.
    With ``user``, only what that user may see."""
    qs = ApprovalRequest.objects.all() if user is None else ApprovalRequest.objects.visible_to(user)
    stages = ApprovalStage.objects.select_related("org", "decided_by").order_by("index")
    return (
        qs.filter(object_type=obj_type, object_id=str(obj_id))
        .select_related("organisation", "maker")
        .prefetch_related(Prefetch("stages", queryset=stages))
        .order_by("-created_at", "-pk")
    )


def approval_pending_for(obj_type: str, obj_id, *, kind: str | None = None) -> ApprovalRequest | None:
    """The pending request of the object (of ``kind``), if any."""
    qs = ApprovalRequest.objects.pending().filter(object_type=obj_type, object_id=str(obj_id))
    if kind:
        qs = qs.filter(kind=kind)
    return qs.first()


def approval_can_decide(user, request: ApprovalRequest) -> bool:
    """Whether ``user`` could decide ``request``'s current stage now (role, organisation, not maker nor
    an editor the kind declares, no earlier stage), for showing the decision buttons. The service checks
    again, with step-up."""
    if not request.is_pending or request.expires_at <= timezone.now() or user.pk == request.maker_id:
        return False
    stages = list(request.stages.all())
    current = next((s for s in stages if s.status == StageStatus.PENDING), None)
    if current is None:
        return False
    if any(s.decided_by_id == user.pk for s in stages if s.index < current.index):
        return False
    if not (user.is_active and user.organisation_id == current.org_id and user.has_role(current.role)):
        return False
    approvable = get_approvable(request.kind)
    return not (approvable and approvable.editors and user.pk in set(approvable.editors(request)))
