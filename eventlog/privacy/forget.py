"""Forgetting a person: their key goes, their subject is listed, their bytes are overwritten.

The ledger keeps every row it ever had, so the hash chain verifies as before; what changes is
that nothing can read the person's sealed fields any more:

1. (inside one write transaction) `PRAGMA secure_delete = ON`; the subject's key is deleted, its
   cell zeroed; the subject is listed in `forgotten_subjects`, so a later fetch of the same
   person is stored already erased and their plaintext payloads from before sealing existed
   are treated as erased (the redaction list); and, in the same transaction, the caller
   records the fact (a `person.forgotten` ledger entry: subject and what was done, no data)
   and its projectors rewrite the rows that held the person's plaintext with the constant
   erased values (`fields.ERASED_OFFICER_COLUMNS`), which secure_delete also zeroes;
2. (after the commit) `scrub`: VACUUM, so no freed cell, free page or stale copy of the rows or
   the key is left, and the WAL truncated (scrub.py says when the VACUUM may be skipped).

The worker wires step 1 into its ledger transaction:

    with ledger.transaction() as tx:
        report = forget_in_transaction(tx.conn, subject, at)
        tx.append(PersonForgotten(subject=subject, key_deleted=report.key_deleted))
    scrubbed = scrub(conn)

`forget` below does both for a caller with no ledger of its own (and for the tests), taking
the rewrite as a callable.
"""

from __future__ import annotations

from typing import Callable

import apsw
import msgspec

from eventlog.clock import Clock, SystemClock, from_epoch
from eventlog.ledger.db import transaction, translated
from eventlog.privacy.errors import BadSubject, TransactionNeeded
from eventlog.privacy.scrub import ScrubReport, scrub, secure_delete_on
from eventlog.privacy.subjects import SUBJECT_KINDS
from eventlog.privacy.vault import KeyVault

__all__ = ["ForgetReport", "forget", "forget_in_transaction", "erasure_status", "ErasureStatus"]

Rewrite = Callable[[apsw.Connection, str], None]


class ForgetReport(msgspec.Struct, frozen=True, kw_only=True):
    """What `forget` did, for the operator and the ledger: the subject and counts, never data."""

    subject: str
    at: str
    key_deleted: bool  # False: no key (an old, plaintext-only subject, or forgotten before)
    newly_listed: bool  # False: it was on the forgotten list already
    scrub: ScrubReport | None = None

    @property
    def complete(self) -> bool:
        """Nothing left to do: the scrub ran and the WAL was truncated."""
        return self.scrub is not None and self.scrub.complete


class ErasureStatus(msgspec.Struct, frozen=True):
    subject: str
    has_key: bool
    forgotten: bool

    @property
    def erased(self) -> bool:
        """What an audit checks for each `person.forgotten`: listed, and no key left."""
        return self.forgotten and not self.has_key


def _check_subject(subject: str) -> None:
    kind, sep, rest = subject.partition(":")
    if not sep or kind not in SUBJECT_KINDS or not rest:
        raise BadSubject("not a subject: expected officer:<id>, email:<hash>, appointment:<id> or item:<hash> "
                         "(parse_subject turns an officer id or an e-mail address into one)")


def forget_in_transaction(conn: apsw.Connection, subject: str, at: str) -> ForgetReport:
    """Step 1's own part, inside the caller's write transaction (module doc)."""
    _check_subject(subject)
    if conn.getautocommit():
        raise TransactionNeeded("forgetting needs the caller's open transaction, the one that records it")
    secure_delete_on(conn)
    vault = KeyVault(conn)
    deleted = vault.delete(subject)
    listed = vault.mark_forgotten(subject, at)
    return ForgetReport(subject=subject, at=at, key_deleted=deleted, newly_listed=listed)


def forget(conn: apsw.Connection, subject: str, *, clock: Clock | None = None, rewrite: Rewrite | None = None,
           vacuum: bool = True) -> ForgetReport:
    """Forget `subject` and scrub: both steps of the module doc. Idempotent: run it again when
    the report is not `complete` (a reader held the WAL, a writer held off the VACUUM)."""
    _check_subject(subject)
    at = from_epoch((clock or SystemClock()).now())
    with transaction(conn):
        report = forget_in_transaction(conn, subject, at)
        if rewrite is not None:
            rewrite(conn, subject)
    scrubbed = scrub(conn, vacuum=vacuum)
    return msgspec.structs.replace(report, scrub=scrubbed)


def erasure_status(conn: apsw.Connection, subject: str) -> ErasureStatus:
    vault = KeyVault(conn)
    with translated(conn.filename):
        return ErasureStatus(subject, vault.key(subject) is not None, vault.is_forgotten(subject))
