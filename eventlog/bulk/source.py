"""One snapshot file on disk: what it is (name, date, part, SHA-256), and its CSV as a byte stream.

Companies House publishes `BasicCompanyDataAsOneFile-YYYY-MM-DD.zip` (one CSV) and the same data
cut into `BasicCompanyData-YYYY-MM-DD-partN_M.zip`. The date in the name is the snapshot's date;
it is the only place the file states it. A ZIP is read through `zipfile`'s streaming member open
(inflated as it is read, never written out), a bare CSV straight from disk.

Everything that makes a file unusable is found here, before a single row is read, and raised as
one `BulkFileError` line naming the file: missing or unreadable, empty, named `.zip` but not a
ZIP, an empty ZIP, no CSV in it or more than one, encrypted, or compressed with a method Python
can't inflate. The header is checked by `header.read_header` on the first line.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
import zlib
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import msgspec

from eventlog.errors import BulkFileError
from eventlog.bulk.header import Columns, read_header

__all__ = ["SnapshotName", "SnapshotFile", "parse_snapshot_name", "inspect", "open_csv", "CHUNK", "READ_ERRORS"]

CHUNK = 1 << 20  # bytes read at a time: large enough that per-read overhead vanishes, small for memory
_MAX_HEADER = 64 * 1024
# What inflating a damaged or truncated ZIP member raises part-way through.
READ_ERRORS = (zlib.error, zipfile.BadZipFile, EOFError, OSError)

_NAME = re.compile(
    r"BasicCompanyData(?P<one>AsOneFile)?-(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:-part(?P<part>\d+)_(?P<parts>\d+))?\.(?:zip|csv)", re.IGNORECASE)


class SnapshotName(msgspec.Struct, frozen=True, omit_defaults=True):
    """What a published file name says: the snapshot's date, and which part of how many."""

    date: str | None = None
    part: int | None = None
    parts: int | None = None


def parse_snapshot_name(name: str) -> SnapshotName:
    """`BasicCompanyDataAsOneFile-2024-05-01.zip` → date 2024-05-01; `...-2024-05-01-part3_7.zip`
    → part 3 of 7. A name of neither form (a renamed file) says nothing: all None."""
    match = _NAME.fullmatch(Path(name).name)
    if match is None:
        return SnapshotName()
    try:
        day = date.fromisoformat(match["date"]).isoformat()
    except ValueError:
        return SnapshotName()
    if match["part"] is None:
        return SnapshotName(date=day)
    part, parts = int(match["part"]), int(match["parts"])
    if not 1 <= part <= parts:
        return SnapshotName(date=day)
    return SnapshotName(date=day, part=part, parts=parts)


class SnapshotFile(msgspec.Struct, frozen=True, omit_defaults=True):
    """A file given to the reader, as found on disk before reading it."""

    path: str
    name: str
    sha256: str
    size: int  # bytes on disk
    csv_size: int  # bytes of CSV (inflated size for a ZIP): the reading stage's progress total
    member: str | None = None  # the CSV inside the ZIP; None for a bare CSV
    snapshot_date: str | None = None
    part: int | None = None
    parts: int | None = None


Hashing = Callable[[int], None]


def _sha256(path: Path, on_bytes: Hashing | None) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            if on_bytes is not None:
                on_bytes(len(chunk))
    return digest.hexdigest()


def _is_mac_metadata(name: str) -> bool:
    """`__MACOSX/._x.csv`: what a Mac adds when it re-zips a folder; not a second CSV."""
    return name.startswith("__MACOSX/") or Path(name).name.startswith("._")


def _csv_member(path: Path, label: str) -> zipfile.ZipInfo:
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise BulkFileError(f"{label}: not a readable ZIP file ({exc})") from None
    if not members:
        raise BulkFileError(f"{label}: an empty ZIP (no files in it)")
    csvs = [m for m in members if not m.is_dir() and m.filename.lower().endswith(".csv")
            and not _is_mac_metadata(m.filename)]
    if not csvs:
        names = ", ".join(m.filename for m in members[:5]) + (", ..." if len(members) > 5 else "")
        raise BulkFileError(f"{label}: no CSV file in this ZIP (it holds {names})")
    if len(csvs) > 1:
        names = ", ".join(m.filename for m in csvs[:5]) + (", ..." if len(csvs) > 5 else "")
        raise BulkFileError(f"{label}: {len(csvs)} CSV files in this ZIP ({names}); expected one, as "
                            "Companies House publishes them (give part files as separate files)")
    member = csvs[0]
    if member.flag_bits & 0x1:
        raise BulkFileError(f"{label}: {member.filename} is encrypted")
    return member


def inspect(path: str | Path, on_hash_bytes: Hashing | None = None) -> tuple[SnapshotFile, Columns]:
    """Check a file is a readable snapshot (its header included) and hash it; nothing is read twice
    later but the header. Raises `BulkFileError` with one line naming the file."""
    p = Path(path)
    label = p.name
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise BulkFileError(f"{label}: can't be read ({exc.strerror or exc})") from None
    if not p.is_file():
        raise BulkFileError(f"{label}: not a file")
    if size == 0:
        raise BulkFileError(f"{label}: the file is empty")
    name = parse_snapshot_name(p.name)
    is_zip = zipfile.is_zipfile(p)
    if not is_zip and p.suffix.lower() == ".zip":
        raise BulkFileError(f"{label}: not a ZIP file, though named .zip (truncated download?)")
    member = _csv_member(p, label) if is_zip else None
    csv_size = member.file_size if member is not None else size
    try:
        sha = _sha256(p, on_hash_bytes)
    except OSError as exc:
        raise BulkFileError(f"{label}: can't be read ({exc.strerror or exc})") from None
    found = SnapshotFile(path=str(p), name=p.name, sha256=sha, size=size, csv_size=csv_size,
                         member=member.filename if member is not None else None,
                         snapshot_date=name.date, part=name.part, parts=name.parts)
    try:
        with open_csv(found) as stream:
            first = stream.readline(_MAX_HEADER)
    except READ_ERRORS as exc:
        raise BulkFileError(f"{label}: damaged at its first line ({exc})") from None
    if not first.strip():
        raise BulkFileError(f"{label}: the CSV is empty (no header line)")
    return found, read_header(first, label)


@contextmanager
def open_csv(file: SnapshotFile) -> Iterator[BinaryIO]:
    """The CSV's bytes from the start (header included), inflated on the fly for a ZIP.

    Only opening is translated here; errors while reading are the reader's to translate, since
    only it knows the line it had reached.
    """
    label = file.name
    if file.member is None:
        try:
            raw = open(file.path, "rb")
        except OSError as exc:
            raise BulkFileError(f"{label}: can't be read ({exc.strerror or exc})") from None
        with raw:
            yield raw
        return
    try:
        archive = zipfile.ZipFile(file.path)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise BulkFileError(f"{label}: not a readable ZIP file ({exc})") from None
    with archive:
        try:
            member = archive.open(file.member)
        except NotImplementedError as exc:  # e.g. Deflate64, which some Windows tools write for big files
            raise BulkFileError(f"{label}: compressed with a method Python can't read ({exc})") from None
        except RuntimeError as exc:  # zipfile's "File ... is encrypted, password required"
            raise BulkFileError(f"{label}: {exc}") from None
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise BulkFileError(f"{label}: can't be read ({exc})") from None
        with member:
            yield member  # type: ignore[misc]
