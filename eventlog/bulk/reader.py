"""Read Basic Company Data snapshots as a stream of `BulkCompany` rows, with a report.

    reader = SnapshotReader(paths, settings.interest, on_progress=draw)   # checks every file
    if already_imported(reader.files): ...                                # SHA-256 known up front
    for company in reader: ...                                            # rows of interest
    reader.report                                                         # counts, rejects, words

All files are checked (readable, a ZIP with one CSV or a bare CSV, a real header) and hashed
before the first row, so a bad third part fails before the first part is half imported. Then
each file's records are streamed (`records`): memory stays flat whatever the file's size, and
most lines are never decoded.

Never a crash on data: a record with the wrong number of columns, bad quoting, no usable company
number, or cut short at the end of the file is counted by reason, the first few kept with file,
line and an excerpt, and skipped. Unknown status and category words are counted with an example
line, and the row is kept. What does raise is `BulkFileError`, for a file that can't be read at
all, including a ZIP found damaged part-way (the rows before it were already yielded: the caller
must not record the snapshot as imported; `report.complete` says whether every file was read).

In interest mode a line ruled out by the bytes test is counted as read but not validated: its
quoting or column count is only checked when it is parsed. `interest=None` parses every line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Iterator

from eventlog.ledger.entries import Interest

from eventlog.bulk.company import BulkCompany
from eventlog.errors import BulkFileError
from eventlog.bulk.header import Columns
from eventlog.bulk.line_filter import LineFilter
from eventlog.bulk.records import RecordStream
from eventlog.bulk.report import FileReport, Progress, SnapshotReport
from eventlog.bulk.source import SnapshotFile, inspect

__all__ = ["ProgressCallback", "SnapshotReader", "read_snapshot"]

ProgressCallback = Callable[[Progress], None]


def _snapshot_date(files: list[SnapshotFile], given: str | None) -> str | None:
    dates = sorted({f.snapshot_date for f in files if f.snapshot_date})
    if len(dates) > 1:
        raise BulkFileError(f"files of different snapshots ({', '.join(dates)}): give one snapshot's "
                            "files at a time")
    if given is not None and dates and dates[0] != given:
        raise BulkFileError(f"{files[0].name}: named for {dates[0]}, but the snapshot date given is {given}")
    return given or (dates[0] if dates else None)


def _parts_missing(files: list[SnapshotFile]) -> list[int]:
    parts = {f.parts for f in files if f.parts}
    if len(parts) != 1 or any(f.parts is None for f in files):
        return []
    have = {f.part for f in files}
    return [n for n in range(1, parts.pop() + 1) if n not in have]


class SnapshotReader:
    """Check, hash and then stream one snapshot's files (the whole file, or its parts).

    `interest`: keep the rows whose field is one of its values; None keeps every company.
    `on_progress`: called about once per MiB, in the hashing stage and the reading stage.
    `snapshot_date`: for files renamed so their name no longer says it (ISO date).
    `watch`: company numbers whose rows are kept whatever their status (see `LineFilter`).
    """

    def __init__(self, paths: Iterable[str | Path], interest: Interest | None, *,
                 on_progress: ProgressCallback | None = None, snapshot_date: str | None = None,
                 watch: frozenset[str] = frozenset()) -> None:
        self.filter = LineFilter(interest, watch)
        self.on_progress = on_progress
        paths = list(paths)
        if not paths:
            raise BulkFileError("no snapshot file given")
        total = sum(Path(p).stat().st_size for p in paths if Path(p).is_file())
        done = 0
        found: list[tuple[SnapshotFile, Columns]] = []
        for path in paths:
            def hashed(n: int, name: str = Path(path).name) -> None:
                nonlocal done
                done += n
                if on_progress is not None:
                    on_progress(Progress("hashing", name, done, total, 0, 0))
            found.append(inspect(path, hashed))
        seen: dict[str, str] = {}
        for file, _ in found:
            if file.sha256 in seen:
                raise BulkFileError(f"{file.name}: the same file as {seen[file.sha256]} (same SHA-256)")
            seen[file.sha256] = file.name
        self.files = [f for f, _ in found]
        self._columns = [c for _, c in found]
        self.report = SnapshotReport(files=[FileReport(file=f) for f in self.files],
                                     snapshot_date=_snapshot_date(self.files, snapshot_date),
                                     interest=interest, parts_missing=_parts_missing(self.files))
        self._bytes_total = sum(f.csv_size for f in self.files)
        self._bytes_done = 0
        self._started = False

    def __iter__(self) -> Iterator[BulkCompany]:
        if self._started:
            raise RuntimeError("a SnapshotReader reads its files once")
        self._started = True
        for file_report, columns in zip(self.report.files, self._columns, strict=True):
            yield from RecordStream(self.report, file_report, columns, self.filter, self._progress).rows()
        self.report.complete = True

    def _progress(self, file: str, read: int) -> None:
        self._bytes_done += read
        if self.on_progress is not None:
            r = self.report
            self.on_progress(Progress("reading", file, self._bytes_done, self._bytes_total,
                                      r.rows_read, r.rows_kept))


def read_snapshot(paths: Iterable[str | Path], interest: Interest | None, *,
                  on_progress: ProgressCallback | None = None) -> tuple[list[BulkCompany], SnapshotReport]:
    """Everything at once: for tests and small files (a whole snapshot's rows don't fit in memory)."""
    reader = SnapshotReader(paths, interest, on_progress=on_progress)
    rows = list(reader)
    return rows, reader.report
