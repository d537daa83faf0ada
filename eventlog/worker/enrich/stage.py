"""The enrichment stage: company -> domain -> its officers' e-mails, through Snov.io, in the ledger.

One lane, one request at a time (60 a minute is one a second; a lane more would only race
itself). Every request goes the way Companies House's do:

1. in one `BEGIN IMMEDIATE`: the limiter (`snov_limiter`) allows it, the plan (`snov_plan`)
   chooses it, and its `snov.sent` is appended, before the socket write;
2. the request (`snov_http`, one request on the wire per call);
3. its `snov.answered` (with the consequences: a stop, in the same transaction).

A start's task hash is recorded with its answer, before any poll, so a restart polls it again and
never starts it twice; a start whose answer was lost (a crash, a timeout, a 5xx, a body we can't
read) is counted as spent and never repeated: Snov.io starts are not idempotent. Requests a
stopped process left unanswered are recorded as such by whichever process looks next.

Enrichment stops cleanly (`snov.stopped`: not_enough_credits, budget_exhausted, balance_low,
unauthorized, failed) without stopping the worker: running tasks are still polled, then the
stage idles, and the stream and the Companies House work go on. The next start tries again.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any, NamedTuple

import aiohttp

from eventlog.clock import Clock, from_epoch
from eventlog.config.settings import Settings
from eventlog.ledger.entries import Entry, SnovAnswered, SnovReused, SnovSent, SnovStarted, SnovStopped
from eventlog.ledger.store import Ledger
from eventlog.worker.enrich import snov_plan, snov_record
from eventlog.worker.enrich.snov_api import (DomainsCompleted, EmailsCompleted, domain_credits, email_credits)
from eventlog.worker.enrich.snov_http import SnovCredentials, SnovOutcome, SnovTransport, TokenHolder
from eventlog.worker.enrich.snov_limiter import SnovLimiter
from eventlog.worker.enrich.snov_match import match_domains, match_emails
from eventlog.errors import SnovWireError
from projections.projectors import snov_request_log, snov_tasks

__all__ = ["Enricher", "POLL_INTERVAL", "IDLE_WAIT", "MAX_RUNNING_TASKS"]

log = logging.getLogger(__name__)

POLL_INTERVAL = 2.0  # seconds between polls of one task: Snov.io's lookups take a few seconds
MAX_RUNNING_TASKS = 4  # finish what was started (and reserved) before starting more
IDLE_WAIT = 2.0  # nothing to do: look again after this long (or when the worker wakes us)
_LOST_AFTER_MARGIN = 5.0  # an answer later than REQUEST_TIMEOUT plus this will never come


class _NotNow(Exception):
    """No request to make now: wait `wait` seconds (`done`: stopped, nothing left to poll)."""

    def __init__(self, wait: float, done: bool = False):
        self.wait = wait
        self.done = done


class _Granted(NamedTuple):
    sent: SnovSent
    poll: snov_tasks.TaskToPoll | None = None
    domains: list[snov_record.DomainLookup] = []
    emails: list[snov_record.EmailLookup] = []


class Enricher:
    """The stage on `ledger` (projections attached by the caller), calling Snov.io through `session`."""

    def __init__(self, settings: Settings, ledger: Ledger, session: aiohttp.ClientSession, *,
                 clock: Clock, stop: asyncio.Event, wake: asyncio.Event | None = None,
                 poll_interval: float = POLL_INTERVAL, idle_wait: float = IDLE_WAIT):
        self.settings = settings
        self.ledger = ledger
        self.conn = ledger.conn
        self.clock = clock
        self.stop = stop
        self.wake = wake or asyncio.Event()
        self.poll_interval = poll_interval
        self.idle_wait = idle_wait
        self.limiter = SnovLimiter(self.conn, clock, limit=settings.snov_rate_limit,
                                   window=settings.snov_rate_window, slack=settings.rate_limit_slack)
        self.transport = SnovTransport(session, settings.snov_api_url, request_timeout=settings.request_timeout,
                                       connect_timeout=min(settings.connection_timeout, 10.0))
        self.credentials = SnovCredentials(settings.snov_client_id or "", settings.snov_client_secret or "")
        self.holder = TokenHolder(self._fetch_token, clock=clock)
        self.stopped: str | None = None  # the stop code, once this session stopped enriching
        self.balance_read = False
        self._last_start = ""
        self.sent = 0
        self.outcomes: dict[str, int] = {}

    # --- running -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Enrich until told to stop; never raises for what Snov.io or the network does."""
        s = self.settings
        self.ledger.append(SnovStarted(rate_limit=s.snov_rate_limit, rate_window=s.snov_rate_window,
                                       max_credits=s.snov_max_credits, credits_per_person=s.snov_credits_per_person))
        try:
            await self._loop()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug here must not take the stream and Companies House down
            log.exception("enrichment failed")
            self._stop("failed", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")

    async def _loop(self) -> None:
        while not self.stop.is_set():
            if self.holder.refused is not None:
                self._stop("unauthorized", "Snov.io refused the client id and secret (401): check "
                           "SNOV_CLIENT_ID and SNOV_CLIENT_SECRET")
                return
            try:
                outcome = await self.holder.call(self._step)
            except _NotNow as n:
                if n.done:
                    return
                await self._pause(n.wait)
                continue
            if outcome.call == "token" and not outcome.ok and self.holder.refused is None:
                await self._pause(max(self.limiter.cooldown_until() - self.clock.now(), 0.5))

    async def _pause(self, seconds: float) -> None:
        self.wake.clear()
        waits = [asyncio.ensure_future(self.stop.wait()), asyncio.ensure_future(self.wake.wait())]
        try:
            await asyncio.wait(waits, timeout=max(seconds, 0.001), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    def _stop(self, code: str, reason: str) -> None:
        if self.stopped is None:
            self.stopped = code
            self.ledger.append(SnovStopped(code=code, reason=reason))
            log.warning("enrichment stopped (%s): %s", code, reason)

    # --- one request ---------------------------------------------------------------------------

    async def _step(self, token) -> SnovOutcome[Any]:
        """Grant, send and record one request with `token`; `_NotNow` when there is none to make."""
        granted = self._grant()
        try:
            outcome = await self._send(granted.sent, token)
        except asyncio.CancelledError:  # the worker is stopping: whatever happened on the wire is unknown
            self._answer(granted.sent, SnovOutcome(call=granted.sent.call, kind="transport_error", elapsed_ms=0,
                                                   error="interrupted: worker stopping"), None)
            raise
        self._answer(granted.sent, outcome, granted.poll)
        return outcome

    async def _send(self, sent: SnovSent, token) -> SnovOutcome[Any]:
        t = self.transport
        if sent.call == "balance":
            outcome = await t.balance(token)
        elif sent.call == "domains_start":
            outcome = await t.start_domains(token, snov_record.domain_batch(bytes(sent.items).decode())[1])  # type: ignore[arg-type]
        elif sent.call == "emails_start":
            outcome = await t.start_emails(token, snov_record.email_batch(self.conn, bytes(sent.items).decode())[1])  # type: ignore[arg-type]
        elif sent.call == "domains_poll":
            outcome = await t.poll_domains(token, sent.task_hash)
        else:
            outcome = await t.poll_emails(token, sent.task_hash)
        return outcome

    async def _fetch_token(self) -> SnovOutcome[Any]:
        """One token request, write-ahead and through the limiter like every other."""
        while True:
            with self.ledger.transaction() as tx:
                decision = self.limiter.check()
                if decision.wait <= 0:
                    sent = SnovSent(request_id=_request_id("token"), call="token")
                    tx.append(sent)
                    break
            if self.stop.is_set():
                return SnovOutcome(call="token", kind="transport_error", elapsed_ms=0, error="stopping")
            await self._pause(decision.wait)
        self.sent += 1
        outcome = await self.transport.token(self.credentials)
        self._answer(sent, outcome, None)
        return outcome

    def _grant(self) -> _Granted:
        """In one transaction: recover lost answers, ask the limiter, choose, record. Raises `_NotNow`."""
        with self.ledger.transaction() as tx:  # what it appended commits even when it grants nothing
            now = self.clock.now()
            tx.append_many(self._lost_answers(now))
            decision = self.limiter.check()
            granted = _NotNow(decision.wait) if decision.wait > 0 else self._choose(tx, now)
            if isinstance(granted, _Granted):
                tx.append(granted.sent)
        if isinstance(granted, _NotNow):
            raise granted
        self.sent += 1
        return granted

    def _choose(self, tx, now: float) -> _Granted | _NotNow:
        conn = self.conn
        if not self.balance_read and self.stopped is None:
            self.balance_read = True
            return _Granted(SnovSent(request_id=_request_id("balance"), call="balance"))
        due = snov_tasks.due_for_poll(conn, from_epoch(now - self.poll_interval))
        if due is not None:
            return _Granted(SnovSent(request_id=_request_id("poll"), call=f"{due.kind}_poll", task_id=due.task_id,
                                     task_hash=due.task_hash), poll=due)
        running = snov_tasks.polling_count(conn)
        if self.stopped is not None:
            return _NotNow(self.poll_interval, done=running == 0)
        if running >= MAX_RUNNING_TASKS:
            return _NotNow(self.poll_interval / 4)
        space = snov_plan.room(conn, self.settings)
        work = snov_plan.domain_work(conn, space.credits)
        if work.reuse:
            tx.append_many([SnovReused(company_number=r.company_number, name=r.name, source_company=r.source_company)
                            for r in work.reuse])
        mail = snov_plan.email_work(conn, self.settings, space.credits)
        # Domains and e-mails take turns, so a busy stream of new companies can't starve the
        # officers of the ones already found (nor the other way round).
        if work.lookups and not (mail.lookups and self._last_start == "domains_start"):
            self._last_start = "domains_start"
            items = snov_record.domain_items(work.lookups)
            return _Granted(self._start_entry("domains_start", items, work.lookups, len(work.lookups)),
                            domains=work.lookups)
        if mail.lookups:
            self._last_start = "emails_start"
            items = snov_record.email_items(conn, now, mail.lookups)
            worst = len(mail.lookups) * self.settings.snov_credits_per_person
            return _Granted(self._start_entry("emails_start", items, mail.lookups, worst), emails=mail.lookups)
        if (work.waiting or mail.waiting) and not snov_tasks.credits(conn).reserved:
            # Nothing running could give credits back (a task usually costs less than its worst
            # case): not one lookup fits, so enrichment stops.
            self.stopped = space.binding
            tx.append(SnovStopped(code=space.binding, reason=f"no lookup fits what is left: {space.detail}"))
            log.warning("enrichment stopped (%s): %s", space.binding, space.detail)
            return _NotNow(self.poll_interval, done=True)
        return _NotNow(self.idle_wait)

    @staticmethod
    def _start_entry(call: str, items, lookups, worst: int) -> SnovSent:
        task_id = uuid.uuid4().hex
        return SnovSent(request_id=_request_id("start"), call=call, task_id=task_id, items=items,
                        lookups=tuple(snov_record.lookup_key(x) for x in lookups), worst_credits=worst)

    def _lost_answers(self, now: float) -> list[Entry]:
        """Requests counted long enough ago that their answer will never come (their process
        stopped): recorded as lost. For a start that means spent, never started again."""
        before = now - self.settings.request_timeout - _LOST_AFTER_MARGIN
        out: list[Entry] = []
        for request_id, call, task_id in snov_request_log.waiting_before(self.conn, before):
            spent = " (a start without its answer: counted as spent, never started again)" if call.endswith("_start") else ""
            out.append(SnovAnswered(request_id=request_id, call=call, task_id=task_id or "", outcome="transport_error",
                                    elapsed_ms=0, error=f"no answer recorded: the process that sent it stopped{spent}"))
        return out

    # --- recording answers ---------------------------------------------------------------------

    def _answer(self, sent: SnovSent, outcome: SnovOutcome[Any], poll: snov_tasks.TaskToPoll | None) -> None:
        self.outcomes[outcome.kind] = self.outcomes.get(outcome.kind, 0) + 1
        fields: dict[str, Any] = dict(request_id=sent.request_id, call=sent.call, task_id=sent.task_id,
                                      outcome=outcome.kind, elapsed_ms=outcome.elapsed_ms, status=outcome.status,
                                      error=outcome.error,
                                      cooldown_until=self.limiter.cooldown_for(outcome.kind, outcome.retry_after))
        extra: list[Entry] = []
        with self.ledger.transaction() as tx:
            if outcome.ok and sent.call.endswith("_start"):
                fields["task_hash"] = outcome.value.task_hash  # type: ignore[union-attr]
            elif outcome.ok and sent.call == "balance":
                fields["balance"] = str(outcome.value.credits)  # type: ignore[union-attr]
            elif outcome.ok and poll is not None:
                fields.update(self._results(poll, outcome.value))
            if outcome.kind == "not_enough_credits" and self.stopped is None:
                self.stopped = "not_enough_credits"
                extra.append(SnovStopped(code="not_enough_credits",
                                         reason=f"Snov.io answered not_enough_credits to {sent.call}"))
            tx.append_many([SnovAnswered(**fields), *extra])

    def _results(self, poll: snov_tasks.TaskToPoll, value: Any) -> dict[str, Any]:
        """A completed poll's matched results and cost; a result we can't match is malformed."""
        now = self.clock.now()
        try:
            if isinstance(value, DomainsCompleted):
                items, batch = snov_record.domain_batch(poll.items)
                match = match_domains(batch, value)  # type: ignore[arg-type]
                return {"results": snov_record.domain_results(items, match), "credits": domain_credits(value),
                        "unexpected": len(match.unexpected)}
            assert isinstance(value, EmailsCompleted)
            readable, batch, unreadable = snov_record.email_batch(self.conn, poll.items)
            if batch is None:
                return {"results": snov_record.email_results(self.conn, now, [], None, unreadable),
                        "credits": email_credits(value)}
            if unreadable:  # meta.rows names people we can no longer read: match by name alone
                value = EmailsCompleted(value.answers, None)
            match = match_emails(batch, value)
            return {"results": snov_record.email_results(self.conn, now, readable, match, unreadable),
                    "credits": email_credits(value), "unexpected": len(match.unexpected)}
        except SnovWireError as exc:
            return {"outcome": "malformed", "error": str(exc)}


def _request_id(kind: str) -> str:
    return f"snov-{kind}-{uuid.uuid4().hex[:16]}"
