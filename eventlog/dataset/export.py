"""Handing the customer their data: companies with officers as CSV or JSON lines, or a SQLite copy.

Every export is taken from one snapshot while the worker keeps writing:
- CSV and JSON lines are read inside one read transaction. In WAL mode that
  pins a consistent view (a company and its officers as of one commit) and
  never blocks the worker's appends.
- The SQLite copy uses SQLite's online backup API, stepping a few pages at a
  time for progress. The backup restarts from scratch whenever another
  connection writes between steps, so against a busy worker an unpinned
  backup would start over for ever; holding a read transaction on the source
  for the whole copy pins the snapshot and lets it finish.
Files are written beside their destination and renamed into place, so a
half-written export never looks like a finished one.
"""

from __future__ import annotations

import contextlib
import csv
import os
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

import apsw
import msgspec

from eventlog.ledger.db import connect, translated
from eventlog.errors import DatabaseError
from eventlog.privacy import strip_keys

__all__ = ["export", "backup", "ExportReport", "FORMATS"]

FORMATS = ("csv", "jsonl", "sqlite")
Format = Literal["csv", "jsonl", "sqlite"]
Progress = Callable[[int, int], None]  # (done, total): companies for csv/jsonl, pages for sqlite

# Columns holding JSON text: decoded into objects in JSON lines, left as text in CSV.
_JSON_COLUMNS = frozenset({"registered_office_address", "sic_codes", "stream_metadata", "address"})
_PROGRESS_EVERY = 500  # companies between progress calls
_PAGES_PER_STEP = 1024  # 4 MiB at the default page size


class ExportReport(msgspec.Struct, frozen=True, kw_only=True):
    """What was written, and the ledger position of the snapshot it was taken at."""

    format: str
    path: str
    position: int  # the ledger head in the snapshot: the copy reflects every entry up to here
    companies: int
    officers: int
    rows: int  # CSV rows, JSON lines, or database pages copied
    bytes: int
    orphan_officers: int = 0  # officers whose company row is missing: counted, not exported


def _partial(out: Path) -> Path:
    return out.with_name(f".{out.name}.partial-{os.getpid()}")


def _check_paths(db_path: str | os.PathLike[str], out_path: str | os.PathLike[str]) -> tuple[Path, Path]:
    src, out = Path(db_path), Path(out_path)
    if not src.exists():
        raise DatabaseError(f"no database at {src}")
    if out.exists() and os.path.samefile(src, out):
        raise DatabaseError(f"refusing to write the export over the database itself ({out})")
    if not out.parent.is_dir():
        raise DatabaseError(f"cannot write the export: folder {out.parent} does not exist")
    if os.path.lexists(out) and (out.is_symlink() or not out.is_file()):
        # The copy is renamed into place: that would replace a device, a FIFO or a link, not write through it.
        kind = "a symbolic link" if out.is_symlink() else "a directory" if out.is_dir() else "not a regular file"
        raise DatabaseError(f"refusing to replace {out}: it is {kind}; give the path of a file to write")
    return src, out


def _discard(tmp: Path) -> None:
    """Remove a partial file and the journal SQLite may have left beside it; a path that can't
    even be named (too long, …) has nothing to remove."""
    for suffix in ("", "-journal", "-wal", "-shm"):
        with contextlib.suppress(OSError):
            Path(f"{tmp}{suffix}").unlink(missing_ok=True)


def _unwritable(out: Path, exc: OSError) -> DatabaseError:
    return DatabaseError(f"cannot write the export beside {out} (in {out.parent}): {exc.strerror or exc}")


def _columns(conn: apsw.Connection, table: str) -> list[str]:
    cols = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
    if not cols:
        raise DatabaseError(f"{conn.filename} has no {table} table: run `python cli.py migrate` first")
    return cols


def _require_schema(conn: apsw.Connection) -> None:
    for table in ("event_log", "companies", "officers"):
        _columns(conn, table)


def _head(conn: apsw.Connection) -> int:
    return int(conn.execute("SELECT coalesce(max(id), 0) FROM event_log").fetchone()[0])


