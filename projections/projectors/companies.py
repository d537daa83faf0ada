"""`companies`: one row per company, from stream profile events and REST profiles.

Freshness: the stream's timepoint orders its events, so an event whose
timepoint is below the one the row holds is older news and changes nothing but
`last_stream_event_id` (the latest event received) and `updated_at`; equal
timepoints go to the later entry in the ledger (received later). A 200 profile
response is the company as it was when it was received, so it always applies
(and never touches the stream columns).

A bulk snapshot's row (`bulk.company`) is the company as it stood on the
snapshot's date. It applies only where the row holds nothing newer: no stream
event published on or after that day, no REST profile received on or after it,
no later snapshot. Once applied, its date (`bulk_snapshot_date`) holds off stream
events published before that day, just as a higher timepoint holds off a lower
one. What the file doesn't say never blanks out what the row has: the file has
no etag, some categories have no API type, an unknown status word gives no
status, so those columns keep their values (a known status word does set
`company_status_detail`, to nothing when the word has no detail).

`data_source` says where the row's facts came from: `stream`, `bulk` (a bulk
snapshot or backfill list, or a REST fetch for a company the stream never
mentioned), `both` once a company has been seen in both. A stub row (number
only, `bulk`) is created for a company that first appears in a backfill or a
queued request, because `company_processing_state` refers to it.

Every rule is in the upsert itself (SQL evaluates each SET against the row as it
was), so the projector never reads the table: one parameter tuple per entry, run
in ledger order as `executemany` (`_writes` says which statement each entry
causes: one place per rule). Row order (the hidden rowid) follows first
appearance in the ledger, however it is batched.

Replay uses `apply_range` instead: over a range of positions SQLite picks the
few entries each company's row depends on, and only those go through the same
statements (see "the range fold" below).
"""

from __future__ import annotations

import itertools
from typing import Callable

import apsw
import msgspec

from projections.records import COMPANY_PROFILE, Batch, backfill_numbers
from projections.setbased.ranges import NUMBER_SQL, check_range, decode_rows, prepare, records_chunks
from projections.payloads import FILING_HISTORY, Profile, is_first_gazette_notice, raw_text
from projections.rows import Statements

NAME = "companies"
VERSION = 3  # 3: a first Gazette notice on /filings makes a stub row
TABLES = ("companies",)
LOOKUP_INDEXES: tuple[str, ...] = ()

_PROFILE = ("company_name", "company_status", "company_status_detail", "company_type", "jurisdiction",
            "date_of_creation", "registered_office_address", "sic_codes", "etag")
_STREAM = ("deleted", "stream_last_updated", "stream_event_id", "stream_event_type", "stream_timepoint",
           "stream_processing_status", "stream_status", "stream_metadata")
_NEWER = ("(companies.stream_timepoint IS NULL OR excluded.stream_timepoint >= companies.stream_timepoint) "
          "AND (companies.bulk_snapshot_date IS NULL OR excluded.stream_last_updated >= companies.bulk_snapshot_date)")


def _stream_sql(with_profile: bool) -> str:
    applied = (_PROFILE if with_profile else ()) + _STREAM
    columns = ("company_number",) + applied + ("data_source", "last_stream_event_id", "updated_at")
    sets = [f"{c} = iif({_NEWER}, excluded.{c}, companies.{c})" for c in applied]
    sets.append(f"data_source = iif({_NEWER} AND companies.data_source = 'bulk', 'both', companies.data_source)")
    sets += ["last_stream_event_id = excluded.last_stream_event_id", "updated_at = excluded.updated_at"]
    return (f"INSERT INTO companies({', '.join(columns)}) VALUES ({', '.join('?' * (len(columns) - 3))}, "
            f"'stream', ?, ?) ON CONFLICT(company_number) DO UPDATE SET {', '.join(sets)}")


_EVENT = _stream_sql(True)
_EVENT_NO_DATA = _stream_sql(False)
_REST = (f"INSERT INTO companies(company_number, {', '.join(_PROFILE)}, rest_fetched_at, updated_at) "
         f"VALUES ({', '.join('?' * (len(_PROFILE) + 3))}) ON CONFLICT(company_number) DO UPDATE SET "
         + ", ".join(f"{c} = excluded.{c}" for c in _PROFILE)
         + ", deleted = 0, rest_fetched_at = excluded.rest_fetched_at, updated_at = excluded.updated_at")

# A snapshot's row applies where nothing newer is held (string order is time order: ISO dates and
# times, and a day sorts before every time of that day).
_FRESHER = ("(companies.stream_last_updated IS NULL OR companies.stream_last_updated < excluded.bulk_snapshot_date) "
            "AND (companies.rest_fetched_at IS NULL OR companies.rest_fetched_at < excluded.bulk_snapshot_date) "
            "AND (companies.bulk_snapshot_date IS NULL OR excluded.bulk_snapshot_date >= companies.bulk_snapshot_date)")
