"""Settings of the Companies House simulator.

Every knob lives in one frozen struct so that a test can say exactly which world it wants, and
so that two simulators built from equal configs serve byte-identical events and profiles.
The defaults are the real service's behaviour where it is known (separate keys, a live pace of
about 0.5 events/s, 3 days of retention, nightly drops, a 24 h connection cap, the IP limit);
faults that would make every test flaky (gateway pages, connect pacing) default to off.
"""

from __future__ import annotations

import msgspec

__all__ = ["DAY", "SimulatorConfig", "window_label"]

DAY = 86_400.0
_SHARES = (
    "strike_off_share",
    "deleted_share",
    "deleted_without_data_share",
    "gap_share",
    "published_at_fraction_share",
    "published_at_12h_share",
    "gazette_share",
    "filings_only_share",
    "liquidation_share",
    "dissolved_share",
    "closed_share",
    "converted_closed_share",
    "zero_officer_share",
    "no_officers_link_share",
    "metrics_missing_share",
    "lagging_counts_share",
    "error_5xx_share",
    "rest_gateway_error_share",
    "stream_gateway_error_share",
    "malformed_share",
    "disconnect_mid_line_share",
)
_POSITIVE = ("events_per_second", "heartbeat_interval", "rate_limit_window", "ip_limit_window")
_NON_NEGATIVE = (
    "backlog_events",
    "first_timepoint",
    "filings_first_timepoint",
    "retention_seconds",
    "close_after_events",
    "stall_after_events",
    "max_connection_seconds",
    "stream_connect_min_interval",
    "ip_limit_requests",
    "latency_ms",
    "storm_after_requests",
    "storm_requests",
)


