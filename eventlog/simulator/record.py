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
    and the status answered. 401s are recorded too (key is the user name presented, or "")."""

    time: float
    key: str
    method: str
    path: str
    status: int


class StreamConnection(msgspec.Struct):
    """One stream connection; ``events_sent`` and ``end`` are filled in as it runs and ends.

    ``end`` is one of "", "client" (the client went away), "close_after" (clean close),
    "disconnect" (fault: half a line then a dropped socket) or "shutdown".
    """

    time: float
    status: int
    requested_timepoint: int | None = None
    start_timepoint: int | None = None
    events_sent: int = 0
    end: str = ""


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
