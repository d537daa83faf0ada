"""What the simulator saw, so tests can judge a client from the server's side.

The server's own record is the ground truth for "did the client ever breach the limit": it is
taken at arrival time, per key, before any response is decided.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import msgspec

__all__ = ["RequestRecord", "SimulatorState", "StreamConnection", "max_in_any_window"]


class RequestRecord(msgspec.Struct, frozen=True):
    """One REST request: arrival time (simulator clock), key presented, method, path with query,
    the status answered, and the client's address. 401s and the IP limit's 403s are recorded too
    (key is the user name presented, or "")."""

    time: float
    key: str
    method: str
    path: str
    status: int
    ip: str = ""


class StreamConnection(msgspec.Struct):
    """One stream connect attempt; ``events_sent`` and ``end`` are filled in as it runs and ends.

    ``path`` is the stream path ("/companies", "/filings"), ``key`` the user name presented ("" if
    none). ``status`` is 200, or what refused it: a gateway page (502/503/504), 401, 429, 400, 416.
    ``end`` is one of "", "client" (the client went away), "close_after" (clean close),
    "disconnect" (fault: half a line then a dropped socket), "nightly" (the nightly drop),
    "max_age" (the 24-hour cap) or "shutdown".
    """

    time: float
    status: int
    requested_timepoint: int | None = None
    start_timepoint: int | None = None
    events_sent: int = 0
    end: str = ""
    path: str = "/companies"
    key: str = ""


class SimulatorState:
    """Mutable, in-memory state of one simulator instance: records and sequence counters."""

    def __init__(self) -> None:
        self.requests: list[RequestRecord] = []
        self.streams: list[StreamConnection] = []
        self.counted_requests = 0  # REST requests past auth (what the limiter and storm count)
        self.stopping = asyncio.Event()

    def next_request_seq(self) -> int:
        """1-based sequence number of a counted REST request; seeds per-request faults."""
        self.counted_requests += 1
        return self.counted_requests

    def times(self, key: str | None = None, *, exclude_401: bool = True) -> list[float]:
        """Arrival times of recorded requests (optionally one key's), for ``max_in_any_window``."""
        return [
            r.time
            for r in self.requests
            if (key is None or r.key == key) and not (exclude_401 and r.status == 401)
        ]

    def statuses(self) -> list[int]:
        return [r.status for r in self.requests]

    def request_counts(self, *, exclude_401: bool = True) -> dict[str, int]:
        """REST requests per key presented (by default without the 401s, which no key owns)."""
        counts: dict[str, int] = {}
        for r in self.requests:
            if not (exclude_401 and r.status == 401):
                counts[r.key] = counts.get(r.key, 0) + 1
        return counts

    def max_in_window(self, window: float, key: str | None = None) -> int:
        """Most REST requests (401s aside) inside any window of ``window`` seconds, of one key or
        all: the number to hold against the limit."""
        return max_in_any_window(self.times(key), window)

    def streams_on(self, path: str) -> list[StreamConnection]:
        """The connect attempts to one stream path, in order."""
        return [s for s in self.streams if s.path == path]

    def served(self, status: int) -> int:
        """How many answers with ``status`` went out, REST and stream connects together."""
        return sum(r.status == status for r in self.requests) + sum(
            s.status == status for s in self.streams
        )


def max_in_any_window(times: Iterable[float], window: float) -> int:
    """Most requests inside any half-open window ``[s, s + window)``, over every real ``s``.

    Exact: the busiest window can always be slid to start at some request, so a two-pointer sweep
    over the sorted times finds it. Two requests exactly ``window`` apart never share a window,
    matching a fixed window that resets at ``start + window``.
    """
    ordered = sorted(times)
    best = 0
    left = 0
    for right, moment in enumerate(ordered):
        while moment - ordered[left] >= window:
            left += 1
        best = max(best, right - left + 1)
    return best
