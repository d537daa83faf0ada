"""A thin async transport to Snov.io: one method per call, one request on the wire per method.

Every method returns a ``SnovOutcome`` (never raises for anything the network or the service
does): ``ok``, ``in_progress``, ``not_enough_credits``, ``unauthorized``, ``rate_limited``,
``rejected`` (any other 4xx), ``server_error``, ``malformed`` (a 2xx we can't read) or
``transport_error``, with the time it took. There are no retries, no redirects and no ledger
here: the enrichment stage wraps each call in a write-ahead ledger step and a sliding-window
limiter, so a method must be exactly one counted request. The client secret and the token never
appear in an outcome, an error or a log line.

``TokenHolder`` keeps one token: it renews it ``margin`` seconds before it expires and, on a 401,
renews once and repeats the call once. A second 401 with a fresh token, or a refused token
request, makes it stop asking (``refused``) until ``reset()``: wrong credentials never become a
loop of token requests.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, Literal, TypeVar

import aiohttp
import msgspec

from eventlog.clock import Clock
from eventlog.worker.enrich.snov_api import (
    BALANCE_PATH,
    BASE_URL,
    DOMAINS_RESULT_PATH,
    DOMAINS_START_PATH,
    EMAILS_RESULT_PATH,
    EMAILS_START_PATH,
    TOKEN_PATH,
    Balance,
    DomainBatch,
    DomainsCompleted,
    EmailBatch,
    EmailsCompleted,
    InProgress,
    IssuedToken,
    NotEnoughCredits,
    SnovWireError,
    TaskStarted,
    parse_balance,
    parse_domain_poll,
    parse_email_poll,
    parse_start,
    parse_token,
)

__all__ = ["OutcomeKind", "SnovCredentials", "SnovOutcome", "SnovTransport", "TokenHolder"]

T = TypeVar("T")
OutcomeKind = Literal[
    "ok",
    "in_progress",
    "not_enough_credits",
    "unauthorized",
    "rate_limited",
    "rejected",
    "server_error",
    "malformed",
    "transport_error",
]


class SnovOutcome(msgspec.Struct, Generic[T], frozen=True, kw_only=True):
    """What one call came to.

    ``call`` names it ("token", "domains_start", "domains_poll", "emails_start", "emails_poll",
    "balance"); ``value`` is set only when ``kind`` is "ok"; ``body`` is the answer as received,
    for the ledger (never for the token call, whose answer is the token); ``retry_after`` is a
    429's Retry-After in seconds when it sent a number; ``error`` says what went wrong in one line.
    """

    call: str
    kind: OutcomeKind
    elapsed_ms: int
    status: int | None = None
    value: T | None = None
    retry_after: float | None = None
    error: str = ""
    body: bytes | None = None

    @property
    def ok(self) -> bool:
        return self.kind == "ok"


class SnovCredentials:
    """Client id and secret. ``repr`` and ``str`` show the id only."""

    __slots__ = ("client_id", "_secret")

    def __init__(self, client_id: str, client_secret: str) -> None:
        self.client_id = client_id
        self._secret = client_secret

    def form(self) -> dict[str, str]:
        """The token request's form fields; for the transport only."""
        return {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self._secret,
        }

    def __repr__(self) -> str:
        return f"SnovCredentials(client_id={self.client_id!r}, client_secret=<hidden>)"

    __str__ = __repr__


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header; an HTTP date or garbage gives None (the limiter then
    waits a whole window, which is always enough)."""
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and seconds >= 0 else None


def _says_not_enough_credits(body: bytes) -> bool:
    try:
        decoded = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(decoded, dict) and decoded.get("status") == "not_enough_credits"


class SnovTransport:
    """One HTTP request per method against ``base_url``, through a session that never resends.

    Give it a session from ``eventlog.worker.sender.rest_session``: aiohttp otherwise re-sends a request
    once when a kept-alive connection drops, which would put two requests on the wire for one
    recorded send (and start a lookup twice, spending credits twice).
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str = BASE_URL,
        *,
        request_timeout: float = 30.0,
        connect_timeout: float = 10.0,
    ) -> None:
        if getattr(session, "_retry_connection", False):
            raise ValueError("SnovTransport needs a session that never resends: use rest_session()")
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=request_timeout, sock_connect=connect_timeout)

    # --- the calls ------------------------------------------------------------------------------

    async def token(self, credentials: SnovCredentials) -> SnovOutcome[IssuedToken]:
        """POST the client credentials (form) for a bearer token."""
        return await self._request("token", "POST", TOKEN_PATH, parse_token, token=None,
                                   data=credentials.form(), keep_body=False)

    async def start_domains(self, token: IssuedToken, batch: DomainBatch) -> SnovOutcome[TaskStarted]:
        """POST up to 10 company names (form ``names[]``); ok carries the task hash."""
        return await self._request("domains_start", "POST", DOMAINS_START_PATH,
                                   lambda b: parse_start(b, "company-domain-by-name start"),
                                   token=token, data=batch.form())

    async def poll_domains(self, token: IssuedToken, task_hash: str) -> SnovOutcome[DomainsCompleted]:
        """GET a domain task's result: ok (completed), in_progress or not_enough_credits."""
        return await self._request("domains_poll", "GET", DOMAINS_RESULT_PATH, parse_domain_poll,
                                   token=token, params={"task_hash": task_hash})

    async def start_emails(self, token: IssuedToken, batch: EmailBatch) -> SnovOutcome[TaskStarted]:
        """POST up to 10 rows (JSON ``{"rows": [...]}``); ok carries the task hash."""
        return await self._request("emails_start", "POST", EMAILS_START_PATH,
                                   lambda b: parse_start(b, "emails-by-domain-by-name start"),
                                   token=token, data=batch.json(),
                                   content_type="application/json")

    async def poll_emails(self, token: IssuedToken, task_hash: str) -> SnovOutcome[EmailsCompleted]:
        """GET an e-mail task's result: ok (completed), in_progress or not_enough_credits."""
        return await self._request("emails_poll", "GET", EMAILS_RESULT_PATH, parse_email_poll,
                                   token=token, params={"task_hash": task_hash})

    async def balance(self, token: IssuedToken) -> SnovOutcome[Balance]:
        """GET the account's credit balance (free of credits, not of the rate limit)."""
        return await self._request("balance", "GET", BALANCE_PATH, parse_balance, token=token)

    # --- the one request ------------------------------------------------------------------------

    async def _request(
        self,
        call: str,
        method: str,
        path: str,
        parse: Callable[[bytes], Any],
        *,
        token: IssuedToken | None,
        data: Any = None,
        params: dict[str, str] | None = None,
        content_type: str | None = None,
        keep_body: bool = True,
    ) -> SnovOutcome[Any]:
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token.value}"
        if content_type is not None:
            headers["Content-Type"] = content_type
        started = time.monotonic()

        def elapsed() -> int:
            return int((time.monotonic() - started) * 1000)

        try:
            # No redirects: a redirected start would be a second request on the wire.
            async with self.session.request(method, self.base_url + path, headers=headers,
                                            data=data, params=params, timeout=self.timeout,
                                            allow_redirects=False) as resp:
                body = await resp.read()
                status, retry_after = resp.status, resp.headers.get("Retry-After")
        except asyncio.TimeoutError:
            return SnovOutcome(call=call, kind="transport_error", elapsed_ms=elapsed(),
                               error="TIMEOUT: request timed out")
        except aiohttp.ClientError as exc:  # the class name only: a message may quote the URL
            return SnovOutcome(call=call, kind="transport_error", elapsed_ms=elapsed(),
                               error=f"NETWORK_ERROR: {type(exc).__name__}")
        common: dict[str, Any] = dict(call=call, elapsed_ms=elapsed(), status=status,
                                      body=body if keep_body else None)
        if 200 <= status < 300:
            return self._judge(parse, body, common)
        if status == 401:
            return SnovOutcome(kind="unauthorized", error="401 Unauthorized", **common)
        if status == 429:
            return SnovOutcome(kind="rate_limited", retry_after=_retry_after(retry_after),
                               error="429 Too Many Requests", **common)
        if status >= 500:
            return SnovOutcome(kind="server_error", error=f"HTTP {status}", **common)
        if status == 402 or _says_not_enough_credits(body):
            return SnovOutcome(kind="not_enough_credits", error=f"HTTP {status}", **common)
        return SnovOutcome(kind="rejected", error=f"HTTP {status}", **common)

    @staticmethod
    def _judge(parse: Callable[[bytes], Any], body: bytes, common: dict[str, Any]) -> SnovOutcome[Any]:
        try:
            value = parse(body)
        except SnovWireError as exc:
            return SnovOutcome(kind="malformed", error=str(exc), **common)
        if isinstance(value, InProgress):
            return SnovOutcome(kind="in_progress", **common)
        if isinstance(value, NotEnoughCredits):
            return SnovOutcome(kind="not_enough_credits", error="not_enough_credits", **common)
        return SnovOutcome(kind="ok", value=value, **common)


