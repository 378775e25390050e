"""Checks of the gateway configuration: its settings and its keys and certificates (security check E2).

``manage.py check --deploy`` runs all of them; the plain ``manage.py check`` runs the certificate checks of the
embedded sandbox's generated files only (cheap, and warnings at most). ``--tag acp_certificates`` selects the
certificate checks alone; ``manage.py acp_certificates`` prints the inventory behind them.
"""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

CERTIFICATES_TAG = "acp_certificates"


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


def _certificate_messages(app_configs, *, sandbox: bool) -> list:
    if app_configs is not None and not any(config.name == "payments" for config in app_configs):
        return []
    from .gateway.certificates import ERROR, certificate_inventory

    messages = []
    for finding in certificate_inventory().findings:
        if finding.item.sandbox != sandbox:
            continue
        level = Error if finding.level == ERROR else Warning
        messages.append(level(finding.message, hint=finding.hint or None, id=finding.check_id))
    return messages


@register(Tags.security, CERTIFICATES_TAG, deploy=True)
def acp_certificates_configured(app_configs, **kwargs):
    """The configured signing key and certificate and trusted certificates: key strength, key usage, validity,
    key/certificate pair, SHA-1 roots (rules in ``payments.gateway.certificates``). Errors fail the deploy."""
    return _certificate_messages(app_configs, sandbox=False)


@register(CERTIFICATES_TAG)
def acp_certificates_sandbox(app_configs, **kwargs):
    """The same rules on the sandbox's generated files, when they exist; warnings only."""
    return _certificate_messages(app_configs, sandbox=True)
