"""What the Snov.io simulator saw, so tests judge a client from the server's side.

Every request is recorded at arrival time with the account it was attributed to, before anything
is decided; the limit ("never more than 60 in any minute"), "no lookup started twice" and the
credits spent are all read from here. Nothing here holds a client secret or a token.
"""

from __future__ import annotations

from collections import Counter

import msgspec

from eventlog.simulator.record import max_in_any_window

__all__ = ["SnovRequestRecord", "SnovSimulatorState", "TokenIssued"]


class SnovRequestRecord(msgspec.Struct, frozen=True):
    """One request: arrival time (simulator clock), the account it counted against ("" when it
    could not be attributed: an unknown token or client id), method, path with query, endpoint
    name, HTTP status, outcome and the credits it charged.

    ``outcome`` is one of "token", "started", "in_progress", "completed", "not_enough_credits",
    "balance", "unauthorized", "rate_limited", "server_error", "bad_request", "not_found".
    """

    time: float
    account: str
    method: str
    path: str
    endpoint: str
    status: int
    outcome: str
    credits: int = 0
    task: str = ""


class TokenIssued(msgspec.Struct, frozen=True):
    """A token handed out: when, until when, to whom. The token itself is not kept here."""

    time: float
    expires_at: float
    account: str


class SnovSimulatorState:
    """Mutable in-memory record of one simulator instance."""

    def __init__(self, starting_balance: int) -> None:
        self.requests: list[SnovRequestRecord] = []
        self.tokens: list[TokenIssued] = []
        self.starts_per_lookup: Counter[str] = Counter()
        self.balance = starting_balance
        self.credits_spent = 0
        self.sequence = 0  # every request that reached the gate; seeds per-request faults

    def next_seq(self) -> int:
        self.sequence += 1
        return self.sequence

    def charge(self, credits: int) -> None:
        self.balance -= credits
        self.credits_spent += credits

    def times(self, account: str | None = None) -> list[float]:
        """Arrival times of every request, or of one account's; 429s and 401s included, since
        a refused request is still a request the client chose to send."""
        return [r.time for r in self.requests if account is None or r.account == account]

    def max_in_any_window(self, window: float, account: str | None = None) -> int:
        """Most requests (of one account, or all) inside any half-open window of ``window`` s."""
        return max_in_any_window(self.times(account), window)

    def repeated_lookups(self) -> dict[str, int]:
        """Lookups started more than once (key -> starts); empty for a client that never did."""
        return {key: n for key, n in self.starts_per_lookup.items() if n > 1}

    def outcomes(self) -> Counter[str]:
        return Counter(r.outcome for r in self.requests)

    def with_outcome(self, outcome: str) -> list[SnovRequestRecord]:
        return [r for r in self.requests if r.outcome == outcome]
