"""Settings of the Companies House simulator.

Every knob lives in one frozen struct so that a test can say exactly which world it wants, and
so that two simulators built from equal configs serve byte-identical events and profiles.
"""

from __future__ import annotations

import msgspec

__all__ = ["SimulatorConfig", "window_label"]


class SimulatorConfig(msgspec.Struct, kw_only=True, frozen=True):
    """What the simulated Companies House looks like and how badly it behaves.

    All randomness is derived from ``seed`` plus a stable identity (a timepoint, a company number,
    a connection or request sequence number), never from global state, so the same seed always
    gives the same universe of companies and the same event at the same timepoint.
    """

    seed: int = 0
    api_key: str = "sim-key"
    # None means "the same as api_key", like COMPANIES_HOUSE_STREAM_KEY falling back to the API key.
    stream_key: str | None = None

    # --- what the stream says -------------------------------------------------------------------
    strike_off_share: float = 0.3  # companies (hence events) with active-proposal-to-strike-off
    deleted_share: float = 0.02  # events whose event.type is "deleted"
    events_per_second: float = 20.0  # live pace once the backlog is served
    backlog_events: int = 200  # events already published behind the head at start
    first_timepoint: int = 1000
    gap_share: float = 0.05  # share of timepoints that never carry an event
    retention: int = 100_000  # timepoints behind the head that can still be resumed (else 416)
    heartbeat_interval: float = 5.0  # seconds of idleness before a bare "\n"
    close_after_events: int = 0  # clean close of a stream connection every N events; 0 = never

    # --- REST limits, the one thing the product must never breach ---------------------------------
    rate_limit_requests: int = 600
    rate_limit_window: float = 300.0

    # --- faults -----------------------------------------------------------------------------------
    latency_ms: float = 0.0
    error_5xx_share: float = 0.0
    malformed_share: float = 0.0  # stream lines replaced with garbage
    disconnect_mid_line_share: float = 0.0  # write half a line, then drop the connection
    storm_after_requests: int = 0  # 429 storm: after this many counted REST requests ...
    storm_requests: int = 0  # ... answer 429 to this many (0 = no storm)

    company_count: int = 5000  # size of the universe of known companies

    def __post_init__(self) -> None:
        for name in (
            "strike_off_share",
            "deleted_share",
            "gap_share",
            "error_5xx_share",
            "malformed_share",
            "disconnect_mid_line_share",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
        positive = ("events_per_second", "heartbeat_interval", "rate_limit_window")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.rate_limit_requests < 1:
            raise ValueError("rate_limit_requests must be at least 1")
        if self.company_count < 1:
            raise ValueError("company_count must be at least 1")
        non_negative = (
            "backlog_events",
            "first_timepoint",
            "retention",
            "close_after_events",
            "latency_ms",
            "storm_after_requests",
            "storm_requests",
        )
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")

    @property
    def effective_stream_key(self) -> str:
        """The key the stream accepts: ``stream_key`` or, when unset, ``api_key``."""
        return self.api_key if self.stream_key is None else self.stream_key


def window_label(seconds: float) -> str:
    """Render a window length the way Companies House does in ``X-Ratelimit-Window`` ("5m")."""
    whole = int(seconds)
    if whole == seconds and whole % 60 == 0:
        return f"{whole // 60}m"
    if whole == seconds:
        return f"{whole}s"
    return f"{seconds:g}s"
