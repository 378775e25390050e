"""The reconciliation zip ``{merId}_{YYYYMMDD}.zip`` and its member names (formats.md §6.3).

Reading picks the ZM, ZME and RD members by name pattern and guards against damaged or hostile archives (truncated,
corrupt, encrypted, too many members, members larger than a limit or than they claim). Writing is deterministic: the
same members give the same bytes (fixed timestamp, permissions, member order and compression level).
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from .errors import ArchiveError

ZM, ZME, RD = "zm", "zme", "rd"

#: Default limits: a merchant day of a million transactions is a ~610 MB ZM member.
MAX_MEMBER_SIZE = 1024 * 1024 * 1024
MAX_TOTAL_SIZE = 1536 * 1024 * 1024
MAX_MEMBERS = 32
#: Timestamp of every member we write (the earliest a zip can hold), so a file depends on its content only.
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
_COMPRESS_LEVEL = 6
_CHUNK = 1024 * 1024

_ID = r"(?P<mer_id>[0-9A-Za-z]{1,32})"
_NAME_PATTERNS = (
    (ZME, re.compile(r"^INN(?P<date>\d{6})\d{2}ZME_" + _ID + "$")),
    (ZM, re.compile(r"^INN(?P<date>\d{6})\d{2}ZM_" + _ID + "$")),
    (RD, re.compile(r"^RD\d{4}(?P<date>\d{6})\d{2}_" + _ID + "$")),
)
_ZIP_NAME = re.compile(r"^" + _ID + r"_(?P<date>\d{8})\.zip$")
_DAMAGED = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    struct.error,
    NotImplementedError,  # multi-disk archives, unknown compression methods
    RuntimeError,
)


@dataclass(frozen=True, slots=True)
class MemberName:
    """What a member's name says: its kind (``zm``, ``zme`` or ``rd``), settlement date and merchant."""

    kind: str
    settle_date: date
    mer_id: str


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    kind: str
    settle_date: date
    mer_id: str
    data: bytes


@dataclass(frozen=True, slots=True)
class ReconArchive:
    """The members of a reconciliation zip by kind; ``ignored`` lists other members' names."""

    zm: Member | None
    zme: Member | None
    rd: Member | None
    ignored: tuple[str, ...] = ()


def _yymmdd(value: date) -> str:
    return f"{value:%y%m%d}"


def zm_name(settle_date: date, mer_id: str) -> str:
    """``INN{YYMMDD}88ZM_{merId}``."""
    return f"INN{_yymmdd(settle_date)}88ZM_{mer_id}"


def zme_name(settle_date: date, mer_id: str) -> str:
    """``INN{YYMMDD}88ZME_{merId}``."""
    return f"INN{_yymmdd(settle_date)}88ZME_{mer_id}"


def rd_name(settle_date: date, mer_id: str) -> str:
    """``RD2010{YYMMDD}01_{merId}`` (the ``2010`` and ``01`` are constant in the official sample)."""
    return f"RD2010{_yymmdd(settle_date)}01_{mer_id}"


def zip_name(settle_date: date, mer_id: str) -> str:
    """``{merId}_{YYYYMMDD}.zip``."""
    return f"{mer_id}_{settle_date:%Y%m%d}.zip"


def parse_member_name(name: str) -> MemberName | None:
    """The kind, date and merchant a file name stands for, or None when it is not a ZM / ZME / RD name.

    Only the last path component counts, so ``dir/INN…`` and a saved single file are recognised alike.
    """
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    for kind, pattern in _NAME_PATTERNS:
        match = pattern.match(base)
        if match:
            raw = match.group("date")
            try:
                settle = date(2000 + int(raw[:2]), int(raw[2:4]), int(raw[4:6]))
            except ValueError:
                return None
            return MemberName(kind, settle, match.group("mer_id"))
    return None


def parse_zip_name(name: str) -> tuple[str, date] | None:
    """``(merId, settlement date)`` from ``{merId}_{YYYYMMDD}.zip``, or None."""
    match = _ZIP_NAME.match(name.replace("\\", "/").rsplit("/", 1)[-1])
    if not match:
        return None
    raw = match.group("date")
    try:
        return match.group("mer_id"), date(int(raw[:4]), int(raw[4:6]), int(raw[6:8]))
    except ValueError:
        return None


