"""The one failure the bulk reader raises: a file that can't be read as a snapshot at all.

Rows that are wrong are not failures: they are counted and reported (`SnapshotReport`). What
raises is what stops the whole file: not a ZIP, an empty ZIP, a ZIP with no CSV (or several),
a header without the columns we read, a compression method Python can't inflate, a ZIP damaged
part-way through, part files of different snapshots. The message is one line naming the file.

It is a `ChledgerError`, so the CLI's `known_errors` already prints it as `chledger: …` and exits 2.
"""

from __future__ import annotations

from eventlog.errors import ChledgerError

__all__ = ["BulkFileError"]


class BulkFileError(ChledgerError):
    """A bulk snapshot file that can't be read; the message names the file and what is wrong."""
