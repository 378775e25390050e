"""Policy stages: the built-in defaults, validation of a stages list, and choosing the stages of a request."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from portal.accounts.roles import ROLE_PERMISSIONS, ROLES_BY_ORG_KIND, Perm, Role

from .choices import StageOrg

# Stands for settings.APPROVAL_ACQUIRER_THRESHOLD_FEN in the built-in defaults.
ACQUIRER_THRESHOLD = "acquirer_threshold"

# Used when no active ApprovalPolicy exists for (kind, organisation), (kind, its acquirer) or (kind, default).
# settings.APPROVAL_DEFAULT_POLICIES, when set, replaces this mapping.
DEFAULT_POLICIES: dict[str, list[dict]] = {
    "refund.single": [{"role": Role.MERCHANT_REVIEWER.value, "org": StageOrg.MERCHANT.value}],
    "refund.batch": [
        {"role": Role.MERCHANT_REVIEWER.value, "org": StageOrg.MERCHANT.value},
        {"role": Role.ACQUIRER_REVIEWER.value, "org": StageOrg.ACQUIRER.value, "min_amount": ACQUIRER_THRESHOLD},
    ],
}

# Permissions that make a role a reviewer (the inbox and the nav count need one of them).
APPROVER_PERMS = (Perm.REFUNDS_APPROVE, Perm.BATCHES_APPROVE)


def _reviewer_roles(side: str) -> frozenset[str]:
    """Roles an organisation of ``side`` may hold that carry an approve permission."""
    return frozenset(
        role for role in ROLES_BY_ORG_KIND[side] if ROLE_PERMISSIONS.get(role, frozenset()) & set(APPROVER_PERMS)
    )


def validate_stages(stages) -> list[dict]:
    """Check a policy's stages list; return it normalised. Raises ``ValidationError`` (translated).

    Each stage: an existing merchant or acquirer role, ``org`` "merchant" or "acquirer" matching the
    role, optional ``min_amount`` an integer ≥ 0 (fen). At least one stage applies to every amount,
    so that no request can ever be approved without a person.
    """
    if not isinstance(stages, list) or not stages:
        raise ValidationError(_("A policy needs a list of at least one stage."))
    cleaned = []
    for number, stage in enumerate(stages, start=1):
        if not isinstance(stage, dict):
            raise ValidationError(_("Stage %(n)s must be an object with role and org.") % {"n": number})
        unknown = set(stage) - {"role", "org", "min_amount"}
        if unknown:
            raise ValidationError(
                _("Stage %(n)s has unknown keys: %(keys)s.") % {"n": number, "keys": ", ".join(sorted(unknown))}
            )
        org = stage.get("org")
        if org not in StageOrg.values:
            raise ValidationError(_("Stage %(n)s: org must be merchant or acquirer.") % {"n": number})
        role = stage.get("role")
        if role not in Role.values:
            raise ValidationError(_("Stage %(n)s: %(role)s is not a role.") % {"n": number, "role": role})
        if role not in _reviewer_roles(org):
            raise ValidationError(
                _("Stage %(n)s: the role %(role)s cannot review in a %(org)s organisation.")
                % {"n": number, "role": role, "org": org}
            )
        item = {"role": role, "org": org}
        if "min_amount" in stage and stage["min_amount"] is not None:
            amount = stage["min_amount"]
            if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
                raise ValidationError(
                    _("Stage %(n)s: min_amount must be a whole number of fen, 0 or more.") % {"n": number}
                )
            item["min_amount"] = amount
        cleaned.append(item)
    if all("min_amount" in s and s["min_amount"] > 0 for s in cleaned):
        raise ValidationError(_("At least one stage must apply to every amount (no min_amount)."))
    return cleaned


def default_stages(kind: str) -> list[dict] | None:
    """The built-in stages of ``kind`` with the threshold placeholder resolved, or None."""
    defaults = getattr(settings, "APPROVAL_DEFAULT_POLICIES", None) or DEFAULT_POLICIES
    stages = defaults.get(kind)
    if stages is None:
        return None
    threshold = settings.APPROVAL_ACQUIRER_THRESHOLD_FEN
    return [
        {**stage, "min_amount": threshold} if stage.get("min_amount") == ACQUIRER_THRESHOLD else dict(stage)
        for stage in stages
    ]


def resolve_policy(kind: str, organisation) -> tuple[list[dict], dict]:
    """The stages for ``kind`` at ``organisation`` (a merchant, or an acquirer for a request of several
    of its merchants), and the snapshot to keep.

    Order: the merchant's active policy, its acquirer's, the default policy (no organisation),
    then the built-in default; for an acquirer: its own policy, the default policy, the built-in
    default. Raises ``LookupError`` when none exists.
    """
    from .models import ApprovalPolicy

    candidates = [organisation.pk]
    if organisation.acquirer_id:
        candidates.append(organisation.acquirer_id)
    policies = {p.organisation_id: p for p in ApprovalPolicy.objects.filter(kind=kind, is_active=True)}
    for org_id in [*candidates, None]:
        policy = policies.get(org_id)
        if policy is not None:
            stages = validate_stages(policy.stages)
            return stages, {
                "source": "policy",
                "policy_id": policy.pk,
                "policy_organisation_id": policy.organisation_id,
                "policy_updated_at": policy.updated_at.isoformat() if policy.updated_at else None,
                "stages": stages,
            }
    stages = default_stages(kind)
    if stages is None:
        raise LookupError(f"no approval policy for kind {kind!r}")
    return stages, {"source": "default", "policy_id": None, "stages": stages}


def acquirer_stand_in(stages: list[dict]) -> list[dict]:
    """The stages of a request whose organisation is an acquirer (a batch for several of its merchants):
    there is no one merchant whose people could decide, so the acquirer's reviewers stand in for the
    merchants' — a merchant stage becomes an acquirer reviewer's stage at the acquirer (its
    ``min_amount`` kept). The usual rules still hold (not the maker nor an editor, no two stages by one
    person): a two-stage policy needs two distinct acquirer reviewers."""
    return [
        {**stage, "role": Role.ACQUIRER_REVIEWER.value, "org": StageOrg.ACQUIRER.value}
        if stage["org"] == StageOrg.MERCHANT
        else dict(stage)
        for stage in stages
    ]


def applicable_stages(stages: list[dict], amount: int) -> list[dict]:
    """The stages a request of ``amount`` fen needs: those without a min_amount or with one ≤ amount."""
    return [s for s in stages if s.get("min_amount") is None or amount >= s["min_amount"]]