_BULK_KEPT = ("company_name", "company_status", "company_type", "jurisdiction", "date_of_creation",
              "registered_office_address", "sic_codes")  # absent in the file: the row keeps its value
_BULK = (f"INSERT INTO companies(company_number, {', '.join(_BULK_KEPT)}, company_status_detail, data_source, "
         f"bulk_snapshot_date, updated_at) VALUES ({', '.join('?' * (len(_BULK_KEPT) + 2))}, 'bulk', ?, ?) "
         "ON CONFLICT(company_number) DO UPDATE SET "
         + ", ".join(f"{c} = iif({_FRESHER}, coalesce(excluded.{c}, companies.{c}), companies.{c})"
                     for c in _BULK_KEPT)
         + f", company_status_detail = iif({_FRESHER} AND excluded.company_status IS NOT NULL, "
           "excluded.company_status_detail, companies.company_status_detail)"
         + f", bulk_snapshot_date = iif({_FRESHER}, excluded.bulk_snapshot_date, companies.bulk_snapshot_date)"
         + ", data_source = iif(companies.data_source = 'stream', 'both', companies.data_source)"
         + ", updated_at = excluded.updated_at")
_STUB = "INSERT INTO companies(company_number, updated_at) VALUES (?, ?) ON CONFLICT(company_number) DO NOTHING"
# A company first heard of through its Gazette notice on /filings: known from the stream.
_GAZETTE_STUB = ("INSERT INTO companies(company_number, data_source, updated_at) VALUES (?, 'stream', ?) "
                 "ON CONFLICT(company_number) DO NOTHING")


class _StreamMeta(msgspec.Struct, omit_defaults=True):
    timepoint: int
    published_at: str
    resource_uri: str
    fields_changed: list[str] | None = None


_encode_meta = msgspec.json.Encoder().encode


def _profile_values(p: Profile) -> tuple:
    return (p.company_name, p.company_status, p.company_status_detail, p.type, p.jurisdiction,
            p.date_of_creation, raw_text(p.registered_office_address), raw_text(p.sic_codes), p.etag)


Write = Callable[[str, int, str, tuple], None]  # (company number, position, sql, params)


def _stream_event(add: Write, batch: Batch, r, number: str) -> None:
    e = r.entry
    deleted = e.change == "deleted"
    stream = (1 if deleted else 0, e.published_at, r.event_id, e.change, e.timepoint, "processed",
              "deleted" if deleted else "active",
              _encode_meta(_StreamMeta(e.timepoint, e.published_at, e.resource_uri, e.fields_changed)).decode(),
              r.event_id, r.received_at)
    profile = batch.profile(r)
    if profile is None:
        add(number, r.position, _EVENT_NO_DATA, (number,) + stream)
    else:
        add(number, r.position, _EVENT, (number,) + _profile_values(profile) + stream)


def _writes(batch: Batch, add: Write) -> None:
    """Every rule, entry by entry: the statement (and its company) each record causes, in ledger order."""
    for r in batch.records:
        t = r.event_type
        if t == "stream.event":
            if r.entry.resource_kind == COMPANY_PROFILE:  # type: ignore[attr-defined]
                number = batch.company(r)
                if number:
                    _stream_event(add, batch, r, number)
            elif r.entry.resource_kind == FILING_HISTORY and is_first_gazette_notice(r.entry.data):  # type: ignore[attr-defined]
                number = batch.company(r)
                if number:
                    add(number, r.position, _GAZETTE_STUB, (number, r.received_at))
        elif t == "response.received":
            e = r.entry
            if e.kind == "profile" and e.status == 200:  # type: ignore[attr-defined]
                number = batch.company(r)
                profile = batch.profile(r)
                if number and profile is not None:
                    add(number, r.position, _REST,
                        (number,) + _profile_values(profile) + (r.received_at, r.received_at))
        elif t == "bulk.company":
            number = batch.company(r)
            p = batch.profile(r)
            if number and p is not None:
                add(number, r.position, _BULK,
                    (number, p.company_name, p.company_status, p.type, p.jurisdiction, p.date_of_creation,
                     raw_text(p.registered_office_address), raw_text(p.sic_codes), p.company_status_detail,
                     r.entry.snapshot_date, r.received_at))  # type: ignore[attr-defined]
        elif t == "request.queued":
            number = batch.company(r)
            if number:
                add(number, r.position, _STUB, (number, r.received_at))
        elif t == "backfill.created":
            for number in backfill_numbers(r.entry.company_numbers):  # type: ignore[attr-defined]
                add(number, r.position, _STUB, (number, r.received_at))


