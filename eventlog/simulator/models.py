"""Wire shapes of the simulated Companies House, as msgspec structs.

Fields are declared in alphabetical order (keyword-only, so optional ones can sit anywhere)
because that is how the real service orders its JSON (as events captured from the real stream
show), except the stream envelope and ``event``, whose order is the captured one, and the officer
list, whose order is the real service's builder's. Optional fields default to None and are
omitted, exactly as the real API leaves out keys it has no value for (the stream strips nulls
since early 2025; ``SimulatorConfig.null_fields`` brings the older explicit nulls back, see
encoding.py).
"""

from __future__ import annotations

import msgspec

__all__ = [
    "Accounts",
    "AccountingReferenceDate",
    "Address",
    "CompanyLinks",
    "CompanyProfile",
    "ConfirmationStatement",
    "DateOfBirth",
    "DescriptionValues",
    "EventMeta",
    "FilingEvent",
    "FilingHistoryItem",
    "FilingLinks",
    "LastAccounts",
    "NextAccounts",
    "Officer",
    "OfficerAddress",
    "OfficerLinks",
    "OfficerList",
    "OfficerListLinks",
    "OfficerRef",
    "StreamEvent",
]


class _Wire(msgspec.Struct, omit_defaults=True, frozen=True, kw_only=True):
    """Base: immutable (profiles are cached and shared, so tuples, not lists), and None-valued
    optionals never reach the wire."""


class AccountingReferenceDate(_Wire, kw_only=True):
    day: str
    month: str


class LastAccounts(_Wire, kw_only=True):
    made_up_to: str
    period_end_on: str
    period_start_on: str
    type: str


class NextAccounts(_Wire, kw_only=True):
    due_on: str
    period_end_on: str
    period_start_on: str


class Accounts(_Wire, kw_only=True):
    accounting_reference_date: AccountingReferenceDate
    last_accounts: LastAccounts | None = None
    next_accounts: NextAccounts
    next_due: str
    next_made_up_to: str


class ConfirmationStatement(_Wire, kw_only=True):
    last_made_up_to: str
    next_due: str
    next_made_up_to: str


class CompanyLinks(_Wire, kw_only=True):
    filing_history: str
    officers: str | None = None  # absent on some real profiles: then there is nothing to list
    persons_with_significant_control: str
    self: str


class Address(_Wire, kw_only=True):
    address_line_1: str
    address_line_2: str | None = None
    locality: str
    postal_code: str


class CompanyProfile(_Wire, kw_only=True):
    accounts: Accounts
    can_file: bool
    company_name: str
    company_number: str
    company_status: str
    company_status_detail: str | None = None
    confirmation_statement: ConfirmationStatement
    date_of_cessation: str | None = None
    date_of_creation: str
    etag: str
    has_charges: bool
    has_insolvency_history: bool
    jurisdiction: str
    last_full_members_list_date: str | None = None
    links: CompanyLinks
    registered_office_address: Address
    sic_codes: tuple[str, ...]
    type: str


class EventMeta(_Wire, kw_only=True):
    """The envelope's ``event``, in the real order: ``fields_changed`` (when any) comes first."""

    fields_changed: tuple[str, ...] | None = None
    timepoint: int
    published_at: str  # UTC, "YYYY-MM-DDTHH:MM:SS" without offset today (see published.py)
    type: str  # "changed" or "deleted"


class StreamEvent(_Wire, kw_only=True):
    """A /companies event; a ``deleted`` one may carry no ``data`` at all."""

    resource_kind: str
    resource_uri: str
    resource_id: str
    data: CompanyProfile | None = None
    event: EventMeta


class DescriptionValues(_Wire, kw_only=True):
    """The values a filing's ``description`` template refers to."""

    change_date: str | None = None
    made_up_date: str | None = None
    new_address: str | None = None
    old_address: str | None = None


class FilingLinks(_Wire, kw_only=True):
    document_metadata: str | None = None
    self: str


class FilingHistoryItem(_Wire, kw_only=True):
    """One filing-history item, as ``GET /company/{n}/filing-history/{id}`` and /filings carry it."""

    barcode: str | None = None  # Gazette notices are not scanned, so they have none
    category: str
    date: str
    description: str
    description_values: DescriptionValues | None = None
    links: FilingLinks
    pages: int | None = None
    paper_filed: bool | None = None
    transaction_id: str
    type: str


class FilingEvent(_Wire, kw_only=True):
    """A /filings event: ``resource_id`` is the filing's transaction id."""

    resource_kind: str
    resource_uri: str
    resource_id: str
    data: FilingHistoryItem | None = None
    event: EventMeta


class DateOfBirth(_Wire, kw_only=True):
    month: int
    year: int


class OfficerAddress(_Wire, kw_only=True):
    address_line_1: str
    country: str
    locality: str
    postal_code: str
    premises: str


class OfficerRef(_Wire, kw_only=True):
    appointments: str


class OfficerLinks(_Wire, kw_only=True):
    officer: OfficerRef
    self: str


class Officer(_Wire, kw_only=True):
    address: OfficerAddress
    appointed_on: str
    country_of_residence: str | None = None
    date_of_birth: DateOfBirth | None = None
    links: OfficerLinks
    name: str
    nationality: str | None = None
    occupation: str | None = None
    officer_role: str
    resigned_on: str | None = None


class OfficerListLinks(_Wire, kw_only=True):
    self: str | None = None  # an empty page's links are {}


class OfficerList(_Wire, kw_only=True):
    """The real service's field order (its builder's), not alphabetical; every field is always
    present, an empty page included."""

    total_results: int
    items: tuple[Officer, ...]
    active_count: int
    inactive_count: int
    resigned_count: int
    kind: str
    start_index: int
    items_per_page: int
    links: OfficerListLinks
    etag: str
