"""The /filings stream: filing-history events, among them the first Gazette notices.

A first Gazette notice for strike-off (``category`` ``gazette``, ``type`` ``GAZ1`` for a
compulsory strike-off or ``GAZ1(A)`` for a voluntary one) *is* the proposal to strike off, so it is
a detection source of its own: it is only ever about a company whose profile says
``active-proposal-to-strike-off``, it may come before that company's /companies event, and for
``filings_only_share`` of them no /companies event ever comes. Everything else here (accounts,
confirmation statements, changes of registered office) is noise a client must pass over.

Like /companies, everything but ``published_at`` (and the filing's ``date``, which is the day it was
published) depends on (seed, timepoint) alone; a company's Gazette notice keeps one transaction id
however often it is re-published.
"""

from __future__ import annotations

import base64
import hashlib
import random
from datetime import UTC, datetime

from .companies import Universe
from .config import SimulatorConfig
from .models import (
    CompanyProfile,
    DescriptionValues,
    EventMeta,
    FilingEvent,
    FilingHistoryItem,
    FilingLinks,
)
from .published import draw_published_at
from .schedule import ScheduleSpec
from .timeline import Feed

__all__ = [
    "FILINGS_PATH",
    "GAZETTE_TYPES",
    "FilingsTimeline",
    "is_first_gazette_notice",
    "transaction_id",
]

FILINGS_PATH = "/filings"
GAZETTE_TYPES = {"GAZ1": "gazette-notice-compulsory", "GAZ1(A)": "gazette-notice-voluntary"}
VOLUNTARY_SHARE = 0.35  # of strike-off proposals, those the company applied for itself (DS01)
_DOCUMENT_API = "https://frontend-doc-api.company-information.service.gov.uk/document/"
_BARCODE = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"


def transaction_id(*parts: object) -> str:
    """A filing's id in the real shape: base64 of ten digits followed by ``adiqzkcx``."""
    digest = hashlib.sha1(":".join(map(str, parts)).encode()).digest()
    digits = int.from_bytes(digest[:8], "big") % 10**10
    return base64.b64encode(f"{digits:010d}adiqzkcx".encode()).decode()


def is_first_gazette_notice(item: dict) -> bool:
    """True for a filing-history item (as decoded JSON) that proposes a strike-off."""
    return item.get("category") == "gazette" and item.get("type") in GAZETTE_TYPES


