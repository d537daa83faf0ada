"""Applying the ledger to the projections, and keeping their positions with their rows.

Live, `attach(ledger)` registers one hook that runs inside every append
transaction: each projector applies the new records and its position in
`projection_state` moves to the last of them, in the same transaction, so the
projections are never behind the ledger and a crash loses or repeats nothing.
`catch_up` applies what lies beyond each stored position (entries appended by a
process that had no hook; the hook does the same first if it finds a gap).
`check_versions` refuses projections built by older (or newer) projector code,
and so does the hook (the append is refused): only `replay` may rebuild them.

The same `apply_records` runs live (a few records at a time), in catch-up and in
replay (thousands at a time); projectors give the same rows however the ledger
is cut into batches, which is what makes a replay equal to the live run. A
projector with a range fold (`apply_range`, e.g. `companies`) is applied by
replay once over the whole range instead (`apply_positions`); its tests and the
determinism suite hold it to the rows the batch path gives.
"""

from __future__ import annotations

from types import ModuleType
from typing import Callable, Iterator, NamedTuple, Sequence

import apsw
import msgspec

from eventlog.ledger.chain import careful_rows
from eventlog.ledger.db import transaction
from eventlog.ledger.entries import decode
from eventlog.errors import LedgerDamaged, ProjectionsOutdated
from eventlog.ledger.store import Ledger, Record

from projections.records import Batch
from projections.registry import PROJECTORS

__all__ = ["State", "read_states", "apply_records", "apply_positions", "read_batches", "set_positions", "attach",
           "catch_up", "check_versions", "ledger_head", "REPLAY_HINT"]

REPLAY_HINT = "run `python cli.py replay` to rebuild them from the ledger"
_READ = ("SELECT id, event_id, event_type, company_number, event_data, received_at FROM event_log "
         "WHERE id > ? AND id <= ? ORDER BY id LIMIT ?")
_SET = ("INSERT INTO projection_state(name, version, position) VALUES (?, ?, ?) "
        "ON CONFLICT(name) DO UPDATE SET version = excluded.version, position = excluded.position")


class State(NamedTuple):
    version: int
    position: int


def read_states(conn: apsw.Connection) -> dict[str, State]:
    return {name: State(v, p) for name, v, p in
            conn.execute("SELECT name, version, position FROM projection_state")}


def ledger_head(conn: apsw.Connection) -> int:
    return int(conn.execute("SELECT max(id) FROM event_log").fetchone()[0] or 0)


def set_positions(conn: apsw.Connection, projectors: Sequence[ModuleType], position: int) -> None:
    conn.executemany(_SET, [(p.NAME, p.VERSION, position) for p in projectors])


def read_batches(conn: apsw.Connection, after: int, until: int,
                 batch_size: int = 5000) -> Iterator[list[Record]]:
    """Decoded records in (after, until], a batch at a time, so memory stays flat.

    Every position in the range must be read, in order: positions are assigned head + 1 and
    never deleted, so a missing one means a damaged file (a broken b-tree page can hide a run of
    rows from a range scan without any error from SQLite). A projection built from part of the
    ledger must never pass for the whole, so that, text that is not UTF-8 and an entry that does
    not decode raise `LedgerDamaged`, naming the position.
    """
    pos = after
    while pos < until:
        try:
            rows = conn.execute(_READ, (pos, until, batch_size)).fetchall()
        except UnicodeDecodeError:
            bad = next((r.position for r in careful_rows(conn, pos + 1, until) if r.bad), pos + 1)
            raise LedgerDamaged(f"the ledger is damaged: entry {bad} holds text that is not UTF-8; "
                                "nothing was changed") from None
        if not rows or rows[0][0] != pos + 1 or rows[-1][0] != pos + len(rows):
            found = [r[0] for r in rows]
            missing = next((pos + 1 + i for i, p in enumerate(found) if p != pos + 1 + i), pos + 1)
            raise LedgerDamaged(f"the ledger is damaged: position {missing} can't be read (the head is "
                                f"{until}); nothing was changed: restore the database from a backup")
        batch = []
        for p, eid, et, cn, data, at in rows:
            try:
                batch.append(Record(p, eid, et, cn, at, decode(data)))
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise LedgerDamaged(f"the ledger is damaged: entry {p} does not decode ({exc}); "
                                    "nothing was changed") from None
        yield batch
        pos = rows[-1][0]


def apply_records(conn: apsw.Connection, records: Sequence[Record],
                  projectors: Sequence[ModuleType] = PROJECTORS) -> None:
    if not records:
        return
    batch = Batch(records)
    for p in projectors:
        p.apply(conn, batch)