def is_zip(data: bytes) -> bool:
    """True when the bytes start like a zip archive (local file header or empty-archive signature)."""
    return data[:4] in (b"PK\x03\x04", b"PK\x05\x06")


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """Read a member in chunks, refusing more bytes than it declares or than ``limit``."""
    allowed = min(info.file_size, limit)
    out = bytearray()
    with archive.open(info) as stream:
        while True:
            chunk = stream.read(_CHUNK)
            if not chunk:
                break
            out += chunk
            if len(out) > allowed:
                raise ArchiveError(f"zip member {info.filename!r} inflates beyond its declared or allowed size")
    if len(out) != info.file_size:
        raise ArchiveError(f"zip member {info.filename!r} is shorter than declared")
    return bytes(out)


def read_archive(
    data: bytes,
    *,
    max_member_size: int = MAX_MEMBER_SIZE,
    max_total_size: int = MAX_TOTAL_SIZE,
    max_members: int = MAX_MEMBERS,
) -> ReconArchive:
    """Open a reconciliation zip and return its ZM, ZME and RD members (raises ArchiveError with a clear reason).

    At least one of ZM / ZME must be present; two members of the same kind are refused. Other members are listed in
    ``ignored`` and never inflated.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ArchiveError("a zip must be given as bytes")
    data = bytes(data)
    if not data:
        raise ArchiveError("the zip file is empty")
    if not is_zip(data):
        raise ArchiveError("not a zip file")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except _DAMAGED:
        raise ArchiveError("the zip file is truncated or corrupt (no readable central directory)") from None
    with archive:
        try:
            infos = archive.infolist()
        except _DAMAGED:
            raise ArchiveError("the zip file is truncated or corrupt") from None
        if len(infos) > max_members:
            raise ArchiveError(f"the zip holds {len(infos)} members, at most {max_members} are accepted")
        found: dict[str, Member] = {}
        ignored: list[str] = []
        total = 0
        for info in infos:
            named = None if info.is_dir() else parse_member_name(info.filename)
            if named is None:
                ignored.append(info.filename)
                continue
            if named.kind in found:
                raise ArchiveError(f"the zip holds two {named.kind.upper()} files")
            if info.flag_bits & 0x1:
                raise ArchiveError(f"zip member {info.filename!r} is encrypted")
            if info.file_size > max_member_size:
                raise ArchiveError(f"zip member {info.filename!r} is larger than {max_member_size} bytes")
            total += info.file_size
            if total > max_total_size:
                raise ArchiveError(f"the zip inflates beyond {max_total_size} bytes")
            try:
                content = _read_member(archive, info, max_member_size)
            except ArchiveError:
                raise
            except _DAMAGED:
                raise ArchiveError(f"zip member {info.filename!r} is truncated or corrupt") from None
            found[named.kind] = Member(info.filename, named.kind, named.settle_date, named.mer_id, content)
    if ZM not in found and ZME not in found:
        raise ArchiveError("the zip holds no ZM or ZME reconciliation file")
    return ReconArchive(found.get(ZM), found.get(ZME), found.get(RD), tuple(ignored))


def write_archive(members: Iterable[tuple[str, bytes]], *, date_time: tuple[int, ...] = FIXED_DATE_TIME) -> bytes:
    """A deterministic zip of ``(name, data)`` members in the given order (DEFLATE, fixed time, mode 0644)."""
    buffer = io.BytesIO()
    seen: set[str] = set()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=_COMPRESS_LEVEL) as archive:
        for name, content in members:
            if not name or name in seen or "/" in name or "\\" in name:
                raise ArchiveError(f"bad or duplicate zip member name {name!r}")
            seen.add(name)
            info = zipfile.ZipInfo(name, date_time=date_time)  # type: ignore[arg-type]
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so the mode below is meaningful
            info.external_attr = 0o100644 << 16
            archive.writestr(info, bytes(content), compresslevel=_COMPRESS_LEVEL)
    return buffer.getvalue()


def build_zip(
    *, mer_id: str, settle_date: date, zm: bytes, zme: bytes | None = None, rd: bytes | None = None
) -> tuple[str, bytes]:
    """``(zip name, zip bytes)`` of a merchant day: members ZM, then ZME and RD when given (the network's order)."""
    members = [(zm_name(settle_date, mer_id), zm)]
    if zme is not None:
        members.append((zme_name(settle_date, mer_id), zme))
    if rd is not None:
        members.append((rd_name(settle_date, mer_id), rd))
    return zip_name(settle_date, mer_id), write_archive(members)
