"""Round trips against an independent implementation: the ``openssl`` command line."""

import base64
import shutil
import subprocess

import pytest

from payments.gateway.acp.codec import signing_string
from payments.gateway.acp.signing import Signer, Verifier
from payments.gateway.acp.testing import cert_pem, key_pem, write_ca

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl command not installed")

PARAMS = {
    "version": "",
    "encoding": "UTF-8",
    "txnType": "31",
    "txnSubType": "00",
    "bizType": "000201",
    "accessType": "0",
    "merId": "777290058110048",
    "orderId": "VD2025010100001",
    "txnTime": "20250101120000",
    "txnAmt": "100",
    "currencyCode": "156",
    "origQryId": "201501011200000000001",
    "backUrl": "http://127.0.0.1:8000/gateway/acp/notify/",
    "reqReserved": "{备注=退货&n=1}",
    "frontUrl": "",
}


def openssl(*args, data=None):
    return subprocess.run(["openssl", *args], input=data, capture_output=True, check=True).stdout


@pytest.fixture
def key_file(ca, tmp_path):
    path = tmp_path / "sign.key"
    path.write_bytes(key_pem(ca.sign_key))
    return path


@pytest.fixture
def pub_file(ca, tmp_path):
    path = tmp_path / "sign.pub"
    path.write_bytes(openssl("x509", "-pubkey", "-noout", data=cert_pem(ca.sign_cert)))
    return path


@pytest.mark.parametrize(("version", "digest"), [("5.0.0", "sha1"), ("5.1.0", "sha256")])
def test_signature_equals_openssl_dgst_sign_of_the_hex_digest(ca, key_file, tmp_path, version, digest):
    # given: the message signed by our Signer
    signed = ca.signer().sign(dict(PARAMS, version=version))
    # when: openssl hashes the signing string to hex, then signs the ASCII hex with the same key and hash
    hex_digest = openssl("dgst", f"-{digest}", "-r", data=signing_string(signed).encode()).split()[0]
    (tmp_path / "hex").write_bytes(hex_digest)
    theirs = openssl("dgst", f"-{digest}", "-sign", str(key_file), str(tmp_path / "hex"))
    # then: RSA PKCS#1 v1.5 is deterministic, so the bytes are equal
    assert base64.b64decode(signed["signature"]) == theirs


@pytest.mark.parametrize(("version", "digest"), [("5.0.0", "sha1"), ("5.1.0", "sha256")])
def test_openssl_verifies_our_signature(ca, pub_file, tmp_path, version, digest):
    signed = ca.signer().sign(dict(PARAMS, version=version))
    hex_digest = openssl("dgst", f"-{digest}", "-r", data=signing_string(signed).encode()).split()[0]
    (tmp_path / "hex").write_bytes(hex_digest)
    (tmp_path / "sig").write_bytes(base64.b64decode(signed["signature"]))
    out = openssl(
        "dgst", f"-{digest}", "-verify", str(pub_file), "-signature", str(tmp_path / "sig"), str(tmp_path / "hex")
    )
    assert out.strip() == b"Verified OK"


@pytest.mark.parametrize(("version", "digest"), [("5.0.0", "sha1"), ("5.1.0", "sha256")])
def test_verifier_accepts_openssl_made_signatures(ca, key_file, tmp_path, version, digest):
    # given: a message whose signature openssl made (certId and signPubKeyCert set by hand, as a foreign SDK would)
    params = {k: v for k, v in PARAMS.items() if v}
    params.update(version=version, signMethod="01", certId=str(ca.sign_cert.serial_number))
    if version == "5.1.0":
        params["signPubKeyCert"] = cert_pem(ca.sign_cert).decode()
    hex_digest = openssl("dgst", f"-{digest}", "-r", data=signing_string(params).encode()).split()[0]
    (tmp_path / "hex").write_bytes(hex_digest)
    params["signature"] = base64.b64encode(
        openssl("dgst", f"-{digest}", "-sign", str(key_file), str(tmp_path / "hex"))
    ).decode()
    # when / then
    assert ca.verifier().verify(params).cert_id == "68759663125"
    params["txnAmt"] = "99"
    assert ca.verifier().is_valid(params) is False


def test_openssl_accepts_the_test_ca_chain(ca, tmp_path):
    files = write_ca(ca, tmp_path / "ca")
    out = openssl("verify", "-CAfile", str(files.root_cert), "-untrusted", str(files.middle_cert), str(files.sign_cert))
    assert out.strip().endswith(b": OK")


def test_openssl_made_pkcs12_loads(ca, merchant, tmp_path):
    key, cert = merchant
    (tmp_path / "k.pem").write_bytes(key_pem(key))
    (tmp_path / "c.pem").write_bytes(cert_pem(cert))
    pfx = openssl(
        "pkcs12",
        "-export",
        "-inkey",
        str(tmp_path / "k.pem"),
        "-in",
        str(tmp_path / "c.pem"),
        "-passout",
        "pass:000000",
    )
    signer = Signer.from_pkcs12(pfx, "000000")
    assert signer.cert_id == "70000000001"
    signed = signer.sign(dict(PARAMS, version="5.1.0"))
    assert Verifier(verify_certs=[cert], accept_cert_id_for_510=True).verify(signed).certificate == cert
