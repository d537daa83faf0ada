"""`python cli.py replay [--only NAME] [--verify] [--jobs N]`: the command's work, callable without click's parser.

`cli.py` parses the options and calls `run_replay`, which returns the exit code:
0 done (or verified equal), 1 verify found differences, and a known failure's
own code (2: no database, busy, unknown projection, …) with one line on stderr.
On a terminal a progress bar shows entries/s and the ETA; elsewhere (logs,
pipes) only the summary line is printed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from eventlog.ledger.db import connect
from eventlog.errors import ChledgerError, DatabaseError
from eventlog.ledger.migrate import migrate
from eventlog.ledger.schema import current_version, latest_version

from eventlog.ledger.lock import worker_lock
from projections.replay.rebuild import replay, verify
from projections.registry import NAMES

__all__ = ["run_replay"]


class _Bar:
    """A click progress bar created on the first progress call, when the total is known."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bar = None
        self.done = 0
        self.started = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            self.bar = click.progressbar(length=max(total, 1), label="replaying", show_eta=True,
                                         show_percent=True, item_show_func=self._rate,
                                         file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self.done, done)
        self.done = done

    def _rate(self, done: int | None) -> str:
        seconds = time.perf_counter() - self.started
        return f"{(done or 0) / seconds:,.0f} entries/s" if seconds > 0 and done else ""

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


def _replay(path: str, only: str | None, show_progress: bool, jobs: int | None) -> int:
    with worker_lock(path, "replay"):
        conn = connect(path)
        try:
            applied = migrate(conn)
            if applied:
                click.echo(f"applied {len(applied)} migration(s) first")
            bar = _Bar(show_progress)
            try:
                report = replay(conn, only, bar, lock=False, jobs=jobs)
            finally:
                bar.close()
        finally:
            conn.close()
    click.echo(f"replayed {report.entries:,} entries into {', '.join(report.projections)} "
               f"in {report.seconds:.1f} s ({report.rate:,.0f} entries/s"
               f"{f', {report.processes} processes' if report.processes > 1 else ''})")
    return 0


def _verify(path: str, only: str | None) -> int:
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
    which = only or f"all {len(NAMES)} projections"
    if not differences:
        click.echo(f"verify: {which} match the ledger ({head:,} entries); nothing was changed")
        return 0
    click.echo(f"verify: {len(differences)} difference(s) between the live tables and the ledger "
               f"({which}); nothing was changed, `python cli.py replay` rebuilds them:")
    for d in differences:
        click.echo(f"  {d}")
    return 1


def run_replay(conn_path: str, only: str | None = None, verify: bool = False,
               show_progress: bool = True, jobs: int | None = None) -> int:
    """Rebuild (or with `verify`, check) the projections of the database at `conn_path`."""
    try:
        if not Path(conn_path).exists():
            raise DatabaseError(f"no database at {conn_path}: nothing to replay")
        return _verify(conn_path, only) if verify else _replay(conn_path, only, show_progress, jobs)
    except ChledgerError as exc:
        click.echo(f"chledger: {exc}", err=True)
        return exc.exit_code
