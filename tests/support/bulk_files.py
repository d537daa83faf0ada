"""Rows and files in the published Basic Company Data format, for the bulk reader's tests.

The header is the published one (unquoted, leading spaces). Rows are built by column name from a
plain active company, so a test names only what it is about. Files are real ZIPs or CSVs on disk.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from eventlog.simulator.bulkfile import HEADER

COLUMNS = [name.strip() for name in HEADER.split(",")]
NAME = "BasicCompanyDataAsOneFile-2024-05-01"

_PLAIN = {
    "CompanyName": "ACORN ENGINEERING LTD",
    "CompanyNumber": "01234567",
    "RegAddress.AddressLine1": "UNIT 10 HEATH ROAD INDUSTRIAL ESTATE",
    "RegAddress.AddressLine2": "BANHAM",
    "RegAddress.PostTown": "NORWICH",
    "RegAddress.County": "NORFOLK",
    "RegAddress.Country": "ENGLAND",
    "RegAddress.PostCode": "NR16 2HS",
    "CompanyCategory": "Private Limited Company",
    "CompanyStatus": "Active",
    "CountryOfOrigin": "United Kingdom",
    "IncorporationDate": "03/10/2006",
    "Accounts.AccountRefDay": "30",
    "Accounts.AccountRefMonth": "9",
    "Accounts.NextDueDate": "30/06/2024",
    "Accounts.LastMadeUpDate": "30/09/2022",
    "Accounts.AccountCategory": "MICRO ENTITY",
    "Mortgages.NumMortCharges": "0",
    "Mortgages.NumMortOutstanding": "0",
    "Mortgages.NumMortPartSatisfied": "0",
    "Mortgages.NumMortSatisfied": "0",
    "SICCode.SicText_1": "62012 - Business and domestic software development",
    "LimitedPartnerships.NumGenPartners": "0",
    "LimitedPartnerships.NumLimPartners": "0",
    "ConfStmtNextDueDate": "17/10/2024",
    "ConfStmtLastMadeUpDate": "03/10/2023",
}


def fields(**by_column: str) -> list[str]:
    """55 fields of a plain active company; keyword names are column names with `.` as `__`."""
    values = dict(_PLAIN)
    values["URI"] = f"http://business.data.gov.uk/id/company/{by_column.get('CompanyNumber', '01234567')}"
    values.update({k.replace("__", "."): v for k, v in by_column.items()})
    unknown = set(values) - set(COLUMNS)
    assert not unknown, unknown
    return [values.get(c, "") for c in COLUMNS]


def line(values: list[str]) -> str:
    """One row as published: every field quoted, quotes inside doubled."""
    return '"' + '","'.join(v.replace('"', '""') for v in values) + '"'


def body(lines: list[str], *, header: str = HEADER, newline: str = "\r\n", bom: bool = False,
         final_newline: bool = True) -> str:
    text = newline.join([header, *lines]) + (newline if final_newline else "")
    return ("\ufeff" if bom else "") + text


def write_zip(folder: Path, text: str | bytes, name: str = NAME, member: str | None = None) -> Path:
    path = folder / f"{name}.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member or f"{name}.csv", text)
    return path


def write_csv(folder: Path, text: str | bytes, name: str = NAME) -> Path:
    path = folder / f"{name}.csv"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path
