"""Which answer of a completed Snov.io task belongs to which thing we asked about.

The order of ``data`` is undocumented, so nothing here goes by position. A result is first checked
against what the task was started with (``meta.names`` / ``meta.rows``, when sent): a result for
other inputs is a ``SnovWireError``, never silently attached to the wrong people. Then each answer
is matched by name (``name_key``: case, accents and spacing don't count; the other word order as a
fallback). Two rows with one name on different domains are told apart by the domains of the
addresses found; what can't be told apart is reported as ``ambiguous``, never guessed.

Every asked-for item gets exactly one outcome:
``found`` (domain or e-mails), ``none`` (answered: nothing found), ``missing`` (no answer for it:
ask again later), ``ambiguous`` (answers that fit it and another row equally well).
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

import msgspec

from eventlog.worker.enrich.snov_api import (
    DomainBatch,
    DomainsCompleted,
    EmailBatch,
    EmailFinding,
    EmailRow,
    EmailsCompleted,
    PersonAnswer,
    SnovWireError,
    name_key,
)

__all__ = [
    "DomainMatch",
    "DomainOutcome",
    "EmailMatch",
    "EmailOutcome",
    "MatchState",
    "match_domains",
    "match_emails",
]

MatchState = Literal["found", "none", "missing", "ambiguous"]


class DomainOutcome(msgspec.Struct, frozen=True):
    name: str  # as we asked
    state: MatchState
    domain: str | None = None


class DomainMatch(msgspec.Struct, frozen=True):
    outcomes: tuple[DomainOutcome, ...]  # one per name of the batch, in the batch's order
    unexpected: tuple[str, ...] = ()  # answered names we never asked about


class EmailOutcome(msgspec.Struct, frozen=True):
    row: EmailRow  # as we asked
    state: MatchState
    emails: tuple[EmailFinding, ...] = ()


class EmailMatch(msgspec.Struct, frozen=True):
    outcomes: tuple[EmailOutcome, ...]  # one per row of the batch, in the batch's order
    unexpected: tuple[str, ...] = ()  # answered people we never asked about


def match_domains(batch: DomainBatch, result: DomainsCompleted) -> DomainMatch:
    """One outcome per asked name; two answers for one name that disagree are ``ambiguous``."""
    asked = [name_key(n) for n in batch.names]
    if result.names is not None and Counter(map(name_key, result.names)) != Counter(asked):
        raise SnovWireError("Snov.io company-domain-by-name result: meta.names are not the names "
                            "this task was started with")
    found: dict[str, set[str | None]] = {key: set() for key in asked}
    unexpected = []
    for answer in result.answers:
        key = name_key(answer.name)
        if key in found:
            found[key].add(answer.domain.lower() if answer.domain else None)
        else:
            unexpected.append(answer.name)
    outcomes = []
    for name, key in zip(batch.names, asked):
        domains = found[key]
        real = {d for d in domains if d is not None}
        if len(real) > 1:
            outcomes.append(DomainOutcome(name, "ambiguous"))
        elif real:
            outcomes.append(DomainOutcome(name, "found", real.pop()))
        elif domains:
            outcomes.append(DomainOutcome(name, "none"))
        else:
            outcomes.append(DomainOutcome(name, "missing"))
    return DomainMatch(tuple(outcomes), tuple(unexpected))


def _person_key(first: str, last: str) -> str:
    return name_key(f"{first} {last}")


def _loose_key(text: str) -> tuple[str, ...]:
    return tuple(sorted(name_key(text).split()))


def _host(email: str) -> str:
    return name_key(email.rpartition("@")[2])


class _Slot:
    """What has been learnt about one asked row."""

    def __init__(self, row: EmailRow) -> None:
        self.row = row
        self.answered = False
        self.ambiguous = False
        self.emails: dict[str, EmailFinding] = {}  # by address, so a repeated answer adds nothing

    def take(self, emails: list[EmailFinding]) -> None:
        self.answered = True
        for finding in emails:
            self.emails.setdefault(finding.email.lower(), finding)

    def outcome(self) -> EmailOutcome:
        if self.ambiguous and not self.emails:
            return EmailOutcome(self.row, "ambiguous")
        if self.emails:
            return EmailOutcome(self.row, "found", tuple(self.emails.values()))
        return EmailOutcome(self.row, "none" if self.answered else "missing")


def match_emails(batch: EmailBatch, result: EmailsCompleted) -> EmailMatch:
    """One outcome per asked row, matched by ``meta.rows``, the person's name and the domain."""
    if result.rows is not None and Counter(r.key() for r in result.rows) != Counter(
        r.key() for r in batch.rows
    ):
        raise SnovWireError("Snov.io emails-by-domain-by-name result: meta.rows are not the rows "
                            "this task was started with")
    slots = [_Slot(row) for row in batch.rows]
    exact: dict[str, list[_Slot]] = {}
    loose: dict[tuple[str, ...], list[_Slot]] = {}
    for slot in slots:
        exact.setdefault(_person_key(slot.row.first_name, slot.row.last_name), []).append(slot)
        loose.setdefault(_loose_key(f"{slot.row.first_name} {slot.row.last_name}"), []).append(slot)
    unexpected: list[str] = []
    silent: dict[int, tuple[list[_Slot], int]] = {}  # empty answers to a name several rows share
    for answer in result.answers:
        group = exact.get(name_key(answer.people)) or loose.get(_loose_key(answer.people))
        if not group:
            unexpected.append(answer.people)
        elif len(group) == 1:
            group[0].take(list(answer.emails))
        elif not answer.emails:
            silent[id(group)] = (group, silent.get(id(group), (group, 0))[1] + 1)
        else:
            _split_by_domain(group, answer)
    for group, empty_answers in silent.values():
        _settle_silent(group, empty_answers)
    return EmailMatch(tuple(s.outcome() for s in slots), tuple(unexpected))


def _split_by_domain(group: list[_Slot], answer: PersonAnswer) -> None:
    """Several rows share this name: each address goes to the row on its domain. Addresses on
    none of their domains could be anyone's, so every row of the name is marked ambiguous."""
    by_host: dict[str, list[EmailFinding]] = {}
    for finding in answer.emails:
        by_host.setdefault(_host(finding.email), []).append(finding)
    homes = {name_key(slot.row.domain): slot for slot in group}
    for host, findings in by_host.items():
        if host in homes:
            homes[host].take(findings)
        else:
            for slot in group:
                slot.ambiguous = True


def _settle_silent(group: list[_Slot], empty_answers: int) -> None:
    """Empty answers to a shared name: if there are at least as many as the rows still unanswered,
    each of those rows was answered "nothing found"; if fewer, we can't tell which was."""
    waiting = [slot for slot in group if not slot.answered]
    for slot in waiting:
        if empty_answers >= len(waiting):
            slot.answered = True
        else:
            slot.ambiguous = True
