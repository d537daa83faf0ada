"""GET /companies and GET /filings: the streaming API, newline-delimited JSON over one long response.

A connect passes, in order: the gateway (an HTML 502/503/504 page for
``stream_gateway_error_share`` of attempts), the stream key (401 to anything else, the REST key
included), connect pacing (429 when the same key connected less than ``stream_connect_min_interval`` ago), then the start: the live head, or the first event at or after
``?timepoint=`` (400 if not a number, 416 if older than retention). The connection then writes the
backlog as fast as the socket takes it and follows the head as the clock moves, until the nightly
drop or the 24-hour cap ends it cleanly (lifetime.py). Idle connections get a bare newline every
``heartbeat_interval`` real seconds. Faults (garbage lines, dropping the socket mid-line) are rolled
per connection, not per timepoint, so a client that resumes at the broken timepoint is not broken
again forever.
"""

from __future__ import annotations

import asyncio
import enum
import random

from aiohttp import web

from .auth import presented_key, unauthorized
from .config import SimulatorConfig
from .context import SIMULATOR, Simulator
from .gateway import gateway_error
from .lifetime import connection_deadline
from .record import StreamConnection
from .timeline import Feed

__all__ = ["GARBAGE_LINES", "stream_handler"]

_BATCH = 100  # events per socket write while catching up
_POLL = 0.05  # longest sleep between looks at the (possibly fake) clock

GARBAGE_LINES = (
    b'{"resource_kind":"company-profile","resource_uri":"/comp\n',
    b"<html><body>502 Bad Gateway</body></html>\n",
    b'{"resource_kind": company-profile, "event": }\n',
    b"\xff\xfe\x00 not json\n",
)


class Fate(enum.Enum):
    OK = "ok"
    MALFORMED = "malformed"
    DISCONNECT = "disconnect"


class _Dice:
    """Per-connection fault decisions, reproducible from (seed, connection number)."""

    def __init__(self, config: SimulatorConfig, connection: int) -> None:
        self._config = config
        self._rng = random.Random(f"{config.seed}:connection:{connection}")

    def roll(self) -> Fate:
        cfg = self._config
        if cfg.malformed_share == 0 and cfg.disconnect_mid_line_share == 0:
            return Fate.OK
        draw = self._rng.random()
        if draw < cfg.disconnect_mid_line_share:
            return Fate.DISCONNECT
        if draw < cfg.disconnect_mid_line_share + cfg.malformed_share:
            return Fate.MALFORMED
        return Fate.OK

    def garbage(self) -> bytes:
        return self._rng.choice(GARBAGE_LINES)


def _start_index(feed: Feed, raw: str | None, now: float) -> int | web.Response:
    """Where a new connection starts, or the error response (400 bad value, 416 too old)."""
    if raw is None:
        return feed.published_count(now)
    try:
        timepoint = int(raw)
    except ValueError:
        return web.Response(status=400, text="timepoint must be an integer\n")
    oldest = feed.oldest_resumable(now)
    if oldest is not None and timepoint < oldest:
        return web.Response(status=416, text=f"timepoint {timepoint} is out of range\n")
    return feed.index_at_or_after(timepoint)


def _too_often() -> web.Response:
    body = {"errors": [{"error": "too-many-connection-attempts", "type": "ch:service"}]}
    return web.json_response(body, status=429)


def _refusal(sim: Simulator, request: web.Request, feed: Feed, key: str | None, attempt: int,
             now: float) -> int | web.Response:
    """The start index of an admitted connect, or the response that refuses it."""
    cfg = sim.config
    page = gateway_error(cfg.seed, "stream", attempt, cfg.stream_gateway_error_share)
    if page is not None:
        return page
    if key != cfg.stream_key:
        return unauthorized()
    if not sim.connects.admit(key, feed.path, now):
        return _too_often()
    return _start_index(feed, request.query.get("timepoint"), now)


