"""G3: eight eligible reviewers approve the same single-stage request at the same moment on PostgreSQL:
exactly one succeeds, seven are told "already decided", and the approved thing executes once."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections

from portal.approvals import errors
from portal.approvals.models import ApprovalRequest
from portal.approvals.registry import register_approvable, unregister_approvable
from portal.approvals.services import approval_content_hash, approval_decide, approval_submit
from portal.audit.models import AuditEvent
from tests.factories import MerchantFactory, UserFactory

KIND = "test.race"
THREADS = 8


@pytest.mark.integration
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (DATABASE_URL=postgres://...)")
@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_approvals_execute_once(pg_transactional_db, settings):
    settings.APPROVAL_DEFAULT_POLICIES = {KIND: [{"role": "merchant_reviewer", "org": "merchant"}]}
    executed: list[int] = []
    lock = threading.Lock()

    def on_approved(request):
        with lock:
            executed.append(request.pk)

    register_approvable(KIND, on_approved=on_approved)
    try:
        merchant = MerchantFactory()
        maker = UserFactory(organisation=merchant, username="race.maker", roles=["merchant_operator"])
        reviewers = [
            UserFactory(organisation=merchant, username=f"race.reviewer{i}", roles=["merchant_reviewer"])
            for i in range(THREADS)
        ]
        content_hash = approval_content_hash({"refund": 1, "amount": 100})
        request = approval_submit(
            actor=maker,
            kind=KIND,
            obj_type="tests.race",
            obj_id="1",
            organisation=merchant,
            amount=100,
            content_hash=content_hash,
        )
        barrier = threading.Barrier(THREADS)
        outcomes: list[str] = []
        failures: list[BaseException] = []

        def approve(reviewer):
            try:
                barrier.wait(timeout=20)
                approval_decide(
                    actor=reviewer,
                    request_id=request.pk,
                    decision="approve",
                    seen_content_hash=content_hash,
                    otp_verified_at=time.time(),
                )
                outcomes.append("approved")
            except errors.AlreadyDecided:
                outcomes.append("already_decided")
            except BaseException as exc:  # reported below, a thread must not swallow it
                failures.append(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=approve, args=(r,)) for r in reviewers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        assert failures == []
        assert sorted(outcomes) == ["already_decided"] * (THREADS - 1) + ["approved"]
        assert executed == [request.pk]
        request = ApprovalRequest.objects.get(pk=request.pk)
        assert request.status == "approved"
        assert request.stages.get().decided_by_id in {r.pk for r in reviewers}
        assert AuditEvent.objects.filter(action="approval.approve", outcome="success").count() == 1
    finally:
        unregister_approvable(KIND)
