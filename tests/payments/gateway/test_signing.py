import base64
from datetime import UTC, datetime, timedelta

import pytest

from payments.gateway.acp.errors import (
    ACPConfigurationError,
    ACPRequestError,
    CertificateExpiredError,
    CertificateNotYetValidError,
    CertificateOwnerError,
    CertificateParseError,
    MissingIntermediateError,
    MissingSignatureError,
    SignatureMismatchError,
    UnknownCertIdError,
    UnsupportedSignMethodError,
    UntrustedCertificateError,
)
from payments.gateway.acp.signing import (
    UNIONPAY_OWNER,
    UNIONPAY_TEST_OWNER,
    SecretKeySigner,
    Signer,
    Verifier,
    certificate_pem,
    owner_of,
    secret_signature,
)
from payments.gateway.acp.testing import DEFAULT_OWNER_CN, cert_pem, key_pem, to_pkcs12

from .conftest import MER_ID


def message(version="5.1.0", **extra):
    params = {
        "version": version,
        "encoding": "UTF-8",
        "txnType": "04",
        "txnSubType": "00",
        "bizType": "000201",
        "accessType": "0",
        "merId": MER_ID,
        "orderId": "RF2025010100001",
        "txnTime": "20250101120000",
        "txnAmt": "100",
        "currencyCode": "156",
        "origQryId": "201501011200000000001",
        "respCode": "00",
        "respMsg": "成功",
        "reqReserved": "{a=1&b=2}",
    }
    params.update(extra)
    return params


# --- signing ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["5.0.0", "5.1.0"])
def test_sign_sets_cert_id_to_decimal_serial_and_round_trips(ca, version):
    signer = ca.signer()
    signed = signer.sign(message(version, frontUrl="", payTimeout="  "))
    assert signed["certId"] == "68759663125"
    assert signed["signMethod"] == "01"
    assert "frontUrl" not in signed and "payTimeout" not in signed
    assert len(base64.b64decode(signed["signature"])) == 256
    verification = ca.verifier().verify(
        signed if version == "5.0.0" else signer.sign(message(version), include_cert=True)
    )
    assert verification.cert_id == "68759663125"
    assert verification.version == version


def test_versions_produce_different_signatures(ca):
    assert ca.signer().sign(message("5.0.0"))["signature"] != ca.signer().sign(message("5.1.0"))["signature"]


def test_signing_is_deterministic(ca):
    assert ca.signer().sign(message())["signature"] == ca.signer().sign(message())["signature"]


@pytest.mark.parametrize("version", ["5.0.0", "5.1.0"])
@pytest.mark.parametrize(("field", "value"), [("txnAmt", "101"), ("respCode", "05"), ("reqReserved", "{a=1&b=3}")])
def test_tampered_field_fails(ca, version, field, value):
    signed = ca.signer().sign(message(version), include_cert=version == "5.1.0")
    signed[field] = value
    with pytest.raises(SignatureMismatchError):
        ca.verifier().verify(signed)


def test_added_field_fails(ca):
    signed = ca.signer().sign(message("5.0.0"))
    signed["accNo"] = "6221558812340000"
    with pytest.raises(SignatureMismatchError):
        ca.verifier().verify(signed)


def test_added_empty_field_is_ignored_as_the_protocol_drops_blank_values(ca):
    signed = ca.signer().sign(message("5.0.0"))
    signed["frontUrl"] = ""
    assert ca.verifier().verify(signed).cert_id == "68759663125"


def test_wrong_cert_id_fails_for_500(ca):
    signed = ca.signer().sign(message("5.0.0"))
    signed["certId"] = "12345"
    with pytest.raises(UnknownCertIdError):
        ca.verifier().verify(signed)


def test_cert_id_of_another_configured_cert_fails_as_mismatch(ca, merchant):
    # certId is signed too, and the other certificate's key did not make the signature
    signed = ca.signer().sign(message("5.0.0"))
    signed["certId"] = str(merchant[1].serial_number)
    verifier = Verifier(verify_certs=[ca.sign_cert, merchant[1]])
    with pytest.raises(SignatureMismatchError):
        verifier.verify(signed)


