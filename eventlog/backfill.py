"""Backfill batches: a list of company numbers processed at LOW priority.

The batch is one `backfill.created` entry; the projections turn it into
`processing_batches`/`batch_jobs` rows and `detected` companies, and the
worker's policy queues them behind stream work.
"""

from __future__ import annotations

import uuid
from typing import Iterable

from .clock import Clock, SystemClock, from_epoch
from .db import connect
from .entries import BackfillCreated, normalise_company_number
from .migrate import migrate
from .policy import valid_company_number

__all__ = ["parse_numbers", "create_backfill"]


def parse_numbers(lines: Iterable[str]) -> tuple[list[str], list[str]]:
    """Company numbers, normalised and de-duplicated in order; and the lines that aren't numbers."""
    numbers: dict[str, None] = {}
    rejected: list[str] = []
    for lineno, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip().strip(",")
        if not text:
            continue
        number = normalise_company_number(text) or ""
        if valid_company_number(number):
            numbers[number] = None
        else:
            rejected.append(f"line {lineno}: {text[:40]!r}")
    return list(numbers), rejected


def create_backfill(db_path: str, lines: Iterable[str], name: str, expires_days: float,
                    clock: Clock | None = None) -> tuple[str, int, list[str]]:
    import projections
    from eventlog.ledger import Ledger

    clock = clock or SystemClock()
    numbers, rejected = parse_numbers(lines)
    conn = connect(db_path)
    migrate(conn)
    ledger = Ledger(conn, clock)
    projections.attach(ledger)
    batch_id = uuid.uuid4().hex
    ledger.append(BackfillCreated(batch_id=batch_id, name=name, company_numbers=numbers,
                                  expires_at=from_epoch(clock.now() + expires_days * 86400)))
    return batch_id, len(numbers), rejected