def _document_link(*parts: object) -> str:
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return _DOCUMENT_API + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class FilingsTimeline(Feed):
    """The /filings schedule (its own timepoints and pace) and its filing-history events."""

    path = FILINGS_PATH

    def __init__(self, config: SimulatorConfig, universe: Universe, start: float) -> None:
        spec = ScheduleSpec(
            gap_tag="filings-gaps",
            first_timepoint=config.filings_first_timepoint,
            pace=config.filings_pace,
            backlog=config.filings_backlog,
            gap_share=config.gap_share,
            retention=config.retention,
            retention_seconds=config.retention_seconds,
        )
        super().__init__(config, universe, spec, start)

    def _draws(self, timepoint: int) -> tuple[random.Random, bool, str]:
        """The event's generator after its first draws: Gazette notice or not, and the company."""
        rng = random.Random(f"{self.config.seed}:filing:{timepoint}")
        proposals = self.universe.strike_off_numbers
        gazette = rng.random() < self.config.gazette_share and bool(proposals)
        pool = proposals if gazette else self.universe.numbers
        return rng, gazette, pool[rng.randrange(len(pool))]

    def number_at(self, index: int) -> str:
        return self._draws(self.timepoint_of(index))[2]

    def is_gazette_at(self, index: int) -> bool:
        """Whether the ``index``-th event is a first Gazette notice (without building it)."""
        return self._draws(self.timepoint_of(index))[1]

    def event_at(self, index: int) -> FilingEvent:
        return self.event_for(self.timepoint_of(index), self.publish_time(index))

    def event_for(self, timepoint: int, published: float) -> FilingEvent:
        cfg = self.config
        rng, gazette, number = self._draws(timepoint)
        day = datetime.fromtimestamp(published, UTC).date().isoformat()
        refreshed = rng.random() < 0.3  # a re-publication once the document was scanned
        linked = refreshed or rng.random() < 0.5
        kind_draw = rng.random()
        if gazette:
            item = self._gazette_notice(number, day, linked)
        else:
            item = self._noise(rng, timepoint, number, day, kind_draw, linked)
        stamp = draw_published_at(
            rng, published, cfg.published_at_fraction_share, cfg.published_at_12h_share
        )
        return FilingEvent(
            resource_kind="filing-history",
            resource_uri=item.links.self,
            resource_id=item.transaction_id,
            data=item,
            event=EventMeta(
                fields_changed=("links.document_metadata",) if refreshed else None,
                timepoint=timepoint,
                published_at=stamp,
                type="changed",
            ),
        )

    def _links(self, number: str, transaction: str, linked: bool) -> FilingLinks:
        return FilingLinks(
            document_metadata=_document_link(self.config.seed, transaction) if linked else None,
            self=f"/company/{number}/filing-history/{transaction}",
        )

    def _gazette_notice(self, number: str, day: str, linked: bool) -> FilingHistoryItem:
        """The company's one first Gazette notice: same transaction id every time it is sent."""
        seed = self.config.seed
        voluntary = random.Random(f"{seed}:voluntary:{number}").random() < VOLUNTARY_SHARE
        kind = "GAZ1(A)" if voluntary else "GAZ1"
        transaction = transaction_id(seed, "gazette", number)
        return FilingHistoryItem(
            category="gazette",
            date=day,
            description=GAZETTE_TYPES[kind],
            links=self._links(number, transaction, linked),
            pages=1,
            transaction_id=transaction,
            type=kind,
        )

    def _noise(self, rng: random.Random, timepoint: int, number: str, day: str, draw: float,
               linked: bool) -> FilingHistoryItem:
        """Accounts, a confirmation statement or a change of registered office."""
        profile = self.universe.profile(number)
        transaction = transaction_id(self.config.seed, "filing", timepoint)
        barcode = rng.choice("XAS") + "".join(rng.choice(_BARCODE) for _ in range(7))
        links = self._links(number, transaction, linked)
        last = profile.accounts.last_accounts
        if draw < 0.5 and last is not None:
            return FilingHistoryItem(
                barcode=barcode,
                category="accounts",
                date=day,
                description=f"accounts-with-accounts-type-{last.type}",
                description_values=DescriptionValues(made_up_date=last.made_up_to),
                links=links,
                pages=rng.randint(2, 30),
                transaction_id=transaction,
                type="AA",
            )
        if draw < 0.85:
            updates = rng.random() < 0.3
            return FilingHistoryItem(
                barcode=barcode,
                category="confirmation-statement",
                date=day,
                description="confirmation-statement-with-updates"
                if updates
                else "confirmation-statement-with-no-updates",
                description_values=DescriptionValues(
                    made_up_date=profile.confirmation_statement.last_made_up_to
                ),
                links=links,
                pages=rng.randint(3, 5),
                transaction_id=transaction,
                type="CS01",
            )
        return FilingHistoryItem(
            barcode=barcode,
            category="address",
            date=day,
            description="change-registered-office-address-company-with-date-old-address-new-address",
            description_values=DescriptionValues(
                change_date=day,
                new_address=_one_line(profile),
                old_address=f"{rng.randint(1, 240)} Old Road, {profile.registered_office_address.locality}",
            ),
            links=links,
            pages=1,
            transaction_id=transaction,
            type="AD01",
        )


def _one_line(profile: CompanyProfile) -> str:
    address = profile.registered_office_address
    parts = (address.address_line_1, address.address_line_2, address.locality, address.postal_code)
    return ", ".join(part for part in parts if part)
