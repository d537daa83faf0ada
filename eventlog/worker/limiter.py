"""The sliding-window limiter: the one guard between the queue and a banned key.

Why not a library: aiolimiter's leaky bucket and every fixed-window limiter let
almost twice the limit into one server window when a backlog lands just before
a window boundary. Companies House's window is fixed but starts wherever its
first request fell, which we can't see; a client that never has more than
`limit` requests in *any* interval of `window` seconds is safe under every
placement of the server's window. So that is the rule, read straight from
`api_rate_limit_log` (kept in the append transaction, so never behind):

    allowed  <=>  count(sent with timestamp > now - window - slack) < limit

The slack covers the latency between our timestamp (written before the
socket write) and the server's, so the server's clock can't see a request
fall into an earlier window than ours did. Check and record happen in the
caller's `BEGIN IMMEDIATE` transaction, so two processes sharing a key (and
one database) can't both take the last slot; a restarted worker sees the
window exactly as it was.

On top of the window: a 429/403 (`RateLimited`) stops every call on the key
until its `cooldown_until`, for every process, and across restarts, because
it is read back from the ledger; after it, one request goes alone until one is
answered without a refusal (so a key still refused costs one more 429, not one
per lane); an emergency stop holds every call for `EMERGENCY_WINDOWS` windows
after it, in whatever process starts next; the server's `X-Ratelimit-Remain` is
believed when it says fewer remain than we think.
"""

from __future__ import annotations

from typing import Callable

import msgspec
import apsw

from eventlog.clock import Clock, from_epoch, to_epoch
from eventlog.ledger.entries import RateLimitHeaders
from projections.projectors import rate_limit_log

__all__ = ["SlidingWindowLimiter", "Decision", "clamp_reset", "window_decision", "EMERGENCY_WINDOWS"]

_FORBIDDEN_COOLDOWN = 300.0  # a 403 (the IP limit) is treated as a 429 of five minutes
EMERGENCY_WINDOWS = 12  # rate-limit incidents count over this many windows (an hour at 300 s)
_EMERGENCY_MARGIN = 600.0  # > any request's latency, plus time for the first request after the hold
PROBE_WAIT = 0.2  # how often a lane looks again while the request after a cooldown is out


class Decision(msgspec.Struct, frozen=True):
    """`wait == 0` means send now; otherwise sleep `wait` seconds (and `why`)."""

    wait: float
    why: str = ""
    in_window: int = 0


class _Hint(msgspec.Struct):
    remain: int
    reset: float
    sent_since: int = 0


SendsAfter = Callable[[apsw.Connection, float], int]
NthSendAfter = Callable[[apsw.Connection, float, int], "str | None"]


def window_decision(conn: apsw.Connection, sends_after: SendsAfter, nth_send_after: NthSendAfter,
                    now: float, *, limit: int, window: float, slack: float) -> Decision:
    """The sliding-window rule, for any table of sends: allowed while fewer than `limit` were
    counted after `now - window - slack`; otherwise the wait until the oldest that must leave has.

    `sends_after(conn, cutoff)` and `nth_send_after(conn, cutoff, n)` are the table's own reads
    (`rate_limit_log`'s for Companies House, `snov_request_log`'s for Snov.io): one rule, two tables.
    """
    cutoff = now - window - slack
    count = sends_after(conn, cutoff)
    if count < limit:
        return Decision(0.0, "", count)
    # Sleep until enough of the oldest requests leave that one slot frees:
    # the (count - limit + 1)-th oldest in the window.
    oldest = nth_send_after(conn, cutoff, count - limit)
    wait = to_epoch(oldest) + window + slack - now if oldest is not None else 1e-3
    return Decision(max(wait, 1e-3), "window full", count)


def clamp_reset(reset_epoch: float | None, now: float, window: float) -> float:
    """A server reset time we can trust: never in the past, never beyond one window."""
    if reset_epoch is None:
        return now + window
    return min(max(reset_epoch, now), now + window)


