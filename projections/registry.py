"""Every projector, in the order they run, and how `--only` names one.

Order matters once: `companies` runs before `company_processing_state`, whose
rows refer to theirs. A projector is a module with `NAME`, `VERSION`, the
`TABLES` it owns (replay drops and rebuilds exactly these), `LOOKUP_INDEXES`
(indexes its own reads need while it runs; the others are rebuilt after a
replay has loaded the rows, which is much faster than maintaining them row by
row) and `apply(conn, batch)`, a pure function of the batch and its own tables.
"""

from __future__ import annotations

from types import ModuleType
from typing import Sequence

from eventlog.errors import ProjectionError

from projections.projectors import (bulk_snapshots, companies, officers, processing_state, rate_limit_log,
                                    request_queue, stream_events_log, stream_gaps, stream_metadata)
from projections.projectors import domains, emails, snov_request_log, snov_tasks

__all__ = ["PROJECTORS", "NAMES", "select", "owner_of"]

PROJECTORS: tuple[ModuleType, ...] = (
    companies,
    processing_state,
    officers,
    rate_limit_log,
    request_queue,
    stream_metadata,
    stream_events_log,
    stream_gaps,
    bulk_snapshots,
    snov_request_log,
    snov_tasks,
    domains,
    emails,
)
NAMES = tuple(p.NAME for p in PROJECTORS)


def owner_of(name: str) -> ModuleType | None:
    """The projector called `name`, or the one owning the table or view called `name`."""
    for p in PROJECTORS:
        if name == p.NAME or name in p.TABLES or name in getattr(p, "VIEWS", ()):
            return p
    return None


def select(only: str | Sequence[str] | None = None) -> list[ModuleType]:
    """The projectors to run, in registry order; `only` is a name, a table name, or a list of them."""
    if only is None:
        return list(PROJECTORS)
    wanted = [only] if isinstance(only, str) else list(only)
    chosen = set()
    for name in wanted:
        p = owner_of(name.strip())
        if p is None:
            raise ProjectionError(
                f"no projection named {name!r}: choose one of {', '.join(NAMES)} (or one of their tables)")
        chosen.add(p.NAME)
    return [p for p in PROJECTORS if p.NAME in chosen]
