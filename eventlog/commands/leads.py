"""`export --leads`, `suppress` and `forget`: the wiring of the customer's dataset and of erasure.

Each opens the database, checks the projections are current, and appends its entry through a
ledger whose projectors run in the same transaction, as every command that records a fact:

- `export_leads`: the file is written from one read snapshot (`eventlog.dataset.leads`), then
  an `export.leads` entry records it (name, position, counts), which `--since last` reads back.
- `suppress_add` / `suppress_remove`: `suppression.added` / `suppression.removed`, subjects only.
- `forget_person`: the key deleted, the subject listed and `person.forgotten` appended in one
  transaction (the projectors rewrite the person's rows there), then the scrub (VACUUM, WAL
  truncated). An e-mail address also forgets the officers it was found for: the address was
  stored sealed under the officer's subject, so that is what erases it.
"""

from __future__ import annotations

import datetime as dt

import msgspec

import projections
from eventlog.clock import Clock, SystemClock, from_epoch
from eventlog.config.settings import Settings
from eventlog.dataset import leads, suppression
from eventlog.ledger.db import connect
from eventlog.ledger.entries import LeadsExported, PersonForgotten, SuppressionAdded, SuppressionRemoved
from eventlog.ledger.migrate import migrate
from eventlog.ledger.store import Ledger
from eventlog.privacy import ForgetReport, ScrubReport, forget_in_transaction, parse_subject, scrub
from projections.projectors import emails

__all__ = ["export_leads", "suppress_add", "suppress_remove", "suppress_list", "forget_person",
           "SuppressReport", "ForgetOutcome"]


def _ledger(settings: Settings, clock: Clock | None):
    conn = connect(settings.database_path)
    migrate(conn)
    projections.check_versions(conn)
    ledger = Ledger(conn, clock)
    projections.attach(ledger)
    return conn, ledger


def export_leads(settings: Settings, out: str, fmt: leads.Format = "csv", *,
                 filters: leads.LeadFilters = leads.LeadFilters(), name: str | None = None, bom: bool = False,
                 today: dt.date | None = None, clock: Clock | None = None,
                 progress: leads.Progress | None = None) -> leads.LeadReport:
    """Write the leads, then record the delivery in the ledger."""
    conn, ledger = _ledger(settings, clock)  # migrated and current before the read snapshot
    try:
        report = leads.export_leads(settings.database_path, out, fmt, filters=filters, name=name, bom=bom,
                                    today=today, progress=progress)
        ledger.append(LeadsExported(name=name or report.path.rsplit("/", 1)[-1], format=fmt,
                                    position=report.position, as_of=report.as_of, rows=report.rows,
                                    withheld=report.withheld, since=report.since))
    finally:
        conn.close()
    return report


class SuppressReport(msgspec.Struct, frozen=True, kw_only=True):
    subject: str
    changed: bool  # False: it was listed already (add) or not listed (remove)


def _suppress(settings: Settings, target: str, add: bool, clock: Clock | None) -> SuppressReport:
    subject = suppression.parse_target(target)
    conn, ledger = _ledger(settings, clock)
    try:
        with ledger.transaction() as tx:
            listed = subject in suppression.active_subjects(conn)
            if listed == add:
                return SuppressReport(subject=subject, changed=False)
            tx.append(SuppressionAdded(subject=subject) if add else SuppressionRemoved(subject=subject))
    finally:
        conn.close()
    return SuppressReport(subject=subject, changed=True)


def suppress_add(settings: Settings, target: str, clock: Clock | None = None) -> SuppressReport:
    return _suppress(settings, target, True, clock)


def suppress_remove(settings: Settings, target: str, clock: Clock | None = None) -> SuppressReport:
    return _suppress(settings, target, False, clock)


def suppress_list(settings: Settings) -> list[suppression.Suppressed]:
    conn = connect(settings.database_path, readonly=True)
    try:
        return suppression.suppressed(conn)
    finally:
        conn.close()


class ForgetOutcome(msgspec.Struct, frozen=True, kw_only=True):
    subjects: list[ForgetReport]  # the one asked for, and the officers an e-mail led to
    scrub: ScrubReport

    @property
    def complete(self) -> bool:
        return self.scrub.complete


def forget_person(settings: Settings, who: str, *, clock: Clock | None = None, vacuum: bool = True) -> ForgetOutcome:
    """Forget an officer (id) or an e-mail address everywhere (module doc); idempotent."""
    subject = parse_subject(who)
    conn, ledger = _ledger(settings, clock)
    try:
        subjects = [subject]
        if subject.startswith("email:") and "@" in who:
            subjects += [f"officer:{o}" for o in emails.officers_with_address(conn, who.strip())]
        at = from_epoch((clock or SystemClock()).now())
        with ledger.transaction() as tx:
            reports = [forget_in_transaction(conn, s, at) for s in dict.fromkeys(subjects)]
            tx.append_many([PersonForgotten(subject=r.subject, key_deleted=r.key_deleted) for r in reports])
        scrubbed = scrub(conn, vacuum=vacuum)
    finally:
        conn.close()
    return ForgetOutcome(subjects=reports, scrub=scrubbed)
