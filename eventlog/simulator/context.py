"""The pieces of one simulator instance, and the app keys under which handlers find them."""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web

from .companies import Universe
from .config import SimulatorConfig
from .connects import ConnectPacer
from .filings import FilingsTimeline
from .ratelimit import FixedWindowLimiter
from .record import RequestRecord, SimulatorState
from .timeline import Feed, Timeline

__all__ = ["Clock", "RECORD", "SIMULATOR", "STATE", "Simulator"]

Clock = Callable[[], float]


class Simulator:
    """Config, clock, data (the universe, one feed per stream path) and counters of a simulator.

    The clock is injectable so tests can move time (windows, the stream head) without sleeping;
    the timeline's start is read from it once, here, which makes the head a pure function of the
    time elapsed since the app was built.
    """

    def __init__(self, config: SimulatorConfig, clock: Clock = time.time) -> None:
        self.config = config
        self.clock = clock
        self.universe = Universe(config)
        start = clock()
        self.timeline = Timeline(config, self.universe, start=start)
        self.filings = FilingsTimeline(config, self.universe, start=start)
        self.feeds: dict[str, Feed] = {f.path: f for f in (self.timeline, self.filings)}
        self.limiter = FixedWindowLimiter(config.rate_limit_requests, config.rate_limit_window)
        # The IP limit is the gateway's: one window per client address, whatever the key.
        self.ip_limiter = (
            FixedWindowLimiter(config.ip_limit_requests, config.ip_limit_window)
            if config.ip_limit_requests > 0
            else None
        )
        self.connects = ConnectPacer(config.stream_connect_min_interval,
                                     config.stream_connect_per_path)
        self.state = SimulatorState()


SIMULATOR = web.AppKey("chledger_simulator", Simulator)
STATE = web.AppKey("chledger_simulator_state", SimulatorState)
RECORD = web.AppKey("chledger_simulator_record", list[RequestRecord])
