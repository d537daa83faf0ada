"""Every ledger entry type round-trips through msgspec, and the union can grow safely.

Two nets catch a new entry type added without coverage: the property test is
parametrised over `ENTRY_TYPES` and builds instances from each type's fields
(an unknown field type fails loudly in `for_type`), and `EXAMPLES` must hold one
hand-built, realistic instance per tag.
"""

from __future__ import annotations

import math
import types
import typing
from typing import Any, Union

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventlog.ledger import entries as entries_module
from eventlog.ledger.entries import (
    ENTRY_TYPES,
    AnyEntry,
    BatchCancelled,
    BatchesExpired,
    BulkCompanyRecorded,
    BulkFile,
    BulkSnapshotImported,
    PersonForgotten,
    SnovAnswered,
    SnovReused,
    SnovSent,
    SnovStarted,
    SnovStopped,
    StreamGapsReconciled,
    LeadsExported,
    SuppressionAdded,
    SuppressionRemoved,
    BackfillCreated,
    CompanyCompleted,
    EmergencyStopped,
    Entry,
    Interest,
    RateLimited,
    RateLimitHeaders,
    RequestAbandoned,
    RequestQueued,
    RequestSent,
    ResponseReceived,
    StreamConnected,
    StreamDisconnected,
    StreamEvent,
    StreamGap,
    StreamLineRejected,
    TransportError,
    WorkerStarted,
    WorkerStopped,
    decode,
    encode,
    normalise_company_number,
)

PROFILE = msgspec.Raw(
    b'{"company_name":"GLENCOYNE ENGINEERING LTD","company_number":"05954546","company_status":"active",'
    b'"company_status_detail":"active-proposal-to-strike-off","sic_codes":["45200"]}')
HEADERS = RateLimitHeaders(limit=600, remain=0, reset=1_699_108_800, window="5m")

EXAMPLES: dict[str, Entry] = {e.__struct_config__.tag: e for e in [
    StreamEvent(stream="companies", timepoint=68805561, published_at="2023-11-04T14:33:29", change="changed",
                resource_kind="company-profile", resource_id="05954546", resource_uri="/company/05954546",
                company_number="05954546", fields_changed=["company_status"], data=PROFILE),
    StreamLineRejected(stream="companies", reason="not JSON", excerpt='{"resource_kind": "comp', length=23),
    StreamConnected(stream="companies", from_timepoint=68805562),
    StreamDisconnected(stream="companies", reason="server closed", status=None, retry_in=2.5),
    StreamGap(stream="companies", requested_timepoint=100, reason="416: timepoint too old"),
    RequestQueued(request_id="q-1", kind="officers", company_number="05954546", priority=1, attempt=2,
                  not_before="2023-11-04T14:40:00.000000Z", cause="strike-off", batch_id="b-1"),
    RequestSent(request_id="q-1", kind="officers", company_number="05954546",
                path="/company/05954546/officers", attempt=2, page_start=35),
    ResponseReceived(request_id="q-1", kind="officers", company_number="05954546", status=200,
                     elapsed_ms=182, page_start=35, ratelimit=HEADERS, body=msgspec.Raw(b'{"items":[]}')),
    RateLimited(request_id="q-2", kind="profile", company_number="SC123456", status=429, elapsed_ms=40,
                cooldown_until="2023-11-04T14:40:00.000000Z", ratelimit=HEADERS),
    TransportError(request_id="q-3", kind="profile", company_number="05954546", error="timeout", elapsed_ms=30000),
    RequestAbandoned(request_id="q-4", kind="profile", company_number="99999999", error_code="NOT_FOUND",
                     reason="404 from /company/99999999"),
    CompanyCompleted(company_number="05954546", reason="status not of interest"),
    BackfillCreated(batch_id="b-1", name="officer-import", company_numbers=["05954546", "SC123456"],
                    expires_at="2023-12-04T14:33:29.000000Z"),
    WorkerStarted(version="0.1.0", pid=4242, rate_limit_requests=600, rate_limit_window=300.0,
                  interest=Interest(values=("active-proposal-to-strike-off", "liquidation"))),
    WorkerStopped(reason="SIGTERM"),
    EmergencyStopped(reason="3 consecutive 429s", violations=3, cooldown_until="2023-11-04T14:45:00.000000Z"),
    StreamGapsReconciled(snapshot_date="2023-11-01", snapshot="BasicCompanyDataAsOneFile-2023-11-01.zip",
                         stream="companies"),
    PersonForgotten(subject="officer:abc123"),
    BackfillCreated(batch_id="b-2", name="bulk snapshot 2023-11-01", company_numbers=["05954546"],
                    expires_at="2023-12-14T22:13:20.000000Z", of_interest_as_of="2023-11-01"),
    BulkCompanyRecorded(company_number="05954546", snapshot_date="2023-11-01",
                        data=msgspec.Raw(b'{"company_number":"05954546","company_name":"ACME LTD",'
                                         b'"company_status":"active","status_word":"Active"}')),
    BulkSnapshotImported(snapshot_date="2023-11-01", files=[BulkFile(
        name="BasicCompanyData-2023-11-01-part1_2.zip", sha256="ab" * 32, size=1234, rows_read=10,
        rows_kept=1, rejected=1, part=1, parts=2)], rows_read=10, rows_kept=1, rejected=1,
        companies_recorded=1, whole=False, interest=Interest(), rejected_by_reason={"not a company number": 1}),
    BatchCancelled(batch_id="b-1", reason="the customer changed their mind"),
    BatchesExpired(batch_ids=["b-1", "b-2"]),
    SnovStarted(rate_limit=60, rate_window=60.0, max_credits=1000, credits_per_person=3),
    SnovSent(request_id="snov-start-1", call="domains_start", task_id="t1",
             items=msgspec.Raw(b'[{"company_number":"05954546","name":"GLENCOYNE ENGINEERING LTD",'
                               b'"key":"glencoyne engineering ltd"}]'),
             lookups=("domain:glencoyne engineering ltd",), worst_credits=1),
    SnovAnswered(request_id="snov-poll-1", call="domains_poll", task_id="t1", outcome="ok", elapsed_ms=120, status=200,
                 credits=1, results=msgspec.Raw(b'[{"company_number":"05954546","state":"found",'
                                                b'"domain":"glencoyne.co.uk"}]')),
    SnovReused(company_number="SC123456", name="GLENCOYNE ENGINEERING LTD", source_company="05954546"),
    SnovStopped(code="not_enough_credits", reason="Snov.io answered not_enough_credits to emails_poll"),
    SuppressionAdded(subject="email:" + "5e" * 32),
    SuppressionRemoved(subject="company:05954546"),
    LeadsExported(name="weekly", format="csv", position=1234, as_of="2026-12-06T02:00:00.000000Z", rows=980,
                  withheld=3, since="2026-11-29T02:00:00.000000Z"),
]}


