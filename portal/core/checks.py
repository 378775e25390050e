"""The project's own deploy checks, for what ``check --deploy`` does not look at."""

from django.conf import settings
from django.core.checks import Warning, register


@register(deploy=True)
def portal_deploy_checks(app_configs, **kwargs):
    errors = []
    if settings.SESSION_IDLE_SECONDS > 15 * 60:
        errors.append(Warning("SESSION_IDLE_SECONDS is over 15 minutes (PCI DSS 8.2.8).", id="portal.W001"))
    if settings.SESSION_ABSOLUTE_SECONDS > 12 * 3600 or settings.SESSION_COOKIE_AGE > 12 * 3600:
        errors.append(Warning("Sessions may last longer than 12 hours.", id="portal.W002"))
    names = {v["NAME"].rsplit(".", 1)[-1]: v for v in settings.AUTH_PASSWORD_VALIDATORS}
    min_len = names.get("MinimumLengthValidator", {}).get("OPTIONS", {}).get("min_length", 8)
    required = {
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "LetterAndDigitValidator",
        "PasswordHistoryValidator",
    }
    if not required <= set(names) or min_len < 12:
        errors.append(
            Warning(
                "Password validators are weaker than the policy (12+ characters, letters and "
                "digits, common passwords, history of 4).",
                id="portal.W003",
            )
        )
    if not settings.PASSWORD_HASHERS or "Argon2" not in settings.PASSWORD_HASHERS[0]:
        errors.append(Warning("The first password hasher is not Argon2.", id="portal.W004"))
    if not 0 < settings.UPLOAD_MAX_BYTES <= 200 * 1024 * 1024:
        errors.append(Warning("UPLOAD_MAX_BYTES must be set and at most 200 MB.", id="portal.W005"))
    csp = getattr(settings, "SECURE_CSP", None) or {}
    if "django.middleware.csp.ContentSecurityPolicyMiddleware" not in settings.MIDDLEWARE or not csp:
        errors.append(Warning("No Content-Security-Policy is sent.", id="portal.W006"))
    elif any(k not in csp for k in ("object-src", "base-uri", "frame-ancestors")):
        errors.append(
            Warning("The Content-Security-Policy lacks object-src, base-uri or frame-ancestors.", id="portal.W007")
        )
    if settings.SMS_BACKEND == "outbox":
        errors.append(Warning("SMS goes to the development outbox; set SMS_BACKEND.", id="portal.W008"))
    return errors
