"""A bulk snapshot into the ledger: its companies, the snapshot itself, and what it reconciles.

    report = import_snapshot(paths, conn, ledger=ledger, interest=settings.interest)

1. Every file is checked and hashed first (`SnapshotReader`). A file whose SHA-256 an earlier
   import recorded (`bulk_snapshots`) is not read again: the same file twice imports nothing new.
2. The rows are streamed, and each company of interest (every company with `keep_all`) becomes
   a `bulk.company` entry, event id `bulk:<snapshot date>:<number>`, so the same snapshot read
   again (renamed, re-zipped) records each company once. Companies the ledger holds as of
   interest are watched: their rows are kept too, to see whether they still are.
3. Entries go in `CHUNK` at a time, each chunk one transaction with the projections applied
   inline (it is a batch path: a transaction per company would spend the time on commits).
4. Only once every file was read to its end: one transaction with the `bulk.snapshot` entry and
   the reconciliation's decisions (`reconcile`). A read cut short (a ZIP damaged half-way)
   raises `BulkFileError` and leaves no snapshot entry; the companies it recorded stay (they are
   facts), and the next import of the same files reads them again and records nothing twice.

A dry run (`ledger=None`) reads and decides the same, and appends nothing.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Iterable

import apsw
import msgspec

from eventlog.clock import Clock, SystemClock
from eventlog.errors import BulkFileError
from eventlog.ledger.entries import BulkCompanyRecorded, BulkFile, BulkSnapshotImported, Entry, Interest
from eventlog.ledger.store import Ledger
from projections.projectors import bulk_snapshots, processing_state

from eventlog.bulk.company import BulkCompany
from eventlog.bulk.line_filter import LineFilter
from eventlog.bulk.reader import ProgressCallback, SnapshotReader
from eventlog.bulk.reconcile import Reconciliation, Seen, decisions, reconcile
from eventlog.bulk.report import SnapshotReport

__all__ = ["CHUNK", "ImportReport", "import_snapshot", "company_event_id", "snapshot_event_id"]

CHUNK = 20_000  # entries per transaction: few transactions, and a worker beside us waits ~1 s at most
_LEFT_SHOWN = 20


class ImportReport(msgspec.Struct, kw_only=True):
    """What `bulk` did (or, in a dry run, would do)."""

    files: list[str]
    snapshot_date: str | None
    dry_run: bool
    keep_all: bool
    already_imported: list[bulk_snapshots.ImportedFile]  # files skipped: an earlier import read them
    read: SnapshotReport | None = None  # None: nothing was read
    of_interest: int = 0
    companies_recorded: int = 0  # bulk.company entries new to the ledger
    companies_known: int = 0  # rows the ledger already recorded for this snapshot
    batch_id: str | None = None
    batch_companies: int = 0
    in_hand: int = 0
    newer: int = 0
    left: int = 0
    left_examples: list[tuple[str, str]] = msgspec.field(default_factory=list)
    gaps_reconciled: bool = False
    snapshot_position: int | None = None
    transactions: int = 0
    seconds: float = 0.0

    @property
    def nothing_new(self) -> bool:
        return self.read is None


def company_event_id(snapshot_date: str, number: str) -> str:
    return f"bulk:{snapshot_date}:{number}"


def snapshot_event_id(sha256s: Iterable[str]) -> str:
    """One id per set of files: importing the same files twice can't record two snapshots."""
    return "bulk.snapshot:" + hashlib.sha256("\n".join(sorted(sha256s)).encode()).hexdigest()


def _shows(row: BulkCompany, field: str) -> str:
    value = getattr(row, field, None)
    return f"{field} {value or '(none)'} ({row.status_word!r})"


class _Appender:
    """Buffers entries and appends them CHUNK at a time; counts what was new."""

    def __init__(self, ledger: Ledger | None, conn: apsw.Connection | None, chunk: int):
        self.ledger, self.conn, self.chunk = ledger, conn, chunk
        self.buffer: list[tuple[str, Entry]] = []
        self.new = self.known = self.transactions = 0

    def add(self, event_id: str, entry: Entry) -> None:
        self.buffer.append((event_id, entry))
        if len(self.buffer) >= self.chunk:
            self.flush()

    def flush(self) -> None:
        """Append the buffered entries the ledger doesn't hold yet. Looked up first (one query
        on the event_id index): a chunk holding one known id would otherwise be inserted twice,
        the ledger's fallback after a constraint error, and a snapshot read again is all known."""
        if not self.buffer:
            return
        chunk = dict(self.buffer)  # a company listed twice in one file: its first row stands
        if self.conn is not None:
            ids = msgspec.json.encode(list(chunk)).decode()
            for (eid,) in self.conn.execute(
                    "SELECT event_id FROM event_log WHERE event_id IN (SELECT value FROM json_each(?))", (ids,)):
                del chunk[eid]
        fresh = [(eid, entry) for eid, entry in self.buffer if chunk.pop(eid, None) is not None]
        if self.ledger is not None and fresh:
            self.ledger.append_many(fresh)
            self.transactions += 1
        self.new += len(fresh)
        self.known += len(self.buffer) - len(fresh)
        self.buffer = []


