import stat

import pytest

from payments.gateway.acp.signing import owner_of
from payments.gateway.acp.testing import DEFAULT_OWNER_CN, generate_ca, load_ca_files


def test_generate_ca_writes_the_four_pem_files_and_they_work(tmp_path):
    files = generate_ca(tmp_path / "sandbox", key_size=2048)
    assert sorted(p.name for p in (tmp_path / "sandbox").iterdir()) == [
        "middle.crt",
        "root.crt",
        "sign.crt",
        "sign.key",
    ]
    assert stat.S_IMODE(files.sign_key.stat().st_mode) == 0o600
    assert files.sign_key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    signer = files.signer()
    signed = signer.sign({"version": "5.1.0", "txnType": "00", "merId": "777290058110048"}, include_cert=True)
    verification = files.verifier().verify(signed)
    assert verification.certificate.subject.rfc4514_string().startswith(f"CN={DEFAULT_OWNER_CN}")
    assert owner_of(verification.certificate) == "中国银联股份有限公司"


def test_generate_ca_keeps_existing_files_unless_overwrite(tmp_path):
    first = generate_ca(tmp_path)
    before = first.sign_cert.read_bytes()
    assert generate_ca(tmp_path).sign_cert.read_bytes() == before
    assert generate_ca(tmp_path, overwrite=True).sign_cert.read_bytes() != before


def test_load_ca_files_requires_all_four(tmp_path):
    generate_ca(tmp_path)
    assert load_ca_files(tmp_path).exists()
    (tmp_path / "middle.crt").unlink()
    with pytest.raises(FileNotFoundError):
        load_ca_files(tmp_path)
