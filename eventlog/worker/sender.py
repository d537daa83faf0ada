"""The sender: the only code in chledger that calls the Companies House REST API.

It sends only what the queue hands it, and only after the limiter said yes
and the `request.sent` entry is committed (write-ahead: a crash after the
socket write still leaves the request counted). Every outcome (response,
429, transport error) is appended together with the policy's decision about
it, in one transaction, so no crash can separate a fact from its consequence.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Callable

import aiohttp
import msgspec

from eventlog.clock import Clock, from_epoch
from eventlog.ledger.entries import (
    EmergencyStopped,
    Entry,
    RateLimited,
    RateLimitHeaders,
    RequestAbandoned,
    RequestSent,
    ResponseReceived,
    TransportError,
)
from eventlog.errors import EmergencyStop, Unauthorized
from eventlog.privacy import NotAPage, Sealer
from eventlog.worker.httpauth import basic_auth_header
from eventlog.ledger.store import Ledger
from eventlog.worker.limiter import EMERGENCY_WINDOWS, SlidingWindowLimiter
from eventlog.worker.policy import requeue_same_attempt, retry_or_abandon, valid_company_number
from projections.projectors.request_queue import QueueItem, earliest_not_before, next_item
from projections.projectors import officers, processing_state
from projections.records import OFFICERS_PAGE_SIZE, next_page_start
from eventlog.config.settings import Settings

__all__ = ["Sender", "OFFICERS_PAGE_SIZE", "parse_ratelimit", "rest_session"]



def rest_session(**kwargs) -> aiohttp.ClientSession:
    """A client session that puts exactly one request on the wire per call.

    aiohttp silently re-sends an idempotent request once when a kept-alive
    connection drops; the server may have counted the first one, and only one
    `request.sent` was recorded. There is no public switch (aiohttp 3.14), so the
    private one is turned off here and `tests/test_sender.py` pins it.
    """
    session = aiohttp.ClientSession(**kwargs)
    if hasattr(session, "_retry_connection"):
        session._retry_connection = False
    return session


class _Page(msgspec.Struct):
    items: list[msgspec.Raw] = []
    total_results: int | None = None
    items_per_page: int | None = None


def parse_ratelimit(headers: "aiohttp.typedefs.LooseHeaders") -> RateLimitHeaders | None:
    def num(name: str) -> int | None:
        value = headers.get(name)  # type: ignore[union-attr]
        try:
            return int(value) if value is not None else None
        except ValueError:
            return None

    limit, remain, reset = num("X-Ratelimit-Limit"), num("X-Ratelimit-Remain"), num("X-Ratelimit-Reset")
    window = headers.get("X-Ratelimit-Window")  # type: ignore[union-attr]
    if limit is None and remain is None and reset is None and window is None:
        return None
    return RateLimitHeaders(limit=limit, remain=remain, reset=reset, window=window)


class _Grant(msgspec.Struct):
    item: QueueItem | None
    wait: float
    why: str = ""
    page_start: int = 0


class Sender:
    """Pulls from the queue through the limiter and performs the HTTP calls."""

    def __init__(self, settings: Settings, ledger: Ledger, limiter: SlidingWindowLimiter,
                 session: aiohttp.ClientSession, *, clock: Clock, stop: asyncio.Event,
                 wake: asyncio.Event, rng: random.Random | None = None,
                 on_change: Callable[[], None] | None = None, calls_open: asyncio.Event | None = None):
        self.settings = settings
        self.ledger = ledger
        self.conn = ledger.conn
        self.limiter = limiter
        self.session = session
        self.clock = clock
        self.stop = stop
        self.wake = wake
        self.rng = rng or random.Random()
        self.on_change = on_change or (lambda: None)
        self.sent = 0
        self.responses: dict[int, int] = {}
        self.limiter_waits = 0
        # Cleared while REST calls are paused (outside business hours); the stream never is.
        self.calls_open = calls_open

    # --- granting: limiter + queue + write-ahead, in one transaction --------------

    def _grant(self, item: QueueItem | None, page_start: int) -> _Grant:
        with self.ledger.transaction() as tx:
            decision = self.limiter.check()
            if decision.wait > 0:
                return _Grant(None, decision.wait, decision.why)
            if item is None:
                item = next_item(self.conn, self.clock.now())
                if item is None:
                    return _Grant(None, 0.0, "idle")
                page_start = self._resume_at(item)
            if not valid_company_number(item.company_number):
                tx.append(RequestAbandoned(request_id=item.request_id, kind=item.kind,
                                           company_number=item.company_number,
                                           error_code="BAD_COMPANY_NUMBER",
                                           reason="not 8 characters of A-Z and 0-9"))
                return _Grant(None, 0.0, "rejected")
            tx.append(RequestSent(request_id=item.request_id, kind=item.kind,
                                  company_number=item.company_number,
                                  path=self._path(item, page_start), attempt=item.attempt,
                                  page_start=page_start))
        self.limiter.sent()
        self.sent += 1
        return _Grant(item, 0.0, page_start=page_start)

    @staticmethod
    def _path(item: QueueItem, page_start: int) -> str:
        if item.kind == "officers":
            return (f"/company/{item.company_number}/officers"
                    f"?items_per_page={OFFICERS_PAGE_SIZE}&start_index={page_start}")
        return f"/company/{item.company_number}"

    async def _pause(self, seconds: float) -> None:
        """Sleep exactly `seconds`, or less if told to stop or new work arrived."""
        self.wake.clear()
        stop = asyncio.ensure_future(self.stop.wait())
        wake = asyncio.ensure_future(self.wake.wait())
        try:
            await asyncio.wait({stop, wake}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            wake.cancel()

    async def run(self) -> None:
        """One sending lane; the worker runs a few so slow responses don't waste the window."""
        while not self.stop.is_set():
            if self.calls_open is not None and not self.calls_open.is_set():
                await self._until_open()
                continue
            grant = self._grant(None, 0)
            if grant.item is None:
                if grant.why == "rejected":
                    continue
                if grant.why == "idle":
                    due = earliest_not_before(self.conn)
                    wait = 5.0 if due is None else min(5.0, max(due - self.clock.now(), 0.01))
                else:
                    self.limiter_waits += 1
                    wait = grant.wait
                await self._pause(wait)
                continue
            await self._perform(grant.item, grant.page_start)

    async def _until_open(self) -> None:
        """Wait until calls are open again, or the worker stops."""
        assert self.calls_open is not None
        stop = asyncio.ensure_future(self.stop.wait())
        opened = asyncio.ensure_future(self.calls_open.wait())
        try:
            await asyncio.wait({stop, opened}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            opened.cancel()

    # --- performing ---------------------------------------------------------------

    def _resume_at(self, item: QueueItem) -> int:
        """Where an officers fetch starts: after the pages an earlier attempt already recorded
        (a worker killed between a page's answer and the next page resumes there, not at 0)."""
        if item.kind != "officers":
            return 0
        done = processing_state.officers_fetched_at(self.conn, item.company_number)
        return officers.recorded_since(self.conn, item.company_number, done)

    async def _perform(self, item: QueueItem, page_start: int = 0) -> None:
        while True:
            try:
                more = await self._call(item, page_start)
            except asyncio.CancelledError:
                self._append([
                    TransportError(request_id=item.request_id, kind=item.kind,
                                   company_number=item.company_number,
                                   error="interrupted: worker stopping", elapsed_ms=0,
                                   page_start=page_start),
                    requeue_same_attempt(item, "retry after shutdown"),
                ])
                raise
            if more is None:
                return
            page_start = more
            while True:  # the next page goes through the limiter like any request
                if self.calls_open is not None and not self.calls_open.is_set():
                    await self._until_open()  # paused between pages: the rest of the list waits too
                grant = self._grant(item, page_start) if not self.stop.is_set() else None
                if grant is not None and grant.item is not None:
                    break
                if self.stop.is_set():
                    self._append([
                        TransportError(request_id=item.request_id, kind=item.kind,
                                       company_number=item.company_number,
                                       error="interrupted: worker stopping between pages",
                                       elapsed_ms=0, page_start=page_start),
                        requeue_same_attempt(item, "retry after shutdown"),
                    ])
                    return
                assert grant is not None
                await self._pause(grant.wait)

    def _append(self, entries: list[Entry]) -> None:
        self.ledger.append_many(entries)
        self.on_change()

    def _append_sealed_page(self, body: bytes, status: int, headers: RateLimitHeaders | None,
                            common: dict) -> bool:
        """An officer page goes into the ledger with each officer's personal fields sealed under
        their own key (eventlog.privacy), created in the same transaction as the append."""
        try:
            with self.ledger.transaction() as tx:
                sealed = Sealer(self.conn, from_epoch(self.clock.now())).seal_officer_page(
                    body, common.get("company_number"))
                tx.append(ResponseReceived(status=status, ratelimit=headers, body=msgspec.Raw(sealed.body),
                                           **common))
        except NotAPage:  # rolled back, key included: the caller records the page as bad, without it
            return False
        self.on_change()
        return True

    async def _call(self, item: QueueItem, page_start: int) -> int | None:
        """One HTTP request (already recorded as sent). Returns the next page's start, if any."""
        url = self.settings.api_url.rstrip("/") + self._path(item, page_start)
        # A connection that takes longer than the slack to open could deliver the request
        # into a server window our timestamp has already left: give up on it instead.
        timeout = aiohttp.ClientTimeout(total=self.settings.request_timeout,
                                        sock_connect=max(self.limiter.slack, 0.5))
        started = time.monotonic()
        try:
            # No redirects: each request.sent must be exactly one request on the wire.
            async with self.session.get(url, headers=basic_auth_header(self.settings.api_key),
                                        timeout=timeout, allow_redirects=False) as resp:
                body = await resp.read()
                status, headers = resp.status, parse_ratelimit(resp.headers)
        except asyncio.TimeoutError:
            return self._failed(item, page_start, started, "TIMEOUT", "request timed out")
        except aiohttp.ClientError as exc:
            return self._failed(item, page_start, started, "NETWORK_ERROR", type(exc).__name__)
        elapsed = int((time.monotonic() - started) * 1000)
        self.responses[status] = self.responses.get(status, 0) + 1
        self.limiter.observe(headers)
        common = dict(request_id=item.request_id, kind=item.kind, company_number=item.company_number,
                      elapsed_ms=elapsed, page_start=page_start)
        if status in (429, 403):
            return self._rate_limited(item, status, headers, common)
        if status == 200:
            page = self._decode(item, body)
            if page is None:
                self._append([ResponseReceived(status=status, ratelimit=headers, **common),
                              self._decide(item, "BAD_RESPONSE", "body is not the expected JSON")])
                return None
            if item.kind == "officers":
                if not self._append_sealed_page(body, status, headers, common):
                    self._append([ResponseReceived(status=status, ratelimit=headers, **common),
                                  self._decide(item, "BAD_RESPONSE", "an officer item is not an object")])
                    return None
                # The projections' own rule: paging follows the items returned, never
                # total_results alone (it lags), and stops at MAX_OFFICERS_LISTED.
                return next_page_start(page_start, len(page.items), page.total_results,
                                       page.items_per_page, OFFICERS_PAGE_SIZE)
            self._append([ResponseReceived(status=status, ratelimit=headers, body=msgspec.Raw(body),
                                           **common)])
            return None
        response = ResponseReceived(status=status, ratelimit=headers, **common)
        if status == 404:
            self._append([response, RequestAbandoned(
                request_id=item.request_id, kind=item.kind, company_number=item.company_number,
                error_code="NOT_FOUND", reason="404 from Companies House")])
        elif status == 401:
            self._append([response, requeue_same_attempt(item, "retry after 401")])
            raise Unauthorized("Companies House answered 401 Unauthorized to the REST API: "
                               "check COMPANIES_HOUSE_API_KEY")
        else:
            code = "SERVER_ERROR" if status >= 500 else "HTTP_ERROR"
            self._append([response, self._decide(item, code, f"HTTP {status}")])
        return None

    def _decode(self, item: QueueItem, body: bytes) -> _Page | None:
        try:
            if item.kind == "officers":
                return msgspec.json.decode(body, type=_Page)
            msgspec.json.decode(body, type=dict)
            return _Page()
        except (msgspec.ValidationError, msgspec.DecodeError):
            return None

    def _decide(self, item: QueueItem, code: str, reason: str) -> Entry:
        return retry_or_abandon(item, code, reason, self.settings, self.clock.now(), self.rng)

    def _failed(self, item: QueueItem, page_start: int, started: float, code: str, error: str) -> None:
        elapsed = int((time.monotonic() - started) * 1000)
        self._append([
            TransportError(request_id=item.request_id, kind=item.kind,
                           company_number=item.company_number, error=f"{code}: {error}",
                           elapsed_ms=elapsed, page_start=page_start),
            self._decide(item, code, error),
        ])
        return None

    def _rate_limited(self, item: QueueItem, status: int, headers: RateLimitHeaders | None,
                      common: dict) -> None:
        until = self.limiter.cooldown_for(status, headers)
        entries: list[Entry] = [RateLimited(status=status, cooldown_until=until, ratelimit=headers,
                                            **common)]
        now = self.clock.now()
        # This 429 is counted too, though its entry is appended only below.
        violations = self.limiter.incidents_since(now - EMERGENCY_WINDOWS * self.limiter.window, item.request_id)
        threshold = self.settings.emergency_429_threshold
        # Lanes share the limiter: the first lane to cross the threshold declares the stop;
        # 429s of requests that were already in flight are recorded, not declared again.
        declare = violations >= threshold and not self.limiter.emergency
        if declare:
            self.limiter.emergency = True
            entries.append(EmergencyStopped(
                reason=f"{violations} rate-limit responses (429/403) within an hour, "
                       f"threshold {threshold}: stopping to protect the key",
                violations=violations, cooldown_until=until))
        self._append(entries)
        if declare:
            raise EmergencyStop(f"emergency stop: {violations} rate-limit responses within an hour "
                                f"(threshold {threshold}); calls resume after {until}")
        return None
