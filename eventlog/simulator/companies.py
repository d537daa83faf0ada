"""The universe of fake companies and their profiles.

A profile is a pure function of (seed, company number): the streams and the REST API all call
``Universe.profile`` and therefore always agree, in particular on ``company_status_detail``, which
is what the product filters on. The universe also knows which companies are proposed for
strike-off (the /filings stream publishes their Gazette notices) and which of those never appear
on /companies at all (``filings_only_share``): a client that follows only /companies misses them.
"""

from __future__ import annotations

import functools
import hashlib
import random
import re
from datetime import date, timedelta

from . import names
from .config import SimulatorConfig
from .dates import AS_OF, add_months, add_years, date_between, month_end
from .models import (
    AccountingReferenceDate,
    Accounts,
    Address,
    CompanyLinks,
    CompanyProfile,
    ConfirmationStatement,
    LastAccounts,
    NextAccounts,
    Officer,
)
from .officers import make_officers
from .quirks import Quirks, quirks_of

__all__ = ["CEASED_STATUSES", "STRIKE_OFF_DETAIL", "Universe", "is_well_formed"]

STRIKE_OFF_DETAIL = "active-proposal-to-strike-off"
# Statuses whose formerly active officers carry no resigned_on and count as inactive.
CEASED_STATUSES = frozenset({"dissolved", "closed", "converted-closed"})
_NUMBER = re.compile(r"[A-Z0-9]{8}")
# (prefix, weight): mostly England & Wales numbers, some Scottish, Northern Irish and LLPs.
_PREFIXES = (("", 85), ("SC", 8), ("NI", 4), ("OC", 3))


def is_well_formed(number: str) -> bool:
    """True for 8 characters of [A-Z0-9]; anything else makes the real API answer 500."""
    return _NUMBER.fullmatch(number) is not None


def _make_number(rng: random.Random) -> str:
    prefix = rng.choices([p for p, _ in _PREFIXES], weights=[w for _, w in _PREFIXES])[0]
    if prefix:
        return f"{prefix}{rng.randint(1, 999_999):06d}"
    return f"{rng.randint(1, 15_999_999):08d}"


def _jurisdiction(number: str) -> str:
    if number.startswith("SC"):
        return "scotland"
    if number.startswith("NI"):
        return "northern-ireland"
    return "england-wales"


class Universe:
    """The ``company_count`` companies the simulator knows, with cached, deterministic profiles."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        rng = random.Random(f"{config.seed}:universe")
        seen: dict[str, None] = {}
        while len(seen) < config.company_count:
            seen.setdefault(_make_number(rng), None)
        self.numbers: tuple[str, ...] = tuple(seen)
        self._known = frozenset(self.numbers)
        self.profile = functools.lru_cache(maxsize=16384)(self._make_profile)
        self.officers = functools.lru_cache(maxsize=4096)(self._make_officers)
        self.quirks = functools.lru_cache(maxsize=16384)(self._make_quirks)
        # Cheap: the strike-off draw is the first of a profile's, no profile is built here.
        self.strike_off_numbers: tuple[str, ...] = tuple(
            n for n in self.numbers if _company_rng(config, n).random() < config.strike_off_share
        )
        self.filings_only: frozenset[str] = frozenset(
            n
            for n in self.strike_off_numbers
            if random.Random(f"{config.seed}:filings-only:{n}").random() < config.filings_only_share
        )
        # What /companies events are about; never empty, so the stream always has a subject.
        self.stream_numbers: tuple[str, ...] = (
            tuple(n for n in self.numbers if n not in self.filings_only) or self.numbers
        )

    def __contains__(self, number: object) -> bool:
        return number in self._known

    def __len__(self) -> int:
        return len(self.numbers)

    def _make_quirks(self, number: str) -> Quirks:
        return quirks_of(self.config, number)

    def _make_officers(self, number: str) -> tuple[Officer, ...]:
        if self.quirks(number).zero_officers:
            return ()
        return make_officers(self.config.seed, self.profile(number))

    def _make_profile(self, number: str) -> CompanyProfile:
        """Build a profile; draws happen in a fixed order so each knob only moves its own field."""
        cfg = self.config
        rng = _company_rng(cfg, number)
        jurisdiction = _jurisdiction(number)
        strike_off = rng.random() < cfg.strike_off_share
        other_status = rng.random()
        kind = "llp" if number.startswith("OC") else _company_type(rng.random())
        created = date_between(rng, date(1995, 1, 1), date(2022, 10, 31))
        ceased_on = date_between(rng, AS_OF - timedelta(days=120), AS_OF).isoformat()
        status, detail, cessation = "active", None, None
        if strike_off:
            detail = STRIKE_OFF_DETAIL
        else:
            status = _ended_status(cfg, other_status)
            if status in CEASED_STATUSES:
                cessation = ceased_on
        links = _links(number, officers=not self.quirks(number).no_officers_link)
        return CompanyProfile(
            accounts=_accounts(rng, created),
            can_file=status not in CEASED_STATUSES,
            company_name=_company_name(rng, kind),
            company_number=number,
            company_status=status,
            company_status_detail=detail,
            confirmation_statement=_confirmation_statement(created),
            date_of_cessation=cessation,
            date_of_creation=created.isoformat(),
            etag=hashlib.sha1(f"{cfg.seed}:{number}:profile".encode()).hexdigest(),
            has_charges=rng.random() < 0.2,
            has_insolvency_history=status == "liquidation",
            jurisdiction=jurisdiction,
            last_full_members_list_date=_members_list_date(created),
            links=links,
            registered_office_address=_address(rng, jurisdiction),
            sic_codes=tuple(sorted(rng.sample(names.SIC_CODES, rng.choice((1, 1, 1, 2, 3))))),
            type=kind,
        )


def _company_rng(config: SimulatorConfig, number: str) -> random.Random:
    """The generator of a company's profile; its first draw decides strike-off."""
    return random.Random(f"{config.seed}:company:{number}")


