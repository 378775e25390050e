"""Approval policies, approval requests and their stages."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from portal.accounts.querysets import scope_by_organisation

from .choices import RequestStatus, StageStatus


class ApprovalPolicy(models.Model):
    """Which stages a kind of approvable thing needs, for one organisation or (``organisation``
    empty) for everyone. Edited by platform administrators in the Django admin.

    ``stages`` is an ordered list of ``{"role": <role code>, "org": "merchant" | "acquirer",
    "min_amount": <fen, optional>}``; a stage whose ``min_amount`` is above the request's amount
    is left out. A request keeps a snapshot of the policy it started with, so editing a policy
    never changes a pending request. At most one active policy per (kind, organisation).
    """

    kind = models.CharField(_("kind"), max_length=64)
    organisation = models.ForeignKey(
        "accounts.Organisation",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("organisation"),
        help_text=_("Empty: the default for every organisation."),
    )
    stages = models.JSONField(_("stages"), default=list)
    is_active = models.BooleanField(_("active"), default=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("approval policy")
        verbose_name_plural = _("approval policies")
        ordering = ["kind", "organisation_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "organisation"],
                condition=Q(is_active=True, organisation__isnull=False),
                name="approvals_one_active_policy_per_org",
            ),
            models.UniqueConstraint(
                fields=["kind"],
                condition=Q(is_active=True, organisation__isnull=True),
                name="approvals_one_active_default_policy",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} · {self.organisation or _('default')}"


class ApprovalRequestQuerySet(models.QuerySet):
    def visible_to(self, user) -> ApprovalRequestQuerySet:
        """Requests of the organisations ``user`` may see (a merchant its own, an acquirer its merchants')."""
        return scope_by_organisation(self, user)

    def pending(self) -> ApprovalRequestQuerySet:
        return self.filter(status=RequestStatus.PENDING)


class ApprovalRequest(models.Model):
    """One thing waiting for (or done with) maker-checker review.

    ``object_type`` / ``object_id`` name the approved thing generically (e.g. ``refunds.refund`` / ``42``);
    ``organisation`` is the merchant it belongs to (an acquirer for a thing of several of its
    merchants, e.g. a batch file naming them: its reviewers then decide every stage); ``content_hash``
    is the SHA-256 of the canonical content the maker submitted, and every decision must quote it. At
    most one pending request per (kind, object).
    """

    kind = models.CharField(_("kind"), max_length=64)
    object_type = models.CharField(_("object type"), max_length=100)
    object_id = models.CharField(_("object id"), max_length=64)
    organisation = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="+", verbose_name=_("organisation")
    )
    maker = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("submitted by")
    )
    amount = models.BigIntegerField(_("amount (fen)"), default=0)
    content_hash = models.CharField(_("content hash"), max_length=64)
    policy_snapshot = models.JSONField(_("policy snapshot"), default=dict)
    status = models.CharField(
        _("status"), max_length=16, choices=RequestStatus.choices, default=RequestStatus.PENDING, db_index=True
    )
    status_reason = models.CharField(_("reason"), max_length=255, blank=True)
    summary = models.CharField(_("summary"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("submitted"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires"))
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)

    objects = ApprovalRequestQuerySet.as_manager()

    class Meta:
        verbose_name = _("approval request")
        verbose_name_plural = _("approval requests")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "object_type", "object_id"],
                condition=Q(status="pending"),
                name="approvals_one_pending_per_object",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "expires_at"], name="approvals_status_expiry"),
            models.Index(fields=["object_type", "object_id"], name="approvals_object"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.object_type}:{self.object_id} ({self.status})"

    @property
    def is_pending(self) -> bool:
        return self.status == RequestStatus.PENDING

    @property
    def current_stage(self) -> ApprovalStage | None:
        """The first stage still waiting, or None once the request is decided."""
        return next((s for s in self.stages.all() if s.status == StageStatus.PENDING), None)


class ApprovalStage(models.Model):
    """One step of a request: a person holding ``role`` in ``org`` decides it, in ``index`` order."""

    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="stages")
    index = models.PositiveSmallIntegerField(_("stage"))
    role = models.CharField(_("role"), max_length=32)
    org = models.ForeignKey(
        "accounts.Organisation", on_delete=models.PROTECT, related_name="+", verbose_name=_("organisation")
    )
    status = models.CharField(_("status"), max_length=16, choices=StageStatus.choices, default=StageStatus.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    reason = models.TextField(_("reason"), blank=True)
    seen_content_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name = _("approval stage")
        verbose_name_plural = _("approval stages")
        ordering = ["request_id", "index"]
        constraints = [models.UniqueConstraint(fields=["request", "index"], name="approvals_stage_index_unique")]

    def __str__(self) -> str:
        return f"{self.request_id}#{self.index} {self.role} ({self.status})"

    @property
    def role_label(self) -> str:
        from portal.accounts.roles import Role

        return Role(self.role).label if self.role in Role.values else self.role
