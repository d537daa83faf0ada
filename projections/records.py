"""A batch of ledger records as every projector sees it, with payloads decoded once.

Several projectors read the same payload (a stream event's profile feeds both
`companies` and `company_processing_state`); the batch decodes each payload on
first use and keeps it for the others. A batch lives for one append (live) or
one chunk of the ledger (replay), so the caches never grow past it.
"""

from __future__ import annotations

from typing import Any, Sequence

from eventlog.ledger.entries import normalise_company_number
from eventlog.ledger.store import Record

from projections.payloads import OfficerPage, Profile, decode_officer_page, decode_profile, profile_value

__all__ = ["Batch", "COMPANY_PROFILE", "is_final_page", "next_page_start", "MAX_OFFICERS_LISTED",
           "OFFICERS_PAGE_SIZE", "backfill_numbers"]

COMPANY_PROFILE = "company-profile"
_MISSING = object()
_DATA = frozenset(("stream.event", "bulk.company"))  # entries whose profile is `data` (else `body`)


class Batch:
    __slots__ = ("records", "_profiles", "_pages", "_numbers")

    def __init__(self, records: Sequence[Record]):
        self.records = records
        self._profiles: dict[int, Profile | None] = {}
        self._pages: dict[int, OfficerPage | None] = {}
        self._numbers: dict[int, str | None] = {}

    @property
    def first(self) -> int:
        return self.records[0].position

    @property
    def last(self) -> int:
        return self.records[-1].position

    def company(self, record: Record) -> str | None:
        """The record's company number, normalised (stream events fall back to resource_id)."""
        pos = record.position
        number = self._numbers.get(pos, _MISSING)
        if number is _MISSING:
            raw = record.company_number
            if raw is None and record.event_type == "stream.event":
                raw = getattr(record.entry, "resource_id", None)
            number = normalise_company_number(raw) or None
            self._numbers[pos] = number
        return number  # type: ignore[return-value]

    def profile(self, record: Record) -> Profile | None:
        """The company profile carried by a stream event's or a bulk row's `data`, or a profile
        response's `body`."""
        pos = record.position
        found = self._profiles.get(pos, _MISSING)
        if found is _MISSING:
            entry = record.entry
            raw = entry.data if record.event_type in _DATA else entry.body  # type: ignore[attr-defined]
            found = decode_profile(raw)
            self._profiles[pos] = found
        return found  # type: ignore[return-value]

    def value(self, record: Record, field: str) -> Any:
        """`data[field]` / `body[field]` of a profile payload (the interest predicate's input)."""
        entry = record.entry
        raw = entry.data if record.event_type in _DATA else entry.body  # type: ignore[attr-defined]
        return profile_value(raw, self.profile(record), field)

    def officer_page(self, record: Record) -> OfficerPage | None:
        pos = record.position
        found = self._pages.get(pos, _MISSING)
        if found is _MISSING:
            found = decode_officer_page(record.entry.body)  # type: ignore[attr-defined]
            self._pages[pos] = found
        return found  # type: ignore[return-value]


# A guard against a list that never ends: no company has this many appointments, and past it
# paging stops whatever the counts say (so a broken answer can't make the sender loop).
MAX_OFFICERS_LISTED = 5000
# Officers per page the sender asks for (the API's maximum: fewer pages, less of the allowance).
OFFICERS_PAGE_SIZE = 100


def next_page_start(page_start: int, returned: int, total_results: int | None,
                    items_per_page: int | None, asked: int) -> int | None:
    """Where the next officers page starts, or None when this page was the last.

    Paging follows the items actually returned, not `total_results` alone: CH's counts come
    from a separate metrics service and can lag the list either way. An empty page ends it; a
    full page (as many items as a page holds) asks for the next even when the total says
    there is none (a total lagging low must not lose officers past page 1); a short page ends it
    unless the total says more are coming (one extra call at worst, which answers empty).
    """
    if returned <= 0:
        return None
    nxt = page_start + returned
    if nxt >= MAX_OFFICERS_LISTED:
        return None
    per_page = min(items_per_page, asked) if items_per_page and items_per_page > 0 else asked
    if returned >= per_page:
        return nxt
    if total_results is not None and nxt < total_results:
        return nxt
    return None


def is_final_page(page: OfficerPage, page_start: int, asked: int = OFFICERS_PAGE_SIZE) -> bool:
    """The sender's own rule (`next_page_start`): this page ends the list."""
    return next_page_start(page_start, len(page.items), page.total_results, page.items_per_page,
                           asked) is None


def backfill_numbers(numbers: Sequence[str]) -> list[str]:
    """A backfill's company numbers, normalised, each once, in the order given."""
    return [n for n in dict.fromkeys(normalise_company_number(x) for x in numbers) if n]
