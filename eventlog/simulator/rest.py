"""REST handlers: company profile and officer list.

They only answer; auth, rate limiting, faults and the record are the gate's job (gate.py), so
every handler here is a pure function of the config and the request.
"""

from __future__ import annotations

import hashlib

import msgspec
from aiohttp import web

from .companies import Universe, is_well_formed
from .context import SIMULATOR
from .metrics import officer_counts
from .models import OfficerList, OfficerListLinks

__all__ = ["DEFAULT_ITEMS_PER_PAGE", "MAX_ITEMS_PER_PAGE", "company_officers", "company_profile"]

DEFAULT_ITEMS_PER_PAGE = 35
MAX_ITEMS_PER_PAGE = 100


def error_response(status: int, error: str) -> web.Response:
    """The real API's error envelope."""
    body = {"errors": [{"error": error, "type": "ch:service"}]}
    return web.json_response(body, status=status)


def _msgspec_response(value: object) -> web.Response:
    return web.Response(body=msgspec.json.encode(value), content_type="application/json")


def _lookup(request: web.Request, not_found: str) -> tuple[Universe, str] | web.Response:
    """Validate the company number: malformed -> 500 (as the real API does), unknown -> 404."""
    universe = request.app[SIMULATOR].universe
    number = request.match_info["number"]
    if not is_well_formed(number):
        return error_response(500, "internal-server-error")
    if number not in universe:
        return error_response(404, not_found)
    return universe, number


async def company_profile(request: web.Request) -> web.Response:
    """GET /company/{number}: the same profile the stream carries for that number."""
    found = _lookup(request, "company-profile-not-found")
    if isinstance(found, web.Response):
        return found
    universe, number = found
    return _msgspec_response(universe.profile(number))


def _int_param(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    value = int(raw)  # ValueError handled by the caller
    if value < 0:
        raise ValueError(name)
    return value


def _not_found() -> web.Response:
    """The officers service's own 404: no body at all."""
    return web.Response(status=404)


def _empty_page(start: int, per_page: int) -> OfficerList:
    """What the service answers when the page holds no appointment: not 404 but this, with zero
    counts whatever the company really has (a page past the end included)."""
    return OfficerList(
        total_results=0,
        items=(),
        active_count=0,
        inactive_count=0,
        resigned_count=0,
        kind="officer-list",
        start_index=start,
        items_per_page=per_page,
        links=OfficerListLinks(),
        etag="",
    )


async def company_officers(request: web.Request) -> web.Response:
    """GET /company/{number}/officers?start_index=&items_per_page= (35 by default, at most 100).

    Like the real service: a page without items is a 200 with zero counts (a company with no
    appointments, or a start past the end); 404 when the profile has no officers link or the
    metrics service has nothing for a company with appointments; otherwise the counts come from
    the metrics (metrics.py), which may lag the items.
    """
    found = _lookup(request, "company-officers-not-found")
    if isinstance(found, web.Response):
        return found
    universe, number = found
    quirks = universe.quirks(number)
    if quirks.no_officers_link:
        return _not_found()
    try:
        start = _int_param(request, "start_index", 0)
        per_page = _int_param(request, "items_per_page", DEFAULT_ITEMS_PER_PAGE)
    except ValueError:
        return error_response(400, "invalid-parameter")
    per_page = min(max(per_page, 1), MAX_ITEMS_PER_PAGE)
    officers = universe.officers(number)
    items = officers[start : start + per_page]
    if not items:
        return _msgspec_response(_empty_page(start, per_page))
    if quirks.metrics_missing:
        return _not_found()
    counts = officer_counts(universe.profile(number).company_status, officers, quirks.count_lag)
    etag = hashlib.sha1(f"{universe.config.seed}:{number}:officers".encode()).hexdigest()
    page = OfficerList(
        total_results=counts.total_results,
        items=items,
        active_count=counts.active_count,
        inactive_count=counts.inactive_count,
        resigned_count=counts.resigned_count,
        kind="officer-list",
        start_index=start,
        items_per_page=per_page,
        links=OfficerListLinks(self=f"/company/{number}/officers"),
        etag=etag,
    )
    return _msgspec_response(page)
