from portal.approvals.models import ApprovalRequest
from tests.approvals.test_state_machine import *  # noqa
from tests.approvals.test_state_machine import test_no_path_to_approved_without_distinct_eligible_approvers as t

def test_dbg(people, submit, kinds):
    try:
        t(people, submit, kinds)
    finally:
        from collections import Counter
        print(Counter(ApprovalRequest.objects.values_list("status", flat=True)))
        for r in ApprovalRequest.objects.filter(status="approved"):
            print(r.maker.username, [s.decided_by.username for s in r.stages.all()])
