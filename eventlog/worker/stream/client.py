"""Following a Companies House stream into the ledger, through every way it fails.

One `StreamClient` holds one long GET on one stream URL (the stream's name is
the path's last segment, e.g. `companies`) and appends what it reads:
`stream.event` for each event (event_id `<stream>:<timepoint>`, so an event
re-sent after a reconnect is dropped by the ledger), `stream.rejected` for a
line that is not an event, and `stream.connected` / `stream.disconnected` /
`stream.gap` for the connection's life, so `stream_metadata` is a projection
like any other.

Why it is shaped this way:
- Resume comes from the ledger, not a side file: at start the newest recorded
  event of this stream gives `?timepoint=<last + 1>`; afterwards the client
  tracks what it appended. A 416 (too old) reconnects live and records a gap.
- Events are appended in batches of `batch_size`, and a partial batch waits
  at most `flush_interval`, so a quiet stream's event is in the ledger within
  a second. While a burst goes on (more bytes already waiting in the socket) a
  batch grows up to `buffer_size`, so a day of backlog pays one commit (one
  fsync) per many events and goes at ledger speed. Appends are short
  synchronous SQLite calls made on the event loop, in arrival order.
- The silence watchdog (`read_timeout`) counts any byte, heartbeats included;
  a connection silent for that long is dead even if TCP has not noticed.
- Failures back off with full jitter behind a circuit breaker (`backoff.py`);
  the count of consecutive failures resets only after a healthy connection
  (one that delivered an event, stayed up `healthy_after` seconds, or was
  closed cleanly by the server after sending anything, heartbeats included,
  and lasting `QUIET_HEALTHY_AFTER` seconds),
  and more than `max_retries` failures in a row raise `StreamGone`. The
  breaker's first cooldown is `BREAKER_COOLDOWN` (a blip of a few seconds must
  not cost five minutes of stream), doubling while its probes fail, up to
  `max_retry_delay`. 401/403 raise
  `Unauthorized` at once: retrying a wrong key only risks a ban.
- Connection attempts are paced (`STREAM_CONNECT_SPACING`, shared by every stream of the
  worker through one `ConnectPacer`): CH answers 429 to connections opened too often, and a
  worker following /companies and /filings must stagger its connects.
- A gateway's HTML 502/503/504 page on connect is a failure like any other status: retried
  with backoff, its body never read as events.
- The key goes only into the Authorization header: never into an entry, a
  log line or an error message.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Awaitable, Callable

import aiohttp
from yarl import URL

from eventlog.worker.httpauth import basic_auth_header
from eventlog.worker.stream.backoff import Backoff, CircuitBreaker
from eventlog.clock import Clock, SystemClock
from eventlog.ledger.db import translated
from eventlog.ledger.entries import Entry, StreamConnected, StreamDisconnected, StreamGap
from eventlog.errors import StreamGone, Unauthorized
from eventlog.ledger.store import Ledger
from eventlog.worker.stream.ndjson import DEFAULT_MAX_LINE, LineSplitter
from eventlog.config.settings import Settings
from eventlog.worker.stream.stats import StreamStats
from eventlog.worker.stream.wire import decode_line

__all__ = ["StreamClient", "StreamStats", "ConnectPacer", "run_streams", "stream_clients", "stream_name",
           "last_recorded_timepoint", "RATE_LIMITED_DELAY", "BREAKER_COOLDOWN"]

log = logging.getLogger(__name__)

_NEVER = float("inf")
RATE_LIMITED_DELAY = 60.0  # a 429 on connect waits at least this long ("back off for minutes")
BREAKER_COOLDOWN = 30.0  # an open breaker's first wait: long enough to stop hammering, short after a blip
QUIET_HEALTHY_AFTER = 10.0  # a connection that spoke and was closed cleanly after this long is healthy
_KEY_HINT = ("COMPANIES_HOUSE_STREAM_KEY (a streaming API key; the REST key in COMPANIES_HOUSE_API_KEY "
             "is a different key and the stream refuses it)")

Sleep = Callable[[float], Awaitable[object]]


def stream_name(url: str) -> str:
    """`https://stream.companieshouse.gov.uk/companies` → `companies`."""
    segments = [s for s in URL(url).path.split("/") if s]
    return segments[-1] if segments else "stream"


def last_recorded_timepoint(ledger: Ledger, stream: str) -> int | None:
    """The timepoint of the newest `stream.event` of `stream` in the ledger, or None.

    Scans backwards by position (the newest stream event is near the head in any
    running system) and reads the timepoint off the event_id, without decoding.
    """
    prefix = f"{stream}:"
    with translated(ledger.conn.filename):
        row = ledger.conn.execute(
            "SELECT event_id FROM event_log WHERE event_type = 'stream.event' "
            "AND substr(event_id, 1, ?) = ? ORDER BY id DESC LIMIT 1",
            (len(prefix), prefix),
        ).fetchone()
    return int(row[0][len(prefix):]) if row else None


class ConnectPacer:
    """At most one stream connection attempt per `spacing` seconds, across the clients sharing it.

    `now` is a monotonic clock; the wait goes through the caller's `sleep`."""

    def __init__(self, spacing: float, now: Callable[[], float] = time.monotonic) -> None:
        self.spacing = spacing
        self.now = now
        self._last: float | None = None

    def reserve(self) -> float:
        """Claim the next slot; returns how long to wait for it (0 when the last was long ago)."""
        if self.spacing <= 0:
            return 0.0
        now = self.now()
        at = now if self._last is None else max(now, self._last + self.spacing)
        self._last = at
        return at - now


