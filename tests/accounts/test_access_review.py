"""``manage.py access_review``: the periodic access review report (security check B7), itself audited."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.accounts.services import access_review_write, user_update
from portal.audit.models import AuditEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

HEADER = [
    "Username",
    "Name",
    "Organisation code",
    "Organisation",
    "Organisation kind",
    "Roles",
    "Status",
    "Last sign-in (Beijing time)",
    "Joined (Beijing time)",
    "Second factors",
    "Staff",
    "Superuser",
    "Roles last changed by",
    "Roles last changed (Beijing time)",
    "Generic user name",
]


def run(*args) -> str:
    out = io.StringIO()
    call_command("access_review", *args, stdout=out)
    return out.getvalue()


def read_csv(path) -> list[dict[str, str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # a BOM, so that spreadsheet programs read Chinese
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == HEADER
    return [dict(zip(HEADER, row, strict=True)) for row in rows[1:]]


@pytest.fixture
def people(admin_a, operator_a, reviewer_a, admin_b, platform_admin):
    """Merchant A's trio (the operator's roles changed by a.admin, the reviewer disabled, with an
    authenticator app), merchant B's admin and a staff platform admin."""
    user_update(
        actor=admin_a,
        user=operator_a,
        first_name=operator_a.first_name,
        last_name=operator_a.last_name,
        phone=operator_a.phone,
        roles=["merchant_operator", "merchant_reviewer"],
    )
    reviewer_a.is_active = False
    reviewer_a.save()
    TOTPDevice.objects.create(user=reviewer_a, name="app", confirmed=True)
    admin_a.last_login = datetime(2026, 1, 1, 16, 30, tzinfo=UTC)
    admin_a.save()
    return {"admin_a": admin_a, "operator_a": operator_a, "reviewer_a": reviewer_a}


def test_csv_report_lists_every_user_with_roles_status_factors_and_role_changes(people, tmp_path):
    path = tmp_path / "review.csv"

    output = run("--output", str(path))

    rows = {row["Username"]: row for row in read_csv(path)}
    assert output.strip() == f"{path}: 5 user(s)"
    assert list(rows) == ["plat.admin", "a.admin", "a.operator", "a.reviewer", "b.admin"]  # by organisation code
    admin = rows["a.admin"]
    merchant = people["admin_a"].organisation
    assert admin["Organisation code"] == merchant.code
    assert admin["Organisation"] == merchant.name_en
    assert admin["Organisation kind"] == "Merchant"
    assert admin["Roles"] == "Merchant administrator"
    assert admin["Status"] == "Active"
    assert admin["Last sign-in (Beijing time)"] == "2026-01-02 00:30:00"
    assert admin["Second factors"] == "SMS"
    assert (admin["Staff"], admin["Superuser"], admin["Generic user name"]) == ("No", "No", "No")
    assert (admin["Roles last changed by"], admin["Roles last changed (Beijing time)"]) == ("", "")  # no audit event

    operator = rows["a.operator"]
    assert operator["Roles"] == "Merchant operator; Merchant reviewer"
    assert operator["Roles last changed by"] == "a.admin"
    change = AuditEvent.objects.get(action="user.update")
    beijing = change.occurred_at.astimezone(ZoneInfo("Asia/Shanghai"))
    assert operator["Roles last changed (Beijing time)"] == beijing.strftime("%Y-%m-%d %H:%M:%S")

    reviewer = rows["a.reviewer"]
    assert reviewer["Status"] == "Disabled"
    assert reviewer["Second factors"] == "SMS; Authenticator app"
    assert rows["plat.admin"]["Staff"] == "Yes"
    assert rows["a.admin"]["Joined (Beijing time)"] != ""


def test_an_update_that_leaves_the_roles_alone_is_not_a_role_change(admin_a, operator_a, tmp_path):
    user_update(
        actor=admin_a, user=operator_a, first_name="New", last_name="Name", phone="", roles=["merchant_operator"]
    )
    path = tmp_path / "review.csv"
    run("--output", str(path))
    rows = {row["Username"]: row for row in read_csv(path)}
    assert rows["a.operator"]["Roles last changed by"] == ""
    assert rows["a.operator"]["Second factors"] == "None"


def test_created_users_show_who_granted_their_roles(admin_a, tmp_path):
    from portal.accounts.services import user_create_managed

    user_create_managed(actor=admin_a, organisation=admin_a.organisation, username="li.na", roles=["auditor"])
    path = tmp_path / "review.csv"
    run("--output", str(path))
    rows = {row["Username"]: row for row in read_csv(path)}
    assert rows["li.na"]["Roles last changed by"] == "a.admin"
    assert rows["li.na"]["Roles"] == "Auditor"


