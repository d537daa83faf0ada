"""The three shapes the real stream's ``published_at`` has had.

- ``plain``: ``2025-01-30T10:00:00``: UTC, whole seconds, no offset. Today's form, written by
  Companies House's services with the pattern ``yyyy-MM-dd'T'HH:mm:ss`` in UTC.
- ``fraction``: ``2023-11-04T14:33:29.123Z``: older events, with milliseconds and a ``Z``
  (what ``Instant.toString()`` writes).
- ``twelve_hour``: ``2025-01-06T02:33:29`` for 14:33:29 UTC: for some weeks around new year 2025
  the hour was written on a 12-hour clock, the ``hh`` of the same pattern mistyped for ``HH``.
  There is no AM/PM marker, so the afternoon is indistinguishable from the night, and the hour
  after midnight reads ``12``. Such a stamp can run backwards against the timepoints; only the
  timepoint orders events.
"""

from __future__ import annotations

import enum
import random
from datetime import UTC, datetime

__all__ = ["PublishedForm", "draw_published_at", "format_published_at"]


class PublishedForm(enum.Enum):
    PLAIN = "plain"
    FRACTION = "fraction"
    TWELVE_HOUR = "twelve_hour"


def format_published_at(epoch_seconds: float, form: PublishedForm, millis: int = 0) -> str:
    """``epoch_seconds`` as a ``published_at`` of the given form (``millis`` for ``fraction``)."""
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    if form is PublishedForm.FRACTION:
        return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"
    if form is PublishedForm.TWELVE_HOUR:
        return moment.strftime("%Y-%m-%dT%I:%M:%S")  # %I: 01-12, midnight's hour is 12
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def draw_published_at(rng: random.Random, epoch_seconds: float, fraction_share: float,
                      twelve_hour_share: float) -> str:
    """A ``published_at`` whose form is drawn from ``rng``: two draws, always both made."""
    draw, millis = rng.random(), rng.randrange(1000)
    if draw < fraction_share:
        form = PublishedForm.FRACTION
    elif draw < fraction_share + twelve_hour_share:
        form = PublishedForm.TWELVE_HOUR
    else:
        form = PublishedForm.PLAIN
    return format_published_at(epoch_seconds, form, millis)
