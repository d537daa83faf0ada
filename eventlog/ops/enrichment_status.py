"""Where enrichment through Snov.io stands: lookups by state, credits, its window, and any stop.

Read from the projections alone (`domains`, `emails`, `snov_tasks`, `snov_request_log`), for
`status`, the status page and `/health`. A stop (not_enough_credits, an exhausted budget, refused
credentials) is shown until the next start of the stage clears it.
"""

from __future__ import annotations

import apsw
import msgspec

from eventlog.clock import FixedClock, from_epoch
from eventlog.config.settings import Settings
from eventlog.worker.enrich.snov_limiter import SnovLimiter
from projections.projectors import domains, emails, snov_request_log, snov_tasks

__all__ = ["EnrichmentStatus", "collect_enrichment", "render_enrichment", "health_line"]


class EnrichmentStatus(msgspec.Struct, frozen=True, kw_only=True):
    enabled: bool  # SNOV_CLIENT_ID and SNOV_CLIENT_SECRET set for this reader
    domains: dict[str, int]  # companies by lookup state
    emails: dict[str, int]  # e-mail rows by state (found: one per address)
    tasks: dict[str, int]  # lookup tasks by state
    credits_spent: int  # completed tasks' cost, lost starts at their worst case
    credits_reserved: int  # running tasks' worst case
    max_credits: int | None  # SNOV_MAX_CREDITS of the last start of the stage
    balance: float | None  # the account's balance when last read
    balance_at: str | None
    stopped: str | None  # not_enough_credits, budget_exhausted, balance_low, unauthorized, failed
    stopped_reason: str | None
    stopped_at: str | None
    window_used: int
    window_limit: int
    window_seconds: float
    cooldown_until: str | None
    requests_sent: int | None = None  # detail only


def collect_enrichment(conn: apsw.Connection, settings: Settings, now: float, *,
                       detail: bool = True) -> EnrichmentStatus | None:
    """None when enrichment is off and has never run on this database."""
    tasks = snov_tasks.state_counts(conn)
    if not settings.snov_enabled and not tasks and not snov_request_log.total_sends(conn):
        return None
    limiter = SnovLimiter(conn, FixedClock(now), limit=settings.snov_rate_limit,
                          window=settings.snov_rate_window, slack=settings.rate_limit_slack)
    c = snov_tasks.credits(conn)
    a = snov_tasks.account(conn)
    cooldown = limiter.cooldown_until(now)
    return EnrichmentStatus(
        enabled=settings.snov_enabled, domains=domains.state_counts(conn), emails=emails.state_counts(conn),
        tasks=tasks, credits_spent=c.spent, credits_reserved=c.reserved, max_credits=a.max_credits,
        balance=c.balance, balance_at=c.balance_at, stopped=a.stopped_code, stopped_reason=a.stopped_reason,
        stopped_at=a.stopped_at, window_used=limiter.in_window(now), window_limit=settings.snov_rate_limit,
        window_seconds=settings.snov_rate_window,
        cooldown_until=from_epoch(cooldown) if cooldown > now else None,
        requests_sent=snov_request_log.total_sends(conn) if detail else None,
    )


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{state} {n}" for state, n in counts.items()) or "none yet"


def health_line(e: EnrichmentStatus | None) -> str:
    """One line for `/health`: off, running, or stopped and why."""
    if e is None:
        return "off (SNOV_CLIENT_ID and SNOV_CLIENT_SECRET not set)"
    credits = f"{e.credits_spent} credits spent" + (f" of {e.max_credits}" if e.max_credits is not None else "")
    if e.stopped:
        return f"STOPPED ({e.stopped}) at {e.stopped_at}: {e.stopped_reason}; {credits}"
    return (f"{'running' if e.enabled else 'off'}: {e.domains.get('found', 0)} domains, "
            f"{e.emails.get('found', 0)} e-mails found; {credits}")


def render_enrichment(e: EnrichmentStatus) -> list[str]:
    """The `status` lines about enrichment."""
    lines = [f"enrichment   {health_line(e)}",
             f"domains      {_counts(e.domains)}",
             f"e-mails      {_counts(e.emails)}",
             f"credits      {e.credits_spent} spent, {e.credits_reserved} reserved"
             + (f", budget {e.max_credits}" if e.max_credits is not None else "")
             + (f", balance {e.balance:g} at {e.balance_at}" if e.balance is not None else "")]
    window = (f"snov window  {e.window_used} / {e.window_limit} requests in the last {e.window_seconds:g} s"
              + (f", {e.requests_sent} sent in all" if e.requests_sent is not None else ""))
    if e.cooldown_until:
        window += f", cooling down until {e.cooldown_until}"
    lines.append(window)
    return lines
