"""A bulk row as a company profile: the shape the REST API and the stream give the same company.

`BulkCompany` carries the REST profile's field names (`company_number`, `company_status`,
`company_status_detail`, `type`, `registered_office_address`, `sic_codes`, …), so its JSON is read
by `projections.payloads.decode_profile` like any other profile. Absent values are omitted, as
the API omits them. Two fields are the file's own: `status_word` and `category_word`, the raw
words, kept so that a word we could not translate is recorded rather than lost.

`RowParser` turns the fields of one CSV record into a `BulkCompany`, or into the reason the
record is refused. It never raises on data: dates that are not DD/MM/YYYY become None and are
counted by the caller through `RowParser.odd_values`.
"""

from __future__ import annotations

import re

import msgspec

from eventlog.ledger.entries import normalise_company_number

from eventlog.bulk.header import Columns
from eventlog.bulk.vocabulary import CATEGORY_WORDS, account_type_of, category_of, status_of

__all__ = [
    "Address",
    "AccountingReferenceDate",
    "LastAccounts",
    "Accounts",
    "ConfirmationStatement",
    "PreviousName",
    "BulkCompany",
    "RowParser",
    "normalise_number",
    "jurisdiction_of",
]


class _Shape(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Frozen, keyword-only, absent values omitted: the API leaves out what it has no value for."""


class Address(_Shape, kw_only=False):
    """`registered_office_address` with the API's keys (RegAddress.PostTown is `locality`)."""

    address_line_1: str | None = None
    address_line_2: str | None = None
    care_of: str | None = None
    country: str | None = None
    locality: str | None = None
    po_box: str | None = None
    postal_code: str | None = None
    region: str | None = None


class AccountingReferenceDate(_Shape):
    day: str
    month: str


class LastAccounts(_Shape):
    made_up_to: str | None = None
    type: str | None = None


class Accounts(_Shape):
    accounting_reference_date: AccountingReferenceDate | None = None
    last_accounts: LastAccounts | None = None
    next_due: str | None = None


class ConfirmationStatement(_Shape):
    last_made_up_to: str | None = None
    next_due: str | None = None


class PreviousName(_Shape):
    """One of PreviousName_1..10: the name, and the day it stopped being the name (CONDATE)."""

    name: str
    ceased_on: str | None = None


class BulkCompany(_Shape):
    """One row of the snapshot as a company profile (the REST API's field names and values)."""

    company_number: str
    company_name: str
    company_status: str | None = None
    company_status_detail: str | None = None
    type: str | None = None
    jurisdiction: str | None = None
    date_of_creation: str | None = None
    date_of_cessation: str | None = None
    country_of_origin: str | None = None
    registered_office_address: Address | None = None
    sic_codes: tuple[str, ...] = ()
    accounts: Accounts | None = None
    confirmation_statement: ConfirmationStatement | None = None
    previous_company_names: tuple[PreviousName, ...] = ()
    status_word: str = ""
    category_word: str = ""


# Jurisdiction is not a column; the number's prefix says it for these (companies, LLPs and
# limited partnerships of each of the three registers). Other prefixes (FC, SE, IP, RC, …)
# don't say it unambiguously, so they get None rather than a guess.
_JURISDICTION_BY_PREFIX = {
    "SC": "scotland", "SO": "scotland", "SL": "scotland",
    "NI": "northern-ireland", "NC": "northern-ireland", "NL": "northern-ireland",
    "OC": "england-wales", "LP": "england-wales",
}
_PREFIXED = re.compile(r"([A-Z]{2})(\d{1,6})")
_WELL_FORMED = re.compile(r"[A-Z0-9]{8}")


def normalise_number(raw: str) -> str | None:
    """A company number as the API writes it (8 characters), or None if it can't be one.

    Digits only are zero-padded (`5954546` → `05954546`, as everywhere in chledger); a two-letter
    prefix keeps six digits (`SC12345` → `SC012345`).
    """
    number = normalise_company_number(raw) or ""
    match = _PREFIXED.fullmatch(number)
    if match:
        number = match[1] + match[2].zfill(6)
    return number if _WELL_FORMED.fullmatch(number) else None


def jurisdiction_of(number: str) -> str | None:
    if number.isdigit():
        return "england-wales"
    return _JURISDICTION_BY_PREFIX.get(number[:2])


def _iso_date(text: str) -> str | None:
    """DD/MM/YYYY → YYYY-MM-DD; None when the text is not a plausible date of that form."""
    if len(text) != 10 or text[2] != "/" or text[5] != "/":
        return None
    day, month, year = text[:2], text[3:5], text[6:]
    if not (day.isdigit() and month.isdigit() and year.isdigit() and day.isascii() and month.isascii()
            and year.isascii()):
        return None
    d, m = int(day), int(month)
    if not (1 <= m <= 12 and 1 <= d <= _DAYS_IN_MONTH[m]):
        return None
    if m == 2 and d == 29:
        y = int(year)
        if y % 4 or (y % 100 == 0 and y % 400):
            return None
    return f"{year}-{month}-{day}"


_DAYS_IN_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_SIC = re.compile(r"\s*(\d{4,5})\b")


def _sic_code(text: str) -> str | None:
    """`62012 - Business and domestic software development` → `62012`; a text with no code → None."""
    match = _SIC.match(text)
    return match[1] if match and match[1].isascii() else None


class _Memo(dict):
    """A bounded memo for the few thousand distinct dates, SIC texts and words a file repeats."""

    def __init__(self, compute, preset: dict | None = None, limit: int = 100_000) -> None:
        super().__init__(preset or {})
        self.compute = compute
        self.preset = dict(preset or {})
        self.limit = limit

    def __missing__(self, key: str):
        if len(self) >= self.limit:
            self.clear()
            self.update(self.preset)
        value = self[key] = self.compute(key)
        return value


def _reference_date(text: str) -> AccountingReferenceDate | None:
    day, _, month = text.partition("/")
    day, month = day.strip(), month.strip()
    if not (day.isdigit() and month.isdigit() and day.isascii() and month.isascii()):
        return None
    if not (1 <= int(day) <= 31 and 1 <= int(month) <= 12):
        return None
    return AccountingReferenceDate(day=str(int(day)), month=f"{int(month):02d}")


_DATE_COLUMNS = ("IncorporationDate", "DissolutionDate", "Accounts.NextDueDate", "Accounts.LastMadeUpDate",
                 "ConfStmtNextDueDate", "ConfStmtLastMadeUpDate")
_ADDRESS_COLUMNS = ("RegAddress.AddressLine1", "RegAddress.AddressLine2", "RegAddress.CareOf",
                    "RegAddress.Country", "RegAddress.PostTown", "RegAddress.POBox", "RegAddress.PostCode",
                    "RegAddress.County")  # in the order of Address's fields
_NO_SIC = "None Supplied"


class RowParser:
    """Fields of one record → `BulkCompany`, or a reason string when the record is refused.

    Reasons are short and stable (they are counted by reason): the caller adds file and line.
    Written for speed (every row of an `all` import goes through it): column positions are
    resolved once, a column the file lacks points at an empty field appended to each row, and
    dates, SIC texts and words go through memos, since a file repeats a few thousand of each.
    """

    def __init__(self, columns: Columns) -> None:
        self.columns = columns
        self.count = columns.count

        def at(name: str) -> int:
            found = columns.at(name)
            return self.count if found is None else found  # the appended empty field

        self._number, self._name = at("CompanyNumber"), at("CompanyName")
        self._status, self._category = at("CompanyStatus"), at("CompanyCategory")
        self._origin = at("CountryOfOrigin")
        self._dates_at = [at(c) for c in _DATE_COLUMNS]
        self._address_at = [at(c) for c in _ADDRESS_COLUMNS]
        self._sic_at = [at(f"SICCode.SicText_{n}") for n in range(1, 5)]
        self._ref_at = (at("Accounts.AccountRefDay"), at("Accounts.AccountRefMonth"))
        self._acc_category = at("Accounts.AccountCategory")
        self._previous = [(at(f"PreviousName_{n}.CompanyName"), at(f"PreviousName_{n}.CONDATE"))
                          for n in range(1, 11)]
        # memos: "" is no value (not an odd one); None is a value present but unreadable
        self._dates = _Memo(_iso_date, {"": ""})
        self._sics = _Memo(_sic_code, {"": "", _NO_SIC: ""})
        self._refs = _Memo(_reference_date)
        self._account_types = _Memo(account_type_of, {"": None})
        self.odd_values = 0  # dates or SIC texts present but unreadable, recorded as absent

    def parse(self, fields: list[str]) -> BulkCompany | str:
        if len(fields) != self.count:
            return f"{len(fields)} columns, expected {self.count}"
        fields.append("")  # what a column this file lacks reads as
        number = fields[self._number]
        if not (len(number) == 8 and number.isascii() and number.isalnum()
                and (number.isdigit() or number.isupper())):
            number = normalise_number(number)
            if number is None:
                return "not a company number"
        status_word = fields[self._status]
        status, detail, _ = status_of(status_word)
        category_word = fields[self._category]
        kind = CATEGORY_WORDS.get(category_word) if category_word in CATEGORY_WORDS else category_of(category_word)[0]

        dates = self._dates
        created, ceased, acc_next, acc_last, cs_next, cs_last = day = [dates[fields[i]] for i in self._dates_at]
        sics = self._sics
        codes = [sics[fields[i]] for i in self._sic_at]
        if None in day or None in codes:
            self.odd_values += day.count(None) + codes.count(None)

        address = [fields[i].strip() for i in self._address_at]
        ref = self._refs[f"{fields[self._ref_at[0]]}/{fields[self._ref_at[1]]}"]
        acc_type = self._account_types[fields[self._acc_category]]
        last = LastAccounts(made_up_to=acc_last or None, type=acc_type) if acc_last or acc_type else None
        previous: tuple[PreviousName, ...] = ()
        if fields[self._previous[0][0]]:
            previous = tuple(PreviousName(name=fields[n].strip(), ceased_on=dates[fields[d]] or None)
                             for n, d in self._previous if fields[n].strip())
        origin = fields[self._origin].strip()
        return BulkCompany(
            company_number=number,
            company_name=fields[self._name].strip(),
            company_status=status,
            company_status_detail=detail,
            type=kind,
            jurisdiction=jurisdiction_of(number),
            date_of_creation=created or None,
            date_of_cessation=ceased or None,
            country_of_origin=origin or None,
            registered_office_address=Address(*[a or None for a in address]) if any(address) else None,
            sic_codes=tuple(c for c in codes if c),
            accounts=(Accounts(accounting_reference_date=ref, last_accounts=last, next_due=acc_next or None)
                      if ref or last or acc_next else None),
            confirmation_statement=(ConfirmationStatement(last_made_up_to=cs_last or None, next_due=cs_next or None)
                                    if cs_next or cs_last else None),
            previous_company_names=previous,
            status_word=status_word,
            category_word=category_word,
        )
