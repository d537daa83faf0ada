"""Decoding one stream line into a ledger entry, or a recorded rejection."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from eventlog.ledger.entries import StreamEvent, StreamLineRejected
from eventlog.worker.stream.ndjson import Oversized
from eventlog.worker.stream.wire import decode_line
from support import REPO

SAMPLES = REPO / "tests" / "data" / "captured-events.ndjson"
PROFILE = (
    b'{"resource_kind":"company-profile","resource_uri":"/company/05954546","resource_id":"05954546",'
    b'"data":{"company_name":"GLENCOYNE ENGINEERING LTD","company_number":"05954546",'
    b'"company_status":"active"},'
    b'"event":{"timepoint":68805561,"published_at":"2023-11-04T14:33:29","type":"changed"}}'
)


def test_company_profile_event() -> None:
    entry = decode_line("companies", PROFILE)
    assert isinstance(entry, StreamEvent)
    assert (entry.stream, entry.timepoint, entry.published_at, entry.change) == (
        "companies", 68805561, "2023-11-04T14:33:29", "changed")
    assert (entry.resource_kind, entry.resource_id, entry.resource_uri) == (
        "company-profile", "05954546", "/company/05954546")
    assert entry.company_number == "05954546"
    assert entry.fields_changed is None
    # The profile is kept byte for byte.
    assert bytes(entry.data) == PROFILE[PROFILE.index(b'{"company_name"'):PROFILE.index(b',"event"')]


def test_captured_real_lines() -> None:
    lines = [l for l in SAMPLES.read_bytes().splitlines() if l.strip()]
    entries = [decode_line("companies", l) for l in lines]
    assert all(isinstance(e, StreamEvent) for e in entries)
    filing = entries[1]
    assert filing.resource_kind == "filing-history"
    assert filing.company_number == "10620794"  # from the resource_uri: data has no number
    assert filing.fields_changed == ["links.document_metadata"]


def test_numbers_come_from_the_uri_else_from_data_and_are_normalised() -> None:
    line = (b'{"resource_kind":"company-profile","resource_uri":"/company/5954546",'
            b'"resource_id":"5954546","data":{"company_number":"5954546"},'
            b'"event":{"timepoint":5,"published_at":"2023-11-04T14:33:29","type":"changed"}}')
    assert decode_line("companies", line).company_number == "05954546"
    deleted = (b'{"resource_kind":"company-profile","resource_uri":"/company/sc12345",'
               b'"resource_id":"sc12345","data":null,'
               b'"event":{"timepoint":6,"published_at":"2023-11-04T14:33:29","type":"deleted"}}')
    entry = decode_line("companies", deleted)
    assert (entry.change, entry.company_number) == ("deleted", "SC12345")
    elsewhere = (b'{"resource_kind":"disqualified-officer","resource_uri":"/disqualified-officers/x",'
                 b'"resource_id":"x","data":{"company_number":"123"},'
                 b'"event":{"timepoint":7,"published_at":"2023-11-04T14:33:29","type":"changed"}}')
    assert decode_line("disqualified", elsewhere).company_number == "00000123"
    nothing = elsewhere.replace(b'{"company_number":"123"}', b'{"company_number":12}')
    assert decode_line("disqualified", nothing).company_number is None


@pytest.mark.parametrize("line, reason", [
    (b'{"resource_kind":"company-profile","resource_uri":"/comp', "invalid JSON"),
    (b"<html><body>502 Bad Gateway</body></html>", "invalid JSON"),
    (b"\xff\xfe\x00 not json", "invalid JSON"),
    (b"[1, 2, 3]", "not an event"),
    (PROFILE.replace(b'"timepoint":68805561,', b""), "timepoint"),
    (PROFILE.replace(b"68805561", b'"soon"'), "timepoint"),
    (PROFILE.replace(b"68805561", b"-4"), "timepoint"),
    (PROFILE.replace(b'"resource_id":"05954546",', b""), "resource_id"),
])
def test_malformed_lines_are_rejections_with_a_reason(line: bytes, reason: str) -> None:
    entry = decode_line("companies", line)
    assert isinstance(entry, StreamLineRejected)
    assert reason in entry.reason
    assert entry.length == len(line)
    assert entry.excerpt == line[:200].decode("utf-8", errors="replace")
    msgspec.json.encode(entry)  # storable as it is


def test_excerpt_is_bounded_and_oversized_lines_are_rejected() -> None:
    long = b'{"junk":"' + "é".encode() * 5000
    entry = decode_line("companies", long)
    assert isinstance(entry, StreamLineRejected) and len(entry.excerpt) <= 200
    over = decode_line("companies", Oversized(b"x" * 200, 5_000_000))
    assert isinstance(over, StreamLineRejected)
    assert "5000000 bytes" in over.reason and over.length == 5_000_000
    assert len(over.excerpt) == 200
