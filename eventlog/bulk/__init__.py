"""Companies House's Basic Company Data snapshot, read as company profiles.

The monthly snapshot (`BasicCompanyDataAsOneFile-YYYY-MM-DD.zip`, about 5 million rows, or the
same cut into `BasicCompanyData-YYYY-MM-DD-partN_M.zip`) is how a customer finds the companies
of interest without the stream, and how a stream gap is repaired. This package reads it (the
modules up to `reader` know no ledger and no database) and imports it (`importer`,
`reconcile`). The modules, each one job:

- `source`: a file on disk: its name's date and part, its SHA-256, its CSV as a byte stream
  (inflated from the ZIP as it is read, never unpacked to disk); unusable files refused.
- `header`: the header line's quirks (BOM, leading spaces) and column positions.
- `vocabulary`: the file's status and category words → the API's keys.
- `company`: `BulkCompany`, a row shaped like the REST company profile, and its parser.
- `line_filter`: the cheap test on raw bytes and the exact test on the parsed row.
- `records`: one CSV's records streamed: the hot loop, multi-line records, refused lines.
- `report`: what a read found (counts, first rejections, unknown words) and its progress.
- `reader`: `SnapshotReader`: every file checked and hashed first, then their rows.
- `importer`: the rows into the ledger in large transactions, then the snapshot's own entry.
- `reconcile`: what a snapshot read to its end changes: one batch of the companies of interest
  not yet in hand, companies no longer of interest out of the pipeline, the stream's gaps.
"""

from eventlog.bulk.company import BulkCompany, normalise_number
from eventlog.bulk.importer import ImportReport, import_snapshot
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
    "ImportReport",
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
    "import_snapshot",
    "normalise_number",
    "parse_snapshot_name",
    "read_snapshot",
    "status_of",
]