@contextlib.contextmanager
def snapshot_into(src: Path, out: Path) -> Iterator[tuple[apsw.Connection, Path]]:
    """A read transaction on `src` (one snapshot for every SELECT inside, whatever the worker
    appends meanwhile) and the partial file to write; on success the partial file replaces `out`
    in one rename, on any failure it is removed, so `out` is never half written. A failure to
    write (OSError) is said as the output's, in one line."""
    tmp = _partial(out)
    _discard(tmp)  # what an earlier, killed export left
    conn = connect(src, readonly=True)
    try:
        with translated(src):
            conn.execute("BEGIN")
            try:
                yield conn, tmp
            except OSError as exc:
                raise _unwritable(out, exc) from None
            finally:
                if not conn.getautocommit():  # an error may have ended it already: keep that error
                    conn.execute("COMMIT")
        os.replace(tmp, out)
    except BaseException:
        _discard(tmp)
        raise
    finally:
        conn.close()


def _companies_with_officers(
    conn: apsw.Connection, company_cols: list[str], officer_cols: list[str], counts: dict[str, int]
) -> Iterator[tuple[tuple, list[tuple]]]:
    """Merge-join companies and officers, both in company-number order: memory stays flat."""
    ccols = ", ".join(f'"{c}"' for c in company_cols)
    ocols = ", ".join(f'"{c}"' for c in ["company_number", *officer_cols])
    officers = conn.cursor().execute(f"SELECT {ocols} FROM officers ORDER BY company_number, id")
    pending = next(officers, None)
    for company in conn.cursor().execute(f"SELECT {ccols} FROM companies ORDER BY company_number"):
        number = company[0]
        mine = []
        while pending is not None and (pending[0] or "") <= number:
            if pending[0] == number:
                mine.append(pending[1:])
            else:
                counts["orphans"] += 1
            pending = next(officers, None)
        yield company, mine
    while pending is not None:  # officers after the last company
        counts["orphans"] += 1
        pending = next(officers, None)


def _json_value(column: str, value: Any) -> Any:
    if column in _JSON_COLUMNS and isinstance(value, str):
        try:
            return msgspec.json.decode(value)
        except msgspec.DecodeError:
            return value
    return value


def _officer_header(col: str) -> str:
    return col if col.startswith("officer_") else f"officer_{col}"


def _write_rows(conn: apsw.Connection, fmt: str, tmp: Path, total: int, progress: Progress | None) -> dict[str, int]:
    company_cols = _columns(conn, "companies")
    if company_cols[0] != "company_number":
        company_cols = ["company_number", *[c for c in company_cols if c != "company_number"]]
    officer_cols = [c for c in _columns(conn, "officers") if c not in ("id", "company_number")]
    counts = {"companies": 0, "officers": 0, "rows": 0, "orphans": 0}
    if progress:
        progress(0, total)  # the total, before the first row: a progress bar can size itself
    encoder = msgspec.json.Encoder()
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh) if fmt == "csv" else None
        if writer is not None:
            writer.writerow([*company_cols, *map(_officer_header, officer_cols)])
        blank = [None] * len(officer_cols)
        for company, officers in _companies_with_officers(conn, company_cols, officer_cols, counts):
            if writer is not None:
                for officer in officers or [blank]:
                    writer.writerow([*company, *officer])
                    counts["rows"] += 1
            else:
                obj = {c: _json_value(c, v) for c, v in zip(company_cols, company)}
                obj["officers"] = [
                    {c: _json_value(c, v) for c, v in zip(officer_cols, officer)} for officer in officers
                ]
                fh.write(encoder.encode(obj).decode())
                fh.write("\n")
                counts["rows"] += 1
            counts["companies"] += 1
            counts["officers"] += len(officers)
            if progress and counts["companies"] % _PROGRESS_EVERY == 0:
                progress(counts["companies"], total)
        fh.flush()
        os.fsync(fh.fileno())
    if progress:
        progress(counts["companies"], total)
    return counts