class SimulatorConfig(msgspec.Struct, kw_only=True, frozen=True):
    """What the simulated Companies House looks like and how badly it behaves.

    All randomness is derived from ``seed`` plus a stable identity (a timepoint, a company number,
    a connection or request sequence number, a day), never from global state, so the same seed
    always gives the same universe of companies and the same event at the same timepoint.
    """

    seed: int = 0
    api_key: str = "sim-key"
    # Companies House issues stream keys and REST keys separately and they are not
    # interchangeable: the stream answers 401 to a REST key and the REST API 401 to a stream key.
    stream_key: str = "sim-stream-key"

    # --- /companies: what the stream says -------------------------------------------------------
    strike_off_share: float = 0.3  # companies with active-proposal-to-strike-off
    deleted_share: float = 0.02  # events whose event.type is "deleted"
    deleted_without_data_share: float = 0.5  # of those, the ones that carry no "data" at all
    # Since early 2025 the stream strips null fields (absent, not null); True serves the older
    # shape, with explicit nulls for every optional field the record lacks.
    null_fields: bool = False
    published_at_fraction_share: float = 0.0  # "2023-11-04T14:33:29.123Z" (older events)
    published_at_12h_share: float = 0.0  # "2025-01-06T02:33:29" for 14:33:29 (winter 2024/25)
    events_per_second: float = 0.5  # live pace once the backlog is served (real: ~48k a day)
    backlog_events: int = 1000  # events already published behind the head at start
    first_timepoint: int = 1000
    gap_share: float = 0.05  # share of timepoints that never carry an event
    retention: int | None = None  # timepoints behind the head still resumable; None: no bound
    retention_seconds: float = 3 * DAY  # age of the oldest resumable event (else 416); 0: no bound
    heartbeat_interval: float = 5.0  # real seconds of idleness before a bare "\n"
    close_after_events: int = 0  # clean close of a stream connection every N events; 0 = never
    stall_after_events: int = 0  # after N events a connection goes silent (no heartbeat either); 0 = never

    # --- /filings --------------------------------------------------------------------------------
    filings_first_timepoint: int = 1_000_000  # its own timepoints, unrelated to /companies'
    filings_events_per_second: float | None = None  # None: twice events_per_second
    filings_backlog_events: int | None = None  # None: twice backlog_events
    gazette_share: float = 0.05  # filings that are a first Gazette notice (GAZ1 / GAZ1(A))
    filings_only_share: float = 0.1  # strike-off companies never seen on /companies

    # --- connections -------------------------------------------------------------------------------
    nightly_drop: bool = True  # every stream connection is closed once a night ...
    nightly_drop_window: tuple[float, float] = (7_200.0, 10_800.0)  # ... in [02:00, 03:00) UTC
    max_connection_seconds: float = DAY  # no connection outlives this; 0 = no cap
    stream_connect_min_interval: float = 0.0  # 429 to a connect sooner after the last; 0 = off
    # The interval is per key, across both paths (the stricter reading: a client following
    # /companies and /filings must stagger its connects); True makes it per (key, path).
    stream_connect_per_path: bool = False

    # --- the register: statuses and officers ---------------------------------------------------------
    company_count: int = 5000  # size of the universe of known companies
    liquidation_share: float = 0.05
    dissolved_share: float = 0.10
    closed_share: float = 0.01
    converted_closed_share: float = 0.01
    zero_officer_share: float = 0.02  # companies with no appointments at all (200, items [])
    no_officers_link_share: float = 0.01  # profiles without links.officers (/officers is 404)
    metrics_missing_share: float = 0.0  # /officers answers 404: the metrics service has nothing
    lagging_counts_share: float = 0.05  # total_results and counts off by 1-5 from the items

    # --- REST limits, the one thing the product must never breach ---------------------------------
    rate_limit_requests: int = 600
    rate_limit_window: float = 300.0
    ip_limit_requests: int = 2000  # per IP, whatever the key: past it 403; 0 = no IP limit
    ip_limit_window: float = 300.0

    # --- faults -----------------------------------------------------------------------------------
    latency_ms: float = 0.0
    error_5xx_share: float = 0.0  # REST answers 500/502/503 from the service
    rest_gateway_error_share: float = 0.0  # REST answers an HTML 502/503/504 gateway page
    stream_gateway_error_share: float = 0.0  # stream connects answered with a gateway page
    malformed_share: float = 0.0  # stream lines replaced with garbage
    disconnect_mid_line_share: float = 0.0  # write half a line, then drop the connection
    storm_after_requests: int = 0  # 429 storm: after this many counted REST requests ...
    storm_requests: int = 0  # ... answer 429 to this many (0 = no storm)

    def __post_init__(self) -> None:
        for name in _SHARES:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
        for name in _POSITIVE:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        for name in _NON_NEGATIVE:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.filings_events_per_second is not None and self.filings_events_per_second <= 0:
            raise ValueError("filings_events_per_second must be positive")
        if self.filings_backlog_events is not None and self.filings_backlog_events < 0:
            raise ValueError("filings_backlog_events must not be negative")
        if self.retention is not None and self.retention < 0:
            raise ValueError("retention must not be negative")
        if self.rate_limit_requests < 1:
            raise ValueError("rate_limit_requests must be at least 1")
        if self.company_count < 1:
            raise ValueError("company_count must be at least 1")
        for name in ("api_key", "stream_key"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                # None would match a request without credentials and let it in
                raise ValueError(f"{name} must be a non-empty string")
        if self.stream_key == self.api_key:
            raise ValueError("stream_key must differ from api_key: Companies House's stream and "
                             "REST keys are not interchangeable")
        if self.published_at_fraction_share + self.published_at_12h_share > 1.0:
            raise ValueError("published_at_fraction_share + published_at_12h_share must be <= 1")
        ended = (self.liquidation_share + self.dissolved_share + self.closed_share
                 + self.converted_closed_share)
        if ended > 1.0:
            raise ValueError("the liquidation, dissolved, closed and converted-closed shares "
                             f"add up to {ended:g}, more than 1")
        start, end = self.nightly_drop_window
        if not 0.0 <= start < end <= DAY:
            raise ValueError("nightly_drop_window must be (start, end) seconds after midnight, "
                             "0 <= start < end <= 86400")

    @property
    def filings_pace(self) -> float:
        """Events per second on /filings (the real stream carries about twice /companies')."""
        if self.filings_events_per_second is not None:
            return self.filings_events_per_second
        return 2 * self.events_per_second

    @property
    def filings_backlog(self) -> int:
        """Events already published on /filings at start."""
        if self.filings_backlog_events is not None:
            return self.filings_backlog_events
        return 2 * self.backlog_events


def window_label(seconds: float) -> str:
    """Render a window length the way Companies House does in ``X-Ratelimit-Window`` ("5m")."""
    whole = int(seconds)
    if whole == seconds and whole % 60 == 0:
        return f"{whole // 60}m"
    if whole == seconds:
        return f"{whole}s"
    return f"{seconds:g}s"
