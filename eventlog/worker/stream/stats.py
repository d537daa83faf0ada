"""What a stream client has done, for the worker's status line and `/metrics`.

Plain counters updated on the event loop (no locks needed): readers in the same
loop see a consistent value between awaits. The ledger remains the record; these
are a convenience view of the running process and start at zero on restart,
except `last_timepoint`, which the client seeds from the ledger.
"""

from __future__ import annotations

from typing import Sequence

from eventlog.ledger.entries import Entry, StreamEvent, StreamLineRejected
from eventlog.ledger.store import Appended

__all__ = ["StreamStats"]


class StreamStats:
    """Counters of one stream client."""

    __slots__ = (
        "stream", "connected", "attempts", "connections", "events", "duplicates", "rejected",
        "events_seen", "batches", "heartbeats", "gaps", "partial_lines", "last_timepoint",
        "last_published_at", "last_event_at", "last_byte_at", "connected_since",
    )

    def __init__(self, stream: str) -> None:
        self.stream = stream
        self.connected = False
        self.attempts = 0  # connection attempts, successful or not
        self.connections = 0  # attempts answered 200
        self.events = 0  # stream events appended (new)
        self.duplicates = 0  # stream events the ledger already had
        self.rejected = 0  # malformed lines recorded
        self.events_seen = 0  # events parsed, new or duplicate
        self.batches = 0  # ledger transactions written
        self.heartbeats = 0
        self.gaps = 0
        self.partial_lines = 0  # unfinished lines dropped at a disconnect
        self.last_timepoint: int | None = None  # newest appended timepoint (resume point - 1)
        self.last_published_at: str | None = None  # that event's published_at, as sent
        self.last_event_at: float | None = None  # epoch seconds when it was appended
        self.last_byte_at: float | None = None  # epoch seconds of the last byte (heartbeats too)
        self.connected_since: float | None = None

    @property
    def reconnects(self) -> int:
        return max(0, self.connections - 1)

    def on_connected(self, now: float) -> None:
        self.connected = True
        self.connections += 1
        self.connected_since = now
        self.last_byte_at = now

    def on_flush(self, batch: Sequence[Entry], results: Sequence[Appended], now: float) -> None:
        self.batches += 1
        for entry, result in zip(batch, results):
            if type(entry) is StreamEvent:
                self.events_seen += 1
                if result.new:
                    self.events += 1
                    self.last_timepoint = entry.timepoint
                    self.last_published_at = entry.published_at
                    self.last_event_at = now
                else:
                    self.duplicates += 1
            elif type(entry) is StreamLineRejected:
                self.rejected += 1

    def as_dict(self) -> dict[str, object]:
        out = {name: getattr(self, name) for name in self.__slots__}
        out["reconnects"] = self.reconnects
        return out
