"""Upload safety: size, type by content, zip bombs, names, encryption at rest (F1–F5, C2)."""

from __future__ import annotations

import io
import zipfile

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from portal.batches import storage
from portal.batches.models import Batch
from portal.batches.readers import iter_raw_lines, iter_text_lines
from portal.batches.services import BatchError, batch_upload
from portal.batches.uploads import sanitise_name

from .conftest import stored_files, xlsx_bytes

pytestmark = pytest.mark.django_db


def _upload(actor, name, data):
    return batch_upload(actor=actor, kind="demo", uploaded_file=SimpleUploadedFile(name, data))


def _refused(actor, name, data, settings) -> BatchError:
    with pytest.raises(BatchError) as exc:
        _upload(actor, name, data)
    assert Batch.objects.count() == 0
    assert stored_files(settings) == []
    return exc.value


def test_file_over_the_limit_is_refused_and_nothing_is_kept(operator_a, settings):
    settings.UPLOAD_MAX_BYTES = 100
    err = _refused(operator_a, "a.txt", b"A|1\n" * 25 + b"x", settings)
    assert (err.code, err.status) == ("file_too_large", 413)
    # exactly the limit is accepted
    assert _upload(operator_a, "a.txt", b"A|1\n" * 25).size == 100


def test_size_is_counted_while_streaming_even_if_the_declared_size_lies(operator_a, settings):
    settings.UPLOAD_MAX_BYTES = 100
    f = SimpleUploadedFile("a.txt", b"A|1\n" * 30)
    f.size = 10
    with pytest.raises(BatchError) as exc:
        batch_upload(actor=operator_a, kind="demo", uploaded_file=f)
    assert exc.value.code == "file_too_large"
    assert stored_files(settings) == []


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("fake.xlsx", b"orderId,amount\nA,1\n", "xlsx_not_ooxml"),  # csv renamed xlsx
        ("book.xlsm", b"PK\x03\x04whatever", "xlsx_macro"),
        ("a.csv.exe", b"A|1\n", "file_type"),
        ("a.csv\x00.exe", b"A|1\n", "file_type"),
        ("a.txt", b"PK\x03\x04zip in disguise", "file_type"),
        ("a.txt", b"A|1\x00\n", "file_type"),
        ("a.txt", b"", "file_empty"),
        ("a.pdf", b"%PDF-1.4", "file_type"),
    ],
)
def test_type_allowlist_by_extension_and_content(operator_a, settings, name, data, code):
    assert _refused(operator_a, name, data, settings).code == code


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return buf.getvalue()


def test_xlsx_with_a_vba_project_is_refused(operator_a, settings):
    data = _zip({"[Content_Types].xml": b"<x/>", "xl/workbook.xml": b"<x/>", "xl/vbaProject.bin": b"\x00"})
    assert _refused(operator_a, "book.xlsx", data, settings).code == "xlsx_macro"


def test_zip_that_is_not_ooxml_is_refused(operator_a, settings):
    assert _refused(operator_a, "a.xlsx", _zip({"readme.txt": b"hi"}), settings).code == "xlsx_not_ooxml"


