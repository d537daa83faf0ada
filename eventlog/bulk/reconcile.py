"""Reconciliation: what a bulk snapshot read to its end changes in the pipeline.

The snapshot is the register as it stood on its date, so it shows what the stream may have
missed (an event lost in a gap, a day the worker was off). Its decisions are appended as
entries, like the worker's policies, and computed from the projections inside the same
`BEGIN IMMEDIATE` that appends them, so a worker running beside the import can't slip a change
in between:

- companies of interest in the snapshot that the ledger holds neither as done (completed with
  officers) nor as under way become ONE backfill batch, `backfill.created` with
  `of_interest_as_of`: their status is known, so they go straight to their officers, at LOW
  priority (a company known only from the snapshot is `bulk`), behind every stream request;
- companies the ledger holds as of interest, officers still to come, that the snapshot shows
  are not any more (their row says another status, or a whole snapshot doesn't list them: no
  longer a live company) leave the pipeline: `company.completed` with the reason; their queued
  requests go with them, one already in flight finishes;
- a company whose row holds newer news than the snapshot (a stream event published, or a REST
  profile received, on or after the snapshot's date) is left to that news, either way;
- a whole snapshot (every part read) reconciles the stream's gaps recorded before its date:
  `stream.gaps_reconciled`, appended when the streams have recorded any gap.
"""

from __future__ import annotations

import uuid

import apsw
import msgspec

from eventlog.clock import from_epoch
from eventlog.ledger.entries import BackfillCreated, CompanyCompleted, Entry, StreamGapsReconciled
from projections.projectors import companies, processing_state, stream_metadata

__all__ = ["Seen", "Reconciliation", "reconcile", "decisions", "BATCH_NAME"]

BATCH_NAME = "bulk snapshot {date}"


class Seen(msgspec.Struct, kw_only=True):
    """What the read found that reconciliation needs."""

    snapshot_date: str
    files: list[str]
    whole: bool  # every part of the snapshot was read
    of_interest: list[str] = msgspec.field(default_factory=list)  # in file order, each once
    watched_present: set[str] = msgspec.field(default_factory=set)  # watched companies the file lists
    watched_not_of_interest: dict[str, str] = msgspec.field(default_factory=dict)  # number -> what it shows


class Reconciliation(msgspec.Struct, frozen=True, kw_only=True):
    batch: list[str]  # companies for the backfill batch, in file order
    left: list[tuple[str, str]]  # (company, reason) leaving the pipeline
    in_hand: int  # of interest, but done or under way already
    newer: int  # of interest or watched, but holding newer news than the snapshot
    gaps: int  # stream gaps recorded so far (reconciled when the snapshot is whole)


def reconcile(conn: apsw.Connection | None, seen: Seen, watched: frozenset[str]) -> Reconciliation:
    """The decisions a snapshot calls for, from the projections as they are now.

    `watched`: the companies held as of interest when the read began (`awaiting_officers`);
    only those still awaiting their officers now can leave. `conn` None: an empty database.
    """
    day = seen.snapshot_date
    if conn is None:
        return Reconciliation(batch=list(seen.of_interest), left=[], in_hand=0, newer=0, gaps=0)
    hand = processing_state.in_hand(conn, seen.of_interest)
    candidates = [n for n in seen.of_interest if n not in hand]
    leaving = dict(seen.watched_not_of_interest)
    if seen.whole:
        for number in watched - seen.watched_present:
            leaving[number] = "no row for it (no longer a live company)"
    still = set(processing_state.awaiting_officers(conn)) & leaving.keys()
    newer = companies.newer_than(conn, candidates + sorted(still), day)
    batch = [n for n in candidates if n not in newer]
    left = [(n, f"no longer of interest: the bulk snapshot of {day} shows {leaving[n]}")
            for n in sorted(still) if n not in newer]
    gaps = sum(r.gaps for r in stream_metadata.stream_rows(conn))
    return Reconciliation(batch=batch, left=left, in_hand=len(hand), newer=len(newer), gaps=gaps)


def decisions(rec: Reconciliation, seen: Seen, *, now: float, expires_days: float) -> list[Entry]:
    """The entries that carry the reconciliation out (after the snapshot's own entry)."""
    out: list[Entry] = []
    day = seen.snapshot_date
    if rec.batch:
        out.append(BackfillCreated(batch_id=uuid.uuid4().hex, name=BATCH_NAME.format(date=day),
                                   company_numbers=rec.batch, expires_at=from_epoch(now + expires_days * 86400),
                                   of_interest_as_of=day))
    out.extend(CompanyCompleted(company_number=n, reason=reason) for n, reason in rec.left)
    if seen.whole and rec.gaps:
        out.append(StreamGapsReconciled(snapshot_date=day, snapshot=", ".join(seen.files)))
    return out