class TokenHolder:
    """One bearer token, renewed before it expires and once on a 401, never in a loop.

    ``fetch`` performs one token request; the enrichment stage passes its own (the transport's
    ``token`` wrapped in a ledger step and the limiter, since a token request is a request too).
    The token counts from the moment it was asked for, and is renewed ``margin`` seconds before
    it expires (at most half its lifetime, so a short-lived token is still used).
    """

    def __init__(
        self,
        fetch: Callable[[], Awaitable[SnovOutcome[IssuedToken]]],
        *,
        clock: Clock,
        margin: float = 120.0,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._margin = margin
        self._token: IssuedToken | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()
        self.refused: SnovOutcome[Any] | None = None  # set once the credentials are refused
        self.issued = 0  # tokens obtained, for the stage's counters

    @classmethod
    def for_transport(cls, transport: SnovTransport, credentials: SnovCredentials, *,
                      clock: Clock, margin: float = 120.0) -> TokenHolder:
        """A holder that asks ``transport`` directly (no ledger): for tests and tools."""
        return cls(lambda: transport.token(credentials), clock=clock, margin=margin)

    def reset(self) -> None:
        """Forget the token and a refusal (e.g. after the credentials were changed)."""
        self._token, self._renew_at, self.refused = None, 0.0, None

    async def current(self) -> IssuedToken | SnovOutcome[Any]:
        """A token good for now, renewed if it is due; or the outcome that kept us from one."""
        async with self._lock:
            if self.refused is not None:
                return self.refused
            if self._token is not None and self._clock.now() < self._renew_at:
                return self._token
            return await self._renew()

    async def call(self, op: Callable[[IssuedToken], Awaitable[SnovOutcome[T]]]) -> SnovOutcome[Any]:
        """``op`` with a good token; on a 401, one renewal and one repeat, never more.

        Returns ``op``'s outcome, or the token request's outcome (``call == "token"``) when no
        token could be had, or a refusal recorded earlier (no request at all).
        """
        token = await self.current()
        if isinstance(token, SnovOutcome):
            return token
        outcome = await op(token)
        if outcome.kind != "unauthorized":
            return outcome
        async with self._lock:
            if self.refused is not None:
                return outcome
            if self._token is token:  # nobody renewed it meanwhile: it is ours to renew
                renewed = await self._renew()
            else:  # another caller renewed it already: use theirs, no second renewal
                renewed = self._token if self._token is not None else await self._renew()
        if isinstance(renewed, SnovOutcome):
            return renewed
        repeated = await op(renewed)
        if repeated.kind == "unauthorized":
            async with self._lock:
                self._token, self.refused = None, repeated
        return repeated

    async def _renew(self) -> IssuedToken | SnovOutcome[Any]:
        """One token request; the caller holds the lock."""
        self._token = None
        asked_at = self._clock.now()
        outcome = await self._fetch()
        if outcome.kind == "unauthorized":  # wrong id or secret: asking again won't help
            self.refused = outcome
            return outcome
        if not outcome.ok or outcome.value is None:
            return outcome
        token = outcome.value
        margin = min(self._margin, token.expires_in / 2)
        self._token, self._renew_at = token, asked_at + token.expires_in - margin
        self.issued += 1
        return token
