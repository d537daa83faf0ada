"""Settings of the Snov.io simulator.

One frozen struct, like the Companies House simulator's, so a test names exactly the world it
wants and two simulators built from equal configs answer byte-identical bodies.
"""

from __future__ import annotations

import msgspec

__all__ = ["MAX_BATCH", "SIM_CLIENT_ID", "SIM_CLIENT_SECRET", "SnovSimulatorConfig"]

# The credentials `--simulate` uses. They open nothing but this loopback simulator.
SIM_CLIENT_ID = "sim-snov-client"
SIM_CLIENT_SECRET = "sim-snov-secret"

MAX_BATCH = 10  # names per domain start, rows per e-mail start: the documented maximum


class SnovSimulatorConfig(msgspec.Struct, kw_only=True, frozen=True):
    """What the simulated Snov.io knows and how strictly it behaves.

    All randomness comes from ``seed`` plus a stable identity (a company name, a person and a
    domain, a request sequence number, a task hash), never from global state.
    """

    seed: int = 0
    client_id: str = SIM_CLIENT_ID
    client_secret: str = SIM_CLIENT_SECRET
    token_lifetime: int = 3600  # seconds; the documented lifetime

    # --- how long a task runs ----------------------------------------------------------------------
    polls_before_completion: int = 1  # "in_progress" answers before the result ...
    seconds_before_completion: float = 0.0  # ... and at least this long after the start

    # --- what it finds --------------------------------------------------------------------------
    no_domain_share: float = 0.2  # company names with no domain
    no_email_share: float = 0.3  # people (on a domain) with no e-mail
    unknown_email_share: float = 0.25  # found e-mails whose smtp_status is "unknown"
    extra_email_share: float = 0.1  # people with a second address ("unknown" or "not_valid")
    omit_people_without_email: bool = False  # leave them out of `data` instead of `result: []`
    shuffle_results: bool = False  # `data` in an order unrelated to the request's

    # --- the limit and the money ----------------------------------------------------------------
    rate_limit_requests: int = 60
    rate_limit_window: float = 60.0
    retry_after_header: bool = True  # a 429 carries Retry-After (otherwise no hint at all)
    starting_balance: int = 25_000

    # --- faults ---------------------------------------------------------------------------------
    error_5xx_share: float = 0.0
    latency_ms: float = 0.0

    def __post_init__(self) -> None:
        shares = (
            "no_domain_share",
            "no_email_share",
            "unknown_email_share",
            "extra_email_share",
            "error_5xx_share",
        )
        for name in shares:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
        if self.token_lifetime < 1:
            raise ValueError("token_lifetime must be at least 1 second")
        if self.rate_limit_requests < 1:
            raise ValueError("rate_limit_requests must be at least 1")
        if self.rate_limit_window <= 0:
            raise ValueError("rate_limit_window must be positive")
        for name in (
            "polls_before_completion",
            "seconds_before_completion",
            "starting_balance",
            "latency_ms",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if not self.client_id or not self.client_secret:
            raise ValueError("client_id and client_secret must not be empty")
