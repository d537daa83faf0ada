"""Backfill batches: a list of company numbers processed at LOW priority.

The batch is one `backfill.created` entry; the projections turn it into
`processing_batches`/`batch_jobs` rows and `detected` companies, and the
worker's policy queues them behind stream work.
"""

from __future__ import annotations

import re
import uuid
from typing import Iterable, Iterator

from eventlog.clock import Clock, SystemClock, from_epoch
from eventlog.ledger.db import connect
from eventlog.ledger.entries import BackfillCreated, normalise_company_number
from eventlog.errors import ConfigError
from eventlog.ledger.migrate import migrate
from eventlog.worker.policy import valid_company_number

__all__ = ["parse_numbers", "create_backfill"]


_NEWLINE = re.compile(rb"\r\n|\r|\n")


def _lines(source: Iterable[str | bytes]) -> Iterator[str | bytes]:
    """Lines of a text or binary source; a binary one split on every newline convention.

    Reading binary (to name a line that isn't UTF-8) loses Python's universal
    newlines, and a list saved by an old Mac spreadsheet ends its lines with a
    bare CR: those must still be lines.
    """
    for chunk in source:
        if isinstance(chunk, bytes):
            parts = _NEWLINE.split(chunk)
            yield from (parts[:-1] if parts and parts[-1] == b"" else parts)
        else:
            yield chunk


def parse_numbers(lines: Iterable[str | bytes]) -> tuple[list[str], list[str]]:
    """Company numbers, normalised and de-duplicated in order; and the lines that aren't numbers."""
    numbers: dict[str, None] = {}
    rejected: list[str] = []
    for lineno, raw in enumerate(_lines(lines), start=1):
        try:  # bytes (the CLI reads the file binary) are decoded line by line, to name the line
            line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError:
            raise ConfigError(f"{getattr(lines, 'name', 'the list')}: line {lineno} is not UTF-8 text "
                              "(a backfill is company numbers, one per line)") from None
        text = line.split("#", 1)[0].strip().strip(",")
        if not text:
            continue
        number = normalise_company_number(text) or ""
        if valid_company_number(number):
            numbers[number] = None
        else:
            rejected.append(f"line {lineno}: {text[:40]!r}")
    return list(numbers), rejected


def create_backfill(db_path: str, lines: Iterable[str | bytes], name: str, expires_days: float,
                    clock: Clock | None = None) -> tuple[str, int, list[str]]:
    import projections
    from eventlog.ledger.store import Ledger

    clock = clock or SystemClock()
    numbers, rejected = parse_numbers(lines)
    if not numbers:  # nothing to queue: append nothing (a batch is a permanent ledger entry)
        raise ConfigError(f"{getattr(lines, 'name', 'the list')}: no company numbers found"
                          + (f" ({len(rejected)} lines rejected: {', '.join(rejected[:3])})" if rejected else "")
                          + "; nothing was queued")
    conn = connect(db_path)
    migrate(conn)
    ledger = Ledger(conn, clock)
    projections.attach(ledger)
    from eventlog.ops.fact_log import attach as log_appends

    log_appends(ledger)
    batch_id = uuid.uuid4().hex
    ledger.append(BackfillCreated(batch_id=batch_id, name=name, company_numbers=numbers,
                                  expires_at=from_epoch(clock.now() + expires_days * 86400)))
    return batch_id, len(numbers), rejected