def apply_positions(conn: apsw.Connection, lo: int, hi: int, projectors: Sequence[ModuleType] = PROJECTORS,
                    *, batch_size: int = 5000, source: apsw.Connection | None = None,
                    progress: Callable[[int], None] | None = None) -> None:
    """Apply positions (lo, hi] to `projectors`: a range fold (`apply_range`) over the whole range in
    one go where a projector has one, the others batch by batch, reading the ledger from `source`
    (by default `conn`; a replay worker reads through one connection and writes through another).

    The range folds run first, as they come first in the registry: a projector that reads another's
    table (`officers` reads `companies.company_status`) must find it built. It finds it built to
    the end of the range rather than batch by batch, which is the same: every entry that can change
    what it reads also marks the rows it recomputes, so only the final value counts."""
    ranged = [p for p in projectors if hasattr(p, "apply_range")]
    rest = [p for p in projectors if not hasattr(p, "apply_range")]
    try:
        for p in ranged:
            p.apply_range(conn, lo, hi, chunk=batch_size, check=not rest)  # `rest` reads every position
    except (apsw.SQLError, UnicodeDecodeError):
        # a fold's SQL met an entry it can't read (text that is not UTF-8 is "malformed JSON" to
        # SQLite): the careful reader names the damaged position, as it would have for `rest`
        for _ in read_batches(source or conn, lo, hi, batch_size):
            pass
        raise
    if progress and ranged and rest:
        progress(lo + (hi - lo) // 2)  # the range folds were the first half
    if rest:
        for records in read_batches(source or conn, lo, hi, batch_size):
            apply_records(conn, records, rest)
            if progress and not ranged:
                progress(records[-1].position)
            elif progress:
                progress(lo + (hi - lo) // 2 + (records[-1].position - lo) // 2)
    if progress:
        progress(hi)


def _apply_from(conn: apsw.Connection, positions: dict[str, int], projectors: Sequence[ModuleType],
                records: Sequence[Record]) -> None:
    """Apply `records` to each projector, skipping the ones it already has."""
    first = records[0].position
    fresh = [p for p in projectors if positions[p.NAME] < first]
    if len(fresh) == len(projectors):
        apply_records(conn, records, projectors)
        return
    for p in projectors:
        mine = [r for r in records if r.position > positions[p.NAME]]
        apply_records(conn, mine, [p])


def _advance(conn: apsw.Connection, positions: dict[str, int], projectors: Sequence[ModuleType],
             until: int, batch_size: int = 5000) -> int:
    """Bring every projector in `projectors` from its position up to `until`; returns entries read."""
    lo = min(positions[p.NAME] for p in projectors)
    read = 0
    for records in read_batches(conn, lo, until, batch_size):
        _apply_from(conn, positions, projectors, records)
        read += len(records)
    set_positions(conn, projectors, until)
    return read


def _on_append(conn: apsw.Connection, records: list[Record]) -> None:
    """The hook: runs inside the append transaction, after the rows are inserted."""
    first, last = records[0].position, records[-1].position
    states = read_states(conn)
    if not states and first == 1:
        set_positions(conn, PROJECTORS, 0)  # a fresh database: its first entries
        states = read_states(conn)
    problems = _problems(states, first - 1)
    if problems:
        # Applying new entries to tables built by other code would mix two versions
        # (and a projection left behind breaks the ones that refer to it), so the
        # append is refused as a whole until replay has rebuilt them.
        raise ProjectionsOutdated(f"projections are out of date ({'; '.join(problems)}): {REPLAY_HINT}")
    current = [p for p in PROJECTORS if states[p.NAME].position < last]
    if not current:
        return
    positions = {p.NAME: states[p.NAME].position for p in current}
    if min(positions.values()) < first - 1:
        _advance(conn, positions, current, first - 1)  # entries appended without the hook
        positions = dict.fromkeys(positions, first - 1)
    _apply_from(conn, positions, current, records)
    set_positions(conn, current, last)


def attach(ledger: Ledger) -> None:
    """Make every append through `ledger` update all projections in its transaction."""
    if _on_append not in ledger.on_append:
        ledger.on_append.insert(0, _on_append)  # before other hooks, which may read projections


def _problems(states: dict[str, State], head: int) -> list[str]:
    problems = []
    for p in PROJECTORS:
        s = states.get(p.NAME)
        if s is None:
            if head:
                problems.append(f"{p.NAME} has never been built")
        elif s.version < p.VERSION:
            problems.append(f"{p.NAME} was built by version {s.version}, the code is version {p.VERSION}")
        elif s.version > p.VERSION:
            problems.append(f"{p.NAME} was built by a newer chledger (version {s.version}, "
                            f"this code is version {p.VERSION})")
    return problems


def check_versions(conn: apsw.Connection) -> None:
    """Raise `ProjectionsOutdated` unless every projection was built by this code.

    A fresh database (empty ledger) is fine: the current versions are recorded.
    """
    with transaction(conn):
        states = read_states(conn)
        head = ledger_head(conn)
        problems = _problems(states, head)
        if problems:
            raise ProjectionsOutdated(f"projections are out of date ({'; '.join(problems)}): {REPLAY_HINT}")
        missing = [p for p in PROJECTORS if p.NAME not in states]
        if missing:
            set_positions(conn, missing, 0)


def catch_up(conn: apsw.Connection, *, batch_size: int = 5000) -> int:
    """Apply every entry beyond each projection's position; returns how many entries were read."""
    check_versions(conn)
    with transaction(conn):
        states = read_states(conn)
        head = ledger_head(conn)
        behind = [p for p in PROJECTORS if states[p.NAME].position < head]
        if not behind:
            return 0
        return _advance(conn, {p.NAME: states[p.NAME].position for p in behind}, behind, head, batch_size)
