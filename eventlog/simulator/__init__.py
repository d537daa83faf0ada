"""A Companies House simulator on loopback: two streams, REST profile/officers, limits, faults.

It lets the worker run with no key and no network, and lets tests judge a client from the
server's side (``SimulatorState``: requests per key, the busiest window, stream connects per path
and key, the 401/403/429s served). Everything is deterministic from ``SimulatorConfig.seed`` and an
injectable clock. The real service's habits are knobs of ``SimulatorConfig``: separate stream and
REST keys, ``deleted`` events without data, stripped nulls, three ``published_at`` forms,
officer lists with zero items, inactive officers and lagging counts, profiles without an officers
link, nightly drops and a 24-hour cap, gateway pages, connect pacing, the IP limit, retention,
and the /filings stream with its first Gazette notices.
"""

from .app import RunningSimulator, build_app, running_simulator, serve_forever
from .companies import CEASED_STATUSES, STRIKE_OFF_DETAIL, Universe, is_well_formed
from .config import SimulatorConfig, window_label
from .context import RECORD, SIMULATOR, STATE, Simulator
from .filings import FILINGS_PATH, GAZETTE_TYPES, FilingsTimeline, is_first_gazette_notice
from .lifetime import connection_deadline, nightly_drop_at
from .metrics import OfficerCounts, officer_counts
from .published import PublishedForm, format_published_at
from .quirks import Quirks
from .ratelimit import FixedWindowLimiter, RateDecision
from .record import RequestRecord, SimulatorState, StreamConnection, max_in_any_window
from .timeline import COMPANIES_PATH, Feed, Timeline, first_seen

__all__ = [
    "CEASED_STATUSES",
    "COMPANIES_PATH",
    "FILINGS_PATH",
    "GAZETTE_TYPES",
    "RECORD",
    "SIMULATOR",
    "STATE",
    "STRIKE_OFF_DETAIL",
    "Feed",
    "FilingsTimeline",
    "FixedWindowLimiter",
    "OfficerCounts",
    "PublishedForm",
    "Quirks",
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
    "connection_deadline",
    "first_seen",
    "format_published_at",
    "is_first_gazette_notice",
    "is_well_formed",
    "max_in_any_window",
    "nightly_drop_at",
    "officer_counts",
    "running_simulator",
    "serve_forever",
    "window_label",
]