def test_wrong_key_fails(ca, other_ca):
    signed = other_ca.signer().sign(message("5.0.0"))
    signed["certId"] = ca.signer().cert_id
    with pytest.raises(SignatureMismatchError):
        ca.verifier().verify(signed)


def test_missing_signature_and_unsupported_methods(ca):
    verifier = ca.verifier()
    with pytest.raises(MissingSignatureError):
        verifier.verify(message())
    with pytest.raises(UnsupportedSignMethodError):
        verifier.verify(message(signMethod="12", signature="x"))
    with pytest.raises(UnsupportedSignMethodError):
        verifier.verify(message("1.0.0", signMethod="01", signature="x"))
    with pytest.raises(UnsupportedSignMethodError):  # 11 without a configured secret
        verifier.verify(SecretKeySigner("88888888").sign(message()))


def test_signature_that_is_not_base64_is_a_mismatch(ca):
    signed = ca.signer().sign(message("5.0.0"))
    signed["signature"] = "!!!"
    with pytest.raises(SignatureMismatchError):
        ca.verifier().verify(signed)


def test_510_without_sign_pub_key_cert_is_refused_unless_cert_id_lookup_is_allowed(ca, merchant):
    key, cert = merchant
    signed = Signer(key, cert).sign(message("5.1.0"))
    with pytest.raises(MissingSignatureError):
        ca.verifier().verify(signed)
    sandbox_side = Verifier(verify_certs=[cert], accept_cert_id_for_510=True)
    assert sandbox_side.verify(signed).certificate == cert


def test_gbk_message_round_trip(ca):
    signed = ca.signer().sign(message(encoding="GBK", customerNm="张三"), include_cert=True)
    assert ca.verifier().verify(signed).version == "5.1.0"


def test_sign_refuses_bad_version_and_method(ca):
    with pytest.raises(ACPRequestError):
        ca.signer().sign(message("5.0.1"))
    with pytest.raises(ACPRequestError):
        ca.signer().sign(message(signMethod="11"))


# --- loading keys -------------------------------------------------------------------------------------------------


def test_signer_from_pkcs12_and_pem(ca, merchant):
    key, cert = merchant
    pfx = to_pkcs12(key, cert, b"000000", chain=[ca.middle_cert])
    assert Signer.from_pkcs12(pfx, "000000").cert_id == "70000000001"
    assert Signer.from_pem(key_pem(key, b"pw"), cert_pem(cert), "pw").cert_id == "70000000001"
    with pytest.raises(ACPConfigurationError):
        Signer.from_pkcs12(pfx, "wrong")
    with pytest.raises(ACPConfigurationError):
        Signer(key, ca.sign_cert)  # certificate of another key


# --- 5.1.0 signPubKeyCert chain -------------------------------------------------------------------------------------


def signed_with(ca_key_cert, version="5.1.0"):
    key, cert = ca_key_cert
    return Signer(key, cert).sign(message(version), include_cert=True)


def test_chain_accepts_a_good_leaf(ca):
    verification = ca.verifier().verify(ca.signer().sign(message(), include_cert=True))
    assert verification.certificate == ca.sign_cert


def test_expired_leaf(ca):
    leaf = ca.issue(DEFAULT_OWNER_CN, not_before=datetime.now(UTC) - timedelta(days=30), days=10)
    with pytest.raises(CertificateExpiredError):
        ca.verifier().verify(signed_with(leaf))


def test_not_yet_valid_leaf(ca):
    leaf = ca.issue(DEFAULT_OWNER_CN, not_before=datetime.now(UTC) + timedelta(days=2), days=10)
    with pytest.raises(CertificateNotYetValidError):
        ca.verifier().verify(signed_with(leaf))


def test_validity_is_checked_at_the_given_time(ca):
    signed = ca.signer().sign(message(), include_cert=True)
    verifier = ca.verifier()
    assert verifier.verify(signed).certificate == ca.sign_cert  # caches the chain
    with pytest.raises(CertificateExpiredError):
        verifier.verify(signed, at=datetime.now(UTC) + timedelta(days=4000))
    with pytest.raises(CertificateNotYetValidError):
        verifier.verify(signed, at=datetime.now(UTC) - timedelta(days=30))