def apply_entries(conn: apsw.Connection, batch: Batch) -> None:
    """The fold entry by entry: one upsert per record (the reference `apply_range` must equal)."""
    sql = Statements()
    _writes(batch, lambda number, position, statement, params: sql.add(statement, params))
    sql.run(conn)


# --- the range fold ------------------------------------------------------------------------------
#
# Over a range of positions, SQLite picks for each company the few stream events its row depends
# on, and only those go through the upserts above (decoded, in ledger order): the last event
# applied (its stream columns), the last applied one carrying a profile (its profile columns), and
# the last event (`last_stream_event_id`, `updated_at`). Which events apply is `_NEWER` seen over a
# run: an event applies when it is not older than the row's snapshot date and its timepoint is at
# least the highest of the row's and of every earlier event's in the run that passed the date (an
# event that did not apply was below one of those). A company with any other entry in the range
# (REST profile, bulk row, stub, a Gazette notice's stub) has all its entries run one by one instead. Companies are written
# one after the other in order of first appearance, so new rows get the rowids the entry-by-entry
# fold gives them.

_OTHERS = "('response.received', 'bulk.company', 'request.queued', 'backfill.created')"
# ... and a stream event about a filing (a first Gazette notice makes a stub row, `_GAZETTE_STUB`)
_OTHERS_WHERE = (f"id > ? AND id <= ? AND (event_type IN {_OTHERS} OR (event_type = 'stream.event' "
                 f"AND event_data ->> '$.resource_kind' = '{FILING_HISTORY}'))")
_TABLES = {
    "chl_company_keys": "pos INTEGER PRIMARY KEY, company TEXT NOT NULL, tp INTEGER, pub TEXT, prof INTEGER NOT NULL",
    "chl_company_mixed": "company TEXT NOT NULL, pos INTEGER NOT NULL, seq INTEGER NOT NULL",
    "chl_company_plan": "first INTEGER NOT NULL, fseq INTEGER NOT NULL, company TEXT NOT NULL, pos INTEGER NOT NULL",
}
_TEMP = tuple(f"CREATE TEMP TABLE IF NOT EXISTS {t}({cols})" for t, cols in _TABLES.items())
_CLEAR = tuple(f"DELETE FROM temp.{t}" for t in _TABLES)
# 1. the keys of every stream event about a company profile in the range
_KEYS = ("INSERT INTO temp.chl_company_keys(pos, company, tp, pub, prof) "
         "SELECT id, number, tp, pub, prof FROM (SELECT id, "
         + NUMBER_SQL.format(x="coalesce(company_number, event_data ->> '$.resource_id')")
         + " AS number, event_data ->> '$.timepoint' AS tp, event_data ->> '$.published_at' AS pub, "
         "json_type(event_data, '$.data') IS 'object' AS prof FROM event_log "
         "WHERE id > ? AND id <= ? AND event_type = 'stream.event' "
         "AND event_data ->> '$.resource_kind' = 'company-profile') WHERE number IS NOT NULL")
# 2. companies with other writes (REST profile, bulk row, stub) have all their writes run in turn
_MIXED_STREAM = ("INSERT INTO temp.chl_company_mixed(company, pos, seq) SELECT company, pos, 0 "
                 "FROM temp.chl_company_keys WHERE company IN (SELECT company FROM temp.chl_company_mixed)")
_PLAN_MIXED = """
INSERT INTO temp.chl_company_plan(first, fseq, company, pos)
SELECT f.first, s.seq, m.company, m.pos
FROM temp.chl_company_mixed AS m
JOIN (SELECT company, min(pos) AS first FROM temp.chl_company_mixed GROUP BY company) AS f ON f.company = m.company
JOIN temp.chl_company_mixed AS s ON s.company = m.company AND s.pos = f.first
"""
# 3. the others: for each company, its last event, the last one applied and the last applied with a profile
_PLAN_STREAM = """
INSERT INTO temp.chl_company_plan(first, fseq, company, pos)
WITH k AS (
    SELECT s.pos, s.company, s.tp, s.prof, c.stream_timepoint AS held,
           (c.bulk_snapshot_date IS NULL OR s.pub >= c.bulk_snapshot_date) AS ok
    FROM temp.chl_company_keys AS s LEFT JOIN companies AS c ON c.company_number = s.company
    WHERE s.company NOT IN (SELECT company FROM temp.chl_company_mixed)),
w AS (
    SELECT pos, company, prof,
           ok AND (held IS NULL OR tp >= held)
              AND tp >= coalesce(max(iif(ok, tp, NULL)) OVER (PARTITION BY company ORDER BY pos
                                                              ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), tp)
           AS applied
    FROM k),
g AS (
    SELECT company, min(pos) AS first, max(pos) AS last, max(iif(applied, pos, NULL)) AS applied,
           max(iif(applied AND prof, pos, NULL)) AS profile
    FROM w GROUP BY company)
SELECT first, 0, company, last FROM g
UNION ALL SELECT first, 0, company, applied FROM g WHERE applied < last
UNION ALL SELECT first, 0, company, profile FROM g WHERE profile < applied
"""
_PLAN_INDEX = "CREATE INDEX IF NOT EXISTS temp.chl_company_plan_order ON chl_company_plan(first, fseq, pos)"
_PLANNED = ("SELECT p.company, e.id, e.event_id, e.event_type, e.company_number, e.event_data, e.received_at "
            "FROM temp.chl_company_plan AS p JOIN event_log AS e ON e.id = p.pos ORDER BY p.first, p.fseq, p.pos")
