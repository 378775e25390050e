"""The reconciliation zip: member names, deterministic writing, and refusing damaged or hostile archives."""

import hashlib
import io
import struct
import zipfile
from datetime import date

import pytest

from payments.gateway.acp.reconfiles import (
    ArchiveError,
    MemberName,
    ZMRecord,
    build_zip,
    parse_member_name,
    parse_zip_name,
    parse_zm,
    rd_name,
    read_archive,
    write_archive,
    write_zm,
    zip_name,
    zm_name,
    zme_name,
)

DAY = date(2015, 9, 5)
MER = "802310048993424"
ZM_BYTES = write_zm([ZMRecord(txn_code="S22", amount=n, mer_id=MER, order_id=str(n)) for n in range(1, 40)])


def plain_zip(members, compression=zipfile.ZIP_DEFLATED):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def test_names_follow_the_network():
    assert zip_name(DAY, MER) == "802310048993424_20150905.zip"
    assert zm_name(DAY, MER) == "INN15090588ZM_802310048993424"
    assert zme_name(DAY, MER) == "INN15090588ZME_802310048993424"
    assert rd_name(DAY, MER) == "RD201015090501_802310048993424"


def test_member_names_parse_back():
    assert parse_member_name("INN15090588ZM_802310048993424") == MemberName("zm", DAY, MER)
    assert parse_member_name("some/dir/INN15090588ZME_802310048993424") == MemberName("zme", DAY, MER)
    assert parse_member_name("RD201015090501_802310048993424") == MemberName("rd", DAY, MER)
    assert parse_member_name("INN15130588ZM_802310048993424") is None  # month 13
    assert parse_member_name("readme.txt") is None
    assert parse_zip_name("/tmp/802310048993424_20150905.zip") == (MER, DAY)
    assert parse_zip_name("802310048993424_20151305.zip") is None


def test_build_zip_is_deterministic_and_reads_back():
    name, first = build_zip(mer_id=MER, settle_date=DAY, zm=ZM_BYTES, zme=b"", rd=b"report\r\n")
    _, second = build_zip(mer_id=MER, settle_date=DAY, zm=ZM_BYTES, zme=b"", rd=b"report\r\n")

    assert name == "802310048993424_20150905.zip"
    assert hashlib.sha256(first).hexdigest() == hashlib.sha256(second).hexdigest()
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == [zm_name(DAY, MER), zme_name(DAY, MER), rd_name(DAY, MER)]
    assert {(i.date_time, i.external_attr >> 16, i.compress_type) for i in infos} == {
        ((1980, 1, 1, 0, 0, 0), 0o100644, zipfile.ZIP_DEFLATED)
    }
    read = read_archive(first)
    assert (read.zm.data, read.zme.data, read.rd.data) == (ZM_BYTES, b"", b"report\r\n")
    assert len(list(parse_zm(read.zm.data))) == 39


def test_different_content_gives_different_bytes():
    _, one = build_zip(mer_id=MER, settle_date=DAY, zm=ZM_BYTES)
    _, other = build_zip(mer_id=MER, settle_date=DAY, zm=ZM_BYTES + ZM_BYTES[:609])

    assert one != other


def test_write_archive_refuses_duplicate_or_path_names():
    with pytest.raises(ArchiveError):
        write_archive([("a", b""), ("a", b"")])
    with pytest.raises(ArchiveError):
        write_archive([("../a", b"")])


@pytest.mark.parametrize("cut", [1, 10, 30, 100, 200, -22, -1])
def test_truncated_zip_is_a_clear_error(cut):
    _, data = build_zip(mer_id=MER, settle_date=DAY, zm=ZM_BYTES)

    with pytest.raises(ArchiveError) as raised:
        read_archive(data[:cut] if cut > 0 else data[:cut])

    assert "truncated or corrupt" in str(raised.value) or str(raised.value) == "not a zip file"


def test_truncated_zip_message():
    _, data = build_zip(mer_id=MER, settle_date=DAY, zm=ZM_BYTES)

    with pytest.raises(ArchiveError, match=r"^the zip file is truncated or corrupt \(no readable central directory\)$"):
        read_archive(data[: len(data) // 2])


def test_corrupt_member_data_is_a_clear_error():
    data = bytearray(plain_zip([(zm_name(DAY, MER), ZM_BYTES)]))
    data[60] ^= 0xFF  # inside the compressed data of the only member

    with pytest.raises(ArchiveError, match="INN15090588ZM_802310048993424"):
        read_archive(bytes(data))


def test_not_a_zip_and_empty():
    with pytest.raises(ArchiveError, match="^not a zip file$"):
        read_archive(ZM_BYTES)
    with pytest.raises(ArchiveError, match="^the zip file is empty$"):
        read_archive(b"")


def test_a_zip_bomb_is_refused_by_the_size_limit():
    bomb = plain_zip([(zm_name(DAY, MER), b" " * (20 * 1024 * 1024))])

    assert len(bomb) < 100_000
    with pytest.raises(ArchiveError, match="larger than 1048576 bytes"):
        read_archive(bomb, max_member_size=1024 * 1024)


def test_a_member_that_lies_about_its_size_is_refused():
    honest = plain_zip([(zm_name(DAY, MER), ZM_BYTES)])
    # declare a much smaller uncompressed size in both the local header and the central directory
    lying = bytearray(honest)
    struct.pack_into("<I", lying, 22, 100)
    central = honest.rindex(b"PK\x01\x02")
    struct.pack_into("<I", lying, central + 24, 100)

    with pytest.raises(ArchiveError):
        read_archive(bytes(lying))


def test_too_many_members_and_total_size():
    many = plain_zip([(f"f{n}", b"") for n in range(40)])
    with pytest.raises(ArchiveError, match="holds 40 members"):
        read_archive(many)
    two = plain_zip([(zm_name(DAY, MER), ZM_BYTES), (zme_name(DAY, MER), ZM_BYTES)])
    with pytest.raises(ArchiveError, match="inflates beyond"):
        read_archive(two, max_total_size=len(ZM_BYTES) + 10)


def test_two_detail_files_or_none_are_refused():
    with pytest.raises(ArchiveError, match="two ZM files"):
        read_archive(plain_zip([(zm_name(DAY, MER), b""), ("x/" + zm_name(DAY, MER), b"")]))
    with pytest.raises(ArchiveError, match="no ZM or ZME"):
        read_archive(plain_zip([("readme.txt", b"hello")]))


def test_other_members_are_listed_not_read():
    read = read_archive(plain_zip([("readme.txt", b"hello"), (zm_name(DAY, MER), ZM_BYTES)]))

    assert read.ignored == ("readme.txt",)
    assert read.zm.data == ZM_BYTES and read.rd is None


def test_encrypted_member_is_refused():
    data = bytearray(plain_zip([(zm_name(DAY, MER), ZM_BYTES)], compression=zipfile.ZIP_STORED))
    central = bytes(data).rindex(b"PK\x01\x02")
    data[6] |= 1  # general purpose flag bit 0 (encrypted) in the local header
    data[central + 8] |= 1  # and in the central directory

    with pytest.raises(ArchiveError, match="encrypted"):
        read_archive(bytes(data))
