"""The role → permission matrix. It lives here and in tests/accounts/role_matrix.json.

A change here fails the golden-file test until the JSON is updated in review (PCI 7.2).
Permissions are plain strings ``<area>.<action>``; views and services ask ``user_has_perm``.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    MERCHANT_ADMIN = "merchant_admin", _("Merchant administrator")
    MERCHANT_OPERATOR = "merchant_operator", _("Merchant operator")
    MERCHANT_REVIEWER = "merchant_reviewer", _("Merchant reviewer")
    ACQUIRER_ADMIN = "acquirer_admin", _("Acquirer administrator")
    ACQUIRER_REVIEWER = "acquirer_reviewer", _("Acquirer reviewer")
    AUDITOR = "auditor", _("Auditor")
    PLATFORM_ADMIN = "platform_admin", _("Platform administrator")


class Perm:
    """Every permission the portal checks, named once."""

    USERS_VIEW = "users.view"
    USERS_MANAGE = "users.manage"
    AUDIT_VIEW = "audit.view"
    AUDIT_EXPORT = "audit.export"
    ORG_VIEW = "organisations.view"
    MERCHANTS_VIEW = "merchants.view"
    TRANSACTIONS_VIEW = "transactions.view"
    TRANSACTIONS_EXPORT = "transactions.export"
    REFUNDS_VIEW = "refunds.view"
    REFUNDS_CREATE = "refunds.create"
    REFUNDS_APPROVE = "refunds.approve"
    BATCHES_VIEW = "batches.view"
    BATCHES_UPLOAD = "batches.upload"
    BATCHES_APPROVE = "batches.approve"
    SETTLEMENT_VIEW = "settlement.view"
    RECONCILIATION_MANAGE = "reconciliation.manage"
    POLICIES_MANAGE = "policies.manage"


# Read access an auditor gets for its own organisation: what the others can read.
_READ = {
    Perm.ORG_VIEW,
    Perm.MERCHANTS_VIEW,
    Perm.TRANSACTIONS_VIEW,
    Perm.REFUNDS_VIEW,
    Perm.BATCHES_VIEW,
    Perm.SETTLEMENT_VIEW,
}

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    Role.MERCHANT_ADMIN: frozenset({Perm.USERS_VIEW, Perm.USERS_MANAGE, Perm.ORG_VIEW, Perm.AUDIT_VIEW}),
    Role.MERCHANT_OPERATOR: frozenset(
        {
            Perm.ORG_VIEW,
            Perm.TRANSACTIONS_VIEW,
            Perm.TRANSACTIONS_EXPORT,
            Perm.REFUNDS_VIEW,
            Perm.REFUNDS_CREATE,
            Perm.BATCHES_VIEW,
            Perm.BATCHES_UPLOAD,
            Perm.SETTLEMENT_VIEW,
        }
    ),
    Role.MERCHANT_REVIEWER: frozenset(
        {
            Perm.ORG_VIEW,
            Perm.TRANSACTIONS_VIEW,
            Perm.TRANSACTIONS_EXPORT,
            Perm.REFUNDS_VIEW,
            Perm.REFUNDS_APPROVE,
            Perm.BATCHES_VIEW,
            Perm.BATCHES_APPROVE,
            Perm.SETTLEMENT_VIEW,
            Perm.RECONCILIATION_MANAGE,
        }
    ),
    Role.ACQUIRER_ADMIN: frozenset(
        {Perm.USERS_VIEW, Perm.USERS_MANAGE, Perm.ORG_VIEW, Perm.MERCHANTS_VIEW, Perm.AUDIT_VIEW}
    ),
    Role.ACQUIRER_REVIEWER: frozenset(
        {
            Perm.ORG_VIEW,
            Perm.MERCHANTS_VIEW,
            Perm.TRANSACTIONS_VIEW,
            Perm.TRANSACTIONS_EXPORT,
            Perm.REFUNDS_VIEW,
            Perm.REFUNDS_CREATE,
            Perm.REFUNDS_APPROVE,
            Perm.BATCHES_VIEW,
            Perm.BATCHES_UPLOAD,
            Perm.BATCHES_APPROVE,
            Perm.SETTLEMENT_VIEW,
            Perm.RECONCILIATION_MANAGE,
        }
    ),
    Role.AUDITOR: frozenset({Perm.AUDIT_VIEW, Perm.AUDIT_EXPORT} | _READ),
    Role.PLATFORM_ADMIN: frozenset(
        {Perm.USERS_VIEW, Perm.USERS_MANAGE, Perm.ORG_VIEW, Perm.MERCHANTS_VIEW, Perm.POLICIES_MANAGE}
    ),
}

# Which roles an organisation of each kind may hold.
ROLES_BY_ORG_KIND: dict[str, frozenset[str]] = {
    "merchant": frozenset({Role.MERCHANT_ADMIN, Role.MERCHANT_OPERATOR, Role.MERCHANT_REVIEWER, Role.AUDITOR}),
    "acquirer": frozenset({Role.ACQUIRER_ADMIN, Role.ACQUIRER_REVIEWER, Role.AUDITOR}),
    "platform": frozenset({Role.PLATFORM_ADMIN, Role.AUDITOR}),
}


def permissions_for_roles(roles) -> frozenset[str]:
    """The union of the permissions of ``roles``."""
    perms: set[str] = set()
    for role in roles:
        perms |= ROLE_PERMISSIONS.get(role, frozenset())
    return frozenset(perms)


def matrix_as_dict() -> dict[str, list[str]]:
    """The matrix in the shape of the golden file: role → sorted permissions."""
    return {str(role): sorted(ROLE_PERMISSIONS[role]) for role in Role.values}
