"""Policy validation and the Django admin where platform administrators edit policies."""

import pytest
from django.core.exceptions import ValidationError

from portal.approvals.models import ApprovalPolicy
from portal.approvals.policies import validate_stages
from portal.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ([], "at least one stage"),
        ("merchant_reviewer", "at least one stage"),
        ([{"role": "nope", "org": "merchant"}], "is not a role"),
        ([{"role": "merchant_reviewer", "org": "platform"}], "merchant or acquirer"),
        ([{"role": "acquirer_reviewer", "org": "merchant"}], "cannot review"),
        ([{"role": "merchant_operator", "org": "merchant"}], "cannot review"),
        ([{"role": "merchant_reviewer", "org": "merchant", "min_amount": -1}], "min_amount"),
        ([{"role": "merchant_reviewer", "org": "merchant", "min_amount": 1.5}], "min_amount"),
        ([{"role": "merchant_reviewer", "org": "merchant", "min_amount": 100}], "every amount"),
        ([{"role": "merchant_reviewer", "org": "merchant", "extra": 1}], "unknown keys"),
    ],
)
def test_invalid_stages_are_refused(stages, message):
    with pytest.raises(ValidationError, match=message):
        validate_stages(stages)


def test_valid_stages_are_normalised():
    assert validate_stages(
        [
            {"role": "merchant_reviewer", "org": "merchant", "min_amount": None},
            {"role": "acquirer_reviewer", "org": "acquirer", "min_amount": 0},
        ]
    ) == [
        {"role": "merchant_reviewer", "org": "merchant"},
        {"role": "acquirer_reviewer", "org": "acquirer", "min_amount": 0},
    ]


def test_platform_admin_adds_a_policy_in_the_admin(client_for, platform_admin, merchant_a):
    client = client_for(platform_admin)
    assert client.get("/admin/approvals/approvalpolicy/add/").status_code == 200
    response = client.post(
        "/admin/approvals/approvalpolicy/add/",
        {
            "kind": "refund.batch",
            "organisation": merchant_a.pk,
            "stages": '[{"role": "merchant_reviewer", "org": "merchant"}]',
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    policy = ApprovalPolicy.objects.get()
    assert (policy.kind, policy.organisation, policy.updated_by) == ("refund.batch", merchant_a, platform_admin)
    assert AuditEvent.objects.filter(action="approval.policy_change", actor=platform_admin).count() == 1


def test_the_admin_refuses_bad_stages(client_for, platform_admin):
    response = client_for(platform_admin).post(
        "/admin/approvals/approvalpolicy/add/",
        {"kind": "refund.single", "stages": '[{"role": "auditor", "org": "merchant"}]', "is_active": "on"},
    )
    assert response.status_code == 200
    assert "cannot review" in response.content.decode()
    assert ApprovalPolicy.objects.count() == 0


def test_a_merchant_user_cannot_open_the_policy_admin(client_for, reviewer_a):
    response = client_for(reviewer_a).get("/admin/approvals/approvalpolicy/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
