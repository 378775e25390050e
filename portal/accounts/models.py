"""Organisations, users, their roles and second-factor devices."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser, UserManager
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Case, F, Q, When
from django.db.models.functions import Left, Length, Substr
from django.db.models.lookups import Exact
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from django_otp.models import CooldownMixin, SideChannelDevice, ThrottlingMixin

from .querysets import OrganisationQuerySet, UserQuerySet
from .roles import Role, permissions_for_roles

phone_validator = RegexValidator(
    r"^\+?[0-9]{6,15}$", _("Enter a phone number of 6 to 15 digits, optionally starting with +.")
)


#: The name of the database constraint "one verified phone per active user" (security check B1).
VERIFIED_PHONE_CONSTRAINT = "unique_verified_phone_of_active_user"


def canonical_phone(field: str = "phone") -> Case:
    """SQL for ``phones.normalise_phone`` on a stored phone: ``+86`` or ``86`` followed by a mainland
    mobile number (11 digits starting with 1) gives the 11-digit national number; anything else is itself.

    The constraint on verified phones is built on it, so that the database refuses a second active user
    with a verified ``+8613800138000`` when one has ``13800138000``, even from a write that skipped the
    normalising (every service normalises; the constraint is the last line).
    """
    return Case(
        When(Q(Exact(Length(field), 14), Exact(Left(field, 4), "+861")), then=Substr(field, 4)),
        When(Q(Exact(Length(field), 13), Exact(Left(field, 3), "861")), then=Substr(field, 3)),
        default=F(field),
    )


class OrganisationKind(models.TextChoices):
    PLATFORM = "platform", _("Platform")
    ACQUIRER = "acquirer", _("Acquirer")
    MERCHANT = "merchant", _("Merchant")


class OrganisationStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    SUSPENDED = "suspended", _("Suspended")
    CLOSED = "closed", _("Closed")


class Organisation(models.Model):
    """A tenant: the platform, an acquirer (收单机构) or a merchant (商户).

    ``code`` is the acquirer's institution code (8–11 digits) or the merchant number (15 digits).
    A merchant belongs to exactly one acquirer (``acquirer``); an acquirer sees the merchants it acquires.
    """

    kind = models.CharField(_("kind"), max_length=16, choices=OrganisationKind.choices)
    code = models.CharField(_("code"), max_length=15, unique=True)
    name_zh = models.CharField(_("Chinese name"), max_length=128)
    name_en = models.CharField(_("English name"), max_length=128, blank=True)
    acquirer = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="merchants",
        limit_choices_to={"kind": OrganisationKind.ACQUIRER},
        verbose_name=_("acquirer"),
    )
    status = models.CharField(
        _("status"), max_length=16, choices=OrganisationStatus.choices, default=OrganisationStatus.ACTIVE
    )
    mcc = models.CharField(
        _("MCC"), max_length=4, blank=True, validators=[RegexValidator(r"^[0-9]{4}$", _("An MCC has 4 digits."))]
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    objects = OrganisationQuerySet.as_manager()

    class Meta:
        verbose_name = _("organisation")
        verbose_name_plural = _("organisations")
        ordering = ["kind", "code"]
        constraints = [
            models.CheckConstraint(
                name="merchant_has_acquirer",
                condition=~Q(kind="merchant") | Q(acquirer__isnull=False),
            ),
            models.CheckConstraint(
                name="only_merchant_has_acquirer",
                condition=Q(kind="merchant") | Q(acquirer__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.display_name}"

    @property
    def display_name(self) -> str:
        """The name in the active language, falling back to the Chinese name."""
        if (get_language() or "").startswith("en") and self.name_en:
            return self.name_en
        return self.name_zh

    def clean(self) -> None:
        from .validation import validate_organisation

        validate_organisation(self)


class PortalUserManager(UserManager.from_queryset(UserQuerySet)):
    """Django's user manager with ``visible_to(user)``."""