def test_generic_names_are_flagged(merchant_a, tmp_path):
    UserFactory(organisation=merchant_a, username="admin", is_superuser=True)
    path = tmp_path / "review.csv"
    run("--output", str(path))
    (row,) = read_csv(path)
    assert (row["Generic user name"], row["Superuser"]) == ("Yes", "Yes")


def test_writing_the_report_is_audited_with_the_files_hash(people, tmp_path):
    path = tmp_path / "review.csv"
    before = AuditEvent.objects.count()

    run("--organisation", people["admin_a"].organisation.code, "--output", str(path))

    assert AuditEvent.objects.count() == before + 1
    event = AuditEvent.objects.get(action="users.access_review")
    assert event.actor is None and event.actor_repr == "command:access_review"
    assert event.organisation == people["admin_a"].organisation
    assert event.details == {
        "organisation": people["admin_a"].organisation.code,
        "format": "csv",
        "users": 3,
        "path": str(path.resolve()),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }


def test_organisation_option_limits_the_report(people, tmp_path):
    path = tmp_path / "review.csv"
    run("--organisation", people["admin_a"].organisation.code, "--output", str(path))
    assert [row["Username"] for row in read_csv(path)] == ["a.admin", "a.operator", "a.reviewer"]


def test_unknown_organisation_writes_and_audits_nothing(people, tmp_path):
    path = tmp_path / "review.csv"
    with pytest.raises(CommandError, match="No organisation has the code 999"):
        run("--organisation", "999", "--output", str(path))
    assert not path.exists()
    assert not AuditEvent.objects.filter(action="users.access_review").exists()


def test_an_existing_file_is_never_overwritten(people, tmp_path):
    path = tmp_path / "review.csv"
    path.write_bytes(b"earlier evidence")
    with pytest.raises(CommandError, match="never overwritten"):
        run("--output", str(path))
    assert path.read_bytes() == b"earlier evidence"
    assert not AuditEvent.objects.filter(action="users.access_review").exists()


def test_a_failed_write_leaves_no_audit_event(people, tmp_path):
    with pytest.raises(FileNotFoundError):
        access_review_write(
            actor=None,
            organisation=None,
            file_format="csv",
            path=tmp_path / "missing" / "review.csv",
            content=b"x",
            user_count=1,
        )
    assert not AuditEvent.objects.filter(action="users.access_review").exists()


def test_default_file_name_in_the_current_directory(people, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run("--format", "xlsx")
    (written,) = tmp_path.iterdir()
    assert written.name.startswith("access-review-all-") and written.suffix == ".xlsx"


def test_xlsx_report_has_the_same_table_and_no_formulas(people, tmp_path):
    from openpyxl import load_workbook

    people["operator_a"].first_name = "=HYPERLINK(1)"
    people["operator_a"].save()
    path = tmp_path / "review.xlsx"

    run("--format", "xlsx", "--output", str(path))

    workbook = load_workbook(path)
    sheet = workbook["Access review"]
    rows = [[c if c is not None else "" for c in row] for row in sheet.iter_rows(values_only=True)]
    assert rows[0] == HEADER
    assert [r[0] for r in rows[1:]] == ["plat.admin", "a.admin", "a.operator", "a.reviewer", "b.admin"]
    operator = dict(zip(HEADER, rows[3], strict=True))
    assert operator["Name"].startswith("'=HYPERLINK(1)")
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)
    about = dict(workbook["Report"].iter_rows(values_only=True))
    assert about["Users"] == "5" and about["Organisation"] == "All organisations"
    assert AuditEvent.objects.get(action="users.access_review").details["format"] == "xlsx"


def test_csv_cells_that_look_like_formulas_are_neutralised(merchant_a, tmp_path):
    UserFactory(organisation=merchant_a, username="z.user", first_name="@SUM(A1)", last_name="x")
    path = tmp_path / "review.csv"
    run("--output", str(path))
    (row,) = read_csv(path)
    assert row["Name"] == "'@SUM(A1) x"


def test_headers_and_labels_in_chinese(people, tmp_path):
    path = tmp_path / "review.csv"
    run("--language", "zh-hans", "--output", str(path))
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    assert rows[0][:3] == ["用户名", "姓名", "机构代码"]
    reviewer = next(row for row in rows if row[0] == "a.reviewer")
    assert reviewer[6] == "已停用"
    assert reviewer[9] == "短信; 身份验证器应用"
