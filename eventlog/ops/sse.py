"""`/events`: the ledger as server-sent events, resumable by position.

Each ledger entry goes out as an `entry` event whose `id:` is its ledger
position. A browser that loses the connection reconnects by itself and sends
the last id it saw as `Last-Event-ID`; we read `event_log` from the position
after it, so nothing in between is missed however long it was away. (The
`after` query parameter does the same for clients that can't set headers.)
A fresh client gets the last `recent` entries first, enough to fill the page.

`status` events carry snapshots (connection, window, queue, progress, health)
and have no id, so they never move a client's resume point.

New entries are found by polling the head (a primary-key lookup) every
`poll_interval`: that also sees appends by other processes (a `backfill` run
beside the worker), which an in-process hook would not.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Any

import msgspec
from aiohttp import web
from aiohttp_sse import sse_response

from eventlog.ops.probe import Probe
from projections.projectors import batch_jobs

__all__ = ["LiveFeed", "entry_message", "summarise"]

_BATCHES_SHOWN = 10  # the newest batches on the status page
_SKIP = frozenset({"type", "data", "body", "company_numbers", "company_number"})


def summarise(event_data: str | bytes, limit: int = 160) -> str:
    """The scalar fields of an entry as `key=value` text, without Companies House payloads."""
    try:
        fields = msgspec.json.decode(event_data)
    except msgspec.DecodeError:
        return ""
    if not isinstance(fields, dict):
        return ""
    parts = []
    for key, value in fields.items():
        if key in _SKIP or isinstance(value, (dict, list)) or value is None:
            if key == "company_numbers" and isinstance(value, list):
                parts.append(f"companies={len(value)}")
            continue
        parts.append(f"{key}={value}")
    text = " ".join(parts)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def entry_message(row: tuple) -> dict[str, Any]:
    pos, event_id, event_type, company, event_data, received_at = row
    return {"position": pos, "event_id": event_id, "event_type": event_type,
            "company_number": company, "received_at": received_at,
            "summary": summarise(event_data)}


def parse_resume(value: str | None) -> int | None:
    if value is None or not value.strip():
        return None
    try:
        return max(0, int(value.strip()))
    except ValueError:
        return None


class LiveFeed:
    def __init__(self, probe: Probe, closing: asyncio.Event, *, poll_interval: float = 0.5,
                 snapshot_interval: float = 5.0, recent: int = 50, retry_ms: int = 2000,
                 batch: int = 500, ping_interval: float = 15.0) -> None:
        self.probe = probe
        self.closing = closing
        self.poll_interval = poll_interval
        self.snapshot_interval = snapshot_interval
        self.recent = recent
        self.retry_ms = retry_ms
        self.batch = batch
        self.ping_interval = ping_interval
        self.clients: set[Any] = set()
        self.resumed_from: collections.deque[int] = collections.deque(maxlen=50)
        self._snapshot: tuple[float, bytes] | None = None

    # --- reads -------------------------------------------------------------------------

    def rows_after(self, position: int, limit: int) -> list[tuple]:
        return self.probe.conn.execute(
            "SELECT id, event_id, event_type, company_number, event_data, received_at "
            "FROM event_log WHERE id > ? ORDER BY id LIMIT ?", (position, limit)).fetchall()

    def snapshot(self) -> bytes:
        """The page's state as JSON, shared by all clients for half a snapshot interval."""
        now = time.monotonic()
        if self._snapshot is not None and now - self._snapshot[0] < self.snapshot_interval / 2:
            return self._snapshot[1]
        data = msgspec.json.encode(self.snapshot_value())
        self._snapshot = (now, data)
        return data

    def snapshot_value(self) -> dict[str, Any]:
        p = self.probe
        at = p.now()
        streams = [{"stream": s.stream, "connected": s.connected,
                    "last_heard_seconds": (round(at - s.last_byte_at, 1)
                                           if s.last_byte_at is not None else None),
                    "reconnects": s.reconnects, "events": s.events,
                    "last_timepoint": s.last_timepoint, "last_published_at": s.last_published_at}
                   for s in p.streams()]
        batches = [{"id": b.id, "name": b.name, "status": b.status, "total_jobs": b.total_jobs,
                    "completed_jobs": b.completed_jobs, "failed_jobs": b.failed_jobs,
                    "cancelled_jobs": b.cancelled_jobs, "open_jobs": b.open_jobs}
                   for b in batch_jobs.batches(p.conn)[:_BATCHES_SHOWN]]
        return {"health": p.health(), "streams": streams, "status": p.status(), "batches": batches,
                "read_timeout": p.settings.read_timeout}

    # --- the handler -------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        resume = parse_resume(request.headers.get("Last-Event-ID") or request.query.get("after"))
        if resume is not None:
            self.resumed_from.append(resume)
            position = resume
        else:
            position = max(0, self.probe.head() - self.recent)
        async with sse_response(request, ping_interval=self.ping_interval) as resp:
            self.clients.add(resp)
            try:
                await self._pump(resp, position)
            except ConnectionResetError:
                pass  # the client went away: it will come back with Last-Event-ID
            finally:
                self.clients.discard(resp)
        return resp

    async def _pump(self, resp: Any, position: int) -> None:
        await resp.send(self.snapshot().decode(), event="status", retry=self.retry_ms)
        next_snapshot = time.monotonic() + self.snapshot_interval
        while not self.closing.is_set() and resp.is_connected():
            rows = self.rows_after(position, self.batch)
            for row in rows:
                await resp.send(msgspec.json.encode(entry_message(row)).decode(),
                                id=str(row[0]), event="entry")
                position = row[0]
            if len(rows) == self.batch:
                continue  # a backlog: keep going without waiting
            if time.monotonic() >= next_snapshot:
                await resp.send(self.snapshot().decode(), event="status")
                next_snapshot = time.monotonic() + self.snapshot_interval
            try:
                await asyncio.wait_for(self.closing.wait(), self.poll_interval)
            except TimeoutError:
                pass

    def drop_clients(self) -> int:
        """End every open stream (clients reconnect with Last-Event-ID); returns how many."""
        dropped = list(self.clients)
        for resp in dropped:
            resp.stop_streaming()
        return len(dropped)
