"""Every failure chledger knows, as one tree.

    ChledgerError
    ├── ConfigError                 a setting is missing or out of range (exit 2)
    ├── BulkFileError               a bulk snapshot file can't be read at all (exit 2)
    ├── BatchNotFound               no backfill batch has that id (exit 2)
    ├── DatasetError                a lead export or a suppression asked for what can't be
    │                               done: a bad filter, an unknown --since name, a missing extra
    ├── DatabaseError               the SQLite file can't be used (exit 2)
    │   ├── NotADatabase            the file is not SQLite, or is corrupt
    │   │   └── LedgerDamaged       pages or rows are damaged: an integrity check failed, SQLite
    │   │                           found a malformed page, a position is missing when read,
    │   │                           stored text is not UTF-8
    │   ├── DatabaseReadOnly        the path can't be written
    │   ├── DatabaseBusy            another process holds the lock too long
    │   ├── DatabaseFull            the disk is full
    │   │   └── DiskLow             less than DISK_RESERVE_MB free: the worker won't go on
    │   └── SchemaTooNew            the file was migrated by a newer chledger
    ├── LedgerError
    │   ├── AppendOnlyViolation     someone tried to UPDATE or DELETE the ledger
    │   └── TamperedLedger          the hash chain does not verify
    ├── AuditError                  the audit could not give a verdict (exit 2)
    │   └── PlotUnavailable         --plot can't be drawn (file type, matplotlib, folder)
    ├── ProjectionError
    │   └── ProjectionsOutdated     projection code is newer than its tables: run replay
    ├── RateLimitError
    │   ├── Cooldown                the key is cooling down after a 429/403
    │   └── EmergencyStop           too many 429s: the worker stops (exit 3)
    └── UpstreamError
        ├── Unauthorized            401/403 from Companies House: the key is wrong
        ├── StreamGone              the stream can't be followed any more
        └── SnovWireError           a Snov.io answer whose shape we can't rely on

The CLI turns each into one line and an exit code; nothing here carries a key.
"""

from __future__ import annotations

__all__ = [
    "ChledgerError",
    "ConfigError",
    "BulkFileError",
    "BatchNotFound",
    "DatasetError",
    "DatabaseError",
    "NotADatabase",
    "LedgerDamaged",
    "DatabaseReadOnly",
    "DatabaseBusy",
    "DatabaseFull",
    "DiskLow",
    "SchemaTooNew",
    "LedgerError",
    "AppendOnlyViolation",
    "TamperedLedger",
    "AuditError",
    "PlotUnavailable",
    "ProjectionError",
    "ProjectionsOutdated",
    "RateLimitError",
    "Cooldown",
    "EmergencyStop",
    "UpstreamError",
    "Unauthorized",
    "StreamGone",
    "SnovWireError",
]


class ChledgerError(Exception):
    """Base of every failure the program knows; `exit_code` is what the CLI returns."""

    exit_code = 2


class ConfigError(ChledgerError):
    pass


class BulkFileError(ChledgerError):
    """A bulk snapshot file that can't be read as one; the message names the file and what is wrong.

    Rows that are wrong are not failures: they are counted and reported. What raises is what
    stops the whole file: not a ZIP, an empty ZIP, a ZIP with no CSV (or several), a header
    without the columns the reader needs, a compression method Python can't inflate, a ZIP
    damaged part-way through, part files of different snapshots.
    """


class BatchNotFound(ChledgerError):
    """`batch show` / `batch cancel` named a batch the database doesn't hold (or no longer does)."""


class DatasetError(ChledgerError):
    """A lead export or a suppression that can't be done as asked; the message says what to give."""


class DatabaseError(ChledgerError):
    pass


class NotADatabase(DatabaseError):
    pass


class LedgerDamaged(NotADatabase):
    """The file opens but its pages or rows are damaged. Whatever reads it must stop rather than
    act on part of it (a replay built from half a ledger, an audit of half the requests)."""


class DatabaseReadOnly(DatabaseError):
    pass


class DatabaseBusy(DatabaseError):
    pass


class DatabaseFull(DatabaseError):
    pass


class DiskLow(DatabaseFull):
    """Stopping before the disk is full, so the stop itself, replay and backup still have room."""


class SchemaTooNew(DatabaseError):
    pass


class LedgerError(ChledgerError):
    pass


class AppendOnlyViolation(LedgerError):
    pass


class TamperedLedger(LedgerError):
    exit_code = 1


class AuditError(ChledgerError):
    """The audit could not give a verdict (exit 2, whatever the cause's own code): a violation
    is exit 1, so "could not check" must never be mistaken for one, nor for compliance."""

    exit_code = 2


class PlotUnavailable(AuditError):
    """`--plot` can't be drawn. Checked before the audit starts (file type, matplotlib, folder),
    so a long audit is not lost to its plot; a write that fails at the end raises it too."""


class ProjectionError(ChledgerError):
    pass


class ProjectionsOutdated(ProjectionError):
    pass


class RateLimitError(ChledgerError):
    pass


class Cooldown(RateLimitError):
    def __init__(self, message: str, until: str):
        super().__init__(message)
        self.until = until


class EmergencyStop(RateLimitError):
    exit_code = 3


class UpstreamError(ChledgerError):
    pass


class Unauthorized(UpstreamError):
    pass


class StreamGone(UpstreamError):
    pass


class SnovWireError(UpstreamError):
    """A Snov.io answer whose shape we can't rely on: which call, and what is wrong where."""
