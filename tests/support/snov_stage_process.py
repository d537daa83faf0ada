"""One enrichment stage in a process of its own, for the two-process test:

    python -m tests.support.snov_stage_process DB BASE_URL SECONDS LIMIT WINDOW

It runs the real stage on the database for SECONDS against the Snov.io simulator at BASE_URL
(which the test serves in its own process), then exits 0.
"""

from __future__ import annotations

import asyncio
import sys

from tests.support.snov_stage import RealClock, open_db, run_stage, stage_settings


def main(db: str, base_url: str, seconds: str, limit: str, window: str) -> None:
    clock = RealClock()
    _, ledger = open_db(db, clock)
    settings = stage_settings(base_url, snov_rate_limit=int(limit), snov_rate_window=float(window))
    asyncio.run(run_stage(ledger, settings, clock, seconds=float(seconds)))


if __name__ == "__main__":
    main(*sys.argv[1:])
