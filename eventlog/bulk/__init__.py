"""Companies House's Basic Company Data snapshot, read as company profiles.

The monthly snapshot (`BasicCompanyDataAsOneFile-YYYY-MM-DD.zip`, about 5 million rows, or the
same cut into `BasicCompanyData-YYYY-MM-DD-partN_M.zip`) is how a customer finds the companies
of interest without the stream, and how a stream gap is repaired. This package reads it and
nothing else: no ledger, no database. The modules, each one job:

- `source`: a file on disk: its name's date and part, its SHA-256, its CSV as a byte stream
  (inflated from the ZIP as it is read, never unpacked to disk); unusable files refused.
- `header`: the header line's quirks (BOM, leading spaces) and column positions.
- `vocabulary`: the file's status and category words → the API's keys.
- `company`: `BulkCompany`, a row shaped like the REST company profile, and its parser.
- `line_filter`: the cheap test on raw bytes and the exact test on the parsed row.
- `records`: one CSV's records streamed: the hot loop, multi-line records, refused lines.
- `report`: what a read found (counts, first rejections, unknown words) and its progress.
- `reader`: `SnapshotReader`: every file checked and hashed first, then their rows.
"""

from eventlog.bulk.company import BulkCompany, normalise_number
from eventlog.errors import BulkFileError
from eventlog.bulk.line_filter import LineFilter
from eventlog.bulk.reader import ProgressCallback, SnapshotReader, read_snapshot
from eventlog.bulk.report import FileReport, Progress, Rejection, SnapshotReport, UnknownWord
from eventlog.bulk.source import SnapshotFile, SnapshotName, parse_snapshot_name
from eventlog.bulk.vocabulary import category_of, status_of

__all__ = [
    "BulkCompany",
    "BulkFileError",
    "FileReport",
    "LineFilter",
    "Progress",
    "ProgressCallback",
    "Rejection",
    "SnapshotFile",
    "SnapshotName",
    "SnapshotReader",
    "SnapshotReport",
    "UnknownWord",
    "category_of",
    "normalise_number",
    "parse_snapshot_name",
    "read_snapshot",
    "status_of",
]
