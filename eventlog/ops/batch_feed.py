"""`/batches/{id}/events`: one batch's progress as server-sent events, resumable by position.

Every ledger entry about one of the batch's companies (its request queued, sent, answered,
retried, abandoned; the company completed) or about the batch itself (`batch.cancelled`) goes
out as a `job` event whose `id:` is its ledger position, with the job as it stands when sent.
A client that loses the connection sends the last id it saw as `Last-Event-ID` (or `?after=`),
and the feed reads `event_log` from the position after it: nothing in between is missed. A
fresh client starts at the head, after a `batch` event with the batch's counts.

`batch` events (the counts, no id, so they never move a client's resume point) follow every
burst of job events and every `snapshot_interval`; once the batch is finished and every entry
up to the head is sent, an `end` event carries the final counts and the stream closes.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
from aiohttp import web
from aiohttp_sse import sse_response

from eventlog.errors import BatchNotFound
from eventlog.ops.batch_report import find_batch
from eventlog.ops.probe import Probe
from eventlog.ops.sse import parse_resume, summarise
from projections.projectors import batch_jobs

__all__ = ["BatchFeed"]

_ABOUT_BATCHES = frozenset(("backfill.created", "batch.cancelled", "batch.expired"))


def _counts(row: batch_jobs.BatchRow) -> dict[str, Any]:
    return {**msgspec.structs.asdict(row), "open_jobs": row.open_jobs, "finished": row.finished}


class BatchFeed:
    def __init__(self, probe: Probe, closing: asyncio.Event, *, poll_interval: float = 0.5,
                 snapshot_interval: float = 5.0, retry_ms: int = 2000, batch: int = 500,
                 ping_interval: float = 15.0) -> None:
        self.probe = probe
        self.closing = closing
        self.poll_interval = poll_interval
        self.snapshot_interval = snapshot_interval
        self.retry_ms = retry_ms
        self.batch = batch
        self.ping_interval = ping_interval
        self.clients: set[Any] = set()

    def _rows_after(self, position: int) -> list[tuple]:
        return self.probe.conn.execute(
            "SELECT id, event_id, event_type, company_number, event_data, received_at "
            "FROM event_log WHERE id > ? ORDER BY id LIMIT ?", (position, self.batch)).fetchall()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        conn = self.probe.conn
        try:
            row = find_batch(conn, request.match_info["batch_id"])
        except BatchNotFound as exc:
            return web.json_response({"error": str(exc)}, status=404)
        companies = batch_jobs.batch_companies(conn, row.id)
        resume = parse_resume(request.headers.get("Last-Event-ID") or request.query.get("after"))
        position = resume if resume is not None else self.probe.head()
        async with sse_response(request, ping_interval=self.ping_interval) as resp:
            self.clients.add(resp)
            try:
                await resp.send(msgspec.json.encode(_counts(row)).decode(), event="batch", retry=self.retry_ms)
                await self._pump(resp, row.id, companies, position)
            except ConnectionResetError:
                pass  # the client went away: it comes back with Last-Event-ID
            finally:
                self.clients.discard(resp)
        return resp

    def _about(self, entry: tuple, batch_id: str, companies: frozenset[str]) -> bool:
        _, _, event_type, company, data, _ = entry
        if company is not None and company in companies:
            return True
        return event_type in _ABOUT_BATCHES and batch_id in data

    async def _pump(self, resp: Any, batch_id: str, companies: frozenset[str], position: int) -> None:
        conn = self.probe.conn
        next_snapshot = time.monotonic() + self.snapshot_interval
        while not self.closing.is_set() and resp.is_connected():
            rows = self._rows_after(position)
            sent = False
            for entry in rows:
                pos, _, event_type, company, data, received_at = entry
                position = pos
                if not self._about(entry, batch_id, companies):
                    continue
                job = batch_jobs.job_of(conn, batch_id, company) if company else None
                message = {"position": pos, "event_type": event_type, "company_number": company,
                           "received_at": received_at, "summary": summarise(data), "job": job}
                await resp.send(msgspec.json.encode(message).decode(), id=str(pos), event="job")
                sent = True
            if len(rows) == self.batch:
                continue  # a backlog: keep going without waiting
            row = batch_jobs.batch(conn, batch_id)
            if row is None or row.finished:  # expired, or over: everything up to the head is out
                final = _counts(row) if row is not None else {"id": batch_id, "expired": True}
                await resp.send(msgspec.json.encode(final).decode(), event="end")
                return
            if sent or time.monotonic() >= next_snapshot:
                await resp.send(msgspec.json.encode(_counts(row)).decode(), event="batch")
                next_snapshot = time.monotonic() + self.snapshot_interval
            try:
                await asyncio.wait_for(self.closing.wait(), self.poll_interval)
            except TimeoutError:
                pass

    def drop_clients(self) -> int:
        dropped = list(self.clients)
        for resp in dropped:
            resp.stop_streaming()
        return len(dropped)