async def stream_handler(request: web.Request) -> web.StreamResponse:
    """Admit the connect (gateway, key, pacing, start), then pump events until something ends."""
    sim = request.app[SIMULATOR]
    feed = sim.feeds[request.path]
    now = sim.clock()
    raw = request.query.get("timepoint")
    requested = int(raw) if raw is not None and raw.lstrip("-").isdigit() else None
    key = presented_key(request)
    record = StreamConnection(time=now, status=200, requested_timepoint=requested,
                              path=feed.path, key=key or "")
    sim.state.streams.append(record)
    start = _refusal(sim, request, feed, key, len(sim.state.streams), now)
    if isinstance(start, web.Response):
        record.status = start.status
        return start
    record.start_timepoint = feed.timepoint_of(start)
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    dice = _Dice(sim.config, len(sim.state.streams))
    deadline = connection_deadline(sim.config, now)
    try:
        record.end = await _pump(sim, feed, request, response, start, record, dice, deadline)
    except ConnectionError:
        record.end = "client"
    return response


def _batch(
    sim: Simulator, feed: Feed, start: int, stop: int, record: StreamConnection, dice: _Dice
) -> tuple[bytes, int, str]:
    """Encode events ``start..stop-1`` into one chunk; stop early at a close or a disconnect.

    Returns (chunk, next index, end reason or "").
    """
    chunk = bytearray()
    limit = sim.config.close_after_events
    for index in range(start, stop):
        line = feed.line_at(index)
        fate = dice.roll()
        if fate is Fate.DISCONNECT:
            chunk += line[: len(line) // 2]
            return bytes(chunk), index, "disconnect"
        chunk += dice.garbage() if fate is Fate.MALFORMED else line
        record.events_sent += 1
        if limit and record.events_sent >= limit:
            return bytes(chunk), index + 1, "close_after"
        if sim.config.stall_after_events and record.events_sent >= sim.config.stall_after_events:
            return bytes(chunk), index + 1, "stall"
    return bytes(chunk), stop, ""


async def _pump(
    sim: Simulator,
    feed: Feed,
    request: web.Request,
    response: web.StreamResponse,
    index: int,
    record: StreamConnection,
    dice: _Dice,
    deadline: tuple[float, str],
) -> str:
    """Write events as they become available; return why the connection ended."""
    loop = asyncio.get_running_loop()
    last_write = loop.time()
    interval = sim.config.heartbeat_interval
    ends_at, end_reason = deadline
    while not sim.state.stopping.is_set():
        now = sim.clock()
        if now >= ends_at:  # the server closes, whatever is pending: the client resumes
            return end_reason
        available = feed.published_count(now)
        if index < available:
            chunk, index, end = _batch(sim, feed, index, min(available, index + _BATCH), record,
                                       dice)
            await response.write(chunk)
            last_write = loop.time()
            if end == "disconnect":
                _drop(request)
            if end == "stall":
                return await _stall(sim, request)
            if end:
                return end
            continue
        if loop.time() - last_write >= interval:
            await response.write(b"\n")
            last_write = loop.time()
        until_event = feed.publish_time(index) - now
        until_heartbeat = last_write + interval - loop.time()
        pause = max(0.001, min(until_event, until_heartbeat, ends_at - now, _POLL))
        try:
            await asyncio.wait_for(sim.state.stopping.wait(), timeout=pause)
        except TimeoutError:
            pass
    return "shutdown"


async def _stall(sim: Simulator, request: web.Request) -> str:
    """Say nothing more, not even a heartbeat, until the client gives up (or the server stops)."""
    while not sim.state.stopping.is_set():
        transport = request.transport
        if transport is None or transport.is_closing():
            return "stalled"
        try:
            await asyncio.wait_for(sim.state.stopping.wait(), timeout=_POLL)
        except TimeoutError:
            pass
    return "shutdown"


def _drop(request: web.Request) -> None:
    """Close the socket without finishing the chunked body: the client sees a broken payload."""
    transport = request.transport
    if transport is not None:
        transport.close()
