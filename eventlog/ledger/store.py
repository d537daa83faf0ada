"""The append-only, hash-chained ledger: the only source of truth.

Positions are assigned here (previous head + 1), which is what lets the hash of
each entry cover its position and the hash of the one before it; an edited,
reordered or deleted row breaks the chain from that point on.

Appends are idempotent by `event_id`: appending an id that exists is a no-op
reporting the existing position. The common case (no duplicates) runs as one
`executemany` inside a savepoint; only when SQLite reports a duplicate do we
fall back to looking ids up, so stream catch-up runs at raw insert speed.

Projections that must never lag (the rate-limit log, the queue) register as
`on_append` hooks and run inside the append transaction itself.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from typing import Callable, Iterable, Iterator, NamedTuple, Sequence

import apsw
import msgspec

from eventlog.clock import Clock, SystemClock, from_epoch
from eventlog.ledger import native
from eventlog.ledger.chain import GENESIS, ChainReport, chain_hash, walk
from eventlog.ledger.db import transaction, translated
from eventlog.ledger.entries import Entry, RequestQueued, StreamEvent, decode, encode

__all__ = ["Ledger", "LedgerTransaction", "Record", "Appended", "natural_event_id"]

AppendHook = Callable[[apsw.Connection, "list[Record]"], None]


class Record(msgspec.Struct, frozen=True):
    """An entry as stored: its position and envelope, and the decoded entry."""

    position: int
    event_id: str
    event_type: str
    company_number: str | None
    received_at: str
    entry: Entry


class Appended(NamedTuple):
    position: int
    event_id: str
    new: bool


def natural_event_id(entry: Entry) -> str:
    """The idempotency key an entry has by nature, or a fresh unique one."""
    if isinstance(entry, StreamEvent):
        return f"{entry.stream}:{entry.timepoint}"
    if isinstance(entry, RequestQueued):
        return f"queued:{entry.request_id}"
    return f"{entry.__struct_config__.tag}:{uuid.uuid4().hex}"


_INSERT = (
    "INSERT INTO event_log(id, event_id, event_type, company_number, event_data, received_at, hash) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)


class Ledger:
    """Append and read entries of one SQLite file."""

    def __init__(self, conn: apsw.Connection, clock: Clock | None = None,
                 on_append: Sequence[AppendHook] = ()):
        self.conn = conn
        self.clock = clock or SystemClock()
        self.on_append: list[AppendHook] = list(on_append)
        # Called with the same records once the transaction has committed (never for one rolled
        # back): for what must only describe facts the ledger holds, such as log lines. One that raises
        # is logged at DEBUG and skipped: the append did commit.
        self.after_commit: list[AppendHook] = []

    # --- appending -----------------------------------------------------------

    def append(self, entry: Entry, event_id: str | None = None) -> Appended:
        return self.append_many([(event_id, entry)])[0]

    def append_many(self, items: Iterable[Entry | tuple[str | None, Entry]]) -> list[Appended]:
        """Append a batch in one transaction: all of it, or (on error) none of it."""
        with self.transaction() as tx:
            return tx.append_many(items)

    @contextlib.contextmanager
    def transaction(self) -> Iterator["LedgerTransaction"]:
        """One `BEGIN IMMEDIATE` for a read-decide-append step (the limiter's check)."""
        with transaction(self.conn):
            tx = LedgerTransaction(self)
            yield tx
            if tx.records:
                for hook in self.on_append:
                    hook(self.conn, tx.records)
        if tx.records:
            for hook in self.after_commit:
                try:
                    hook(self.conn, tx.records)
                except Exception:  # committed is committed: a failing observer must not look like a failed append
                    logging.getLogger(__name__).debug("after_commit hook %r failed", hook, exc_info=True)

    # --- reading -------------------------------------------------------------

    def head(self) -> int:
        with translated(self.conn.filename):
            row = self.conn.execute("SELECT max(id) FROM event_log").fetchone()
        return int(row[0] or 0)

    def read_rows(self, after: int = 0, *, until: int | None = None,
                  batch_size: int = 2000) -> Iterator[tuple]:
        """Stored rows `(id, event_id, event_type, company_number, event_data, received_at, hash)`,
        in position order, a batch at a time so memory stays flat."""
        until = until if until is not None else 1 << 62
        pos = after
        while True:
            with translated(self.conn.filename):
                rows = self.conn.execute(
                    "SELECT id, event_id, event_type, company_number, event_data, received_at, hash "
                    "FROM event_log WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",
                    (pos, until, batch_size),
                ).fetchall()
            if not rows:
                return
            yield from rows
            pos = rows[-1][0]

    def read(self, after: int = 0, *, until: int | None = None, batch_size: int = 2000) -> Iterator[Record]:
        """Decoded records after position `after`, in order, a batch at a time.

        Its own loop rather than `read_rows`: skipping the hash column and one
        generator layer is worth 20% on replay.
        """
        until = until if until is not None else 1 << 62
        pos = after
        while True:
            with translated(self.conn.filename):
                rows = self.conn.execute(
                    "SELECT id, event_id, event_type, company_number, received_at, event_data "
                    "FROM event_log WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",
                    (pos, until, batch_size),
                ).fetchall()
            if not rows:
                return
            for pos, event_id, event_type, company, received_at, data in rows:
                yield Record(pos, event_id, event_type, company, received_at, decode(data))

    def get(self, event_id: str) -> Record | None:
        with translated(self.conn.filename):
            row = self.conn.execute(
                "SELECT id, event_id, event_type, company_number, event_data, received_at "
                "FROM event_log WHERE event_id = ?", (event_id,)).fetchone()
        if row is None:
            return None
        return Record(row[0], row[1], row[2], row[3], row[5], decode(row[4]))

    def verify(self, *, batch_size: int = 5000) -> ChainReport:
        """Recompute the hash chain from genesis; report the first break.

        In C when the chain extension is built (`native.py`: the same bytes, the same SHA-256,
        ~8x faster), otherwise in Python (`chain.walk`).
        """
        return native.verify_report(self.conn) or walk(self.conn, batch_size=batch_size)


class LedgerTransaction:
    """Appends inside an open transaction; collects records for the inline hooks."""

    def __init__(self, ledger: Ledger):
        self.ledger = ledger
        self.conn = ledger.conn
        self.records: list[Record] = []
        row = self.conn.execute("SELECT id, hash FROM event_log ORDER BY id DESC LIMIT 1").fetchone()
        self._head, self._prev = (row[0], row[1]) if row else (0, GENESIS)

    def append(self, entry: Entry, event_id: str | None = None) -> Appended:
        return self.append_many([(event_id, entry)])[0]

    def append_many(self, items: Iterable[Entry | tuple[str | None, Entry]]) -> list[Appended]:
        received_at = from_epoch(self.ledger.clock.now())
        batch: list[tuple[str, Entry]] = []
        for item in items:
            event_id, entry = item if isinstance(item, tuple) else (None, item)
            batch.append((event_id or natural_event_id(entry), entry))
        if not batch:
            return []
        try:
            self.conn.execute("SAVEPOINT ledger_append")
            result = self._insert(batch, received_at, known={})
            self.conn.execute("RELEASE ledger_append")
            return result
        except apsw.ConstraintError:
            self.conn.execute("ROLLBACK TO ledger_append")
            self.conn.execute("RELEASE ledger_append")
        known = self._existing([eid for eid, _ in batch])
        return self._insert(batch, received_at, known=known)

    def _existing(self, event_ids: list[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        unique = list(dict.fromkeys(event_ids))
        for i in range(0, len(unique), 500):
            chunk = unique[i:i + 500]
            marks = ",".join("?" * len(chunk))
            for eid, pos in self.conn.execute(
                f"SELECT event_id, id FROM event_log WHERE event_id IN ({marks})", chunk
            ):
                found[eid] = pos
        return found

    def _insert(self, batch: list[tuple[str, Entry]], received_at: str,
                known: dict[str, int]) -> list[Appended]:
        head, prev = self._head, self._prev
        rows = []
        records = []
        result = []
        seen = dict(known)
        for event_id, entry in batch:
            if event_id in seen:
                result.append(Appended(seen[event_id], event_id, False))
                continue
            head += 1
            data = encode(entry).decode()
            event_type = entry.__struct_config__.tag
            company = getattr(entry, "company_number", None)
            prev = chain_hash(prev, head, event_id, event_type, company, received_at, data)
            rows.append((head, event_id, event_type, company, data, received_at, prev))
            records.append(Record(head, event_id, event_type, company, received_at, entry))
            seen[event_id] = head
            result.append(Appended(head, event_id, True))
        if rows:
            self.conn.executemany(_INSERT, rows)
        self._head, self._prev = head, prev
        self.records.extend(records)
        return result
