"""Wire shapes of the simulated Companies House, as msgspec structs.

Fields are declared in alphabetical order (keyword-only, so optional ones can sit anywhere)
because that is how the real service orders its JSON (see data/stream-samples.ndjson), except the
stream envelope, whose order is the sample's. Optional fields default to None and are omitted,
exactly as the real API leaves out keys it has no value for.
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
    "EventMeta",
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
    officers: str
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
    timepoint: int
    published_at: str  # UTC, "YYYY-MM-DDTHH:MM:SS" without offset, as the real stream sends it
    type: str  # "changed" or "deleted"
    fields_changed: tuple[str, ...] | None = None


class StreamEvent(_Wire, kw_only=True):
    resource_kind: str
    resource_uri: str
    resource_id: str
    data: CompanyProfile
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
    self: str


class OfficerList(_Wire, kw_only=True):
    active_count: int
    etag: str
    inactive_count: int
    items: tuple[Officer, ...]
    items_per_page: int
    kind: str
    links: OfficerListLinks
    resigned_count: int
    start_index: int
    total_results: int
