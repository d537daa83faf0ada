"""`python cli.py bulk FILE...`: the wiring of a bulk snapshot import.

The import itself is `eventlog.bulk.importer`; this opens the database the way every writer
does (room on the disk first, migrated, projections current, appends through the projections
and the fact log), or, for a dry run, read-only (a database that doesn't exist yet is an empty
one: nothing is created).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import projections
from eventlog.bulk.importer import ImportReport, import_snapshot
from eventlog.bulk.reader import ProgressCallback
from eventlog.config.settings import Settings
from eventlog.errors import ConfigError
from eventlog.ledger.db import connect
from eventlog.ledger.disk import check_reserve
from eventlog.ledger.migrate import migrate
from eventlog.ledger.store import Ledger
from eventlog.ops import fact_log
from eventlog.ops.status_report import open_for_status

__all__ = ["run_bulk"]


def run_bulk(settings: Settings, paths: list[str], *, keep_all: bool = False, dry_run: bool = False,
             snapshot_date: str | None = None, expires_days: float = 30.0,
             on_progress: ProgressCallback | None = None) -> ImportReport:
    """Import (or, dry, only read and decide) one snapshot's files into `settings.database_path`."""
    if snapshot_date is not None:
        try:
            snapshot_date = date.fromisoformat(snapshot_date).isoformat()
        except ValueError:
            raise ConfigError(f"--snapshot-date {snapshot_date!r}: expected a date as YYYY-MM-DD") from None
    path = settings.database_path
    options = dict(interest=settings.interest, keep_all=keep_all, snapshot_date=snapshot_date,
                   on_progress=on_progress, expires_days=expires_days)
    if dry_run:
        conn = open_for_status(path) if Path(path).exists() else None
        try:
            return import_snapshot(paths, conn, **options)  # type: ignore[arg-type]
        finally:
            if conn is not None:
                conn.close()
    conn = connect(path)
    try:
        check_reserve(path, settings.disk_reserve_bytes)
        migrate(conn)
        projections.check_versions(conn)
        ledger = Ledger(conn)
        projections.attach(ledger)
        fact_log.attach(ledger, settings)
        return import_snapshot(paths, conn, ledger=ledger, **options)  # type: ignore[arg-type]
    finally:
        conn.close()