def test_wrong_root(ca, other_ca):
    verifier = Verifier(root_certs=[other_ca.root_cert], middle_certs=[ca.middle_cert])
    with pytest.raises(UntrustedCertificateError):
        verifier.verify(ca.signer().sign(message(), include_cert=True))


def test_leaf_from_another_ca_with_the_same_names_is_untrusted(ca, other_ca):
    with pytest.raises(UntrustedCertificateError):
        ca.verifier().verify(other_ca.signer().sign(message(), include_cert=True))


def test_missing_middle(ca):
    verifier = Verifier(root_certs=[ca.root_cert], middle_certs=[])
    with pytest.raises(MissingIntermediateError):
        verifier.verify(ca.signer().sign(message(), include_cert=True))


def test_leaf_issued_directly_by_the_root_has_no_middle(ca):
    leaf = ca.issue(DEFAULT_OWNER_CN, by_root=True)
    with pytest.raises(MissingIntermediateError):
        ca.verifier().verify(signed_with(leaf))


def test_wrong_owner_cn(ca):
    leaf = ca.issue("041@Z2014-11-11@700000000000001:SIGN@00000006")
    with pytest.raises(CertificateOwnerError):
        ca.verifier().verify(signed_with(leaf))


def test_cn_without_owner_element(ca):
    leaf = ca.issue(UNIONPAY_OWNER)
    with pytest.raises(CertificateOwnerError):
        ca.verifier().verify(signed_with(leaf))


def test_test_environment_owner_only_when_configured(ca):
    signed = signed_with(ca.issue("041@Z12@00040000:SIGN@00000062"))
    with pytest.raises(CertificateOwnerError):
        ca.verifier().verify(signed)
    relaxed = ca.verifier(allowed_owners=(UNIONPAY_OWNER, UNIONPAY_TEST_OWNER))
    assert owner_of(relaxed.verify(signed).certificate) == UNIONPAY_TEST_OWNER


def test_garbage_sign_pub_key_cert(ca):
    signed = ca.signer().sign(message(), include_cert=True)
    signed["signPubKeyCert"] = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"
    with pytest.raises(CertificateParseError):
        ca.verifier().verify(signed)


def test_swapped_sign_pub_key_cert_is_a_mismatch(ca):
    # a valid certificate of the right owner, but not the key that signed
    _, other_leaf = ca.issue(DEFAULT_OWNER_CN)
    signed = ca.signer().sign(message(), include_cert=True)
    signed["signPubKeyCert"] = certificate_pem(other_leaf)
    with pytest.raises(SignatureMismatchError):
        ca.verifier().verify(signed)


def test_each_chain_failure_is_a_distinct_class():
    classes = {
        CertificateExpiredError,
        CertificateNotYetValidError,
        UntrustedCertificateError,
        MissingIntermediateError,
        CertificateOwnerError,
    }
    assert len(classes) == 5
    assert all(not issubclass(a, b) for a in classes for b in classes if a is not b)


# --- signMethod 11 ------------------------------------------------------------------------------------------------

KNOWN_11 = {
    "version": "5.1.0",
    "encoding": "UTF-8",
    "signMethod": "11",
    "txnType": "00",
    "merId": "777290058110048",
    "orderId": "20250101000001",
    "txnTime": "20250101120000",
}
# computed with coreutils: printf '%s&%s' "$SIGNSTRING" "$(printf 88888888 | sha256sum | cut -d' ' -f1)" | sha256sum
KNOWN_11_SIGNATURE = "73bd9429cf340e67ed656e15b96e0dd208d2fb24767388e249b5dac18ba0cd7d"


def test_secret_signature_known_answer():
    assert secret_signature(KNOWN_11, "88888888") == KNOWN_11_SIGNATURE
    assert SecretKeySigner("88888888").sign(KNOWN_11)["signature"] == KNOWN_11_SIGNATURE


def test_secret_verify_round_trip_and_tamper():
    verifier = Verifier(secure_key="88888888")
    signed = SecretKeySigner("88888888").sign(KNOWN_11)
    assert verifier.verify(signed).sign_method == "11"
    with pytest.raises(SignatureMismatchError):
        verifier.verify(dict(signed, orderId="20250101000002"))
    with pytest.raises(SignatureMismatchError):
        Verifier(secure_key="12345678").verify(signed)