class _Ended(Exception):
    """How one connection attempt ended: reason, HTTP status, and whether it was healthy."""

    def __init__(self, reason: str, status: int | None = None, *, healthy: bool = False,
                 delay_at_least: float = 0.0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.healthy = healthy
        self.delay_at_least = delay_at_least


class StreamClient:
    """Follows one stream URL until `stop` is set, appending everything to `ledger`."""

    def __init__(self, settings: Settings, ledger: Ledger, *, url: str,
                 session: aiohttp.ClientSession | None = None, sleep: Sleep = asyncio.sleep,
                 rng: random.Random | None = None, clock: Clock | None = None,
                 max_line: int = DEFAULT_MAX_LINE, breaker_threshold: int = 5,
                 healthy_after: float = 60.0, quiet_healthy_after: float = QUIET_HEALTHY_AFTER,
                 pacer: ConnectPacer | None = None) -> None:
        self.settings = settings
        self.ledger = ledger
        self.url = url
        self.stream = stream_name(url)
        self.session = session
        self.sleep = sleep
        self.clock = clock or SystemClock()
        self.max_line = max_line
        self.healthy_after = healthy_after
        self.quiet_healthy_after = quiet_healthy_after
        self.backoff = Backoff(settings.initial_retry_delay, settings.max_retry_delay, rng)
        self.breaker = CircuitBreaker(breaker_threshold, min(settings.max_retry_delay, BREAKER_COOLDOWN),
                                      self.clock.now, max_cooldown=settings.max_retry_delay)
        self.stats = StreamStats(stream=self.stream)
        self._live_next = False  # after a 416: the next connection goes live, whatever we hold
        self.pacer = pacer or ConnectPacer(settings.stream_connect_spacing)

    def snapshot(self) -> dict[str, object]:
        """Counters plus retry state, for the worker's status line and `/metrics`."""
        out = self.stats.as_dict()
        out.update(consecutive_failures=self.backoff.failures, circuit=self.breaker.state.value)
        return out

    # --- the loop ------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the stream until `stop` is set; raises `Unauthorized` or `StreamGone`."""
        self.stats.last_timepoint = last_recorded_timepoint(self.ledger, self.stream)
        session = self.session or aiohttp.ClientSession()
        follow = asyncio.create_task(self._follow(session), name=f"stream {self.stream}")
        stopper = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({follow, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            try:
                if not follow.done():
                    follow.cancel()
                    try:
                        await follow
                    except asyncio.CancelledError:
                        pass
            finally:  # also when the cancelled follower raised on its way out (e.g. a full disk)
                if self.session is None:
                    await session.close()
        if not follow.cancelled():
            follow.result()  # re-raises Unauthorized / StreamGone

    async def _follow(self, session: aiohttp.ClientSession) -> None:
        while True:
            try:
                await self._connect(session)
                continue  # a 416: straight back, live
            except _Ended as ended:
                delay = self._after_failure(ended)
            except asyncio.CancelledError:
                if self.stats.connected:
                    self._disconnected("stopped", None, None)
                raise
            await self.sleep(delay)

    def _after_failure(self, ended: _Ended) -> float:
        """Count the failure, pick the wait, record the disconnection (or give up)."""
        if ended.healthy:
            self.backoff.reset()
            self.breaker.success()
        delay = self.backoff.fail()
        if self.breaker.failure():
            delay = max(delay, self.breaker.remaining())
        delay = max(delay, ended.delay_at_least)
        if self.backoff.failures > self.settings.max_retries:
            self._disconnected(ended.reason, ended.status, None, fatal=True)
            raise StreamGone(
                f"stream {self.stream}: gave up after {self.backoff.failures} failed connections "
                f"in a row (MAX_RETRIES={self.settings.max_retries}); last: {ended.reason}")
        self._disconnected(ended.reason, ended.status, delay)
        log.warning("stream %s: %s; reconnecting in %.1fs", self.stream, ended.reason, delay)
        return delay

    def _disconnected(self, reason: str, status: int | None, retry_in: float | None, *,
                      fatal: bool = False) -> None:
        self.stats.connected = False
        self.ledger.append(StreamDisconnected(stream=self.stream, reason=reason, status=status,
                                              retry_in=retry_in, fatal=fatal))

    # --- one connection --------------------------------------------------------------

    async def _connect(self, session: aiohttp.ClientSession) -> None:
        """One attempt: returns after a 416 (reconnect live now), else raises `_Ended`."""
        wait = self.pacer.reserve()
        if wait > 0:
            await self.sleep(wait)
        last = self.stats.last_timepoint
        start = None if (last is None or self._live_next) else last + 1
        url = URL(self.url) if start is None else URL(self.url).update_query(timepoint=start)
        headers = basic_auth_header(self.settings.stream_credential)
        timeout = self.settings.connection_timeout
        self.stats.attempts += 1
        try:
            async with asyncio.timeout(timeout):
                response = await session.get(
                    url, headers=headers, timeout=aiohttp.ClientTimeout(total=None, connect=timeout,
                                                                  sock_connect=timeout))
        except TimeoutError:
            raise _Ended(f"timeout: no response within {timeout:g}s") from None
        except aiohttp.ClientError as exc:
            raise _Ended(f"connect error: {type(exc).__name__}") from None
        except OSError as exc:
            raise _Ended(f"connect error: {type(exc).__name__}") from None
        async with response:
            status = response.status
            if status == 200:
                self._live_next = False
                self.stats.on_connected(self.clock.now())
                self.ledger.append(StreamConnected(stream=self.stream, from_timepoint=start))
                log.info("stream %s: connected%s", self.stream,
                         f" from timepoint {start}" if start is not None else " live")
                await self._read(response)
            self._refused(status, start, response.headers.get("Retry-After"))

    def _refused(self, status: int, start: int | None, retry_after: str | None) -> None:
        """Turn a non-200 answer into a gap (return), a fatal error, or a failure (`_Ended`)."""
        if status == 416:
            self._live_next = True
            self.stats.gaps += 1
            self.ledger.append(StreamGap(stream=self.stream, requested_timepoint=start,
                                         reason="416: timepoint out of range; reconnecting live"))
            log.warning("stream %s: timepoint %s is too old; events up to the live head are "
                        "lost, reconnecting live", self.stream, start)
            return
        if status in (401, 403):
            self.ledger.append(StreamDisconnected(stream=self.stream, reason="unauthorized",
                                                  status=status, fatal=True))
            raise Unauthorized(f"the Companies House stream refused the key ({status}): "
                               f"check {_KEY_HINT}")
        if status == 429:
            wait = RATE_LIMITED_DELAY
            if retry_after and retry_after.strip().isdigit():
                wait = max(wait, float(retry_after.strip()))
            raise _Ended("rate limited on connect", status, delay_at_least=wait)
        raise _Ended(f"http {status}", status)

    async def _read(self, response: aiohttp.ClientResponse) -> None:
        """Read lines until the connection ends; always raises `_Ended`."""
        content = response.content
        splitter = LineSplitter(self.max_line)
        stats = self.stats
        batch: list[Entry] = []
        batch_size = self.settings.batch_size
        most = max(batch_size, self.settings.buffer_size)
        flush_interval = self.settings.flush_interval
        read_timeout = self.settings.read_timeout
        loop = asyncio.get_running_loop()
        opened = time.monotonic()
        events_before = stats.events_seen
        silent_until = loop.time() + read_timeout
        flush_at = _NEVER
        reason = "closed by server"
        heard = False
        try:
            while True:
                chunk = content.read_nowait()
                if not chunk and batch_size <= len(batch) < most:
                    # A full batch. If the burst goes on (bytes already waiting in the
                    # socket), read on up to BUFFER_SIZE events, so a catch-up pays one
                    # commit for many events; if the stream paused, write it now.
                    await asyncio.sleep(0)
                    chunk = content.read_nowait()
                if not chunk:
                    if len(batch) >= batch_size:
                        self._flush(batch)
                        flush_at = _NEVER
                    try:
                        async with asyncio.timeout_at(min(silent_until, flush_at)):
                            chunk = await content.readany()
                    except TimeoutError:
                        if batch and loop.time() >= flush_at:
                            self._flush(batch)
                            flush_at = _NEVER
                            continue
                        reason = f"watchdog: no data for {read_timeout:g}s"
                        break
                    if not chunk:
                        break
                now = loop.time()
                silent_until = now + read_timeout
                heard = True
                stats.last_byte_at = self.clock.now()
                for line in splitter.feed(chunk):
                    batch.append(decode_line(self.stream, line))
                if splitter.heartbeats:
                    stats.heartbeats += splitter.heartbeats
                    splitter.heartbeats = 0
                if len(batch) >= most or (batch and now >= flush_at):
                    self._flush(batch)
                if not batch:
                    flush_at = _NEVER
                elif flush_at == _NEVER:
                    flush_at = now + flush_interval
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, OSError) as exc:
            reason = f"connection reset: {type(exc).__name__}"
        finally:
            if batch:
                self._flush(batch)
            stats.partial_lines += 1 if splitter.discard() else 0
        # A clean close after the stream spoke (a quiet stream's heartbeats, behind a proxy that
        # closes idle connections) is normal, not a failure towards MAX_RETRIES.
        # It must still have lasted a while: a server that sends a byte and hangs up at once would
        # otherwise reset the backoff every time and be reconnected to about once a second, forever.
        lasted = time.monotonic() - opened
        healthy = (stats.events_seen > events_before
                   or lasted >= self.healthy_after
                   or (heard and reason == "closed by server" and lasted >= min(self.quiet_healthy_after,
                                                                                 self.healthy_after)))
        raise _Ended(reason, healthy=healthy)

    def _flush(self, batch: list[Entry]) -> None:
        """Append the batch in one transaction and count what was new."""
        results = self.ledger.append_many(batch)
        self.stats.on_flush(batch, results, self.clock.now())
        batch.clear()


def stream_clients(settings: Settings, ledger: Ledger, **kwargs: object) -> list[StreamClient]:
    """One client per `settings.stream_urls`, sharing any `session`/`sleep`/`rng` given, and one
    `ConnectPacer`, so their connects are staggered."""
    kwargs.setdefault("pacer", ConnectPacer(settings.stream_connect_spacing))
    return [StreamClient(settings, ledger, url=url, **kwargs)  # type: ignore[arg-type]
            for url in settings.stream_urls]


async def run_streams(settings: Settings, ledger: Ledger, stop: asyncio.Event, *,
                      clients: list[StreamClient] | None = None, **kwargs: object) -> None:
    """Follow every configured stream until `stop`; the first fatal error stops them all."""
    clients = clients if clients is not None else stream_clients(settings, ledger, **kwargs)
    tasks = [asyncio.create_task(c.run(stop), name=f"stream {c.stream}") for c in clients]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
