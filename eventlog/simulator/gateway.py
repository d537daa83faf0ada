"""What the gateway in front of Companies House answers when it, not the service, speaks.

Its error pages are HTML, not the service's JSON: a client that parses every answer as JSON breaks
on them. Which requests meet one is decided by (seed, what, sequence number), reproducibly.
"""

from __future__ import annotations

import random

from aiohttp import web

__all__ = ["GATEWAY_STATUSES", "gateway_error", "gateway_page", "ip_forbidden"]

GATEWAY_STATUSES = (502, 503, 504)
_REASONS = {403: "Forbidden", 502: "Bad Gateway", 503: "Service Temporarily Unavailable",
            504: "Gateway Time-out"}


def gateway_page(status: int) -> web.Response:
    """The load balancer's bare HTML page for ``status``."""
    title = f"{status} {_REASONS[status]}"
    body = (f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
            f"<center><h1>{title}</h1></center>\r\n</body>\r\n</html>\r\n")
    return web.Response(status=status, text=body, content_type="text/html")


def gateway_error(seed: int, what: str, seq: int, share: float) -> web.Response | None:
    """A 502/503/504 page for ``share`` of the ``what`` requests ("rest", "stream"), else None."""
    if share <= 0:
        return None
    rng = random.Random(f"{seed}:gateway:{what}:{seq}")
    if rng.random() >= share:
        return None
    return gateway_page(rng.choice(GATEWAY_STATUSES))


def ip_forbidden() -> web.Response:
    """What an address past the IP limit gets: 403, from the gateway, before any key is looked at."""
    return gateway_page(403)
