"""The customer's lead export: one row per current officer of each company of interest.

Beside `export.py` (every company with every appointment, which stays as it is), this is the
view a sales team takes away:

- **rows**: companies of interest (the interest the worker records, unless `all_companies`)
  joined to their *current* officers (`officers.current_condition()`, the one definition), with
  the company's fields, the officer's, and, when enriched, the domain and the e-mails with their
  statuses (`enrichment.enrichment_for`, the one join to enrichment);
- **filters** (`LeadFilters`): status value, SIC code or prefix, postcode prefix, region or
  town, company age, officer role, only rows with an e-mail, and `since` (rows whose officer
  list, domain or e-mail arrived after a date, or after the last export of the same name);
- **withheld**: rows of a suppressed subject (`suppression`: officer, company or e-mail) and of
  forgotten officers (`[erased]`) are never written, and counted;
- **formats**: CSV (UTF-8, optional BOM, formula injection escaped), JSON lines, a SQLite file
  (table `leads`, and `export_info`), and Parquet (the optional `parquet` extra).

Everything is read inside one read transaction: one consistent snapshot while the worker
appends (WAL readers never block it). The file is written beside its destination and renamed
into place. Recording the export in the ledger (`export.leads`) is the caller's
(`eventlog.commands.leads`), after the file is in place; `last_export` reads those entries.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import os
import re
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Sequence

import apsw
import msgspec

from eventlog.dataset.enrichment import Enrichment, enrichment_for
from eventlog.dataset.export import _check_paths, snapshot_into
from eventlog.dataset.suppression import active_subjects
from eventlog.errors import DatasetError
from eventlog.ledger.entries import LeadsExported, decode
from eventlog.privacy import ERASED, BadSubject, email_subject
from projections.projectors.officers import current_condition
from projections.projectors.processing_state import load_interest

__all__ = ["LeadFilters", "LeadReport", "LEAD_FORMATS", "COLUMNS", "CSV_COLUMNS", "export_leads",
           "last_export", "escape_cell", "parse_since"]

LEAD_FORMATS = ("csv", "jsonl", "sqlite", "parquet")
Format = Literal["csv", "jsonl", "sqlite", "parquet"]
Progress = Callable[[int, int], None]  # (rows read, rows the SQL filters let through)

# Every format's columns, in order. `sic_codes` and `emails` are lists (CSV joins them with "; ",
# and gives the statuses in `email_statuses`); the rest are text or integers.
COLUMNS = (
    "company_number", "company_name", "company_status", "company_status_detail", "company_type",
    "incorporated_on", "sic_codes", "registered_address", "registered_postcode", "registered_region",
    "officer_id", "officer_name", "officer_role", "appointed_on", "nationality", "occupation",
    "birth_month", "birth_year", "correspondence_address", "domain", "emails", "updated_at",
)
CSV_COLUMNS = (*COLUMNS[:COLUMNS.index("emails") + 1], "email_statuses", "updated_at")
EMAIL_FIELDS = ("email", "smtp_status", "is_valid_format", "is_disposable", "is_webmail", "is_gibberish")

_CHUNK = 500  # rows per enrichment lookup and per progress call
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_FIRST = frozenset(_FORMULA)
_ADDRESS_PARTS = ("care_of", "po_box", "premises", "address_line_1", "address_line_2", "locality", "region",
                  "postal_code", "country")
_SIC = re.compile(r"[0-9]{1,5}")
_POSTCODE = re.compile(r"[A-Z0-9]{1,7}")
_SINCE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9:.]+Z?)?")
_ADDR = "CASE WHEN json_valid(c.registered_office_address) THEN c.registered_office_address END"


class LeadFilters(msgspec.Struct, frozen=True, kw_only=True):
    statuses: tuple[str, ...] = ()  # company_status or company_status_detail equals one of them
    sic: tuple[str, ...] = ()  # a SIC code starts with one of them (1-5 digits)
    postcodes: tuple[str, ...] = ()  # the registered postcode starts with one of them (spaces ignored)
    regions: tuple[str, ...] = ()  # the registered address's region or town is one of them (any case)
    min_age_years: int | None = None  # incorporated at least this many years before `today`
    max_age_years: int | None = None  # incorporated less than this many years before `today`
    roles: tuple[str, ...] = ()  # officer_role is one of them
    with_email: bool = False  # only rows with at least one e-mail found
    since: str | None = None  # ISO date or timestamp: only rows updated after it
    all_companies: bool = False  # every company, not only those of interest


class LeadReport(msgspec.Struct, frozen=True, kw_only=True):
    """What was written: counts and positions, never data."""

    format: str
    path: str
    position: int  # the ledger head in the snapshot
    as_of: str  # when that entry was received: the next `--since last` starts after it
    rows: int
    withheld: int  # rows of suppressed subjects, left out
    erased: int  # rows of forgotten officers, left out
    since: str | None
    bytes: int


def escape_cell(value: str) -> str:
    """A text cell a spreadsheet must not run: one starting with = + - @ tab or CR gets a `'`."""
    return "'" + value if value.startswith(_FORMULA) else value


def parse_since(text: str) -> str:
    """A `--since` date (YYYY-MM-DD) or ISO timestamp, as compared with the ledger's times."""
    value = text.strip()
    if not _SINCE.fullmatch(value):
        raise DatasetError(f"--since {text!r}: expected a date (2026-11-30), an ISO timestamp, or 'last'")
    try:
        dt.date.fromisoformat(value[:10])
    except ValueError:
        raise DatasetError(f"--since {text!r}: not a real date") from None
    return value.replace(" ", "T")


