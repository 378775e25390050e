"""Test kinds registered into the engine, with hooks that record every call."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field

import pytest

from portal.approvals.policies import DEFAULT_POLICIES
from portal.approvals.registry import get_approvable, register_approvable, unregister_approvable
from portal.approvals.services import approval_content_hash, approval_decide, approval_submit
from tests.factories import UserFactory

SINGLE = "test.single"
BATCH = "test.batch"
OBJ_TYPE = "tests.thing"


@dataclass
class Kinds:
    """What the hooks saw: ``calls[(hook, request_id)]`` counts; ``content[object_id]`` is the object's
    current content, from which ``current_content_hash`` is computed."""

    calls: dict = field(default_factory=lambda: defaultdict(int))
    content: dict = field(default_factory=dict)
    editors: dict = field(default_factory=dict)

    def count(self, hook: str, request=None) -> int:
        if request is None:
            return sum(n for (h, _), n in self.calls.items() if h == hook)
        return self.calls[(hook, request.pk)]


def _recorder(kinds: Kinds, hook: str):
    def record(request):
        kinds.calls[(hook, request.pk)] += 1

    return record


@pytest.fixture
def kinds(settings):
    settings.APPROVAL_DEFAULT_POLICIES = {
        SINGLE: DEFAULT_POLICIES["refund.single"],
        BATCH: DEFAULT_POLICIES["refund.batch"],
    }
    kinds = Kinds()
    before = {k: get_approvable(k) for k in (SINGLE, BATCH)}
    for kind in (SINGLE, BATCH):
        register_approvable(
            kind,
            label=f"Test {kind}",
            on_approved=_recorder(kinds, "approved"),
            on_rejected=_recorder(kinds, "rejected"),
            on_expired=_recorder(kinds, "expired"),
            on_voided=_recorder(kinds, "voided"),
            on_cancelled=_recorder(kinds, "cancelled"),
            describe=lambda req: {"url": f"/things/{req.object_id}/", "title": f"Thing {req.object_id}"},
            current_content_hash=lambda obj_type, obj_id: approval_content_hash(kinds.content.get(obj_id)),
            editors=lambda req: kinds.editors.get(req.object_id, ()),
        )
    yield kinds
    for kind, previous in before.items():
        unregister_approvable(kind)
        if previous is not None:
            register_approvable(**{f: getattr(previous, f) for f in previous.__dataclass_fields__})


@pytest.fixture
def submit(kinds, merchant_a, operator_a):
    """``submit(maker=operator_a, kind=SINGLE, obj_id="1", amount=10_000, organisation=merchant_a)``."""

    def make(maker=None, *, kind=SINGLE, obj_id="1", amount=10_000, organisation=None, content=None):
        obj_id = str(obj_id)
        kinds.content[obj_id] = content if content is not None else {"id": obj_id, "amount": amount}
        return approval_submit(
            actor=maker or operator_a,
            kind=kind,
            obj_type=OBJ_TYPE,
            obj_id=obj_id,
            organisation=organisation or merchant_a,
            amount=amount,
            content_hash=approval_content_hash(kinds.content[obj_id]),
            summary=f"Thing {obj_id}",
        )

    return make


def decide(actor, request, decision="approve", *, reason="", seen=None, otp_at="now", stage_index=None):
    """``approval_decide`` with a fresh second factor and the submitted hash unless told otherwise."""
    return approval_decide(
        actor=actor,
        request_id=request.pk,
        decision=decision,
        reason=reason,
        seen_content_hash=request.content_hash if seen is None else seen,
        otp_verified_at=time.time() if otp_at == "now" else otp_at,
        stage_index=stage_index,
    )


@pytest.fixture
def reviewer_a2(merchant_a):
    return UserFactory(organisation=merchant_a, username="a.reviewer2", roles=["merchant_reviewer"])


@pytest.fixture
def reviewer_b(merchant_b):
    return UserFactory(organisation=merchant_b, username="b.reviewer", roles=["merchant_reviewer"])
