"""The pieces of one Snov.io simulator instance, and the app key handlers find them under."""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web

from eventlog.simulator.snov.config import SnovSimulatorConfig
from eventlog.simulator.snov.directory import Directory
from eventlog.simulator.snov.ratelimit import SlidingWindowLimit
from eventlog.simulator.snov.record import SnovSimulatorState
from eventlog.simulator.snov.tasks import TaskBook
from eventlog.simulator.snov.tokens import TokenBook

__all__ = ["Clock", "SNOV_SIMULATOR", "SnovSimulator"]

Clock = Callable[[], float]


class SnovSimulator:
    """Config, clock, data, tokens, tasks, limit and record of one running simulator.

    The clock is injectable so tests expire tokens and slide windows without sleeping.
    """

    def __init__(self, config: SnovSimulatorConfig, clock: Clock = time.time) -> None:
        self.config = config
        self.clock = clock
        self.state = SnovSimulatorState(config.starting_balance)
        self.directory = Directory(config)
        self.tokens = TokenBook(config.seed, config.token_lifetime)
        self.tasks = TaskBook(config, self.directory, self.state)
        self.limit = SlidingWindowLimit(config.rate_limit_requests, config.rate_limit_window)


SNOV_SIMULATOR = web.AppKey("chledger_snov_simulator", SnovSimulator)
