"""Where a stream is: timepoints, the head, retention, and when each event is published.

Timepoints are cut into blocks of ``BLOCK`` consecutive numbers. In each block the same number of
timepoints is skipped (``gap_share`` of the block, chosen by (seed, stream, block)), so the n-th
event's timepoint and the index of a timepoint are both O(1) to compute, for ever, with no state
kept. The first timepoint of each block is always used, which keeps ``first_timepoint`` the first
event.

The head is a pure function of the clock: ``backlog`` events are published at the start, then one
every ``1 / pace`` seconds. Two connections, minutes apart, therefore agree on which event sits at
which timepoint, which is what makes ``?timepoint=`` resumption testable. Each stream path
(/companies, /filings) has its own schedule and its own timepoints.
"""

from __future__ import annotations

import bisect
import functools
import math
import random

import msgspec

__all__ = ["BLOCK", "Schedule", "ScheduleSpec"]

BLOCK = 1000
_EPSILON = 1e-3  # in events: absorbs float error of epoch-sized times, so publish_time(i) counts i


class ScheduleSpec(msgspec.Struct, frozen=True, kw_only=True):
    """The numbers that shape one stream's schedule."""

    gap_tag: str  # names the stream in the gap draws, so two streams' gaps differ
    first_timepoint: int
    pace: float  # events per second once the backlog is served
    backlog: int
    gap_share: float
    retention: int | None  # timepoints behind the head still served; None: no bound by count
    retention_seconds: float  # age of the oldest event still served


class Schedule:
    """Maps event index <-> timepoint <-> publish time, and says what is still resumable."""

    def __init__(self, seed: int, spec: ScheduleSpec, start: float) -> None:
        self.seed = seed
        self.spec = spec
        self.start = start
        self._skipped_per_block = min(BLOCK - 1, round(BLOCK * spec.gap_share))
        self._per_block = BLOCK - self._skipped_per_block
        self._block = functools.lru_cache(maxsize=256)(self._make_block)

    # --- timepoints -------------------------------------------------------------------------
    def _make_block(self, block: int) -> tuple[int, ...]:
        """Offsets (0..BLOCK-1) of the used timepoints of a block, ascending."""
        rng = random.Random(f"{self.seed}:{self.spec.gap_tag}:{block}")
        skipped = set(rng.sample(range(1, BLOCK), self._skipped_per_block))
        return tuple(offset for offset in range(BLOCK) if offset not in skipped)

    def timepoint_of(self, index: int) -> int:
        """Timepoint of the ``index``-th event (0-based) ever published."""
        block, position = divmod(index, self._per_block)
        return self.spec.first_timepoint + block * BLOCK + self._block(block)[position]

    def index_at_or_after(self, timepoint: int) -> int:
        """Index of the first event whose timepoint is >= ``timepoint``."""
        offset = timepoint - self.spec.first_timepoint
        if offset <= 0:
            return 0
        block, slot = divmod(offset, BLOCK)
        return block * self._per_block + bisect.bisect_left(self._block(block), slot)

    def is_used(self, timepoint: int) -> bool:
        """Whether some event carries exactly this timepoint (False inside a gap)."""
        index = self.index_at_or_after(timepoint)
        return self.timepoint_of(index) == timepoint

    # --- the head -----------------------------------------------------------------------------
    def published_count(self, now: float) -> int:
        """How many events have been published by ``now`` (indexes 0 .. count-1)."""
        live = math.floor((now - self.start) * self.spec.pace + _EPSILON)
        return self.spec.backlog + max(0, live)

    def publish_time(self, index: int) -> float:
        """When event ``index`` was (or will be) published; the backlog lies at or before start."""
        return self.start + (index + 1 - self.spec.backlog) / self.spec.pace

    def head_timepoint(self, now: float) -> int | None:
        """Timepoint of the newest published event, or None before anything was published."""
        count = self.published_count(now)
        return self.timepoint_of(count - 1) if count else None

    def oldest_resumable(self, now: float) -> int | None:
        """Smallest ``?timepoint=`` still served; anything older is answered with 416.

        Two bounds, the stricter wins: the age of the events (the real stream keeps a few days;
        a timepoint is refused when an event at or after it has expired, since resuming there
        would skip it), and optionally a count of timepoints behind the head. None: no bound.
        """
        count = self.published_count(now)
        if count == 0:
            return None
        bound: int | None = None
        if self.spec.retention_seconds > 0:
            first_kept = (now - self.spec.retention_seconds - self.start) * self.spec.pace
            kept_from = math.ceil(first_kept + self.spec.backlog - 1 - _EPSILON)
            if kept_from > 0:  # something expired: resuming at or before it would skip events
                bound = self.timepoint_of(min(kept_from, count) - 1) + 1
        if self.spec.retention is not None:
            by_count = self.timepoint_of(count - 1) - self.spec.retention
            bound = by_count if bound is None else max(bound, by_count)
        return bound
