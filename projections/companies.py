"""`companies`: one row per company, from stream profile events and REST profiles.

Freshness: the stream's timepoint orders its events, so an event whose
timepoint is below the one the row holds is older news and changes nothing but
`last_stream_event_id`; equal timepoints go to the later entry in the ledger
(received later). A 200 profile response is the company as it was when it was
received, so it always applies (it never touches the stream columns).

`data_source` says where the row's facts came from: `stream`, `bulk` (a backfill
list or a REST fetch for a company the stream never mentioned), `both` once a
bulk row has been seen on the stream. A stub row (number only) is created for a
company that first appears in a backfill or a queued request, because
`company_processing_state` refers to it.
"""

from __future__ import annotations

import msgspec

from .batch import COMPANY_PROFILE, Batch, backfill_numbers
from .payloads import Profile, raw_text
from .rows import Rows, Table

NAME = "companies"
VERSION = 1
TABLES = ("companies",)
LOOKUP_INDEXES: tuple[str, ...] = ()

_TABLE = Table("companies", (
    "company_number", "company_name", "company_status", "company_status_detail", "company_type",
    "jurisdiction", "date_of_creation", "registered_office_address", "sic_codes", "etag", "deleted",
    "stream_last_updated", "stream_event_id", "stream_event_type", "stream_timepoint",
    "stream_processing_status", "stream_status", "data_source", "last_stream_event_id",
    "stream_metadata", "rest_fetched_at", "updated_at",
), key="company_number", defaults={
    "deleted": 0, "stream_processing_status": "pending", "stream_status": "unknown", "data_source": "bulk",
})


class _StreamMeta(msgspec.Struct, omit_defaults=True):
    timepoint: int
    published_at: str
    resource_uri: str
    fields_changed: list[str] | None = None


_encode_meta = msgspec.json.Encoder().encode


def _keys(batch: Batch) -> list[str | None]:
    keys = []
    for r in batch.records:
        t = r.event_type
        if t == "stream.event":
            if r.entry.resource_kind == COMPANY_PROFILE:  # type: ignore[attr-defined]
                keys.append(batch.company(r))
        elif t in ("response.received", "request.queued"):
            keys.append(batch.company(r))
        elif t == "backfill.created":
            keys.extend(backfill_numbers(r.entry.company_numbers))  # type: ignore[attr-defined]
    return keys


def _set_profile(row: dict, p: Profile) -> None:
    row["company_name"] = p.company_name
    row["company_status"] = p.company_status
    row["company_status_detail"] = p.company_status_detail
    row["company_type"] = p.type
    row["jurisdiction"] = p.jurisdiction
    row["date_of_creation"] = p.date_of_creation
    row["registered_office_address"] = raw_text(p.registered_office_address)
    row["sic_codes"] = raw_text(p.sic_codes)
    row["etag"] = p.etag


def _stream_event(rows: Rows, batch: Batch, r, number: str) -> None:
    e = r.entry
    row = rows.get(number)
    if row is None:
        row = rows.create(number, data_source="stream")
    else:
        rows.changed(number, row)
        held = row["stream_timepoint"]
        if held is not None and e.timepoint < held:
            row["last_stream_event_id"] = r.event_id
            row["updated_at"] = r.received_at
            return
        if row["data_source"] == "bulk":
            row["data_source"] = "both"
    profile = batch.profile(r)
    if profile is not None:
        _set_profile(row, profile)
    deleted = e.change == "deleted"
    row["deleted"] = 1 if deleted else 0
    row["stream_last_updated"] = e.published_at
    row["stream_event_id"] = r.event_id
    row["stream_event_type"] = e.change
    row["stream_timepoint"] = e.timepoint
    row["stream_processing_status"] = "processed"
    row["stream_status"] = "deleted" if deleted else "active"
    row["last_stream_event_id"] = r.event_id
    row["stream_metadata"] = _encode_meta(_StreamMeta(
        e.timepoint, e.published_at, e.resource_uri, e.fields_changed)).decode()
    row["updated_at"] = r.received_at


def _profile_response(rows: Rows, batch: Batch, r, number: str) -> None:
    profile = batch.profile(r)
    if profile is None:
        return
    row = rows.get(number)
    if row is None:
        row = rows.create(number)
    else:
        rows.changed(number, row)
    _set_profile(row, profile)
    row["deleted"] = 0
    row["rest_fetched_at"] = r.received_at
    row["updated_at"] = r.received_at


def _stub(rows: Rows, number: str, received_at: str) -> None:
    if rows.get(number) is None:
        rows.create(number, updated_at=received_at)


def apply(conn, batch: Batch) -> None:
    keys = _keys(batch)
    if not keys:
        return
    rows = Rows(_TABLE, conn, keys)
    for r in batch.records:
        t = r.event_type
        if t == "stream.event":
            if r.entry.resource_kind != COMPANY_PROFILE:
                continue
            number = batch.company(r)
            if number:
                _stream_event(rows, batch, r, number)
        elif t == "response.received":
            e = r.entry
            number = batch.company(r)
            if number and e.kind == "profile" and e.status == 200:
                _profile_response(rows, batch, r, number)
        elif t == "request.queued":
            number = batch.company(r)
            if number:
                _stub(rows, number, r.received_at)
        elif t == "backfill.created":
            for number in backfill_numbers(r.entry.company_numbers):
                _stub(rows, number, r.received_at)
    rows.flush(conn)
