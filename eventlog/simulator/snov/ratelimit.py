"""The 60-requests-a-minute limit, as strictly as the documentation allows.

Snov.io documents only "60 requests per minute". The simulator takes the strictest reading a real
service could have: a *sliding* window per account (so a client safe here is safe under any fixed
window too), that counts *every* request attributed to the account, the token and balance calls
and refused requests included. A client that keeps knocking after a 429 therefore stays locked
out until it has been quiet for a whole window.
"""

from __future__ import annotations

import math
from collections import deque

import msgspec

__all__ = ["SlidingWindowLimit", "WindowDecision"]


class WindowDecision(msgspec.Struct, frozen=True):
    allowed: bool
    retry_after: int  # whole seconds until a request would be allowed again (0 when allowed)


class SlidingWindowLimit:
    """Allows a request only while fewer than ``limit`` arrived in the ``window`` seconds before it.

    The window is half-open like ``max_in_any_window``'s: two requests exactly ``window`` apart
    never share one, so a refusal here means exactly "accepting this would put ``limit`` + 1
    requests in some window".
    """

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._arrivals: dict[str, deque[float]] = {}

    def hit(self, account: str, now: float) -> WindowDecision:
        arrivals = self._arrivals.setdefault(account, deque())
        while arrivals and arrivals[0] <= now - self.window:
            arrivals.popleft()
        allowed = len(arrivals) < self.limit
        arrivals.append(now)  # refused requests count too: the strictest plausible reading
        if allowed:
            return WindowDecision(allowed=True, retry_after=0)
        # The next request is allowed once the limit-th most recent arrival has left the window.
        free_at = arrivals[-self.limit] + self.window
        return WindowDecision(allowed=False, retry_after=max(1, math.ceil(free_at - now)))
