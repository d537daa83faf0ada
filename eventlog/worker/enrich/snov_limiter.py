"""Snov.io's limiter: the Companies House sliding-window rule, over `snov_request_log`.

Snov.io allows 60 requests a minute and counts every one (token, balance, starts, polls); what a
breach costs is undocumented. So the rule is the one `eventlog.worker.limiter` applies to
Companies House (`window_decision`: fewer than `limit` requests counted in the last `window +
slack` seconds), read from Snov.io's own table, checked and recorded in the caller's `BEGIN
IMMEDIATE`: two processes on one database, or a restart, can't exceed it. The slack covers the
time between our record (before the socket write) and the service's arrival count.

On top of the window: a 429 or a 5xx sets a `cooldown_until` on its row (see `cooldown_for`),
and no request goes before it, in any process, across restarts.
"""

from __future__ import annotations

import apsw

from eventlog.clock import Clock, from_epoch, to_epoch
from eventlog.worker.limiter import Decision, window_decision
from projections.projectors import snov_request_log

__all__ = ["SnovLimiter", "MAX_COOLDOWN", "SERVER_ERROR_COOLDOWN"]

MAX_COOLDOWN = 600.0  # a Retry-After is believed up to ten minutes
SERVER_ERROR_COOLDOWN = 5.0  # after a 5xx or no answer, every request waits this long


class SnovLimiter:
    def __init__(self, conn: apsw.Connection, clock: Clock, *, limit: int, window: float, slack: float = 2.0):
        self.conn = conn
        self.clock = clock
        self.limit = limit
        self.window = window
        self.slack = slack

    def in_window(self, now: float | None = None) -> int:
        now = self.clock.now() if now is None else now
        return snov_request_log.sends_after(self.conn, now - self.window - self.slack)

    def cooldown_until(self, now: float | None = None) -> float:
        """The latest cooldown recorded on this database that can still matter (0 if none)."""
        now = self.clock.now() if now is None else now
        horizon = now - MAX_COOLDOWN - self.window - self.slack - 60.0  # answers come after their sends
        until = snov_request_log.cooldown_until(self.conn, horizon)
        return to_epoch(until) if until else 0.0

    def check(self) -> Decision:
        """May one request be sent now? Call inside the transaction that records it."""
        now = self.clock.now()
        until = self.cooldown_until(now)
        if until > now:
            return Decision(until - now, "cooldown after a 429 or a server error")
        return window_decision(self.conn, snov_request_log.sends_after, snov_request_log.nth_send_after, now,
                               limit=self.limit, window=self.window, slack=self.slack)

    def cooldown_for(self, kind: str, retry_after: float | None) -> str | None:
        """When requests may resume after this answer: a 429's Retry-After (a whole window when it
        sent none), a few seconds after a 5xx or a lost answer, plus the slack; None otherwise."""
        now = self.clock.now()
        if kind == "rate_limited":
            wait = self.window if retry_after is None else min(retry_after, MAX_COOLDOWN)
        elif kind in ("server_error", "transport_error"):
            wait = SERVER_ERROR_COOLDOWN
        else:
            return None
        return from_epoch(now + wait + self.slack)
