"""How long a stream connection may live: the nightly drop and the 24-hour cap.

Companies House closes every stream connection once a night (somewhere between about 02:00 and
03:00 UTC; the moment of each night is drawn from (seed, date), and every connection open at that
moment ends together) and never lets one live longer than a day. Both are clean closes: the
response ends, and the client must resume from its last timepoint. Times are the simulator's
clock, so a test moves past a night without sleeping.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime

from .config import DAY, SimulatorConfig

__all__ = ["MAX_AGE", "NIGHTLY", "connection_deadline", "nightly_drop_at"]

NIGHTLY = "nightly"
MAX_AGE = "max_age"


def nightly_drop_at(config: SimulatorConfig, day_start: float) -> float:
    """The moment of the nightly drop on the UTC day starting at ``day_start`` (epoch seconds)."""
    label = datetime.fromtimestamp(day_start, UTC).date().isoformat()
    start, end = config.nightly_drop_window
    draw = random.Random(f"{config.seed}:nightly:{label}").random()
    return day_start + start + draw * (end - start)


def _next_nightly_drop(config: SimulatorConfig, after: float) -> float:
    day_start = math.floor(after / DAY) * DAY
    moment = nightly_drop_at(config, day_start)
    if moment <= after:
        moment = nightly_drop_at(config, day_start + DAY)
    return moment


def connection_deadline(config: SimulatorConfig, admitted_at: float) -> tuple[float, str]:
    """When a connection admitted at ``admitted_at`` ends, and why; (inf, "") if never."""
    deadline, reason = math.inf, ""
    if config.max_connection_seconds > 0:
        deadline, reason = admitted_at + config.max_connection_seconds, MAX_AGE
    if config.nightly_drop:
        nightly = _next_nightly_drop(config, admitted_at)
        if nightly < deadline:
            deadline, reason = nightly, NIGHTLY
    return deadline, reason