def last_export(conn: apsw.Connection, name: str) -> LeadsExported | None:
    """The last `export.leads` entry recorded under `name` (found through the event_id index)."""
    found = None
    for (data,) in conn.execute("SELECT event_data FROM event_log WHERE event_id >= 'export.leads:' "
                                "AND event_id < 'export.leads;' ORDER BY id"):
        entry = decode(data)
        if isinstance(entry, LeadsExported) and entry.name == name:
            found = entry
    return found


def _years_before(today: dt.date, years: int) -> str:
    try:
        return today.replace(year=today.year - years).isoformat()
    except ValueError:  # 29 February
        return today.replace(year=today.year - years, day=28).isoformat()


def _where(conn: apsw.Connection, f: LeadFilters, today: dt.date) -> tuple[list[str], list[Any]]:
    where, args = ["coalesce(c.deleted, 0) = 0"], []

    def one_of(expr: str, values: Sequence[str]) -> str:
        args.extend(values)
        return f"{expr} IN ({', '.join('?' * len(values))})"

    if not f.all_companies:
        interest = load_interest(conn)
        company_cols = {r[1] for r in conn.execute("PRAGMA table_info(companies)")}
        if interest.field in company_cols and interest.values:
            where.append(one_of(f'c."{interest.field}"', interest.values))
    if f.statuses:
        where.append(f"({one_of('c.company_status', f.statuses)} OR {one_of('c.company_status_detail', f.statuses)})")
    if f.sic:
        for code in f.sic:
            if not _SIC.fullmatch(code.strip()):
                raise DatasetError(f"--sic {code!r}: expected a SIC code or its first digits (1-5 digits)")
        likes = " OR ".join("value LIKE ?" for _ in f.sic)
        args.extend(code.strip() + "%" for code in f.sic)
        where.append("EXISTS (SELECT 1 FROM json_each(CASE WHEN json_valid(c.sic_codes) THEN c.sic_codes "
                     f"ELSE '[]' END) WHERE {likes})")
    if f.postcodes:
        prefixes = [p.replace(" ", "").upper() for p in f.postcodes]
        for p, given in zip(prefixes, f.postcodes):
            if not _POSTCODE.fullmatch(p):
                raise DatasetError(f"--postcode {given!r}: expected the start of a UK postcode (letters and digits)")
        expr = f"replace(upper(json_extract({_ADDR}, '$.postal_code')), ' ', '')"
        args.extend(p + "%" for p in prefixes)
        where.append("(" + " OR ".join(f"{expr} LIKE ?" for _ in prefixes) + ")")
    if f.regions:
        wanted = [r.strip().lower() for r in f.regions]
        region = one_of(f"lower(trim(json_extract({_ADDR}, '$.region')))", wanted)
        town = one_of(f"lower(trim(json_extract({_ADDR}, '$.locality')))", wanted)
        where.append(f"({region} OR {town})")
    for years, op in ((f.min_age_years, "<="), (f.max_age_years, ">")):
        if years is not None:
            if years < 0 or years > 500:
                raise DatasetError(f"company age {years}: expected 0-500 years")
            where.append(f"c.date_of_creation IS NOT NULL AND c.date_of_creation {op} ?")
            args.append(_years_before(today, years))
    if f.roles:
        where.append(one_of("o.officer_role", [r.strip().lower() for r in f.roles]))
    return where, args


