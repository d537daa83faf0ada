"""What a read found, and where it is: the report and progress types of the bulk reader.

Bounded on purpose: a 5-million-row file with a systematic fault must not grow a list of 5
million rejections, so only the first few examples are kept, and counts for the rest.
"""

from __future__ import annotations

import msgspec

from eventlog.ledger.entries import Interest

from eventlog.bulk.source import SnapshotFile

__all__ = ["Progress", "Rejection", "UnknownWord", "FileReport", "SnapshotReport", "count_word"]

_KEPT_WORDS = 50


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


def count_word(found: list[UnknownWord], word: str, file: str, line: int) -> None:
    for entry in found:
        if entry.word == word:
            entry.rows += 1
            return
    if len(found) < _KEPT_WORDS:
        found.append(UnknownWord(word=word, rows=1, file=file, line=line))
