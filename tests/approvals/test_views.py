"""The inbox, the decision endpoint, the nav count, the history include and the API."""

from __future__ import annotations

import time

import pytest
from django.template import Context, Template
from django.test import Client, RequestFactory

from portal.approvals.models import ApprovalRequest
from portal.audit.models import AuditEvent
from tests.factories import login_password_only

from .conftest import BATCH, decide

pytestmark = pytest.mark.django_db

INBOX = "/approvals/"
API = "/api/v1/approvals/"


def _decide_url(request) -> str:
    return f"/approvals/{request.pk}/decide/"


# --- access ------------------------------------------------------------------------------------


def test_anonymous_is_sent_to_login(submit):
    request = submit()
    for method, url in (("get", INBOX), ("post", _decide_url(request))):
        response = getattr(Client(), method)(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url
    assert Client().get(API).status_code == 401


def test_password_only_is_sent_to_second_factor(submit, reviewer_a):
    request = submit()
    client = Client()
    login_password_only(client, reviewer_a)
    for method, url in (("get", INBOX), ("post", _decide_url(request))):
        response = getattr(client, method)(url)
        assert response.status_code == 302 and response["Location"] == "/accounts/verify/", url
    assert client.get(API + "?mine=pending").status_code == 401


def test_without_an_approve_permission_is_forbidden_and_leaves_no_trace(submit, client_for, operator_a, admin_a):
    request = submit()
    events = AuditEvent.objects.count()
    for user in (operator_a, admin_a):
        client = client_for(user)
        assert client.get(INBOX).status_code == 403
        post = client.post(_decide_url(request), {"decision": "approve", "seen_content_hash": request.content_hash})
        assert post.status_code == 403
        assert client.get(API + "?mine=pending").status_code == 403
    assert AuditEvent.objects.count() == events
    request.refresh_from_db()
    assert request.status == "pending"


def test_another_organisations_request_is_not_found(submit, client_for, reviewer_b):
    request = submit()
    client = client_for(reviewer_b)
    events = AuditEvent.objects.count()
    response = client.post(_decide_url(request), {"decision": "approve", "seen_content_hash": request.content_hash})
    assert response.status_code == 404
    assert client.get(f"{API}{request.pk}/").status_code == 404
    assert AuditEvent.objects.count() == events
    request.refresh_from_db()
    assert request.status == "pending"


# --- inbox and nav count -----------------------------------------------------------------------


def test_inbox_lists_only_what_i_can_decide(
    submit, client_for, merchant_a, merchant_b, reviewer_a, reviewer_a2, acquirer_reviewer, admin_b
):
    mine = submit(obj_id="1", amount=12_345)
    by_me = submit(maker=reviewer_a, obj_id="2")  # my own submission: not for me
    big = submit(kind=BATCH, obj_id="3", amount=60_000_000)  # merchant stage first
    response = client_for(reviewer_a).get(INBOX)
    assert response.status_code == 200
    assert [row["request"].pk for row in response.context["rows"]] == [mine.pk, big.pk]
    body = response.content.decode()
    assert "123.45" in body and 'href="/things/1/"' in body and "Thing 1" in body
    assert by_me.pk in {r.pk for r in ApprovalRequest.objects.all()}
    # the acquirer's reviewer sees the batch only once the merchant stage is done
    assert [r["request"].pk for r in client_for(acquirer_reviewer).get(INBOX).context["rows"]] == []
    decide(reviewer_a2, big)
    assert [r["request"].pk for r in client_for(acquirer_reviewer).get(INBOX).context["rows"]] == [big.pk]
    # and reviewer_a2, who decided its first stage, no longer sees it
    assert [r["request"].pk for r in client_for(reviewer_a2).get(INBOX).context["rows"]] == [mine.pk, by_me.pk]


def test_inbox_query_count_does_not_grow_with_rows(submit, client_for, reviewer_a, django_assert_max_num_queries):
    for i in range(5):
        submit(obj_id=str(i))
    client = client_for(reviewer_a)
    with django_assert_max_num_queries(16):
        response = client.get(INBOX)
    assert len(response.context["rows"]) == 5
    for i in range(5, 25):
        submit(obj_id=str(i))
    with django_assert_max_num_queries(16):
        assert len(client.get(INBOX).context["rows"]) == 25


def test_nav_shows_the_count_to_reviewers_only(submit, client_for, reviewer_a, operator_a):
    submit(obj_id="1")
    submit(obj_id="2")
    page = client_for(reviewer_a).get("/")
    assert page.context["approvals_waiting_count"] == 2
    assert 'data-testid="approvals-waiting"' in page.content.decode()
    page = client_for(operator_a).get("/")
    assert page.context["approvals_waiting_count"] is None
    assert 'data-testid="approvals-waiting"' not in page.content.decode()


# --- decide through the page ---------------------------------------------------------------------


def test_reviewer_approves_from_the_page(submit, kinds, client_for, reviewer_a):
    request = submit()
    response = client_for(reviewer_a).post(
        _decide_url(request),
        {"decision": "approve", "seen_content_hash": request.content_hash, "stage_index": 0, "next": "/things/1/"},
    )
    assert response.status_code == 302 and response["Location"] == "/things/1/"
    request.refresh_from_db()
    assert request.status == "approved"
    assert kinds.count("approved", request) == 1


def test_the_maker_is_refused_on_the_page_and_it_is_audited(submit, client_for, reviewer_a):
    request = submit(maker=reviewer_a)
    response = client_for(reviewer_a).post(
        _decide_url(request), {"decision": "approve", "seen_content_hash": request.content_hash}
    )
    assert response.status_code == 302 and response["Location"] == "/things/1/"
    request.refresh_from_db()
    assert request.status == "pending"
    assert AuditEvent.objects.filter(action="approval.approve", outcome="denied").count() == 1


def test_a_stale_step_up_sends_the_reviewer_to_confirm_a_code(submit, client_for, reviewer_a):
    request = submit()
    client = client_for(reviewer_a)
    session = client.session
    session["portal_otp_verified_at"] = time.time() - 600
    session.save()
    response = client.post(
        _decide_url(request), {"decision": "approve", "seen_content_hash": request.content_hash, "next": "/things/1/"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/accounts/step-up/?next=%2Fthings%2F1%2F"
    request.refresh_from_db()
    assert request.status == "pending"


def test_an_unsafe_next_is_ignored(submit, client_for, reviewer_a):
    request = submit()
    response = client_for(reviewer_a).post(
        _decide_url(request),
        {"decision": "approve", "seen_content_hash": request.content_hash, "next": "https://evil.example/"},
    )
    assert response["Location"] == "/things/1/"


# --- the history include ---------------------------------------------------------------------------


def test_history_include_shows_decisions_and_the_form_to_who_may_decide(submit, reviewer_a, reviewer_a2, operator_a):
    first = submit()
    decide(reviewer_a, first, "reject", reason="wrong amount")
    second = submit()
    template = Template('{% load approvals %}{% approval_history "tests.thing" "1" %}')

    def render(user) -> str:
        http = RequestFactory().get("/things/1/")
        http.user = user
        return template.render(Context({"request": http}))

    html = render(reviewer_a2)
    assert f'data-request="{first.pk}" data-status="rejected"' in html
    assert f'data-request="{second.pk}" data-status="pending"' in html
    assert "wrong amount" in html and "a.reviewer" in html
    assert html.count('data-testid="approval-decide"') == 1
    assert f'value="{second.content_hash}"' in html
    assert 'data-testid="approval-decide"' not in render(operator_a)  # the maker gets no buttons


def test_history_include_offers_no_decision_to_an_editor(submit, kinds, reviewer_a, reviewer_a2):
    # given a pending request that reviewer_a edited (the kind declares them an editor)
    submit()
    kinds.editors["1"] = {reviewer_a.pk}
    template = Template('{% load approvals %}{% approval_history "tests.thing" "1" %}')

    def render(user) -> str:
        http = RequestFactory().get("/things/1/")
        http.user = user
        return template.render(Context({"request": http}))

    # then the editor gets no buttons (the service would refuse them), another reviewer does
    assert 'data-testid="approval-decide"' not in render(reviewer_a)
    assert render(reviewer_a2).count('data-testid="approval-decide"') == 1


def test_fen_yuan_filter():
    assert Template("{% load approvals %}{{ v|fen_yuan }}").render(Context({"v": 5_000_000_000})) == "50,000,000.00"


# --- API ------------------------------------------------------------------------------------------


def test_api_mine_pending_lists_what_waits_for_me(submit, client_for, reviewer_a, operator_a):
    request = submit(amount=500)
    submit(maker=reviewer_a, obj_id="2")
    body = client_for(reviewer_a).get(API, {"mine": "pending"}).json()
    assert [r["id"] for r in body["results"]] == [request.pk]
    row = body["results"][0]
    assert (row["amount"], row["status"], row["maker"], row["url"]) == (500, "pending", "a.operator", "/things/1/")
    assert row["stages"] == [
        {
            "index": 0,
            "role": "merchant_reviewer",
            "organisation": request.organisation.code,
            "status": "pending",
            "decided_by": None,
            "decided_at": None,
            "reason": "",
        }
    ]
    # without mine: everything visible to me, for a maker too
    assert {r["id"] for r in client_for(operator_a).get(API).json()["results"]} == {
        request.pk,
        request.pk + 1,
    }


def test_api_rejects_an_unknown_mine(submit, client_for, reviewer_a):
    response = client_for(reviewer_a).get(API, {"mine": "all"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_api_hides_other_organisations(submit, client_for, reviewer_b, admin_b):
    submit()
    assert client_for(reviewer_b).get(API).json()["results"] == []
    assert client_for(reviewer_b).get(API, {"mine": "pending"}).json()["results"] == []
    assert client_for(admin_b).get(API).status_code == 403  # no refunds/batches permission