_SELECT = """
SELECT c.company_number, c.company_name, c.company_status, c.company_status_detail, c.company_type,
       c.date_of_creation, c.sic_codes, c.registered_office_address,
       o.officer_id, o.name, o.officer_role, o.appointed_on, o.nationality, o.occupation,
       o.date_of_birth_month, o.date_of_birth_year, o.address, o.fetched_at
FROM companies c JOIN (SELECT * FROM officers WHERE {current}) o ON o.company_number = c.company_number
WHERE {where}
ORDER BY c.company_number, o.id
"""


def lead_query(conn: apsw.Connection, filters: LeadFilters, today: dt.date) -> tuple[str, list[Any]]:
    """The SQL (and its arguments) of the rows before enrichment, suppression and `since`; also
    what the benchmark's plain SELECT runs."""
    where, args = _where(conn, filters, today)
    return _SELECT.format(current=current_condition(), where=" AND ".join(where)), args


_obj = msgspec.json.Decoder(dict[str, Any])
_list = msgspec.json.Decoder(list[Any])


def _address(text: str | None) -> tuple[str | None, dict[str, Any]]:
    if not text:
        return None, {}
    try:
        obj = _obj.decode(text)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return text, {}
    parts = [str(obj[k]).strip() for k in _ADDRESS_PARTS if obj.get(k) not in (None, "")]
    return ", ".join(p for p in parts if p) or None, obj


def _sic_codes(text: str | None) -> list[str]:
    if not text:
        return []
    try:
        return [str(v) for v in _list.decode(text)]
    except (msgspec.DecodeError, msgspec.ValidationError):
        return []


def _company(raw: tuple) -> dict[str, Any]:
    number, name, status, detail, ctype, created, sic, office = raw[:8]
    registered, office_obj = _address(office)
    return {
        "company_number": number, "company_name": name, "company_status": status,
        "company_status_detail": detail, "company_type": ctype, "incorporated_on": created,
        "sic_codes": _sic_codes(sic), "registered_address": registered,
        "registered_postcode": office_obj.get("postal_code"), "registered_region": office_obj.get("region"),
    }


def _row(company: dict[str, Any], raw: tuple, enrich: Enrichment) -> dict[str, Any]:
    (officer_id, officer_name, role, appointed, nationality, occupation, month, year, address, fetched) = raw[8:]
    changed = enrich.changed_at
    row = dict(company)
    row.update({
        "officer_id": officer_id, "officer_name": officer_name, "officer_role": role, "appointed_on": appointed,
        "nationality": nationality, "occupation": occupation, "birth_month": month, "birth_year": year,
        "correspondence_address": _address(address)[0], "domain": enrich.domain,
        "emails": [{k: getattr(m, k) for k in EMAIL_FIELDS} for m in enrich.emails],
        "updated_at": max(fetched, changed) if fetched and changed else fetched or changed,
    })
    return row


