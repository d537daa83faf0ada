"""The register's oddities, decided once per company.

The real register is not tidy: some companies have no appointments, some profiles carry no
``links.officers``, the officer counts come from a separate metrics service that can be missing
or lag the list. Each of these is a pure function of (seed, company number), drawn here in a
fixed order, so the profile, the officer list and the REST handler all agree on them, and each
knob only moves its own companies.
"""

from __future__ import annotations

import random

import msgspec

from .config import SimulatorConfig

__all__ = ["MAX_COUNT_LAG", "Quirks", "quirks_of"]

MAX_COUNT_LAG = 5  # how far total_results may be from the real list, either way


class Quirks(msgspec.Struct, frozen=True, kw_only=True):
    """What is odd about one company's officers."""

    no_officers_link: bool = False  # the profile has no links.officers; /officers answers 404
    zero_officers: bool = False  # no appointments at all: /officers answers 200 with items []
    metrics_missing: bool = False  # /officers answers 404 although appointments exist
    count_lag: int = 0  # metrics count this many appointments more (+) or fewer (-) than exist


def quirks_of(config: SimulatorConfig, number: str) -> Quirks:
    """The quirks of company ``number``; every draw is always made, so shares stay independent."""
    rng = random.Random(f"{config.seed}:quirks:{number}")
    no_link = rng.random() < config.no_officers_link_share
    zero = rng.random() < config.zero_officer_share
    missing = rng.random() < config.metrics_missing_share
    lagging = rng.random() < config.lagging_counts_share
    lag = rng.randint(1, MAX_COUNT_LAG) * rng.choice((-1, 1))
    return Quirks(
        no_officers_link=no_link,
        # A profile without an officers link has nothing behind it either.
        zero_officers=zero or no_link,
        metrics_missing=missing,
        count_lag=lag if lagging else 0,
    )
