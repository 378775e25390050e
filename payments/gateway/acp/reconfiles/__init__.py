"""Reconciliation files of the ACP protocol (formats.md §6): the ZM / ZME / RD codec and the zip around them.

Pure code shared by the sandbox (which serves upstream files) and ``reconciliation`` (which writes ours and reads
theirs): bytes in, dataclasses out, and back. No ORM, no settings.

* :func:`parse_zm` / :func:`write_zm`, :func:`parse_zme` / :func:`write_zme`: fixed-width GBK records; parsers yield
  records and :class:`LineError` values (with line numbers) so one bad line never loses the rest of the file.
* :func:`parse_rd` / :func:`write_rd` / :func:`build_rd`: the 汇总表 summary report.
* :func:`read_archive` / :func:`write_archive` / :func:`build_zip`: the ``{merId}_{YYYYMMDD}.zip`` (deterministic).
* :func:`totals` and :func:`summarise`: count, amount, fee and settlement totals in fen.
"""

from .archive import (
    Member,
    MemberName,
    ReconArchive,
    build_zip,
    is_zip,
    parse_member_name,
    parse_zip_name,
    rd_name,
    read_archive,
    write_archive,
    zip_name,
    zm_name,
    zme_name,
)
from .errors import ArchiveError, LineError, ReconFileError, RecordError, ReportError
from .layout import ZM_FIELDS, ZM_LINE_LENGTH, ZME_FIELDS, ZME_LINE_LENGTH, Field, Kind
from .rd import RDReport, RDRow, build_rd, parse_rd, write_rd
from .totals import Summary, Totals, dc, summarise, totals
from .zm import ZMRecord, iter_zm_lines, parse_zm, write_zm
from .zme import ZMERecord, iter_zme_lines, parse_zme, write_zme

__all__ = [
    "ZME_FIELDS",
    "ZME_LINE_LENGTH",
    "ZM_FIELDS",
    "ZM_LINE_LENGTH",
    "ArchiveError",
    "Field",
    "Kind",
    "LineError",
    "Member",
    "MemberName",
    "RDReport",
    "RDRow",
    "ReconArchive",
    "ReconFileError",
    "RecordError",
    "ReportError",
    "Summary",
    "Totals",
    "ZMERecord",
    "ZMRecord",
    "build_rd",
    "build_zip",
    "dc",
    "is_zip",
    "iter_zm_lines",
    "iter_zme_lines",
    "parse_member_name",
    "parse_rd",
    "parse_zip_name",
    "parse_zm",
    "parse_zme",
    "rd_name",
    "read_archive",
    "summarise",
    "totals",
    "write_archive",
    "write_rd",
    "write_zm",
    "write_zme",
    "zip_name",
    "zm_name",
    "zme_name",
]
