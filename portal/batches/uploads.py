"""Checks on an uploaded file before anything is stored: name, size, type by content, zip bomb.

Pure functions over file objects; no ORM. Each refusal raises ``FileRejected(code, params)``.
"""

from __future__ import annotations

import os
import unicodedata
import zipfile
from typing import IO

from django.conf import settings

from .registry import FileRejected

TEXT_EXTENSIONS = {".txt", ".csv"}
XLSX_EXTENSIONS = {".xlsx"}
MACRO_EXTENSIONS = {".xlsm", ".xltm", ".xlam", ".xlsb"}
NAME_MAX = 100
SNIFF_BYTES = 64 * 1024
# Magic numbers of formats that are never a text file.
_BINARY_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"\xd0\xcf\x11\xe0", b"%PDF", b"\x7fELF", b"MZ", b"\x1f\x8b", b"Rar!")


def sanitise_name(name: str) -> str:
    """A display-only file name: no directory part, no control or bidi-override characters,
    at most ``NAME_MAX`` characters keeping the extension. Never used as a path."""
    name = (name or "").replace("\\", "/").split("/")[-1]
    name = unicodedata.normalize("NFC", name)
    # Cc: control (NUL, CR, LF…), Cf: format (RTL/LTR overrides, zero-width), Cs/Co/Cn: surrogates etc.
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C" and ch not in '"')
    name = name.strip(" .")
    if len(name) > NAME_MAX:
        stem, ext = os.path.splitext(name)
        ext = ext[:10]
        name = stem[: NAME_MAX - len(ext)] + ext
    return name or "upload"


def extension_of(name: str) -> str:
    return os.path.splitext(name)[1].lower()


def detect_format(name: str, fh: IO[bytes]) -> str:
    """``text`` or ``xlsx`` from the extension (allowlist) AND the content; anything else refused."""
    ext = extension_of(name)
    fh.seek(0)
    head = fh.read(SNIFF_BYTES)
    fh.seek(0)
    if ext in MACRO_EXTENSIONS:
        raise FileRejected("xlsx_macro")
    if ext in XLSX_EXTENSIONS:
        if not head.startswith(b"PK\x03\x04"):
            raise FileRejected("xlsx_not_ooxml")
        check_xlsx(fh)
        return "xlsx"
    if ext in TEXT_EXTENSIONS:
        if not head:
            raise FileRejected("file_empty")
        if head.startswith(_BINARY_MAGIC) or b"\x00" in head:
            raise FileRejected("file_type")
        return "text"
    raise FileRejected("file_type")


def _limits() -> tuple[int, int, int]:
    return (
        settings.BATCH_XLSX_MAX_UNCOMPRESSED,
        settings.BATCH_XLSX_MAX_MEMBERS,
        settings.BATCH_XLSX_MAX_RATIO,
    )


def _too_large() -> FileRejected:
    return FileRejected("xlsx_too_large", {"limit_mb": settings.BATCH_XLSX_MAX_UNCOMPRESSED // (1024 * 1024)})


def check_xlsx(fh: IO[bytes]) -> None:
    """Refuse a workbook that is not OOXML, holds macros, or would unpack too far, reading only
    the zip's central directory (no member is inflated here): member count, the sum of declared
    uncompressed sizes and each member's compression ratio."""
    max_total, max_members, max_ratio = _limits()
    fh.seek(0)
    try:
        with zipfile.ZipFile(fh) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise FileRejected("xlsx_not_ooxml") from exc
    finally:
        fh.seek(0)
    if len(infos) > max_members:
        raise _too_large()
    total = 0
    names = set()
    for info in infos:
        total += info.file_size
        names.add(info.filename)
        if info.file_size > 1024 * 1024 and info.file_size > max_ratio * max(info.compress_size, 1):
            raise _too_large()
        if info.filename.lower().endswith("vbaproject.bin"):
            raise FileRejected("xlsx_macro")
        if info.flag_bits & 0x1:
            raise FileRejected("xlsx_not_ooxml")  # encrypted member
    if total > max_total:
        raise _too_large()
    if "[Content_Types].xml" not in names or "xl/workbook.xml" not in names:
        raise FileRejected("xlsx_not_ooxml")


def check_xlsx_inflated(fh: IO[bytes]) -> None:
    """Inflate every member in small steps, counting the bytes really produced (declared sizes can
    lie), and stop as soon as the total passes the limit. Run before any XML parser opens it."""
    max_total, _members, _ratio = _limits()
    check_xlsx(fh)
    total = 0
    try:
        with zipfile.ZipFile(fh) as zf:
            for info in zf.infolist():
                with zf.open(info) as member:
                    while block := member.read(256 * 1024):
                        total += len(block)
                        if total > max_total:
                            raise _too_large()
    except FileRejected:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise FileRejected("xlsx_not_ooxml") from exc
    finally:
        fh.seek(0)
