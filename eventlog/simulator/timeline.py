"""Where the stream is: timepoints, the head, and the event at each timepoint.

Timepoints are cut into blocks of ``BLOCK`` consecutive numbers. In each block the same number of
timepoints is skipped (``gap_share`` of the block, chosen by (seed, block)), so the n-th event's
timepoint and the index of a timepoint are both O(1) to compute, for ever, with no state kept.
The first timepoint of each block is always used, which keeps ``first_timepoint`` the first event.

The head is a pure function of the clock: ``backlog_events`` events are published at the start,
then one every ``1 / events_per_second`` seconds. Two connections, minutes apart, therefore agree
on which event sits at which timepoint, which is what makes ``?timepoint=`` resumption testable.
"""

from __future__ import annotations

import bisect
import functools
import math
import random

from . import names
from .companies import Universe
from .config import SimulatorConfig
from .dates import utc_stamp
from .models import EventMeta, StreamEvent

__all__ = ["BLOCK", "Timeline"]

BLOCK = 1000
_EPSILON = 1e-3  # in events: absorbs float error of epoch-sized times, so publish_time(i) counts i


class Timeline:
    """Maps event index <-> timepoint <-> publish time, and builds the event at a timepoint."""

    def __init__(self, config: SimulatorConfig, universe: Universe, start: float) -> None:
        self.config = config
        self.universe = universe
        self.start = start
        self._skipped_per_block = min(BLOCK - 1, round(BLOCK * config.gap_share))
        self._per_block = BLOCK - self._skipped_per_block
        self._block = functools.lru_cache(maxsize=256)(self._make_block)

    # --- timepoints -------------------------------------------------------------------------
    def _make_block(self, block: int) -> tuple[int, ...]:
        """Offsets (0..BLOCK-1) of the used timepoints of a block, ascending."""
        rng = random.Random(f"{self.config.seed}:gaps:{block}")
        skipped = set(rng.sample(range(1, BLOCK), self._skipped_per_block))
        return tuple(offset for offset in range(BLOCK) if offset not in skipped)

    def timepoint_of(self, index: int) -> int:
        """Timepoint of the ``index``-th event (0-based) ever published."""
        block, position = divmod(index, self._per_block)
        return self.config.first_timepoint + block * BLOCK + self._block(block)[position]

    def index_at_or_after(self, timepoint: int) -> int:
        """Index of the first event whose timepoint is >= ``timepoint``."""
        offset = timepoint - self.config.first_timepoint
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
        live = math.floor((now - self.start) * self.config.events_per_second + _EPSILON)
        return self.config.backlog_events + max(0, live)

    def publish_time(self, index: int) -> float:
        """When event ``index`` was (or will be) published; the backlog lies at or before start."""
        return self.start + (index + 1 - self.config.backlog_events) / self.config.events_per_second

    def head_timepoint(self, now: float) -> int | None:
        """Timepoint of the newest published event, or None before anything was published."""
        count = self.published_count(now)
        return self.timepoint_of(count - 1) if count else None

    def oldest_resumable(self, now: float) -> int | None:
        """Smallest ``?timepoint=`` still served; anything older is answered with 416."""
        head = self.head_timepoint(now)
        return None if head is None else head - self.config.retention

    # --- events ---------------------------------------------------------------------------------
    def event_at(self, index: int) -> StreamEvent:
        """The event with this index: content from (seed, timepoint), time from the timeline."""
        timepoint = self.timepoint_of(index)
        return self.event_for(timepoint, self.publish_time(index))

    def event_for(self, timepoint: int, published: float) -> StreamEvent:
        """The event at ``timepoint``; everything but ``published_at`` depends on (seed, timepoint)."""
        rng = random.Random(f"{self.config.seed}:event:{timepoint}")
        number = self.universe.numbers[rng.randrange(len(self.universe))]
        deleted = rng.random() < self.config.deleted_share
        fields = rng.choice(names.FIELDS_CHANGED) if rng.random() < 0.5 else None
        return StreamEvent(
            resource_kind="company-profile",
            resource_uri=f"/company/{number}",
            resource_id=number,
            data=self.universe.profile(number),
            event=EventMeta(
                timepoint=timepoint,
                published_at=utc_stamp(published),
                type="deleted" if deleted else "changed",
                fields_changed=None if deleted else fields,
            ),
        )
