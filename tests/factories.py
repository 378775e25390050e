"""factory_boy factories and helpers shared by every test lane."""

from __future__ import annotations

import itertools
import time

import factory
from django_otp import DEVICE_ID_SESSION_KEY

from portal.accounts.middleware import SESSION_AUTH_AT, SESSION_LAST_ACTIVITY
from portal.accounts.models import Organisation, RoleAssignment, SMSDevice, User

PASSWORD = "Test-pass-2026x"
_codes = itertools.count(1)


class AcquirerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organisation

    kind = "acquirer"
    code = factory.LazyFunction(lambda: f"4802{next(_codes):05d}")
    name_zh = factory.Sequence(lambda n: f"收单机构{n}")
    name_en = factory.Sequence(lambda n: f"Acquirer {n}")


class MerchantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organisation

    kind = "merchant"
    code = factory.LazyFunction(lambda: f"8983100{next(_codes):08d}")
    name_zh = factory.Sequence(lambda n: f"商户{n}")
    name_en = factory.Sequence(lambda n: f"Merchant {n}")
    acquirer = factory.SubFactory(AcquirerFactory)
    mcc = "5311"


class PlatformFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organisation
        django_get_or_create = ("code",)

    kind = "platform"
    code = "00000000"
    name_zh = "平台"
    name_en = "Platform"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    organisation = factory.SubFactory(MerchantFactory)
    phone = factory.Sequence(lambda n: f"139{n:08d}")
    phone_verified = True
    first_name = "Test"
    last_name = factory.Sequence(lambda n: f"User{n}")

    @factory.post_generation
    def password(obj, create, extracted, **kwargs):
        obj.set_password(extracted or PASSWORD)
        if create:
            obj.save(update_fields=["password"])

    @factory.post_generation
    def roles(obj, create, extracted, **kwargs):
        if create and extracted:
            RoleAssignment.objects.bulk_create([RoleAssignment(user=obj, role=r) for r in extracted])
            obj.__dict__.pop("_role_codes", None)


def sms_device_for(user: User) -> SMSDevice:
    """The user's confirmed SMS device (created on first use)."""
    device, _ = SMSDevice.objects.get_or_create(
        user=user, purpose="login", defaults={"name": "sms", "phone": user.phone, "confirmed": True}
    )
    return device


def login_fully(client, user: User) -> None:
    """Sign ``client`` in as ``user`` with both factors, as if the SMS code had just been confirmed."""
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = sms_device_for(user).persistent_id
    now = time.time()
    session[SESSION_AUTH_AT] = now
    session[SESSION_LAST_ACTIVITY] = now
    session["portal_otp_verified_at"] = now
    session.save()


def login_password_only(client, user: User) -> None:
    """Sign ``client`` in with the password step only (no second factor yet)."""
    client.force_login(user)
    session = client.session
    now = time.time()
    session[SESSION_AUTH_AT] = now
    session[SESSION_LAST_ACTIVITY] = now
    session.save()
