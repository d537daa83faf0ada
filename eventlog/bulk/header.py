"""The header line of a Basic Company Data CSV: its quirks, and where each column is.

As published, the header is unquoted and some names carry a leading space (`CompanyName,
CompanyNumber,…, RegAddress.AddressLine2,…`); a file saved by a spreadsheet may add a UTF-8 BOM
or quotes. Names are trimmed and located by name, so a reordered or widened file still reads.
A header without the columns we read is refused with one line saying which are missing.
"""

from __future__ import annotations

import csv

import msgspec

from eventlog.errors import BulkFileError

__all__ = ["COLUMNS", "Columns", "read_header"]

# The 55 columns as published, trimmed, in order.
COLUMNS: tuple[str, ...] = (
    "CompanyName", "CompanyNumber", "RegAddress.CareOf", "RegAddress.POBox", "RegAddress.AddressLine1",
    "RegAddress.AddressLine2", "RegAddress.PostTown", "RegAddress.County", "RegAddress.Country",
    "RegAddress.PostCode", "CompanyCategory", "CompanyStatus", "CountryOfOrigin", "DissolutionDate",
    "IncorporationDate", "Accounts.AccountRefDay", "Accounts.AccountRefMonth", "Accounts.NextDueDate",
    "Accounts.LastMadeUpDate", "Accounts.AccountCategory", "Returns.NextDueDate", "Returns.LastMadeUpDate",
    "Mortgages.NumMortCharges", "Mortgages.NumMortOutstanding", "Mortgages.NumMortPartSatisfied",
    "Mortgages.NumMortSatisfied", "SICCode.SicText_1", "SICCode.SicText_2", "SICCode.SicText_3",
    "SICCode.SicText_4", "LimitedPartnerships.NumGenPartners", "LimitedPartnerships.NumLimPartners", "URI",
    *(f"PreviousName_{i}.{part}" for i in range(1, 11) for part in ("CONDATE", "CompanyName")),
    "ConfStmtNextDueDate", "ConfStmtLastMadeUpDate",
)

# What the reader needs; anything else may be missing (older files had no ConfStmt columns).
_REQUIRED = ("CompanyName", "CompanyNumber", "CompanyCategory", "CompanyStatus", "IncorporationDate")
_BOM = b"\xef\xbb\xbf"


class Columns(msgspec.Struct, frozen=True):
    """Column positions by trimmed name, and how many columns a row must have."""

    names: tuple[str, ...]
    index: dict[str, int]

    @property
    def count(self) -> int:
        return len(self.names)

    def at(self, name: str) -> int | None:
        return self.index.get(name)


def read_header(raw: bytes, source: str) -> Columns:
    """Parse the header line (bytes, line ending included or not) of `source` (for messages)."""
    if raw.startswith(_BOM):
        raw = raw[len(_BOM):]
    try:
        text = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise BulkFileError(f"{source}: the first line is not UTF-8 text, so this is not a Basic Company "
                            "Data CSV") from None
    try:
        names = tuple(name.strip() for name in next(csv.reader([text]), []))
    except csv.Error as exc:
        raise BulkFileError(f"{source}: the header line can't be read as CSV ({exc})") from None
    index: dict[str, int] = {}
    for position, name in enumerate(names):
        index.setdefault(name, position)
    missing = [name for name in _REQUIRED if name not in index]
    if missing:
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise BulkFileError(f"{source}: not a Basic Company Data header (no {', '.join(missing)}); "
                            f"it starts {shown!r}")
    return Columns(names=names, index=index)
