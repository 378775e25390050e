"""Exceptions of the ACP protocol package.

Every failure the package detects is an :class:`ACPError`; callers catch the narrowest class they can act on.
Messages are for logs and operators (English, no card data); the UI maps the classes to translated text.
"""

from __future__ import annotations


class ACPError(Exception):
    """Base class of every error raised by ``payments.gateway.acp``."""


class ACPFormatError(ACPError, ValueError):
    """A message, reserved field or ``fileContent`` value cannot be decoded or encoded."""


class ACPRequestError(ACPError, ValueError):
    """A request cannot be built: a field is missing or has the wrong format."""


class ACPConfigurationError(ACPError):
    """A key, certificate or setting given to the package is unusable."""


# --- signature verification -------------------------------------------------------------------------------------


class SignatureError(ACPError):
    """The signature of a message cannot be accepted (base class of every verification failure)."""


class MissingSignatureError(SignatureError):
    """The message has no ``signature`` (or no other field the verification needs)."""


class UnsupportedSignMethodError(SignatureError):
    """``signMethod`` / ``version`` combination this verifier is not configured for."""


class SignatureMismatchError(SignatureError):
    """The signature does not match the message (tampered field, wrong key)."""


class UnknownCertIdError(SignatureError):
    """``certId`` names no configured verification certificate."""


class CertificateError(SignatureError):
    """The signing certificate carried in ``signPubKeyCert`` is not acceptable (base class)."""


class CertificateParseError(CertificateError):
    """``signPubKeyCert`` is not a PEM X.509 certificate."""


class CertificateExpiredError(CertificateError):
    """A certificate of the chain is past its ``notAfter``."""


class CertificateNotYetValidError(CertificateError):
    """A certificate of the chain is before its ``notBefore``."""


class MissingIntermediateError(CertificateError):
    """No configured middle certificate issued the signing certificate."""


class UntrustedCertificateError(CertificateError):
    """The chain does not end at a configured root, or a certificate signature in it is wrong."""


class CertificateOwnerError(CertificateError):
    """The subject CN does not name an accepted owner (element [2] of the CN split on ``@``)."""


# --- gateway client ---------------------------------------------------------------------------------------------


class GatewayError(ACPError):
    """Talking to the ACP gateway failed."""


class GatewayTimeoutError(GatewayError):
    """No (complete) answer within the configured timeout: the state of the transaction is unknown; query it."""

    def __init__(self, message: str, *, order_id: str | None = None, txn_time: str | None = None):
        super().__init__(message)
        self.order_id = order_id
        self.txn_time = txn_time


class GatewayConnectionError(GatewayError):
    """The gateway could not be reached (connection refused, DNS, TLS)."""


class GatewayHTTPError(GatewayError):
    """The gateway answered with an HTTP status other than 200."""

    def __init__(self, message: str, *, status_code: int):
        super().__init__(message)
        self.status_code = status_code


class GatewayResponseError(GatewayError):
    """The gateway's answer is malformed, unsigned, wrongly signed or does not belong to the request.

    ``untrusted_params`` holds what could be decoded (may be empty); never act on it.
    """

    def __init__(self, message: str, *, untrusted_params: dict[str, str] | None = None):
        super().__init__(message)
        self.untrusted_params = dict(untrusted_params or {})
