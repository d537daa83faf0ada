"""The records of one CSV file, streamed: the reader's hot loop and its slow paths.

The CSV is read in 1 MiB chunks (inflated from the ZIP as they are read) and split into lines in
C. Each line goes through the cheapest test that can decide it: the bytes test of
`LineFilter.skip`, inlined, rules out nearly every line not of interest without decoding it;
the rest are decoded and parsed by `RowParser`.

Records and line numbers: a line number is the physical line in the CSV (the header is line 1).
A quoted field may hold a line break, so a line with an odd number of quotes opens a record that
continues on the next lines until the quotes balance; such a record is parsed as a whole and
reported at its first line. If it has not closed within `MAX_RECORD_LINES`, its first line is
refused ("unbalanced quotes") and the lines after it are read again on their own, so one stray
quote costs one row, not the ten after it. A line over `MAX_LINE_BYTES` is refused and its bytes
dropped as they come, so memory stays flat even for a file with no line breaks.
"""

from __future__ import annotations

import csv
from typing import Callable, Iterator

from eventlog.bulk.company import BulkCompany, RowParser
from eventlog.errors import BulkFileError
from eventlog.bulk.header import Columns
from eventlog.bulk.line_filter import LineFilter
from eventlog.bulk.report import FileReport, Rejection, SnapshotReport, count_word
from eventlog.bulk.source import CHUNK, READ_ERRORS, open_csv
from eventlog.bulk.vocabulary import category_of

__all__ = ["MAX_LINE_BYTES", "MAX_RECORD_LINES", "RecordStream"]

MAX_RECORD_LINES = 10
MAX_LINE_BYTES = 1 << 20  # a published row is under 2 KB; anything this long is not a row
_KEPT_REJECTIONS = 10
_EXCERPT = 160
_BLANK_START = (b"", b"\r", b"\n", b"\t", b" ")


class RecordStream:
    """One CSV read to its end: the hot loop, and the slow paths it hands rare lines to.

    `on_bytes(file name, bytes read)` is called after every chunk, for progress.
    """

    def __init__(self, report: SnapshotReport, file_report: FileReport, columns: Columns,
                 line_filter: LineFilter, on_bytes: Callable[[str, int], None]) -> None:
        self.report = report
        self.file_report = file_report
        self.file = file_report.file
        self.filter = line_filter
        self.on_bytes = on_bytes
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
            count_word(report.unknown_statuses, row.status_word, self.file.name, line_no)
        if row.type is None and not category_of(row.category_word)[1]:
            count_word(report.unknown_categories, row.category_word, self.file.name, line_no)
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
        n, watched = self.filter.number_at, self.filter.watch_bytes
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
                    self.on_bytes(self.file.name, consumed)
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
                        if not quotes & 1 and prefix_quotes == regular and parts[k] in skip_words and (
                                n is None or parts[n].lstrip(b'"') not in watched):
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
            self.on_bytes(self.file.name, consumed)
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