def import_snapshot(paths: list[str | Path], conn: apsw.Connection | None, *, ledger: Ledger | None = None,
                    interest: Interest, keep_all: bool = False, snapshot_date: str | None = None,
                    on_progress: ProgressCallback | None = None, expires_days: float = 30.0,
                    clock: Clock | None = None, chunk: int = CHUNK) -> ImportReport:
    """Import one snapshot's files (the whole file, or parts). `ledger` None: a dry run, reading
    `conn` (None for a database that doesn't exist yet) and appending nothing."""
    started = time.perf_counter()
    clock = clock or SystemClock()
    if ledger is not None:
        conn = ledger.conn
    watched = frozenset(processing_state.awaiting_officers(conn)) if conn is not None else frozenset()
    reading = None if keep_all else interest

    def reader_of(chosen: list[str | Path]) -> SnapshotReader:
        return SnapshotReader(chosen, reading, on_progress=on_progress, snapshot_date=snapshot_date, watch=watched)

    reader = reader_of(paths)
    known = bulk_snapshots.imported(conn, [f.sha256 for f in reader.files]) if conn is not None else {}
    report = ImportReport(files=[f.name for f in reader.files], snapshot_date=reader.report.snapshot_date,
                          dry_run=ledger is None, keep_all=keep_all,
                          already_imported=[known[f.sha256] for f in reader.files if f.sha256 in known])
    if known:
        fresh = [f.path for f in reader.files if f.sha256 not in known]
        if not fresh:
            report.seconds = time.perf_counter() - started
            return report
        reader = reader_of(fresh)  # hashes the new files again: rare, and cheap beside reading them
    day = reader.report.snapshot_date
    if day is None:
        raise BulkFileError(f"{reader.files[0].name}: its name doesn't say the snapshot's date (published "
                            "names end -YYYY-MM-DD.zip): give it with --snapshot-date YYYY-MM-DD")

    of_interest = LineFilter(interest).of_interest
    field = interest.field
    seen = Seen(snapshot_date=day, files=[f.name for f in reader.files], whole=False)
    appender = _Appender(ledger, conn, chunk)
    encode = msgspec.json.encode
    interesting: dict[str, None] = {}
    for row in reader:
        number = row.company_number
        if of_interest(row):
            interesting[number] = None
        if number in watched:
            seen.watched_present.add(number)
            if not of_interest(row):
                seen.watched_not_of_interest[number] = _shows(row, field)
        appender.add(company_event_id(day, number),
                     BulkCompanyRecorded(company_number=number, snapshot_date=day, data=msgspec.Raw(encode(row))))
    appender.flush()
    read = reader.report
    seen.of_interest = list(interesting)
    seen.whole = read.complete and not read.parts_missing  # parts imported earlier count as missing here
    report.read = read
    report.of_interest = len(interesting)
    report.companies_recorded, report.companies_known = appender.new, appender.known
    report.transactions = appender.transactions

    files = [BulkFile(name=f.file.name, sha256=f.file.sha256, size=f.file.size, rows_read=f.rows_read,
                      rows_kept=f.rows_kept, rejected=f.rejected, part=f.file.part, parts=f.file.parts)
             for f in read.files]
    snapshot = BulkSnapshotImported(snapshot_date=day, files=files, rows_read=read.rows_read,
                                    rows_kept=len(interesting), rejected=read.rejected,
                                    companies_recorded=appender.new, whole=seen.whole,
                                    interest=None if keep_all else interest,
                                    rejected_by_reason=dict(read.rejected_by_reason))
    snapshot_id = snapshot_event_id(f.sha256 for f in files)
    if ledger is None:
        rec = reconcile(conn, seen, watched)
        _decided(report, rec, seen, decisions(rec, seen, now=clock.now(), expires_days=expires_days))
    else:
        with ledger.transaction() as tx:
            if conn is not None and conn.execute("SELECT 1 FROM event_log WHERE event_id = ?",
                                                 (snapshot_id,)).fetchone():
                report.seconds = time.perf_counter() - started  # imported meanwhile by another process
                return report
            rec = reconcile(conn, seen, watched)
            chosen = decisions(rec, seen, now=clock.now(), expires_days=expires_days)
            appended = tx.append_many([(snapshot_id, snapshot), *chosen])
            report.snapshot_position = appended[0].position
        report.transactions += 1
        _decided(report, rec, seen, chosen)
    report.seconds = time.perf_counter() - started
    return report


def _decided(report: ImportReport, rec: Reconciliation, seen: Seen, chosen: list[Entry]) -> None:
    report.batch_companies = len(rec.batch)
    report.batch_id = next((getattr(e, "batch_id") for e in chosen if e.__struct_config__.tag == "backfill.created"),
                           None)
    report.in_hand, report.newer = rec.in_hand, rec.newer
    report.left = len(rec.left)
    report.left_examples = rec.left[:_LEFT_SHOWN]
    report.gaps_reconciled = any(e.__struct_config__.tag == "stream.gaps_reconciled" for e in chosen)