def export(
    db_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    fmt: Format = "csv",
    progress: Progress | None = None,
) -> ExportReport:
    """Write companies with their officers to `out_path`, from one consistent snapshot.

    CSV: one row per officer appointment with the company's columns repeated
    (officer columns prefixed `officer_`), and one row with empty officer
    columns for a company without officers. JSON lines: one company object per
    line with an `officers` array. `sqlite`: a consistent copy of the whole
    database, as `backup(keyless=True)`: without the key vault. Safe while the worker runs.
    """
    if fmt not in FORMATS:
        raise DatabaseError(f"unknown export format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if fmt == "sqlite":
        return backup(db_path, out_path, progress=progress, keyless=True)
    src, out = _check_paths(db_path, out_path)
    with snapshot_into(src, out) as (conn, tmp):
        _require_schema(conn)
        position = _head(conn)
        total = int(conn.execute("SELECT count(*) FROM companies").fetchone()[0])
        counts = _write_rows(conn, fmt, tmp, total, progress)
    return ExportReport(
        format=fmt, path=str(out), position=position, companies=counts["companies"],
        officers=counts["officers"], rows=counts["rows"], bytes=out.stat().st_size,
        orphan_officers=counts["orphans"],
    )


def backup(
    db_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    progress: Progress | None = None,
    *,
    pages_per_step: int = _PAGES_PER_STEP,
    keyless: bool = False,
) -> ExportReport:
    """A consistent, self-contained SQLite copy through the online backup API.

    The copy is checked (`PRAGMA integrity_check`) and switched out of WAL
    mode, so it is one file the customer can open with `sqlite3` anywhere.
    `keyless` leaves the key vault behind (the SQLite export, handed to someone else: its sealed
    ledger entries then open as erased there, and a later `forget` here needs no key back from
    them); a backup keeps the keys, or it could not restore.
    """
    src, out = _check_paths(db_path, out_path)
    tmp = _partial(out)
    _discard(tmp)
    source = connect(src, readonly=True)
    try:
        with translated(src):
            source.execute("BEGIN")
            _require_schema(source)  # its first read pins the snapshot
            position = _head(source)
            try:
                dest = apsw.Connection(str(tmp))
                dest.execute("PRAGMA user_version").fetchall()  # opening is lazy: fail here, naming `out`
            except apsw.CantOpenError as exc:
                raise _unwritable(out, OSError(str(exc))) from None
            try:
                try:
                    with dest.backup("main", source, "main") as step:
                        while not step.done:
                            step.step(pages_per_step)
                            if progress:
                                progress(step.pagecount - step.remaining, step.pagecount)
                        pages = step.pagecount
                    source.execute("COMMIT")
                    dest.execute("PRAGMA journal_mode=DELETE").fetchall()
                except (apsw.FullError, apsw.IOError, apsw.ReadOnlyError, apsw.CantOpenError) as exc:
                    # writing is the copy's side (reading the source fails as corrupt or busy)
                    why = "the disk is full" if isinstance(exc, apsw.FullError) else str(exc).split("\n")[0]
                    raise _unwritable(out, OSError(why)) from None
                check = dest.execute("PRAGMA integrity_check").fetchall()
                if check != [("ok",)]:  # the pages were copied verbatim: the damage is the source's
                    first = " ".join(str(check[0][0]).split())
                    raise DatabaseError(
                        f"the copy of {src} failed its integrity check ({len(check)} problem(s), first: {first}):"
                        f" {src} itself is most likely damaged; nothing was written to {out}")
                companies = int(dest.execute("SELECT count(*) FROM companies").fetchone()[0])
                officers = int(dest.execute("SELECT count(*) FROM officers").fetchone()[0])
                if keyless and dest.execute("SELECT 1 FROM sqlite_master WHERE name = 'person_keys'").fetchone():
                    strip_keys(dest)  # on the partial file: `out` never holds the keys, even for a moment
            finally:
                dest.close()
        # A -wal left beside an older file of the same name would be replayed into the new copy.
        for suffix in ("-wal", "-shm", "-journal"):
            Path(f"{out}{suffix}").unlink(missing_ok=True)
        os.replace(tmp, out)
    except BaseException:
        _discard(tmp)
        raise
    finally:
        if not source.getautocommit():
            source.execute("ROLLBACK")
        source.close()
    return ExportReport(
        format="sqlite", path=str(out), position=position, companies=companies,
        officers=officers, rows=pages, bytes=out.stat().st_size,
    )
