"""Deploy checks for the gateway configuration (``manage.py check --deploy``)."""

from django.conf import settings
from django.core.checks import Warning, register


@register(deploy=True)
def acp_gateway_configured(app_configs, **kwargs):
    """Without the sandbox the portal needs a gateway URL, a signing certificate and trust anchors."""
    if settings.SANDBOX_ENABLED:
        return []
    problems = []
    if not settings.ACP_BASE_URL:
        problems.append(
            Warning("ACP_BASE_URL is not set: refunds and queries cannot reach the gateway.", id="payments.W001")
        )
    if not (settings.ACP_SIGN_PKCS12_PATH or (settings.ACP_SIGN_KEY_PATH and settings.ACP_SIGN_CERT_PATH)):
        problems.append(
            Warning(
                "No ACP signing certificate (ACP_SIGN_PKCS12_PATH or ACP_SIGN_KEY_PATH and ACP_SIGN_CERT_PATH).",
                id="payments.W002",
            )
        )
    if settings.ACP_VERSION == "5.1.0" and not (settings.ACP_ROOT_CERT_PATHS and settings.ACP_MIDDLE_CERT_PATHS):
        problems.append(
            Warning(
                "ACP 5.1.0 needs ACP_ROOT_CERT_PATHS and ACP_MIDDLE_CERT_PATHS to verify notifications.",
                id="payments.W003",
            )
        )
    if not settings.ACP_BACK_URL.startswith("https://"):
        problems.append(Warning("ACP_BACK_URL should be an https URL.", id="payments.W004"))
    return problems
