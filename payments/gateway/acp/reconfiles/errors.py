"""Errors of the reconciliation-file codec.

All of them are :class:`~payments.gateway.acp.errors.ACPFormatError` (hence ``ACPError`` and ``ValueError``), so a
caller of the ACP package catches one family. Messages are English, for logs and operators, and never carry a card
number; ``code`` is a stable key the UI can map to translated text.
"""

from __future__ import annotations

from ..errors import ACPFormatError


class ReconFileError(ACPFormatError):
    """Base class of every error of ``payments.gateway.acp.reconfiles``."""


class LineError(ReconFileError):
    """One line of a ZM / ZME file cannot be read.

    Parsers *yield* these next to the records (the rest of the file is still read); ``strict=True`` raises the first.
    ``line_no`` is 1-based and counts every line of the file, blank ones included, so it matches an editor.
    """

    def __init__(self, line_no: int, message: str, *, code: str = "invalid", field: int | None = None) -> None:
        super().__init__(f"line {line_no}: {message}")
        self.line_no = line_no
        self.message = message
        self.code = code
        self.field = field

    def __repr__(self) -> str:
        return f"LineError(line_no={self.line_no}, code={self.code!r}, field={self.field}, message={self.message!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LineError):
            return NotImplemented
        return (self.line_no, self.code, self.field, self.message) == (
            other.line_no,
            other.code,
            other.field,
            other.message,
        )

    def __hash__(self) -> int:
        return hash((self.line_no, self.code, self.field, self.message))


class RecordError(ReconFileError):
    """A record cannot be written: a value does not fit its field (``index`` is the 0-based record position)."""

    def __init__(self, index: int, field: str, message: str) -> None:
        super().__init__(f"record {index}, field {field}: {message}")
        self.index = index
        self.field = field
        self.message = message


class ArchiveError(ReconFileError):
    """A reconciliation zip is truncated, corrupt, too large, or does not hold the expected members."""


class ReportError(ReconFileError):
    """An RD summary report cannot be read or written."""