class SlidingWindowLimiter:
    def __init__(self, conn: apsw.Connection, clock: Clock, *, limit: int, window: float,
                 slack: float = 2.0):
        self.conn = conn
        self.clock = clock
        self.limit = limit
        self.window = window
        self.slack = slack
        self._hint: _Hint | None = None
        self._cooldown_key: tuple = ()
        self._last_refusal = 0  # ledger position of the newest recent request.rate_limited
        self._emergency_until = 0.0  # a recent worker.emergency_stop, plus EMERGENCY_WINDOWS windows
        self.emergency = False  # set once this process has declared an emergency stop
        self._cooldown_until = 0.0

    # --- reads ------------------------------------------------------------------

    def in_window(self, now: float | None = None) -> int:
        """How many requests the window holds now (what `status` shows as n/limit)."""
        now = self.clock.now() if now is None else now
        return rate_limit_log.sends_after(self.conn, now - self.window - self.slack)

    def cooldown_until(self) -> float:
        """The latest cooldown any process recorded on this database (0 if none).

        The maximum over every 429/403 recent enough to still matter, not just the
        newest: a 403's five minutes must not be shortened by a later-sent request's
        short 429. Found through the 429/403 rows of `api_rate_limit_log` (indexed by
        status), then their `RateLimited` entries, which follow them in the ledger.
        Cached until the set of recent 429/403 rows changes.
        """
        now = self.clock.now()
        # An emergency stop holds EMERGENCY_WINDOWS windows from its answer, which may come long after
        # the send this row is timed by; and the request after the hold must still go alone: so the
        # refusals stay in sight a margin beyond the hold.
        reach = max(2 * max(self.window, _FORBIDDEN_COOLDOWN) + 60,
                    EMERGENCY_WINDOWS * self.window + _EMERGENCY_MARGIN)
        horizon = now - reach - self.slack
        row = rate_limit_log.refusals_after(self.conn, horizon)
        key = (row.count, row.last_id)
        if key != self._cooldown_key:
            self._cooldown_key = key
            self._cooldown_until = 0.0
            self._emergency_until = 0.0
            self._last_refusal = 0
            if row.count:
                for position, event_type, data, received_at in self.conn.execute(
                    "SELECT id, event_type, event_data, received_at FROM event_log WHERE id > ? "
                    "AND event_type IN ('request.rate_limited', 'worker.emergency_stop')", (row.first_id,),
                ):
                    if event_type == "worker.emergency_stop":
                        # A restarted worker (Render restarts an exited one) must not spend the key
                        # again: the stop holds as long as the incidents that caused it still count.
                        hold = to_epoch(received_at) + EMERGENCY_WINDOWS * self.window
                        self._emergency_until = max(self._emergency_until, hold)
                        continue
                    self._last_refusal = max(self._last_refusal, position)
                    entry = msgspec.json.decode(data, type=_Cooldown)
                    if entry.cooldown_until:
                        self._cooldown_until = max(self._cooldown_until, to_epoch(entry.cooldown_until))
        return max(self._cooldown_until, self._emergency_until)

    # --- the decision -------------------------------------------------------------

    def check(self) -> Decision:
        """May one request be sent now? Call inside the transaction that records it."""
        now = self.clock.now()
        until = self.cooldown_until()
        if until > now:
            why = "after an emergency stop" if self._emergency_until >= until else "cooldown after 429/403"
            return Decision(until - now, why)
        if until and self._probing():
            return Decision(PROBE_WAIT, "after a cooldown, one request at a time until one is answered")
        hint = self._hint
        if hint is not None:
            if now >= hint.reset:
                self._hint = None
            elif hint.sent_since >= hint.remain:
                return Decision(hint.reset - now, "server says none remain")
        return window_decision(self.conn, rate_limit_log.sends_after, rate_limit_log.nth_send_after, now,
                               limit=self.limit, window=self.window, slack=self.slack)

    def _probing(self) -> bool:
        """True while a request sent after the latest 429/403 arrived is out, and none has been answered.

        When a cooldown ends, every lane would otherwise fire at the same instant,
        and if the key is still refused (another client spending it, a server
        reset later than it said) each of them earns a 429. So the first request
        after a refusal goes alone: the others wait for its answer. Read from
        `api_rate_limit_log` like the rest, so it holds across processes: its ids
        are the positions of the `request.sent` entries, comparable with the
        position of the latest `request.rate_limited`.
        """
        if not self._last_refusal:
            return False
        answered, in_flight = rate_limit_log.after_refusal(self.conn, self._last_refusal)
        return answered == 0 and in_flight > 0

    def sent(self) -> None:
        """Tell the server hint one more request went out since it was given."""
        if self._hint is not None:
            self._hint.sent_since += 1

    def observe(self, headers: RateLimitHeaders | None) -> None:
        """Believe the server when it says fewer requests remain than we think.

        Its `Remain` can't count the requests still on their way to it, so those
        (unanswered rows in the window, this response's own row excepted: its answer
        is appended next) are taken off what may still be sent.
        """
        if headers is None or headers.remain is None:
            return
        now = self.clock.now()
        reset = clamp_reset(headers.reset, now, self.window)
        in_flight = rate_limit_log.unanswered_after(self.conn, now - self.window - self.slack)
        self._hint = _Hint(remain=max(headers.remain, 0), reset=reset, sent_since=max(in_flight - 1, 0))

    def cooldown_for(self, status: int, headers: RateLimitHeaders | None) -> str:
        """When calls may resume after a 429 (server reset, clamped) or 403 (five minutes)."""
        now = self.clock.now()
        if status == 403:
            return from_epoch(now + _FORBIDDEN_COOLDOWN)
        reset = headers.reset if headers is not None else None
        return from_epoch(clamp_reset(reset, now, self.window) + self.slack)

    def incidents_since(self, since: float, request_id: str) -> int:
        """Rate-limit incidents since `since`, counting the 429/403 just received for `request_id`.

        A 429 for a request that was already on the wire when an earlier 429 arrived
        is part of that incident, not a new one: with several lanes, one refusal
        typically brings the answers of the requests sent alongside it.
        """
        now = self.clock.now()
        rows = rate_limit_log.refusal_times_after(self.conn, since)
        events = [(to_epoch(ts), to_epoch(ts) + (ms or 0) / 1000) for ts, ms in rows]
        mine = rate_limit_log.unanswered_sent_at(self.conn, request_id)
        events.append((to_epoch(mine) if mine else now, now))
        events.sort()
        count, answered = 0, float("-inf")
        for sent, received in events:
            if sent >= answered:  # sent after every earlier refusal was known: a new incident
                count += 1
            answered = max(answered, received)
        return count


class _Cooldown(msgspec.Struct):
    cooldown_until: str | None = None

