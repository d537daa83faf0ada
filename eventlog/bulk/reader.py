"""Read Basic Company Data snapshots as a stream of `BulkCompany` rows, with a report.

    reader = SnapshotReader(paths, settings.interest, on_progress=draw)   # checks every file
    if already_imported(reader.files): ...                                # SHA-256 known up front
    for company in reader: ...                                            # rows of interest
    reader.report                                                         # counts, rejects, words

All files are checked (readable, a ZIP with one CSV or a bare CSV, a real header) and hashed
before the first row, so a bad third part fails before the first part is half imported.
Then each CSV is read in 1 MiB chunks from the ZIP, split into lines in C, and every line goes
through the cheapest test that can decide it (`line_filter`): memory stays flat whatever the
file's size, and most lines are never decoded.

Records and line numbers: a line number is the physical line in the CSV (the header is line 1).
A quoted field may hold a line break, so a line with an odd number of quotes opens a record that
continues on the next lines until the quotes balance; such a record is parsed as a whole and
reported at its first line. If it has not closed within `MAX_RECORD_LINES`, its first line is
refused ("unbalanced quotes") and the lines after it are read again on their own, so one stray
quote costs one row, not the ten after it.

Never a crash on data: a record with the wrong number of columns, bad quoting, no usable company
number, or cut short at the end of the file is counted by reason, the first few kept with file,
line and an excerpt, and skipped. Unknown status and category words are counted with an example
line, and the row is kept. What does raise is `BulkFileError`, for a file that can't be read at
all, including a ZIP found damaged part-way (the rows before it were already yielded: the caller
must not record the snapshot as imported).

In interest mode a line ruled out by the bytes test is counted as read but not validated: its
quoting or column count is only checked when it is parsed. `interest=None` parses every line.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable, Iterable, Iterator

import msgspec

from eventlog.entries import Interest

from .company import BulkCompany, RowParser
from .errors import BulkFileError
from .header import Columns
from .line_filter import LineFilter
from .source import CHUNK, READ_ERRORS, SnapshotFile, inspect, open_csv
from .vocabulary import category_of

__all__ = [
    "MAX_LINE_BYTES",
    "MAX_RECORD_LINES",
    "Progress",
    "Rejection",
    "UnknownWord",
    "FileReport",
    "SnapshotReport",
    "SnapshotReader",
    "read_snapshot",
]

MAX_RECORD_LINES = 10
MAX_LINE_BYTES = 1 << 20  # a published row is under 2 KB; anything this long is not a row
_KEPT_REJECTIONS = 10
_KEPT_WORDS = 50
_EXCERPT = 160
_BLANK_START = (b"", b"\r", b"\n", b"\t", b" ")


class Progress(msgspec.Struct, frozen=True):
    """Where the reader is: `stage` "hashing" (bytes of the files) or "reading" (bytes of CSV)."""

    stage: str
    file: str
    bytes_done: int
    bytes_total: int
    rows_read: int
    rows_kept: int


class Rejection(msgspec.Struct, frozen=True):
    file: str
    line: int
    reason: str
    excerpt: str


class UnknownWord(msgspec.Struct):
    """A status or category word the vocabulary doesn't know: how often, and where first."""

    word: str
    rows: int
    file: str
    line: int


class FileReport(msgspec.Struct):
    file: SnapshotFile
    rows_read: int = 0
    rows_kept: int = 0
    rejected: int = 0
    complete: bool = False  # read to its end


class SnapshotReport(msgspec.Struct):
    """What one read found. Lists are bounded: the first few examples, and counts for the rest."""

    files: list[FileReport]
    snapshot_date: str | None
    interest: Interest | None  # None: every company was kept
    rows_read: int = 0  # records after the header (blank lines not counted)
    rows_kept: int = 0  # yielded: of interest, or all
    rows_parsed: int = 0  # fully parsed (all of them when keeping all)
    rejected: int = 0
    rejected_by_reason: dict[str, int] = msgspec.field(default_factory=dict)
    rejections: list[Rejection] = msgspec.field(default_factory=list)
    unknown_statuses: list[UnknownWord] = msgspec.field(default_factory=list)
    unknown_categories: list[UnknownWord] = msgspec.field(default_factory=list)
    odd_values: int = 0  # dates and SIC texts present but unreadable, recorded as absent
    undecodable_rows: int = 0  # rows with bytes that are not UTF-8, read with replacement marks
    parts_missing: list[int] = msgspec.field(default_factory=list)
    complete: bool = False  # every file read to its end

    @property
    def rows_unknown_status(self) -> int:
        return sum(w.rows for w in self.unknown_statuses)


ProgressCallback = Callable[[Progress], None]


