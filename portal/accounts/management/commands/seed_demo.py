"""Demo data: an acquirer, two merchants and one user per role (idempotent)."""

from django.core.management.base import BaseCommand
from django.db import transaction

from portal.accounts.models import Organisation, User
from portal.accounts.services import organisation_create, user_create

DEMO_PASSWORD = "Demo-pass-2026"

ACQUIRER = {"code": "48020000", "name_zh": "演示收单机构", "name_en": "Demo Acquirer"}
MERCHANTS = [
    {"code": "898310000000001", "name_zh": "演示商户一", "name_en": "Demo Merchant One", "mcc": "5311"},
    {"code": "898310000000002", "name_zh": "演示商户二", "name_en": "Demo Merchant Two", "mcc": "5812"},
]
PLATFORM = {"code": "00000000", "name_zh": "平台运营", "name_en": "Platform Operations"}

# username, organisation code, roles, phone, first name, last name
USERS = [
    ("acquirer.admin", "48020000", ["acquirer_admin"], "13800000001", "Acquirer", "Admin"),
    ("acquirer.reviewer", "48020000", ["acquirer_reviewer"], "13800000002", "Acquirer", "Reviewer"),
    ("merchant1.admin", "898310000000001", ["merchant_admin"], "13800000011", "Merchant1", "Admin"),
    ("merchant1.operator", "898310000000001", ["merchant_operator"], "13800000012", "Merchant1", "Operator"),
    ("merchant1.reviewer", "898310000000001", ["merchant_reviewer"], "13800000013", "Merchant1", "Reviewer"),
    ("merchant2.admin", "898310000000002", ["merchant_admin"], "13800000021", "Merchant2", "Admin"),
    ("auditor", "00000000", ["auditor"], "13800000031", "Platform", "Auditor"),
]


class Command(BaseCommand):
    help = "Create the demo acquirer, merchants and users (safe to run again)."

    def add_arguments(self, parser):
        parser.add_argument("--accounts-only", action="store_true", help="Only print the demo accounts.")

    def handle(self, *args, accounts_only=False, **options):
        if not accounts_only:
            self.seed()
        self.stdout.write("")
        self.stdout.write(
            "Demo accounts (password %s; the SMS code is in this log and at /dev/sms-outbox/):" % DEMO_PASSWORD
        )
        for username, code, roles, phone, *_ in USERS:
            self.stdout.write(f"  {username:<20} {code:<16} {', '.join(roles):<20} {phone}")
        self.stdout.write("")

    @transaction.atomic
    def seed(self):
        platform = Organisation.objects.filter(code=PLATFORM["code"]).first() or organisation_create(
            actor=None, kind="platform", **PLATFORM
        )
        acquirer = Organisation.objects.filter(code=ACQUIRER["code"]).first() or organisation_create(
            actor=None, kind="acquirer", **ACQUIRER
        )
        orgs = {platform.code: platform, acquirer.code: acquirer}
        for data in MERCHANTS:
            orgs[data["code"]] = Organisation.objects.filter(code=data["code"]).first() or organisation_create(
                actor=None, kind="merchant", acquirer=acquirer, **data
            )
        created = 0
        for username, code, roles, phone, first, last in USERS:
            if User.objects.filter(username=username).exists():
                continue
            user_create(
                actor=None,
                organisation=orgs[code],
                username=username,
                raw_password=DEMO_PASSWORD,
                first_name=first,
                last_name=last,
                phone=phone,
                # Seeded, not typed in by an administrator: the demo numbers are the developer's outbox
                # (/dev/sms-outbox/), so they count as verified and serve for step-up at once.
                phone_verified=True,
                roles=roles,
                must_change_password=False,
            )
            created += 1
        self.stdout.write(f"demo data ready ({created} user(s) created)")
