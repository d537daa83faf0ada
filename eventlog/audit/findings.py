"""`Findings`: everything one audit measured in the ledger, before it is judged.

`run.collect` gathers them; `assemble.build_report` turns them into the `Report` (and the
verdict); `plot.write_plot` draws from them, because the plot needs the per-window profile,
which the report leaves out. They live in a module of their own so that those three depend on
this one type and not on each other.
"""

from __future__ import annotations

from array import array

import msgspec

from eventlog.audit.scan import RangeScan, TableIssue
from eventlog.audit.settle import Cooldown
from eventlog.audit.snov import SnovFindings
from eventlog.audit.windows import WindowStats

__all__ = ["Findings"]


class Findings(msgspec.Struct):
    """What the range scans found, merged and settled across ranges. Times are µs since the
    epoch, positions ledger ids; `since`/`until` canonical ISO (or None: the whole ledger)."""

    database: str
    since: str | None
    until: str | None
    limit: int
    window: float  # seconds
    limit_source: str  # "option", "worker.started" or "default"
    scans: list[RangeScan]  # one per range of positions, in order
    head: int  # the last position when the audit started
    times: array  # the send times within since/until, in ledger order
    positions: array  # the position of each of those sends
    orphans: list[tuple[int, str, str]]  # (position, request_id, received_at): sends never queued
    cooldowns: list[Cooldown]  # each 429/403 within since/until, judged
    pending_checked: int  # table rows of sends still waiting at a range's end, checked at the end
    pending_issues: list[TableIssue]
    stats: WindowStats
    chain_engine: str = "python"  # "c" when the chain and facts were gathered in C
    chain_engine_reason: str | None = None  # why not in C
    in_order: bool = False  # the send times ascend (as they do when one clock stamps the ledger)
    snov: SnovFindings | None = None  # Snov.io's section (None: no snov.* entry in the ledger)
    # stream_gaps: for each gap's ledger position, the snapshot that reconciled it (None: unresolved)
    gap_reconciled_by: dict[int, str | None] = {}