def _words(found: list[UnknownWord], word: str, file: str, line: int) -> None:
    for entry in found:
        if entry.word == word:
            entry.rows += 1
            return
    if len(found) < _KEPT_WORDS:
        found.append(UnknownWord(word=word, rows=1, file=file, line=line))


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
    """

    def __init__(self, paths: Iterable[str | Path], interest: Interest | None, *,
                 on_progress: ProgressCallback | None = None, snapshot_date: str | None = None) -> None:
        self.filter = LineFilter(interest)
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
            yield from _FileRead(self, file_report, columns).rows()
        self.report.complete = True

    def _progress(self, file: str, read: int) -> None:
        self._bytes_done += read
        if self.on_progress is not None:
            r = self.report
            self.on_progress(Progress("reading", file, self._bytes_done, self._bytes_total,
                                      r.rows_read, r.rows_kept))


class _FileRead:
    """Reading one CSV: the hot loop, and the slow paths it hands rare lines to."""

    def __init__(self, reader: SnapshotReader, file_report: FileReport, columns: Columns) -> None:
        self.reader = reader
        self.report = reader.report
        self.file_report = file_report
        self.file = file_report.file
        self.filter = reader.filter
        self.columns = columns
        self.parser = RowParser(columns)
        self.count = columns.count
        self.quotes = 2 * columns.count  # every field quoted, no quote inside: the usual line
        self.pending: list[tuple[int, bytes]] = []  # lines of a record still open (odd quotes)
        self.pending_quotes = 0

    # --- records ----------------------------------------------------------------------------

    def _fields(self, record: bytes, quotes: int) -> list[str] | str:
        """The record's fields exactly as `csv.reader` reads them, or why it can't be read.

        The usual line (2 quotes per column, starting and ending with one) has every quote in a
        `","` separator, so splitting on those is what csv.reader does, at half its cost.
        """
        if record.endswith(b"\r"):
            record = record[:-1]
        try:
            text = record.decode("utf-8")
        except UnicodeDecodeError:
            text = record.decode("utf-8", "replace")
            self.report.undecodable_rows += 1
        if quotes == self.quotes and len(text) > 1 and text[0] == '"' and text[-1] == '"':
            fields = text[1:-1].split('","')
            if len(fields) == self.count:
                return fields
        try:
            rows = list(csv.reader([text], strict=True))
        except csv.Error as exc:
            return f"bad quoting ({exc})"
        if len(rows) != 1:
            return "bad quoting (one record read as several)"
        return rows[0]

    def _take(self, line_no: int, record: bytes, quotes: int, last: bool = False) -> BulkCompany | None:
        """Parse a whole record, count it, and return it if it is to be kept."""
        report = self.report
        if record[:1] in _BLANK_START and not record.strip(b"\r\n\t "):
            return None  # a blank line is not a row
        report.rows_read += 1
        self.file_report.rows_read += 1
        report.rows_parsed += 1
        fields = self._fields(record, quotes)
        row = self.parser.parse(fields) if isinstance(fields, list) else fields
        if isinstance(row, str):
            reason = f"truncated last line ({row})" if last else row
            self._reject(line_no, reason, record)
            return None
        if row.company_status is None:
            _words(report.unknown_statuses, row.status_word, self.file.name, line_no)
        if row.type is None and not category_of(row.category_word)[1]:
            _words(report.unknown_categories, row.category_word, self.file.name, line_no)
        if not self.filter.matches(row):
            return None
        report.rows_kept += 1
        self.file_report.rows_kept += 1
        return row

    def _reject(self, line_no: int, reason: str, record: bytes) -> None:
        report = self.report
        report.rejected += 1
        self.file_report.rejected += 1
        key = reason.split(" (", 1)[0] if reason.startswith("bad quoting") else reason
        report.rejected_by_reason[key] = report.rejected_by_reason.get(key, 0) + 1
        if len(report.rejections) < _KEPT_REJECTIONS:
            excerpt = record[:_EXCERPT].decode("utf-8", "replace").rstrip("\r\n")
            report.rejections.append(Rejection(self.file.name, line_no, reason, excerpt))

    def _refuse(self, line_no: int, reason: str, record: bytes) -> None:
        """A record that is not parsed at all (its quotes never balance): counted as read, refused."""
        self.report.rows_read += 1
        self.file_report.rows_read += 1
        self._reject(line_no, reason, record)

    def _slow(self, line_no: int, line: bytes, quotes: int, last: bool = False) -> list[BulkCompany]:
        """Lines inside or opening a multi-line record, one at a time, with full parsing only."""
        kept: list[BulkCompany] = []
        pending = self.pending
        queue = [(line_no, line, quotes)]
        while queue:
            n, text, q = queue.pop(0)
            is_last = last and not queue
            row = None
            if not pending:
                if q % 2 == 0:
                    row = self._take(n, text, q, is_last)
                elif is_last:
                    self._refuse(n, "truncated last line (a quoted field never closed)", text)
                else:
                    pending.append((n, text))
                    self.pending_quotes = q
            else:
                pending.append((n, text))
                self.pending_quotes += q
                if self.pending_quotes % 2 == 0:
                    first = pending[0][0]
                    record = b"\n".join(t for _, t in pending)
                    pending.clear()
                    row = self._take(first, record, self.pending_quotes, is_last)
                elif len(pending) >= MAX_RECORD_LINES or is_last:
                    queue[0:0] = self._give_up()
            if row is not None:
                kept.append(row)
        return kept

    def _give_up(self) -> list[tuple[int, bytes, int]]:
        """Refuse the first line of an open record; its other lines are to be read again alone."""
        (first, text), rest = self.pending[0], self.pending[1:]
        self.pending.clear()
        self.pending_quotes = 0
        self._refuse(first, "unbalanced quotes", text)
        return [(n, t, t.count(b'"')) for n, t in rest]

    # --- the hot loop -----------------------------------------------------------------------

    def rows(self) -> Iterator[BulkCompany]:
        name = self.file.name
        try:
            with open_csv(self.file) as stream:
                yield from self._stream(stream)
        except READ_ERRORS as exc:
            raise BulkFileError(f"{name}: damaged after line {self._line_no:,} "
                                f"({type(exc).__name__}: {exc})") from None
        finally:
            self.report.odd_values += self.parser.odd_values
        self.file_report.complete = True

    _line_no = 0

    def _stream(self, stream) -> Iterator[BulkCompany]:
        take, slow, pending = self._take, self._slow, self.pending
        report, file_report = self.report, self.file_report
        # The bytes test of `LineFilter.skip`, inlined: a call per line would cost a tenth of the
        # whole loop. tests/bulk checks this loop against the parse on generated lines.
        test = self.filter.bind(self.columns)
        k = self.filter.status_at or 0
        splits, regular, skip_words = k + 1, 2 * k + 3, self.filter.skip_words
        skipped = 0  # lines ruled out by bytes alone, added to the counts once per chunk

        # The header was checked when the file was inspected: skip its line.
        carry = stream.read(CHUNK)
        consumed = len(carry)
        header_end = carry.find(b"\n")
        while header_end < 0:
            more = stream.read(CHUNK)
            if not more:
                break
            consumed += len(more)
            carry += more
            header_end = carry.find(b"\n")
        carry = carry[header_end + 1:] if header_end >= 0 else b""
        line_no = 1
        overlong = False  # inside a line too long to hold: its bytes are dropped up to its end
        while True:
            data = stream.read(CHUNK)
            consumed += len(data)
            if overlong:
                end = data.find(b"\n")
                if end < 0 and data:
                    self.reader._progress(self.file.name, consumed)
                    consumed = 0
                    continue
                data = data[end + 1:] if end >= 0 else data
                overlong = False
            lines = (carry + data).split(b"\n") if carry else data.split(b"\n")
            carry = lines.pop()  # at the end of the file: a last line with no line break, or b""
            too_long = None
            if len(carry) > MAX_LINE_BYTES:
                # No row is near this long: refuse the line rather than hold the file in memory.
                too_long, carry, overlong = carry, b"", True
            for line in lines:
                line_no += 1
                if pending:
                    self._line_no = line_no
                    yield from slow(line_no, line, line.count(b'"'))
                    continue
                if test:
                    parts = line.split(b'","', splits)
                    if len(parts) > splits and parts[0] and line[0] == 34:
                        prefix = len(line) - len(parts[-1])
                        prefix_quotes = line.count(b'"', 0, prefix)
                        quotes = prefix_quotes + line.count(b'"', prefix)
                        if not quotes & 1 and prefix_quotes == regular and parts[k] in skip_words:
                            skipped += 1
                            continue
                    else:
                        quotes = line.count(b'"')
                else:
                    quotes = line.count(b'"')
                if quotes & 1:
                    self._line_no = line_no
                    yield from slow(line_no, line, quotes)
                    continue
                row = take(line_no, line, quotes)
                if row is not None:
                    yield row
            if too_long is not None:
                line_no += 1
                self._refuse(line_no, f"a line longer than {MAX_LINE_BYTES:,} bytes", too_long)
            self._line_no = line_no
            if skipped:
                report.rows_read += skipped
                file_report.rows_read += skipped
                skipped = 0
            self.reader._progress(self.file.name, consumed)
            consumed = 0
            if not data:
                break
        if carry:
            line_no += 1
            self._line_no = line_no
            yield from slow(line_no, carry, carry.count(b'"'), last=True)
        while pending:  # the file ended inside an open record
            for n, text, q in self._give_up():
                yield from slow(n, text, q)


def read_snapshot(paths: Iterable[str | Path], interest: Interest | None, *,
                  on_progress: ProgressCallback | None = None) -> tuple[list[BulkCompany], SnapshotReport]:
    """Everything at once: for tests and small files (a whole snapshot's rows don't fit in memory)."""
    reader = SnapshotReader(paths, interest, on_progress=on_progress)
    rows = list(reader)
    return rows, reader.report
