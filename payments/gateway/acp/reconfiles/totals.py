"""Totals of ZM / ZME records, and :func:`summarise`, the one-line summary of a zip or a single INN file.

Conventions: ``amount`` is the plain sum of 交易金额 in fen; ``fee`` and ``settlement`` are signed sums in fen from
the merchant's side (``D`` negative, ``C`` positive), so the official sample gives fee ``-7936`` (D 79.36 yuan) and
settlement ``1314764`` (C 13 147.64 yuan). :meth:`Summary.line` prints them as ``D7936`` / ``C1314764``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .archive import ZM, ZME, is_zip, parse_member_name, read_archive
from .errors import LineError, ReconFileError
from .layout import ZM_LINE_LENGTH, ZME_LINE_LENGTH
from .zm import ZMRecord, parse_zm
from .zme import ZMERecord, parse_zme


@dataclass(frozen=True, slots=True)
class Totals:
    """Record count and amount / fee / settlement totals in fen."""

    count: int = 0
    amount: int = 0
    fee: int = 0
    settlement: int = 0

    def __add__(self, other: Totals) -> Totals:
        return Totals(
            self.count + other.count,
            self.amount + other.amount,
            self.fee + other.fee,
            self.settlement + other.settlement,
        )


def totals(records: Iterable[ZMRecord | ZMERecord]) -> Totals:
    """Totals of ZM or ZME records (a blank ``X+n`` field counts as zero; LineErrors are skipped)."""
    count = amount = fee = settlement = 0
    for record in records:
        if isinstance(record, LineError):
            continue
        count += 1
        amount += record.amount
        fee += record.merchant_fee or 0
        settlement += record.settle_amount or 0
    return Totals(count, amount, fee, settlement)


def dc(value: int) -> str:
    """A signed fen amount as the files write its side: ``D7936`` for -7936, ``C1314764`` for 1314764."""
    return f"D{-value}" if value < 0 else f"C{value}"


@dataclass(frozen=True, slots=True)
class Summary:
    """What ``reconciliation_import --parse-only`` prints: the detail (ZM) totals, plus adjustments and errors.

    ``count``/``amount``/``fee``/``settlement`` cover the ZM detail records; ``adjustments`` the ZME records (zero
    when the input has none); ``errors`` the malformed lines (of either file), which are not counted in the totals.
    """

    count: int
    amount: int
    fee: int
    settlement: int
    adjustments: Totals = Totals()
    errors: tuple[LineError, ...] = ()

    def line(self) -> str:
        """One line, e.g. ``records=8 amount=1322700 fee=D7936 settlement=C1314764``."""
        text = f"records={self.count} amount={self.amount} fee={dc(self.fee)} settlement={dc(self.settlement)}"
        if self.adjustments.count:
            adj = self.adjustments
            text += (
                f" adjustments={adj.count} adjustment_amount={adj.amount}"
                f" adjustment_fee={dc(adj.fee)} adjustment_settlement={dc(adj.settlement)}"
            )
        if self.errors:
            text += f" errors={len(self.errors)} first_error_line={self.errors[0].line_no}"
        return text


def _collect(parsed: Iterable[object]) -> tuple[Totals, list[LineError]]:
    records, errors = [], []
    for item in parsed:
        (errors if isinstance(item, LineError) else records).append(item)
    return totals(records), errors  # type: ignore[arg-type]


def _sniff_kind(data: bytes) -> str:
    """ZM or ZME from the first non-blank line's length (607 vs 339 bytes, tolerating a longer tail)."""
    for raw in data.split(b"\n", 20)[:20]:
        raw = raw.rstrip(b"\r")
        if raw.strip():
            return ZM if len(raw) > (ZM_LINE_LENGTH + ZME_LINE_LENGTH) // 2 else ZME
    return ZM


def summarise(path_or_bytes: str | os.PathLike[str] | bytes, *, kind: str | None = None) -> Summary:
    """Parse a reconciliation zip or a single ZM / ZME file and total it (never touches a database).

    The kind of a single file comes from ``kind`` (``"zm"`` / ``"zme"``), else from its name, else from its line
    length. Raises ArchiveError for a bad zip, ReconFileError for an unreadable path; malformed lines do not raise,
    they are returned in ``errors``.
    """
    name = None
    if isinstance(path_or_bytes, bytes | bytearray | memoryview):
        data = bytes(path_or_bytes)
    else:
        path = Path(path_or_bytes)
        name = path.name
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ReconFileError(f"cannot read {name}: {exc.strerror or exc}") from None
    if is_zip(data):
        archive = read_archive(data)
        detail, errors = _collect(parse_zm(archive.zm.data)) if archive.zm else (Totals(), [])
        adjust, adjust_errors = _collect(parse_zme(archive.zme.data)) if archive.zme else (Totals(), [])
        errors += adjust_errors
    else:
        if kind is None and name is not None:
            named = parse_member_name(name)
            kind = named.kind if named is not None and named.kind in (ZM, ZME) else None
        if kind is None:
            kind = _sniff_kind(data)
        if kind not in (ZM, ZME):
            raise ReconFileError(f"unknown reconciliation file kind {kind!r}")
        if kind == ZM:
            detail, errors = _collect(parse_zm(data))
            adjust = Totals()
        else:
            detail = Totals()
            adjust, errors = _collect(parse_zme(data))
    return Summary(detail.count, detail.amount, detail.fee, detail.settlement, adjust, tuple(errors))
