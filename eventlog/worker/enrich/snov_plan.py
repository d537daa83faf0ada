"""What the enrichment stage should ask Snov.io next, and whether the money allows it.

Read from the projections inside the transaction that records the request, so two processes
never pick the same lookup, and a restart sees exactly what was started:

1. a task whose result is due (polls cost no credits, and finish what was paid for);
2. companies of interest, by name: a name already answered for another company is reused
   (`snov.reused`, no request); the others go in batches of up to 10 (`DomainBatch` drops
   repeats), as many as the budget covers;
3. current officers, of the qualifying roles, of companies whose domain was found: first and last
   name from Companies House's "SURNAME, Forenames" (a name that isn't a person's is skipped), in
   batches of up to 10 rows, never an officer + domain asked before.

Credits: a start is made only when its worst case fits both what is left of `SNOV_MAX_CREDITS`
(spent and reserved counted from the ledger, so across restarts) and the balance last read from
`get-balance`, less what was spent since. Worst case: 1 credit per name, `SNOV_CREDITS_PER_PERSON`
per e-mail row. When work is waiting and not one lookup fits, enrichment stops, and says why.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import apsw

from eventlog.config.settings import Settings
from eventlog.privacy import KeyVault, officer_subject
from eventlog.privacy.errors import BadSubject
from eventlog.worker.enrich.officer_names import split_officer_name
from eventlog.worker.enrich.snov_api import MAX_BATCH, EmailRow, domain_batches, name_key
from eventlog.worker.enrich.snov_record import DomainLookup, EmailLookup
from projections.projectors import domains, emails, snov_tasks

__all__ = ["Room", "room", "domain_work", "email_work", "Reuse"]


class Room(NamedTuple):
    """Credits a new start may reserve, and which limit binds (for the stop's reason)."""

    credits: int
    binding: str  # "budget_exhausted" or "balance_low"
    detail: str


def room(conn: apsw.Connection, settings: Settings) -> Room:
    c = snov_tasks.credits(conn)
    by_budget = settings.snov_max_credits - c.spent - c.reserved
    detail = (f"{c.spent} credits spent and {c.reserved} reserved of SNOV_MAX_CREDITS "
              f"{settings.snov_max_credits}")
    if c.balance is None:
        return Room(by_budget, "budget_exhausted", detail)
    by_balance = math.floor(c.balance) - c.spent_since_balance - c.reserved
    if by_balance < by_budget:
        return Room(by_balance, "balance_low", f"balance {c.balance:g} at {c.balance_at}, "
                    f"{c.spent_since_balance} spent since and {c.reserved} reserved")
    return Room(by_budget, "budget_exhausted", detail)


class Reuse(NamedTuple):
    company_number: str
    name: str
    source_company: str


class DomainWork(NamedTuple):
    lookups: list[DomainLookup]  # the next start (empty: none to make now)
    reuse: list[Reuse]  # companies that take an answer already recorded
    waiting: bool  # some company is waiting for a lookup the budget could not cover


def domain_work(conn: apsw.Connection, credits: int) -> DomainWork:
    candidates = domains.needing_lookup(conn)
    keys = [name_key(c.company_name) for c in candidates]
    known = domains.known_names(conn, list(dict.fromkeys(keys)))
    reuse, fresh = [], []
    for c, key in zip(candidates, keys):
        seen = known.get(key)
        if seen is None:
            fresh.append(c)
        elif seen.state != "looking_up" and seen.company_number != c.company_number:
            reuse.append(Reuse(c.company_number, c.company_name, seen.company_number))
    batches = domain_batches(c.company_name for c in fresh)
    if not batches:
        return DomainWork([], reuse, False)
    first = batches[0].names[:max(0, min(MAX_BATCH, credits))]  # worst case: 1 credit a name
    by_key = {}
    for c in fresh:
        by_key.setdefault(name_key(c.company_name), c)
    lookups = [DomainLookup(by_key[name_key(n)].company_number, n) for n in first]
    return DomainWork(lookups, reuse, not lookups)


class EmailWork(NamedTuple):
    lookups: list[EmailLookup]
    waiting: bool


def email_work(conn: apsw.Connection, settings: Settings, credits: int) -> EmailWork:
    per_person = settings.snov_credits_per_person
    fits = max(0, min(MAX_BATCH, credits // per_person))
    vault = KeyVault(conn)
    chosen: list[EmailLookup] = []
    keys: set[tuple[str, str, str]] = set()
    pairs: set[tuple[str, str]] = set()
    wanted = False
    for c in emails.needing_lookup(conn, tuple(settings.snov_officer_roles)):
        person = split_officer_name(c.name)
        if person is None or (c.officer_id, c.domain) in pairs:
            continue
        try:
            if vault.is_forgotten(officer_subject(c.officer_id)):
                continue  # erased on request: never looked up again
        except BadSubject:
            continue
        row = EmailRow(first_name=person.first_name, last_name=person.last_name, domain=c.domain)
        if row.key() in keys:
            continue  # one name twice on one domain: the next batch, so results can be told apart
        wanted = True
        if len(chosen) >= fits:
            break
        keys.add(row.key())
        pairs.add((c.officer_id, c.domain))
        chosen.append(EmailLookup(c.officer_id, c.company_number, row))
    return EmailWork(chosen, wanted and not chosen)
