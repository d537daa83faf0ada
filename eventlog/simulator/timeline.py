"""The /companies stream: which company-profile event sits at each timepoint.

The schedule (schedule.py) says where the head is; this module says what each event is about.
Everything but ``published_at`` depends on (seed, timepoint) alone, so an event resumed minutes
later is byte for byte the one served before.
"""

from __future__ import annotations

import random

import msgspec

from . import names
from .companies import Universe
from .config import SimulatorConfig
from .encoding import encode_line
from .models import EventMeta, StreamEvent
from .published import draw_published_at
from .schedule import BLOCK, Schedule, ScheduleSpec

__all__ = ["BLOCK", "COMPANIES_PATH", "Feed", "Timeline", "first_seen"]

COMPANIES_PATH = "/companies"


class Feed(Schedule):
    """A stream path's schedule plus its events: what the stream handler serves."""

    path: str

    def __init__(self, config: SimulatorConfig, universe: Universe, spec: ScheduleSpec,
                 start: float) -> None:
        super().__init__(config.seed, spec, start)
        self.config = config
        self.universe = universe

    def number_at(self, index: int) -> str:
        """The company the ``index``-th event is about (cheaper than building the event)."""
        raise NotImplementedError

    def event_at(self, index: int) -> msgspec.Struct:
        raise NotImplementedError

    def line_at(self, index: int) -> bytes:
        """The ``index``-th event as the stream writes it (one line, newline included)."""
        return encode_line(self.event_at(index), null_fields=self.config.null_fields)


class Timeline(Feed):
    """Maps event index <-> timepoint <-> publish time, and builds the /companies events."""

    path = COMPANIES_PATH

    def __init__(self, config: SimulatorConfig, universe: Universe, start: float) -> None:
        spec = ScheduleSpec(
            gap_tag="gaps",
            first_timepoint=config.first_timepoint,
            pace=config.events_per_second,
            backlog=config.backlog_events,
            gap_share=config.gap_share,
            retention=config.retention,
            retention_seconds=config.retention_seconds,
        )
        super().__init__(config, universe, spec, start)

    def _draws(self, timepoint: int) -> tuple[random.Random, str]:
        """The event's generator after its first draw, and the company that draw chose."""
        rng = random.Random(f"{self.config.seed}:event:{timepoint}")
        numbers = self.universe.stream_numbers
        return rng, numbers[rng.randrange(len(numbers))]

    def number_at(self, index: int) -> str:
        return self._draws(self.timepoint_of(index))[1]

    def event_at(self, index: int) -> StreamEvent:
        """The event with this index: content from (seed, timepoint), time from the schedule."""
        timepoint = self.timepoint_of(index)
        return self.event_for(timepoint, self.publish_time(index))

    def event_for(self, timepoint: int, published: float) -> StreamEvent:
        """The event at ``timepoint``; everything but ``published_at`` depends on (seed, timepoint)."""
        cfg = self.config
        rng, number = self._draws(timepoint)
        deleted = rng.random() < cfg.deleted_share
        fields = rng.choice(names.FIELDS_CHANGED) if rng.random() < 0.5 else None
        without_data = rng.random() < cfg.deleted_without_data_share
        stamp = draw_published_at(
            rng, published, cfg.published_at_fraction_share, cfg.published_at_12h_share
        )
        return StreamEvent(
            resource_kind="company-profile",
            resource_uri=f"/company/{number}",
            resource_id=number,
            data=None if deleted and without_data else self.universe.profile(number),
            event=EventMeta(
                fields_changed=None if deleted else fields,
                timepoint=timepoint,
                published_at=stamp,
                type="deleted" if deleted else "changed",
            ),
        )


def first_seen(feed: Feed, stop: int) -> dict[str, int]:
    """For each company the first ``stop`` events speak of, the index of the first one.

    One linear pass, for tests that must know which stream spoke of a company first.
    """
    first: dict[str, int] = {}
    for index in range(stop):
        first.setdefault(feed.number_at(index), index)
    return first