def _rows(conn: apsw.Connection, sql: str, args: list[Any], f: LeadFilters, since: str | None,
          suppressed: frozenset[str], counts: dict[str, int], total: int,
          progress: Progress | None) -> Iterator[dict[str, Any]]:
    cursor = conn.cursor().execute(sql, args)
    by_email = any(s.startswith("email:") for s in suppressed)
    company: dict[str, Any] | None = None
    read = 0
    while True:
        chunk = list(itertools.islice(cursor, _CHUNK))
        if not chunk:
            break
        read += len(chunk)
        for raw, enrich in zip(chunk, enrichment_for(conn, [(r[0], r[8]) for r in chunk])):
            if f.with_email and not enrich.has_email:
                continue
            if since is not None and not ((raw[17] or "") > since or (enrich.changed_at or "") > since):
                continue
            # Counted only among the rows the filters let through: what this delivery held back.
            if raw[9] == ERASED:
                counts["erased"] += 1
                continue
            if (f"company:{raw[0]}" in suppressed or (raw[8] and f"officer:{raw[8]}" in suppressed)
                    or (by_email and any(_email_key(m.email) in suppressed for m in enrich.emails))):
                counts["withheld"] += 1
                continue
            counts["rows"] += 1
            if company is None or company["company_number"] != raw[0]:
                company = _company(raw)  # rows come company by company: its fields once
            yield _row(company, raw, enrich)
        if progress:
            progress(read, total)


def _email_key(address: str) -> str | None:
    try:
        return email_subject(address)
    except BadSubject:  # not an address a subject can name: nothing suppressed can match it
        return None


# --- writers ------------------------------------------------------------------------------------


def _csv_cells(row: dict[str, Any]) -> list[Any]:
    mails = row["emails"]
    cells = dict(row)
    cells["sic_codes"] = "; ".join(row["sic_codes"])
    cells["emails"] = "; ".join(m["email"] for m in mails) if mails else ""
    cells["email_statuses"] = "; ".join(m["smtp_status"] or "" for m in mails) if mails else ""
    first = _FORMULA_FIRST
    return [("'" + v if v[:1] in first else v) if isinstance(v := cells[c], str) else v for c in CSV_COLUMNS]