def _ended_status(config: SimulatorConfig, draw: float) -> str:
    """The status of a company not proposed for strike-off, from one uniform draw."""
    bound = 0.0
    for status, share in (
        ("liquidation", config.liquidation_share),
        ("dissolved", config.dissolved_share),
        ("closed", config.closed_share),
        ("converted-closed", config.converted_closed_share),
    ):
        bound += share
        if draw < bound:
            return status
    return "active"


def _company_type(draw: float) -> str:
    if draw < 0.90:
        return "ltd"
    if draw < 0.97:
        return "private-limited-guarant-nsc"
    return "plc"


def _company_name(rng: random.Random, kind: str) -> str:
    words = [rng.choice(names.NAME_WORDS)]
    if rng.random() < 0.3:
        words.append(rng.choice(names.NAME_WORDS))
    if rng.random() < 0.7:
        words.append(rng.choice(names.NAME_TRADES))
    suffix = {"llp": "LLP", "plc": "PLC", "private-limited-guarant-nsc": "LIMITED"}.get(kind)
    words.append(suffix or rng.choice(("LTD", "LIMITED")))
    return " ".join(words)


def _links(number: str, *, officers: bool) -> CompanyLinks:
    base = f"/company/{number}"
    return CompanyLinks(
        filing_history=f"{base}/filing-history",
        officers=f"{base}/officers" if officers else None,
        persons_with_significant_control=f"{base}/persons-with-significant-control",
        self=base,
    )


def _accounts(rng: random.Random, created: date) -> Accounts:
    """Accounts as of AS_OF: the next ones are those not yet overdue (due 9 months after end)."""
    month = rng.randint(1, 12)
    earliest_end = add_months(AS_OF, -9)
    next_end = month_end(earliest_end.year, month)
    if next_end < earliest_end:
        next_end = month_end(earliest_end.year + 1, month)
    last_end = month_end(next_end.year - 1, month)
    last_start = month_end(next_end.year - 2, month) + timedelta(days=1)
    last = None
    if created < last_end:
        last = LastAccounts(
            made_up_to=last_end.isoformat(),
            period_end_on=last_end.isoformat(),
            period_start_on=max(created, last_start).isoformat(),
            type=rng.choice(names.ACCOUNTS_TYPES),
        )
    next_start = max(created, last_end + timedelta(days=1))
    due = add_months(next_end, 9).isoformat()
    return Accounts(
        accounting_reference_date=AccountingReferenceDate(
            day=str(next_end.day), month=f"{month:02d}"
        ),
        last_accounts=last,
        next_accounts=NextAccounts(
            due_on=due,
            period_end_on=next_end.isoformat(),
            period_start_on=next_start.isoformat(),
        ),
        next_due=due,
        next_made_up_to=next_end.isoformat(),
    )


def _members_list_date(created: date) -> str | None:
    """Annual returns (with member lists) ended in June 2016; older companies keep the last one."""
    last = add_years(created, 2015 - created.year)
    return last.isoformat() if created.year < 2015 else None


def _confirmation_statement(created: date) -> ConfirmationStatement:
    """Made up to the latest anniversary of incorporation on or before AS_OF (always >= 1 year)."""
    years = AS_OF.year - created.year
    last = add_years(created, years)
    if last > AS_OF:
        last = add_years(created, years - 1)
    upcoming = add_years(last, 1)
    return ConfirmationStatement(
        last_made_up_to=last.isoformat(),
        next_due=(upcoming + timedelta(days=14)).isoformat(),
        next_made_up_to=upcoming.isoformat(),
    )


def _address(rng: random.Random, jurisdiction: str) -> Address:
    locality, area = rng.choice(names.TOWNS[jurisdiction])
    if rng.random() < 0.25:
        line_1 = f"Unit{rng.randint(1, 40)} {rng.choice(names.ESTATES)}"
    else:
        line_1 = f"{rng.randint(1, 240)} {rng.choice(names.STREETS)}"
    line_2 = rng.choice((None, None, "First Floor", "Suite 2", "Banham", "Old Town"))
    return Address(
        address_line_1=line_1,
        address_line_2=line_2,
        locality=locality,
        postal_code=names.postcode(rng, area),
    )