@pytest.fixture
def no_openpyxl(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("openpyxl must not open a refused workbook")

    monkeypatch.setattr(openpyxl, "load_workbook", fail)


def test_zip_bomb_declared_size_is_refused_before_openpyxl(operator_a, settings, no_openpyxl):
    # given a limit of 1 MB and a workbook whose sheet inflates to 5 MB of zeros (~5 KB compressed)
    settings.BATCH_XLSX_MAX_UNCOMPRESSED = 1024 * 1024
    data = _zip(
        {"[Content_Types].xml": b"<x/>", "xl/workbook.xml": b"<x/>", "xl/worksheets/sheet1.xml": b"0" * 5_000_000}
    )
    assert len(data) < 50_000
    err = _refused(operator_a, "bomb.xlsx", data, settings)
    assert (err.code, err.params) == ("xlsx_too_large", {"limit_mb": 1})


def test_zip_bomb_compression_ratio_is_refused(operator_a, settings, no_openpyxl):
    data = _zip(
        {"[Content_Types].xml": b"<x/>", "xl/workbook.xml": b"<x/>", "xl/worksheets/sheet1.xml": b"0" * 5_000_000}
    )
    assert _refused(operator_a, "bomb.xlsx", data, settings).code == "xlsx_too_large"


def test_too_many_members_is_refused(operator_a, settings, no_openpyxl):
    members = {"[Content_Types].xml": b"<x/>", "xl/workbook.xml": b"<x/>"}
    members.update({f"xl/m{i}.xml": b"" for i in range(2000)})
    assert _refused(operator_a, "many.xlsx", _zip(members), settings).code == "xlsx_too_large"


def _lying_zip(member: bytes, declared: int) -> bytes:
    """A workbook-shaped zip whose xl/s.xml holds ``member`` but whose central directory declares ``declared``."""
    data = bytearray(_zip({"[Content_Types].xml": b"<x/>", "xl/workbook.xml": b"<x/>", "xl/s.xml": member}))
    cd = data.rfind(b"PK\x01\x02", 0, data.rfind(b"xl/s.xml") + 1)
    data[cd + 24 : cd + 28] = declared.to_bytes(4, "little")  # uncompressed size in the central directory
    return bytes(data)


def test_understated_sizes_pass_the_header_check_and_are_refused_when_inflating(settings):
    from portal.batches.registry import FileRejected
    from portal.batches.uploads import check_xlsx, check_xlsx_inflated

    # given a member of 5 MB declared as 10 bytes, under a 1 MB limit
    settings.BATCH_XLSX_MAX_UNCOMPRESSED = 1024 * 1024
    data = _lying_zip(b"0" * 5_000_000, declared=10)
    check_xlsx(io.BytesIO(data))  # the central directory alone does not show the lie
    # when it is inflated
    with pytest.raises(FileRejected) as exc:
        check_xlsx_inflated(io.BytesIO(data))
    # then zipfile stops at the declared 10 bytes and the CRC no longer matches: refused as not a workbook.
    # The inflate cap cannot fire here (zipfile never yields more than the declared sizes, whose sum the
    # header check caps); the next test proves the cap on its own.
    assert (exc.value.code, exc.value.params) == ("xlsx_not_ooxml", {})
    assert "CRC" in str(exc.value.__cause__)


def test_the_inflate_cap_counts_the_bytes_really_inflated(settings, monkeypatch):
    from portal.batches import uploads
    from portal.batches.registry import FileRejected

    # given a 1 MB limit, a workbook whose sheet inflates to 5 MB, and a header check that has been fooled
    settings.BATCH_XLSX_MAX_UNCOMPRESSED = 1024 * 1024
    data = _zip({"[Content_Types].xml": b"<x/>", "xl/workbook.xml": b"<x/>", "xl/s.xml": b"0" * 5_000_000})
    monkeypatch.setattr(uploads, "check_xlsx", lambda fh: None)
    inflated = []
    real_read = zipfile.ZipExtFile.read

    def counting_read(self, n=-1):
        block = real_read(self, n)
        inflated.append(len(block))
        return block

    monkeypatch.setattr(zipfile.ZipExtFile, "read", counting_read)
    # when it is inflated
    with pytest.raises(FileRejected) as exc:
        uploads.check_xlsx_inflated(io.BytesIO(data))
    # then the cap refuses it as too large, having inflated at most one block past the limit
    assert (exc.value.code, exc.value.params) == ("xlsx_too_large", {"limit_mb": 1})
    assert 1024 * 1024 < sum(inflated) <= 1024 * 1024 + 256 * 1024


def test_defusedxml_is_active():
    assert openpyxl.xml.DEFUSEDXML is True


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\x.csv", "x.csv"),
        ("a\x00.csv", "a.csv"),
        ("evil\u202egpj.csv", "evilgpj.csv"),
        ("a\r\nb.csv", "ab.csv"),
        ('q"uote.csv', "quote.csv"),
        ("", "upload"),
    ],
)
def test_sanitise_name(raw, expected):
    assert sanitise_name(raw) == expected


def test_long_names_keep_their_extension():
    name = sanitise_name("x" * 300 + ".csv")
    assert len(name) == 100 and name.endswith(".csv")


def test_stored_under_a_generated_name_never_the_client_name(operator_a, settings):
    batch = _upload(operator_a, "../../etc/passwd.txt", b"A|1\n")
    assert batch.original_name == "passwd.txt"
    assert stored_files(settings) == [batch.stored_name]
    assert len(batch.stored_name) == 32


def test_encrypted_at_rest_and_round_trips(operator_a, settings):
    content = b"".join(f"ORDER{i:06d}|{i}\n".encode() for i in range(20000))  # > several 64 KiB chunks
    batch = _upload(operator_a, "big.txt", content)
    raw = (settings.MEDIA_ROOT / "batches" / batch.stored_name).read_bytes()
    assert b"ORDER000001" not in raw and b"ORDER019999" not in raw
    with storage.open_plaintext(batch.stored_name) as fh:
        assert fh.read() == content
    import hashlib

    assert batch.sha256 == hashlib.sha256(content).hexdigest()


def test_tampered_or_truncated_file_does_not_decrypt(operator_a, settings):
    batch = _upload(operator_a, "a.txt", b"A|1\n" * 50000)
    path = settings.MEDIA_ROOT / "batches" / batch.stored_name
    original = path.read_bytes()
    path.write_bytes(original[:-100])
    with pytest.raises(storage.CorruptFile), storage.open_plaintext(batch.stored_name) as fh:
        fh.read()
    tampered = bytearray(original)
    tampered[100] ^= 1
    path.write_bytes(bytes(tampered))
    with pytest.raises(storage.CorruptFile), storage.open_plaintext(batch.stored_name) as fh:
        fh.read()


def test_path_for_refuses_anything_but_generated_names():
    for bad in ("../x", "a" * 31, "A" * 32, ""):
        with pytest.raises(ValueError):
            storage.path_for(bad)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"a\nb\n", [(1, "a"), (2, "b")]),
        (b"a\r\nb", [(1, "a"), (2, "b")]),
        (b"a\rb\r", [(1, "a"), (2, "b")]),
        ("\ufeff订单|1\n".encode(), [(1, "订单|1")]),
        ("订单|1\n".encode("gbk"), [(1, "订单|1")]),
    ],
)
def test_text_lines_encodings_and_line_endings(data, expected):
    assert list(iter_text_lines(io.BufferedReader(io.BytesIO(data)))) == expected


def test_huge_line_is_not_buffered():
    data = b"a\n" + b"x" * 200_000 + b"\nb\n"
    assert list(iter_raw_lines(io.BytesIO(data))) == [(1, b"a"), (2, None), (3, b"b")]


def test_xlsx_roundtrip_helper_builds_a_valid_workbook():
    from portal.batches.uploads import check_xlsx_inflated

    check_xlsx_inflated(io.BytesIO(xlsx_bytes([("A", 1)])))