def _write_csv(rows: Iterator[dict[str, Any]], tmp: Path, bom: bool) -> None:
    with open(tmp, "w", newline="", encoding="utf-8-sig" if bom else "utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            writer.writerow(_csv_cells(row))
        fh.flush()
        os.fsync(fh.fileno())


def _write_jsonl(rows: Iterator[dict[str, Any]], tmp: Path) -> None:
    encode = msgspec.json.Encoder().encode
    with open(tmp, "wb") as fh:
        for row in rows:
            fh.write(encode(row))
            fh.write(b"\n")
        fh.flush()
        os.fsync(fh.fileno())


_LIST_COLUMNS = ("sic_codes", "emails")
_INT_COLUMNS = ("birth_month", "birth_year")


def _write_sqlite(rows: Iterator[dict[str, Any]], tmp: Path, info: dict[str, Any]) -> None:
    db = apsw.Connection(str(tmp))
    try:
        cols = ", ".join(f"{c} {'INTEGER' if c in _INT_COLUMNS else 'TEXT'}" for c in COLUMNS)
        db.execute(f"CREATE TABLE leads (id INTEGER PRIMARY KEY, {cols})")
        db.execute("CREATE TABLE export_info (key TEXT PRIMARY KEY, value TEXT)")
        insert = f"INSERT INTO leads({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
        encode = msgspec.json.encode
        db.execute("BEGIN")
        batch: list[tuple] = []
        for row in rows:
            batch.append(tuple(encode(row[c]).decode() if c in _LIST_COLUMNS else row[c] for c in COLUMNS))
            if len(batch) >= _CHUNK:
                db.executemany(insert, batch)
                batch = []
        if batch:
            db.executemany(insert, batch)
        db.executemany("INSERT INTO export_info(key, value) VALUES (?, ?)",
                       [(k, None if v is None else str(v)) for k, v in info.items()])
        db.execute("COMMIT")
    finally:
        db.close()


def parquet_schema():
    """The Parquet file's schema (needs the `parquet` extra: pyarrow)."""
    pa = _pyarrow()
    email = pa.struct([("email", pa.string()), ("smtp_status", pa.string()), ("is_valid_format", pa.bool_()),
                       ("is_disposable", pa.bool_()), ("is_webmail", pa.bool_()), ("is_gibberish", pa.bool_())])
    fields = []
    for c in COLUMNS:
        if c == "sic_codes":
            fields.append((c, pa.list_(pa.string())))
        elif c == "emails":
            fields.append((c, pa.list_(email)))
        elif c in _INT_COLUMNS:
            fields.append((c, pa.int32()))
        else:
            fields.append((c, pa.string()))
    return pa.schema(fields)


def _pyarrow():
    try:
        import pyarrow  # noqa: PLC0415  (an optional extra: imported only for Parquet)
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise DatasetError("Parquet needs the optional extra: pip install -e '.[parquet]' (pyarrow)") from None
    return pyarrow


def _write_parquet(rows: Iterator[dict[str, Any]], tmp: Path) -> None:
    pa = _pyarrow()
    schema = parquet_schema()
    with pa.parquet.ParquetWriter(str(tmp), schema) as writer:
        batch: list[dict[str, Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= 5000:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                batch = []
        writer.write_table(pa.Table.from_pylist(batch, schema=schema))
    with open(tmp, "rb") as fh:  # on disk before the rename, as the CSV and JSON lines files are
        os.fsync(fh.fileno())


# --- the export -----------------------------------------------------------------------------------


def export_leads(
    db_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    fmt: Format = "csv",
    *,
    filters: LeadFilters = LeadFilters(),
    name: str | None = None,
    bom: bool = False,
    today: dt.date | None = None,
    progress: Progress | None = None,
) -> LeadReport:
    """Write the leads to `out_path` from one consistent snapshot (module doc). `filters.since`
    may be "last": after the `as_of` of the last export recorded under `name` (everything when
    there is none). `today` (default: the date now) anchors the company-age filters."""
    if fmt not in LEAD_FORMATS:
        raise DatasetError(f"unknown lead format {fmt!r}: expected one of {', '.join(LEAD_FORMATS)}")
    if fmt == "parquet":
        _pyarrow()
    src, out = _check_paths(db_path, out_path)
    today = today or dt.datetime.now(dt.timezone.utc).date()
    counts = {"rows": 0, "withheld": 0, "erased": 0}
    with snapshot_into(src, out) as (conn, tmp):
        for table in ("event_log", "companies", "officers", "domains", "emails"):
            if not conn.execute(f"PRAGMA table_info({table})").fetchall():
                raise DatasetError(f"{src} has no {table} table: run `python cli.py migrate` first")
        head = conn.execute("SELECT id, received_at FROM event_log ORDER BY id DESC LIMIT 1").fetchone()
        position, as_of = (int(head[0]), str(head[1])) if head else (0, "")
        since = filters.since
        if since == "last":
            previous = last_export(conn, name or out.name)
            since = previous.as_of if previous else None
        elif since is not None:
            since = parse_since(since)
        sql, args = lead_query(conn, filters, today)
        total = int(conn.execute(f"SELECT count(*) FROM ({sql})", args).fetchone()[0]) if progress else 0
        if progress:
            progress(0, total)
        rows = _rows(conn, sql, args, filters, since, active_subjects(conn), counts, total, progress)
        if fmt == "csv":
            _write_csv(rows, tmp, bom)
        elif fmt == "jsonl":
            _write_jsonl(rows, tmp)
        elif fmt == "parquet":
            _write_parquet(rows, tmp)
        else:
            _write_sqlite(rows, tmp, {"name": name or out.name, "position": position, "as_of": as_of,
                                      "since": since})
    return LeadReport(format=fmt, path=str(out), position=position, as_of=as_of, rows=counts["rows"],
                      withheld=counts["withheld"], erased=counts["erased"], since=since,
                      bytes=out.stat().st_size)