_CHUNK = 5000


def apply_range(conn: apsw.Connection, lo: int, hi: int, *, chunk: int = _CHUNK, check: bool = True) -> None:
    """Fold the entries in positions (lo, hi] into `companies`: the same rows as `apply_entries`.

    Memory is bounded by `chunk` records, whatever the range: the plan is kept in TEMP tables.
    `check=False` skips checking that every position is there, for a caller that reads them all anyway.
    """
    if hi <= lo:
        return
    prepare(conn)
    if check:
        check_range(conn, lo, hi)
    for sql in _TEMP + _CLEAR:
        conn.execute(sql)
    try:
        conn.execute(_KEYS, (lo, hi))
        seq = itertools.count(1)
        for records in records_chunks(conn, _OTHERS_WHERE, (lo, hi), chunk):
            found: list[tuple] = []
            _writes(Batch(records), lambda number, position, sql, params: found.append((number, position, next(seq))))
            conn.executemany("INSERT INTO temp.chl_company_mixed(company, pos, seq) VALUES (?, ?, ?)", found)
        conn.execute(_MIXED_STREAM)
        conn.execute(_PLAN_MIXED)
        conn.execute(_PLAN_STREAM)
        conn.execute(_PLAN_INDEX)
        _run_plan(conn, chunk)
    finally:
        for sql in _CLEAR:
            conn.execute(sql)


def _run_plan(conn: apsw.Connection, size: int) -> None:
    """Each planned (company, entry), in order: the entry's write for that company.

    An entry that writes for several companies (a backfill's list) is planned once per company;
    its writes are worked out once and kept by position (a backfill lists at most a few thousand).
    """
    out = Statements()
    shared: dict[int, dict[str, tuple[str, tuple]]] = {}
    cursor = conn.execute(_PLANNED)
    while True:
        chunk = list(itertools.islice(cursor, size))
        if not chunk:
            break
        for row in chunk:
            company, position = row[0], row[1]
            writes = shared.get(position)
            if writes is None:
                found: dict[str, tuple[str, tuple]] = {}
                _writes(Batch(tuple(decode_rows((row[1:],)))),
                        lambda number, _, sql, params: found.__setitem__(number, (sql, params)))
                if len(found) > 1:
                    shared[position] = found
                writes = found
            write = writes.get(company)
            if write is not None:
                out.add(*write)
        out.run(conn)


def apply(conn: apsw.Connection, batch: Batch) -> None:
    """Live and catch-up: entry by entry. A live append or a catch-up batch rarely holds two events
    of one company, and a bulk import's chunk is all REST-less bulk rows, so the range fold's fixed
    cost (a dozen statements, TEMP tables, a second decode) would be more than it saves: measured,
    the live path ran 15-26% slower per CPU-second with it (benchmarks/replay.md). Both give the
    same rows (tests/projections/test_companies_range.py); replay folds the whole ledger at once."""
    apply_entries(conn, batch)


# --- reads ---------------------------------------------------------------------------------------


def latest_stream_update(conn: apsw.Connection) -> str | None:
    """The newest `published_at` of a stream event applied to a company (the stream's lag)."""
    return conn.execute("SELECT max(stream_last_updated) FROM companies").fetchone()[0]


def newer_than(conn: apsw.Connection, numbers: list[str], day: str) -> set[str]:
    """Those of `numbers` whose row holds a stream event published, or a REST profile received,
    on or after `day` (ISO date): what a snapshot of that day must not override."""
    return {r[0] for r in conn.execute(
        "SELECT company_number FROM companies WHERE company_number IN (SELECT value FROM json_each(?)) "
        "AND (stream_last_updated >= ? OR rest_fetched_at >= ?)",
        (msgspec.json.encode(numbers).decode(), day, day))}
