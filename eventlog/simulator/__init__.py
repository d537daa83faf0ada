"""A Companies House simulator on loopback: streaming API, REST profile/officers, rate limits.

It lets the worker run with no key and no network, and lets tests judge a client from the
server's side (``SimulatorState.requests`` + ``max_in_any_window``). Everything is deterministic
from ``SimulatorConfig.seed`` and an injectable clock.
"""

from .app import RunningSimulator, build_app, running_simulator, serve_forever
from .companies import STRIKE_OFF_DETAIL, Universe, is_well_formed
from .config import SimulatorConfig, window_label
from .context import RECORD, SIMULATOR, STATE, Simulator
from .ratelimit import FixedWindowLimiter, RateDecision
from .record import RequestRecord, SimulatorState, StreamConnection, max_in_any_window
from .timeline import Timeline

__all__ = [
    "RECORD",
    "SIMULATOR",
    "STATE",
    "STRIKE_OFF_DETAIL",
    "FixedWindowLimiter",
    "RateDecision",
    "RequestRecord",
    "RunningSimulator",
    "Simulator",
    "SimulatorConfig",
    "SimulatorState",
    "StreamConnection",
    "Timeline",
    "Universe",
    "build_app",
    "is_well_formed",
    "max_in_any_window",
    "running_simulator",
    "serve_forever",
    "window_label",
]
