"""`python cli.py replay [--only NAME] [--verify] [--jobs N]`: the command's work, callable without click.

`run_replay` rebuilds the projections of a database file and returns the
`ReplayReport`; `run_verify` rebuilds them into scratch tables and returns the
differences in a `VerifyReport`, changing nothing. A known failure (no database,
busy, unknown projection, ...) raises its `ChledgerError`; `cli.py` prints,
draws the progress bar through the `progress` callback it passes, and maps
both to exit codes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import msgspec

from eventlog.ledger.db import connect
from eventlog.ledger.integrity import QUICK, check_integrity
from eventlog.errors import DatabaseError
from eventlog.ledger.migrate import migrate
from eventlog.ledger.schema import current_version, latest_version

from eventlog.ledger.lock import worker_lock
from projections.replay.compare import Difference
from projections.replay.rebuild import ReplayReport, replay, verify
from projections.registry import NAMES, select

__all__ = ["run_replay", "run_verify", "VerifyReport", "ReplayReport"]

Progress = Callable[[int, int], None]


class VerifyReport(msgspec.Struct, frozen=True, kw_only=True):
    """What `replay --verify` compared, and how the live tables differ from the ledger (empty: equal)."""

    only: str | None  # the name asked for with --only, as given; None for every projection
    projections: tuple[str, ...]  # the projections compared
    entries: int  # entries in the ledger
    differences: list[Difference]


def run_replay(path: str, only: str | None = None, *, jobs: int | None = None,
               progress: Progress | None = None, migrated: Callable[[int], None] | None = None) -> ReplayReport:
    """Rebuild the projections (or the one named `only`) of the database at `path`, atomically.

    Takes the worker lock and migrates first; `migrated(n)` is called when
    that applied n migrations, before the rebuild begins (a long one), so the
    caller can say so at once. `progress(done, total)` follows the rebuild.
    """
    _need_database(path)
    with worker_lock(path, "replay"):
        conn = connect(path)
        try:
            check_integrity(conn, QUICK)  # the rebuild must read a whole, undamaged ledger
            applied = migrate(conn)
            if applied and migrated is not None:
                migrated(len(applied))
            return replay(conn, only, progress, lock=False, jobs=jobs)
        finally:
            conn.close()


def run_verify(path: str, only: str | None = None) -> VerifyReport:
    """Compare the live tables of the database at `path` with a rebuild from its ledger; change nothing."""
    _need_database(path)
    conn = connect(path)
    try:
        version = current_version(conn)
        if version < latest_version():  # verify changes nothing, so it doesn't migrate either
            raise DatabaseError(f"{path} has no chledger schema: nothing to verify" if version == 0 else
                                f"{path} is at schema version {version}: run `python cli.py migrate --db {path}` "
                                "before verifying")
        differences = verify(conn, only)
        head = conn.execute("SELECT count(*) FROM event_log").fetchone()[0]
    finally:
        conn.close()
    names = tuple(NAMES) if only is None else tuple(p.NAME for p in select(only))
    return VerifyReport(only=only, projections=names, entries=head, differences=differences)


def _need_database(path: str) -> None:
    """Refuse a path with no file: connecting would create an empty database there."""
    if not Path(path).exists():
        raise DatabaseError(f"no database at {path}: nothing to replay")
