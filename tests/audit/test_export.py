"""CSV export: exactly the filtered set, streamed, formula-safe, audited with its row count."""

import csv
import datetime as dt
import io
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.audit.formats.csv_export import HEADER, ExportRow, csv_lines, neutralise
from portal.audit.models import AuditEvent
from portal.audit.services import audit_record

EXPORT = "/audit/export.csv"
TRIGGERS = ["=", "+", "-", "@", "\t", "\r", "\0"]


def read_csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body, newline="")))


def row(**overrides) -> ExportRow:
    values = dict(
        sequence=7,
        occurred_at=dt.datetime(2026, 3, 2, 16, 30, tzinfo=dt.UTC),
        actor="a.admin",
        organisation_code="898310000000001",
        action="user.create",
        object_type="accounts.user",
        object_id="5",
        outcome="success",
        ip="203.0.113.9",
        user_agent="Mozilla/5.0",
        request_id="abc12345",
        details={"role": "merchant_operator"},
        hash="f" * 64,
    )
    values.update(overrides)
    return ExportRow(**values)


# --- The pure writer --------------------------------------------------------------------------


@given(st.sampled_from(TRIGGERS), st.text())
def test_cells_starting_with_a_formula_character_are_quoted(first, rest):
    value = first + rest
    lines = "".join(csv_lines([row(actor=value, user_agent=value, object_id=value)], bom=False))
    [header, cells] = list(csv.reader(io.StringIO(lines, newline="")))
    assert header == list(HEADER)
    for index in (HEADER.index("actor"), HEADER.index("user agent"), HEADER.index("object id")):
        assert cells[index] == "'" + value
    assert all(not c.startswith(tuple(TRIGGERS)) for c in cells)


@given(st.text().filter(lambda s: not s.startswith(tuple(TRIGGERS))))
def test_other_cells_round_trip_unchanged(value):
    lines = "".join(csv_lines([row(actor=value, details={"note": value})], bom=False))
    [_, cells] = list(csv.reader(io.StringIO(lines, newline="")))
    assert cells[HEADER.index("actor")] == value
    assert neutralise(value) == value


def test_times_are_written_in_utc_and_beijing():
    lines = "".join(csv_lines([row()], bom=False))
    [_, cells] = list(csv.reader(io.StringIO(lines, newline="")))
    assert cells[1:3] == ["2026-03-02 16:30:00.000000", "2026-03-03 00:30:00.000000"]
    assert cells[HEADER.index("details json")] == '{"role": "merchant_operator"}'


def test_header_is_the_documented_one():
    assert HEADER == (
        "sequence",
        "time UTC",
        "time Beijing",
        "actor",
        "organisation code",
        "action",
        "object type",
        "object id",
        "outcome",
        "ip",
        "user agent",
        "request id",
        "details json",
        "hash",
    )


# --- The export view --------------------------------------------------------------------------


@pytest.mark.django_db
def test_export_streams_exactly_the_filtered_set_and_audits_it(merchant_auditor, events, client_for, new_events):
    # given merchant A's auditor, an event of B (invisible) and an extra event of A
    extra = audit_record(action="refund.create", actor=merchant_auditor, object_id="R9")
    client = client_for(merchant_auditor)
    new = new_events()
    # when they export user.create events
    response = client.get(EXPORT, {"action": "user.create"})
    # then the download is an attachment with the date in its name, holding only A's user.create event
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(r'attachment; filename="audit-log-\d{8}-\d{6}\.csv"', response["Content-Disposition"])
    rows = read_csv(response)
    assert rows[0] == list(HEADER)
    assert [r[0] for r in rows[1:]] == [str(events["a"].sequence)]
    assert rows[1][HEADER.index("organisation code")] == merchant_auditor.organisation.code
    assert rows[1][HEADER.index("hash")] == events["a"].hash
    assert extra.sequence not in {int(r[0]) for r in rows[1:]}
    # and exactly one export event records the filters and the row count
    [event] = new.all
    assert event.action == "audit.export"
    assert event.details == {"filters": {"action": "user.create"}, "rows": 1, "format": "csv"}


@pytest.mark.django_db
def test_unfiltered_export_of_platform_auditor_has_every_earlier_event(auditor, events, client_for, new_events):
    client = client_for(auditor)
    expected = list(AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True))
    new = new_events()
    rows = read_csv(client.get(EXPORT))
    assert [int(r[0]) for r in rows[1:]] == expected
    [event] = new.all
    assert event.details == {"rows": len(expected), "format": "csv"}


@pytest.mark.django_db
def test_export_neutralises_a_malicious_actor_name(auditor, client_for):
    audit_record(action="auth.login_failed", actor_repr='=HYPERLINK("http://evil","x")', outcome="failure")
    rows = read_csv(client_for(auditor).get(EXPORT, {"action": "auth.login_failed"}))
    assert rows[1][HEADER.index("actor")] == '\'=HYPERLINK("http://evil","x")'


@pytest.mark.django_db
def test_export_with_invalid_filters_is_refused_without_an_event(auditor, client_for, new_events):
    client = client_for(auditor)
    new = new_events()
    response = client.get(EXPORT, {"ip": "999.1.1.1"})
    assert response.status_code == 400
    assert new.all == []


@pytest.mark.django_db
def test_export_in_chunks_keeps_order(auditor, client_for):
    from portal.audit.selectors import audit_export_rows

    for i in range(7):
        audit_record(action="test.chunk", actor=auditor, object_id=i)
    qs = AuditEvent.objects.filter(action="test.chunk")
    rows = list(audit_export_rows(qs, chunk_size=3))
    assert [r.object_id for r in rows] == ["6", "5", "4", "3", "2", "1", "0"]