class User(AbstractUser):
    """A person using the portal. Belongs to exactly one organisation.

    The platform superuser flag grants nothing in the portal: permissions come from roles only,
    and no role bypasses the second factor or the four-eyes rule.

    ``phone`` is stored in its canonical form (``phones.normalise_phone``). ``phone_verified``: the
    user proved they hold the phone with a code sent to it (their first sign-in code, or a phone
    change); only then is the phone a second factor for step-up. A phone typed in by an
    administrator starts unverified: it receives sign-in codes only (security check A8).
    No two active users have the same verified phone (a database constraint; security check B1).
    """

    email = models.EmailField(_("email address"), blank=True)
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="users", verbose_name=_("organisation")
    )
    phone = models.CharField(_("mobile phone"), max_length=16, validators=[phone_validator], blank=True)
    phone_verified = models.BooleanField(_("phone verified"), default=False)
    language = models.CharField(_("language"), max_length=10, blank=True)
    must_change_password = models.BooleanField(_("must change password"), default=False)
    # Incremented to end every session of the user at once (disable, password reset).
    session_epoch = models.PositiveIntegerField(default=0)
    last_login_ip = models.GenericIPAddressField(_("last login IP"), null=True, blank=True)
    previous_login_at = models.DateTimeField(_("previous login"), null=True, blank=True)
    previous_login_ip = models.GenericIPAddressField(_("previous login IP"), null=True, blank=True)
    created_by = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("created by")
    )

    objects = PortalUserManager()

    REQUIRED_FIELDS = ["email"]

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        ordering = ["username"]
        constraints = [
            # One SMS factor per person: whoever holds a phone must not sign in as two people.
            models.UniqueConstraint(
                canonical_phone(),
                name=VERIFIED_PHONE_CONSTRAINT,
                condition=Q(phone_verified=True, is_active=True) & ~Q(phone=""),
            ),
        ]

    @property
    def role_codes(self) -> frozenset[str]:
        """The user's roles, cached on the instance for the request."""
        cached = getattr(self, "_role_codes", None)
        if cached is None:
            cached = frozenset(self.role_assignments.values_list("role", flat=True)) if self.pk else frozenset()
            self._role_codes = cached
        return cached

    @property
    def permissions(self) -> frozenset[str]:
        return permissions_for_roles(self.role_codes)

    def has_portal_perm(self, perm: str) -> bool:
        """Whether one of the user's roles grants ``perm`` (never through is_superuser)."""
        return self.is_active and perm in self.permissions

    def has_role(self, role: str) -> bool:
        return role in self.role_codes

    def get_session_auth_hash(self) -> str:
        # Mixing the epoch in ends every session of the user when it changes.
        from django.utils.crypto import salted_hmac

        return salted_hmac(
            "portal.accounts.User.session", f"{self.password}:{self.session_epoch}", algorithm="sha256"
        ).hexdigest()

    @property
    def masked_phone(self) -> str:
        from .phones import mask_phone

        return mask_phone(self.phone)


class RoleAssignment(models.Model):
    """One role held by one user in the user's organisation."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="role_assignments")
    role = models.CharField(_("role"), max_length=32, choices=Role.choices)
    granted_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    granted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("role assignment")
        verbose_name_plural = _("role assignments")
        constraints = [models.UniqueConstraint(fields=["user", "role"], name="unique_user_role")]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.role}"


class PasswordHistory(models.Model):
    """The hashes of a user's earlier passwords, to refuse reusing the last four (PCI 8.3.7)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="password_history")
    password = models.CharField(max_length=256)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.user_id} {self.created_at:%Y-%m-%d}"


class SMSDevice(ThrottlingMixin, CooldownMixin, SideChannelDevice):
    """A django-otp device that sends a 6-digit code by SMS to the user's phone.

    Codes are valid for 5 minutes and usable once (verification runs under a row lock),
    a new code can be asked for after 60 seconds, and each phone has a daily cap.
    ``challenge`` binds the code to the login attempt (session nonce) that asked for it.
    ``phone`` (canonical, like ``User.phone``) is where the current code went; it may differ from
    the user's phone while a phone change is being confirmed. ``purpose`` ``login`` sends sign-in
    codes (also to a phone not verified yet, which the first right code confirms); ``step_up`` only
    to a verified phone.
    """

    phone = models.CharField(max_length=16, validators=[phone_validator])
    purpose = models.CharField(max_length=16, default="login")
    challenge = models.CharField(max_length=64, blank=True)

    class Meta(SideChannelDevice.Meta):
        verbose_name = _("SMS device")

    def get_throttle_factor(self) -> int:
        from django.conf import settings

        return settings.OTP_SMS_THROTTLE_FACTOR

    def get_cooldown_duration(self) -> int:
        from django.conf import settings

        return settings.OTP_SMS_COOLDOWN_DURATION


class SmsStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")


class SmsMessage(models.Model):
    """Every SMS the portal sends. With the outbox backend the text stays here for the developer;
    with a real provider only a redacted text is kept (a code is a secret)."""

    phone = models.CharField(max_length=16)
    text = models.TextField()
    purpose = models.CharField(max_length=32)
    backend = models.CharField(max_length=16)
    status = models.CharField(max_length=16, choices=SmsStatus.choices, default=SmsStatus.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    provider_reference = models.CharField(max_length=128, blank=True)
    error = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["phone", "created_at"])]

    def __str__(self) -> str:
        return f"{self.phone} {self.created_at:%Y-%m-%d %H:%M:%S}"