# --- strategies from the types themselves ---------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)  # no lone surrogates: not UTF-8


def for_type(tp: Any) -> st.SearchStrategy:
    """A strategy for one field type of an entry; unknown types fail the test loudly."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is str:
        return _TEXT
    if tp is bool:
        return st.booleans()
    if tp is int:
        return st.integers(-(2**63), 2**63 - 1)
    if tp is float:
        # NaN and infinities encode as null: see test_a_non_finite_float_is_refused_at_append.
        return st.floats(allow_nan=False, allow_infinity=False)
    if tp is type(None):
        return st.none()
    if tp is msgspec.Raw:
        return _JSON.map(lambda v: msgspec.Raw(msgspec.json.encode(v)))
    if origin in (Union, types.UnionType):
        return st.one_of(*map(for_type, args))
    if origin is list:
        return st.lists(for_type(args[0]), max_size=4)
    if origin is dict:
        return st.dictionaries(for_type(args[0]), for_type(args[1]), max_size=4)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return st.lists(for_type(args[0]), max_size=4).map(tuple)
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return struct_strategy(tp)
    raise TypeError(f"no strategy for field type {tp!r}: teach tests/test_entries.py:for_type about it")


def struct_strategy(cls: type[msgspec.Struct]) -> st.SearchStrategy:
    required, optional = {}, {}
    for field in msgspec.structs.fields(cls):
        (required if field.required else optional)[field.name] = for_type(field.type)
    return st.fixed_dictionaries(required, optional=optional).map(lambda kw: cls(**kw))


# --- round trips ---------------------------------------------------------------------


def test_every_entry_type_has_a_hand_built_example():
    assert set(EXAMPLES) == set(ENTRY_TYPES), "add an example for each new entry type"
    for tag, example in EXAMPLES.items():
        assert type(example) is ENTRY_TYPES[tag]


def test_the_union_is_consistent():
    union = AnyEntry.__args__  # type: ignore[attr-defined]
    assert len(ENTRY_TYPES) == len(union)  # no two types share a tag
    for tag, cls in ENTRY_TYPES.items():
        assert issubclass(cls, Entry) and cls.__struct_config__.frozen
        assert cls.__name__ in entries_module.__all__
        assert cls.__struct_config__.tag_field == "type"
        assert tag.count(".") == 1 and tag == tag.lower()
    assert all(hasattr(entries_module, name) for name in entries_module.__all__)


@pytest.mark.parametrize("tag", sorted(EXAMPLES))
def test_each_example_round_trips(tag):
    example = EXAMPLES[tag]
    data = encode(example)
    assert msgspec.json.decode(data)["type"] == tag
    assert decode(data) == example
    assert decode(data.decode()) == example  # str in, as stored in SQLite
    assert encode(decode(data)) == data  # and the bytes are stable, which the hash chain needs


@pytest.mark.parametrize("tag", sorted(ENTRY_TYPES))
def test_every_entry_type_round_trips_for_any_values(tag):
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(struct_strategy(ENTRY_TYPES[tag]))
    def round_trip(entry):
        data = encode(entry)
        assert decode(data) == entry
        assert encode(decode(data)) == data

    round_trip()


def test_all_examples_round_trip_through_the_ledger(ledger):
    ledger.append_many(list(EXAMPLES.values()))
    records = list(ledger.read())
    assert [r.entry for r in records] == list(EXAMPLES.values())
    assert [r.event_type for r in records] == list(EXAMPLES)
    assert [r.company_number for r in records] == [getattr(e, "company_number", None) for e in EXAMPLES.values()]


def test_defaults_are_omitted_so_entries_stay_small():
    assert encode(WorkerStopped(reason="done")) == b'{"type":"worker.stopped","reason":"done"}'


# --- evolving the union --------------------------------------------------------------


class WorkerStoppedV2(Entry, frozen=True, tag="worker.stopped"):
    """What a later version might write: WorkerStopped with fields added (with defaults)."""

    reason: str
    exit_code: int = 0
    signal: str | None = None
    in_flight: list[str] = []


class WorkerStoppedNoDefault(Entry, frozen=True, kw_only=True, tag="worker.stopped"):
    reason: str
    exit_code: int = 0
    signal: str  # added without a default: the mistake the rule forbids


def _decoder_with(variant: type[Entry]) -> msgspec.json.Decoder:
    union = tuple(variant if t is WorkerStopped else t for t in AnyEntry.__args__)  # type: ignore[attr-defined]
    return msgspec.json.Decoder(Union[union])  # type: ignore[valid-type]


def test_a_field_added_with_a_default_keeps_old_entries_decodable(ledger, conn):
    old = [WorkerStopped(reason="SIGTERM"), WorkerStopped(reason="crash", exit_code=1), EXAMPLES["request.sent"]]
    ledger.append_many(old)
    stored = [row[0] for row in conn.execute("SELECT event_data FROM event_log ORDER BY id")]
    newer = _decoder_with(WorkerStoppedV2)
    assert [newer.decode(d) for d in stored] == [
        WorkerStoppedV2(reason="SIGTERM"), WorkerStoppedV2(reason="crash", exit_code=1), EXAMPLES["request.sent"]]
    # And the older code reads what the newer one writes: unknown fields are ignored.
    ledger.append(WorkerStoppedV2(reason="SIGINT", signal="SIGINT", in_flight=["q-1"]))
    assert list(ledger.read(3))[0].entry == WorkerStopped(reason="SIGINT")
    assert ledger.verify().ok


def test_a_field_added_without_a_default_would_break_old_entries(ledger, conn):
    ledger.append(WorkerStopped(reason="SIGTERM"))
    (data,) = conn.execute("SELECT event_data FROM event_log").fetchone()
    with pytest.raises(msgspec.ValidationError, match="missing required field `signal`"):
        _decoder_with(WorkerStoppedNoDefault).decode(data)


def test_a_non_finite_float_is_refused_before_it_reaches_the_ledger(ledger):
    try:
        entry = WorkerStarted(version="0.1.0", pid=1, rate_limit_requests=600, rate_limit_window=math.nan)
    except ValueError:
        return
    try:
        ledger.append(entry)
    except ValueError:
        assert ledger.head() == 0
        return
    try:
        list(ledger.read())
    except msgspec.ValidationError as exc:
        raise AssertionError(f"appended an entry the ledger can't read back: {exc}") from exc


# --- company numbers -----------------------------------------------------------------


@pytest.mark.parametrize("raw, expected", [
    ("5954546", "05954546"),
    (" sc123456 ", "SC123456"),
    ("05954546", "05954546"),
    ("OC301234", "OC301234"),
    ("123456789", "123456789"),  # too long to be one: left for the sender to refuse
    (None, None),
])
def test_normalise_company_number(raw, expected):
    assert normalise_company_number(raw) == expected
