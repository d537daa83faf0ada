"""GET /companies: the streaming API, newline-delimited JSON over one long response.

The connection serves from a start index (the live head, or the first event at or after
``?timepoint=``), writes the backlog as fast as the socket takes it, then follows the head as the
clock moves. Idle connections get a bare newline every ``heartbeat_interval`` real seconds.
Faults (garbage lines, dropping the socket mid-line) are rolled per connection, not per timepoint,
so a client that resumes at the broken timepoint is not broken again forever.
"""

from __future__ import annotations

import asyncio
import enum
import random

import msgspec
from aiohttp import web

from .auth import presented_key, unauthorized
from .config import SimulatorConfig
from .context import SIMULATOR, Simulator
from .record import StreamConnection

__all__ = ["GARBAGE_LINES", "stream_handler"]

_BATCH = 100  # events per socket write while catching up
_POLL = 0.05  # longest sleep between looks at the (possibly fake) clock
_encoder = msgspec.json.Encoder()

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


def _start_index(sim: Simulator, raw: str | None, now: float) -> int | web.Response:
    """Where a new connection starts, or the error response (400 bad value, 416 too old)."""
    if raw is None:
        return sim.timeline.published_count(now)
    try:
        timepoint = int(raw)
    except ValueError:
        return web.Response(status=400, text="timepoint must be an integer\n")
    oldest = sim.timeline.oldest_resumable(now)
    if oldest is not None and timepoint < oldest:
        return web.Response(status=416, text=f"timepoint {timepoint} is out of range\n")
    return sim.timeline.index_at_or_after(timepoint)


async def stream_handler(request: web.Request) -> web.StreamResponse:
    """Authenticate with the stream key, pick the start, then pump events until something ends."""
    sim = request.app[SIMULATOR]
    now = sim.clock()
    raw = request.query.get("timepoint")
    requested = int(raw) if raw is not None and raw.lstrip("-").isdigit() else None
    record = StreamConnection(time=now, status=200, requested_timepoint=requested)
    sim.state.streams.append(record)
    if presented_key(request) != sim.config.effective_stream_key:
        record.status = 401
        return unauthorized()
    start = _start_index(sim, raw, now)
    if isinstance(start, web.Response):
        record.status = start.status
        return start
    record.start_timepoint = sim.timeline.timepoint_of(start)
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    dice = _Dice(sim.config, len(sim.state.streams))
    try:
        record.end = await _pump(sim, request, response, start, record, dice)
    except ConnectionError:
        record.end = "client"
    return response


def _batch(
    sim: Simulator, start: int, stop: int, record: StreamConnection, dice: _Dice
) -> tuple[bytes, int, str]:
    """Encode events ``start..stop-1`` into one chunk; stop early at a close or a disconnect.

    Returns (chunk, next index, end reason or "").
    """
    chunk = bytearray()
    limit = sim.config.close_after_events
    for index in range(start, stop):
        line = _encoder.encode(sim.timeline.event_at(index)) + b"\n"
        fate = dice.roll()
        if fate is Fate.DISCONNECT:
            chunk += line[: len(line) // 2]
            return bytes(chunk), index, "disconnect"
        chunk += dice.garbage() if fate is Fate.MALFORMED else line
        record.events_sent += 1
        if limit and record.events_sent >= limit:
            return bytes(chunk), index + 1, "close_after"
    return bytes(chunk), stop, ""


async def _pump(
    sim: Simulator,
    request: web.Request,
    response: web.StreamResponse,
    index: int,
    record: StreamConnection,
    dice: _Dice,
) -> str:
    """Write events as they become available; return why the connection ended."""
    loop = asyncio.get_running_loop()
    last_write = loop.time()
    interval = sim.config.heartbeat_interval
    while not sim.state.stopping.is_set():
        available = sim.timeline.published_count(sim.clock())
        if index < available:
            chunk, index, end = _batch(sim, index, min(available, index + _BATCH), record, dice)
            await response.write(chunk)
            last_write = loop.time()
            if end == "disconnect":
                _drop(request)
            if end:
                return end
            continue
        if loop.time() - last_write >= interval:
            await response.write(b"\n")
            last_write = loop.time()
        until_event = sim.timeline.publish_time(index) - sim.clock()
        until_heartbeat = last_write + interval - loop.time()
        pause = max(0.001, min(until_event, until_heartbeat, _POLL))
        try:
            await asyncio.wait_for(sim.state.stopping.wait(), timeout=pause)
        except TimeoutError:
            pass
    return "shutdown"


def _drop(request: web.Request) -> None:
    """Close the socket without finishing the chunked body: the client sees a broken payload."""
    transport = request.transport
    if transport is not None:
        transport.close()
