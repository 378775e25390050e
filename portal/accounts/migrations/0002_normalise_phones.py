"""Store every phone in its canonical form and leave one verified phone per active user (security B1),
before 0003 adds the database constraint that keeps it so.

* Users' and SMS devices' phones are normalised like ``portal.accounts.phones.normalise_phone``
  (copied here: a migration must not change when the code does): spaces and dashes go, and a
  mainland mobile number typed with the country code (``8613800138000``, ``+8613800138000``)
  becomes its 11-digit national number (``13800138000``).
* When several active users have the same verified phone, the one who joined first keeps it
  verified; the others' phones become unverified. Their next sign-in code still goes to the phone,
  but it no longer confirms it while the first user has it (``auth_services.auth_otp_verify``):
  an administrator gives them their own phone.

Reversing keeps the phones as they are (the canonical form is as valid as the typed one).
"""

import re

from django.db import migrations

_MAINLAND_MOBILE_WITH_COUNTRY_CODE = re.compile(r"^\+?86(1[0-9]{10})$")


def _canonical(raw: str) -> str:
    phone = "".join(ch for ch in raw.strip() if ch.isdigit() or ch == "+")
    match = _MAINLAND_MOBILE_WITH_COUNTRY_CODE.match(phone)
    return match.group(1) if match else phone


def _normalise(model) -> None:
    rows = model.objects.exclude(phone="").order_by("pk").values_list("pk", "phone")
    for pk, phone in list(rows):
        canonical = _canonical(phone)
        if canonical != phone:
            model.objects.filter(pk=pk).update(phone=canonical)


def normalise_phones(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    SMSDevice = apps.get_model("accounts", "SMSDevice")
    _normalise(User)
    _normalise(SMSDevice)
    holders: set[str] = set()
    verified = (
        User.objects.filter(is_active=True, phone_verified=True)
        .exclude(phone="")
        .order_by("date_joined", "pk")
        .values_list("pk", "phone")
    )
    for pk, phone in list(verified):
        if phone in holders:
            User.objects.filter(pk=pk).update(phone_verified=False)
        else:
            holders.add(phone)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(normalise_phones, migrations.RunPython.noop),
    ]
