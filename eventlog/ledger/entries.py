"""The typed ledger entries: one tagged union, the only vocabulary of facts.

Every entry is a frozen `msgspec.Struct` whose tag is the `event_type` column.
Fields added later must carry defaults, so entries written by older code still
decode; unknown fields are ignored, so older code can read newer entries.
Payloads that come from Companies House (`data`, `body`) are kept as
`msgspec.Raw`: the exact bytes are preserved, and a projector decodes only the
fields it needs, which is what keeps replay fast.
"""

from __future__ import annotations

import math
from typing import Union

import msgspec

__all__ = [
    "HIGH",
    "LOW",
    "PRIORITY_NAMES",
    "Entry",
    "RateLimitHeaders",
    "Interest",
    "StreamEvent",
    "StreamLineRejected",
    "StreamConnected",
    "StreamDisconnected",
    "StreamGap",
    "RequestQueued",
    "RequestSent",
    "ResponseReceived",
    "RateLimited",
    "TransportError",
    "RequestAbandoned",
    "CompanyCompleted",
    "BackfillCreated",
    "WorkerStarted",
    "WorkerStopped",
    "EmergencyStopped",
    "StreamGapsReconciled",
    "PersonForgotten",
    "BulkFile",
    "BulkCompanyRecorded",
    "BulkSnapshotImported",
    "BatchCancelled",
    "BatchesExpired",
    "SnovStarted",
    "SnovSent",
    "SnovAnswered",
    "SnovReused",
    "SnovStopped",
    "SuppressionAdded",
    "SuppressionRemoved",
    "LeadsExported",
    "AnyEntry",
    "ENTRY_TYPES",
    "encode",
    "decode",
    "normalise_company_number",
]

HIGH = 0
LOW = 1
PRIORITY_NAMES = {HIGH: "HIGH", LOW: "LOW"}

NULL = msgspec.Raw(b"null")


def _finite(entry: object, name: str) -> None:
    """JSON has no NaN: msgspec would write `null` and the entry could never be read back."""
    value = getattr(entry, name)
    if value is not None and not math.isfinite(value):
        raise ValueError(f"{type(entry).__name__}.{name} must be a finite number, got {value!r}")


class Entry(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", omit_defaults=True):
    """Base of every ledger entry. Subclasses set `tag=`."""

    def company(self) -> str | None:
        """The company this entry is about, for the `company_number` column."""
        return getattr(self, "company_number", None)


class RateLimitHeaders(msgspec.Struct, frozen=True, omit_defaults=True):
    """Companies House's `X-Ratelimit-*` headers, as sent (None when absent)."""

    limit: int | None = None
    remain: int | None = None
    reset: int | None = None  # epoch seconds when the server's fixed window ends
    window: str | None = None  # e.g. "5m"


class Interest(msgspec.Struct, frozen=True, omit_defaults=True):
    """Which companies get officer fetches: `data[field]` is one of `values`.

    Recorded in `worker.started`, so replay applies the predicate that was in
    force when the facts arrived instead of whatever today's config says.
    """

    field: str = "company_status_detail"
    values: tuple[str, ...] = ("active-proposal-to-strike-off",)

    def matches(self, value: object) -> bool:
        return value in self.values


# --- the stream -----------------------------------------------------------------


class StreamEvent(Entry, frozen=True, tag="stream.event"):
    """One event of a Companies House stream; event_id `<stream>:<timepoint>`."""

    stream: str
    timepoint: int
    published_at: str
    change: str  # the stream's event.type: "changed" or "deleted"
    resource_kind: str
    resource_id: str
    resource_uri: str
    company_number: str | None = None
    fields_changed: list[str] | None = None
    data: msgspec.Raw = NULL


class StreamLineRejected(Entry, frozen=True, tag="stream.rejected"):
    """A line that could not be read as an event: kept with a bounded excerpt."""

    stream: str
    reason: str
    excerpt: str
    length: int


class StreamConnected(Entry, frozen=True, tag="stream.connected"):
    stream: str
    from_timepoint: int | None = None


class StreamDisconnected(Entry, frozen=True, tag="stream.disconnected"):
    stream: str
    reason: str
    status: int | None = None
    retry_in: float | None = None
    fatal: bool = False

    def __post_init__(self) -> None:
        _finite(self, "retry_in")


class StreamGap(Entry, frozen=True, tag="stream.gap"):
    """Events between `requested_timepoint` and the live head were lost (416)."""

    stream: str
    requested_timepoint: int | None
    reason: str


# --- REST requests ---------------------------------------------------------------


class RequestQueued(Entry, frozen=True, tag="request.queued"):
    """A request the scheduler may send; the queue is the projection of these."""

    request_id: str
    kind: str  # "profile" or "officers"
    company_number: str
    priority: int = HIGH
    attempt: int = 1
    not_before: str | None = None
    cause: str = ""
    batch_id: str | None = None


class RequestSent(Entry, frozen=True, tag="request.sent"):
    """Counted against the limit; committed before the socket write."""

    request_id: str
    kind: str
    company_number: str
    path: str
    attempt: int = 1
    page_start: int = 0


class ResponseReceived(Entry, frozen=True, tag="response.received"):
    request_id: str
    kind: str
    company_number: str
    status: int
    elapsed_ms: int
    page_start: int = 0
    ratelimit: RateLimitHeaders | None = None
    body: msgspec.Raw = NULL


class RateLimited(Entry, frozen=True, tag="request.rate_limited"):
    """A 429 (or 403): every call on the key stops until `cooldown_until`."""

    request_id: str
    kind: str
    company_number: str
    status: int
    elapsed_ms: int
    cooldown_until: str
    page_start: int = 0
    ratelimit: RateLimitHeaders | None = None


class TransportError(Entry, frozen=True, tag="request.transport_error"):
    """No HTTP answer: timeout, reset, refused, or interrupted by shutdown."""

    request_id: str
    kind: str
    company_number: str
    error: str
    elapsed_ms: int
    page_start: int = 0


class RequestAbandoned(Entry, frozen=True, tag="request.abandoned"):
    """The policy gave up on a request; the company ends `failed`."""

    request_id: str
    kind: str
    company_number: str
    error_code: str  # NOT_FOUND, MAX_RETRIES, BAD_RESPONSE, ...
    reason: str = ""


class CompanyCompleted(Entry, frozen=True, tag="company.completed"):
    """The policy completed a company without a call (e.g. officers still fresh)."""

    company_number: str
    reason: str


class BackfillCreated(Entry, frozen=True, tag="backfill.created"):
    batch_id: str
    name: str
    company_numbers: list[str]
    expires_at: str
    # Set when a bulk snapshot showed every listed company of interest on this date (ISO): that
    # is their status, fetched, so they go straight to their officers with no status call.
    of_interest_as_of: str | None = None


# --- the worker ------------------------------------------------------------------


class WorkerStarted(Entry, frozen=True, tag="worker.started"):
    version: str
    pid: int
    rate_limit_requests: int
    rate_limit_window: float
    interest: Interest = Interest()

    def __post_init__(self) -> None:
        _finite(self, "rate_limit_window")


class WorkerStopped(Entry, frozen=True, tag="worker.stopped"):
    reason: str
    exit_code: int = 0


class EmergencyStopped(Entry, frozen=True, tag="worker.emergency_stop"):
    reason: str
    violations: int
    cooldown_until: str | None = None


# --- repairs and personal data -----------------------------------------------------------------


class StreamGapsReconciled(Entry, frozen=True, tag="stream.gaps_reconciled"):
    """A bulk snapshot of the register taken at `snapshot_date` (ISO date) repaired what the stream
    lost: every gap of `stream` (every stream when None) recorded before that date is reconciled."""

    snapshot_date: str
    snapshot: str  # the snapshot's file name(s), for people reading the ledger
    stream: str | None = None


class PersonForgotten(Entry, frozen=True, tag="person.forgotten"):
    """A person's personal data was erased on request: their key is deleted from the vault, so
    what the ledger holds of them sealed can't be read any more, and every projection that holds
    their data rewrites it as erased. `subject` names the person without personal data
    (`officer:<id>`, `email:<sha256>`): never a name or an address."""

    subject: str
    key_deleted: bool = True


# --- the bulk snapshot and batches -------------------------------------------------------------


class BulkFile(msgspec.Struct, frozen=True, omit_defaults=True):
    """One file of a bulk snapshot as imported: what identifies it, and what it held."""

    name: str
    sha256: str
    size: int
    rows_read: int
    rows_kept: int
    rejected: int = 0
    part: int | None = None
    parts: int | None = None


class BulkCompanyRecorded(Entry, frozen=True, tag="bulk.company"):
    """One company's row of a bulk snapshot, as a company profile (the REST API's field names,
    absent values left out). event_id `bulk:<snapshot_date>:<company_number>`, so a snapshot
    read twice records each company once."""

    company_number: str
    snapshot_date: str  # ISO date: the register as of that day, which orders it against the stream
    data: msgspec.Raw = NULL


class BulkSnapshotImported(Entry, frozen=True, tag="bulk.snapshot"):
    """A bulk snapshot read to its end. Appended only then, after its companies: a read cut short
    leaves no snapshot entry, so the same files can be imported again. Its files' SHA-256s make
    a second import of the same file a no-op."""

    snapshot_date: str | None
    files: list[BulkFile]
    rows_read: int
    rows_kept: int  # rows of interest (every row with `interest` None)
    rejected: int
    companies_recorded: int  # bulk.company entries new to the ledger
    whole: bool  # every part of the snapshot was read in this import
    interest: Interest | None = None  # None: every company was recorded (`bulk --all`)
    rejected_by_reason: dict[str, int] = {}


class BatchCancelled(Entry, frozen=True, tag="batch.cancelled"):
    """An operator cancelled a backfill batch: its queued work is abandoned in the same
    transaction (`request.abandoned`, CANCELLED); requests already in flight finish and are
    recorded, and nothing more is queued for the batch's own companies."""

    batch_id: str
    reason: str = ""


class BatchesExpired(Entry, frozen=True, tag="batch.expired"):
    """Finished batches whose `expires_at` has passed: their rows leave `processing_batches`
    and `batch_jobs`. The ledger keeps every entry about them."""

    batch_ids: list[str]
# --- enrichment through Snov.io ----------------------------------------------------------------


class SnovStarted(Entry, frozen=True, tag="snov.started"):
    """The enrichment stage started, with the limit and budget in force (the audit's default limit)."""

    rate_limit: int
    rate_window: float
    max_credits: int
    credits_per_person: int

    def __post_init__(self) -> None:
        _finite(self, "rate_window")


class SnovSent(Entry, frozen=True, tag="snov.sent"):
    """One Snov.io request (token, balance, start or poll), counted against Snov.io's limit;
    committed before the socket write. A start carries its lookups: `items` as sent (people's
    names sealed under their officer's subject), `lookups` their de-duplication keys (a company
    name as compared, `officer id|domain`), and the most it can cost."""

    request_id: str
    call: str  # token, balance, domains_start, domains_poll, emails_start, emails_poll
    task_id: str = ""
    task_hash: str = ""  # a poll's
    items: msgspec.Raw = NULL
    lookups: tuple[str, ...] = ()
    worst_credits: int = 0


class SnovAnswered(Entry, frozen=True, tag="snov.answered"):
    """What one Snov.io request came to. Never the token or the raw body (it may hold people's
    names): a start's `task_hash`, a balance, or a completed task's `results`, matched to what
    was asked (e-mail addresses sealed), and the credits they cost by the documented rules."""

    request_id: str
    call: str
    outcome: str  # ok, in_progress, not_enough_credits, unauthorized, rate_limited, rejected,
    #               server_error, malformed, transport_error
    elapsed_ms: int
    status: int | None = None
    task_id: str = ""
    error: str = ""
    cooldown_until: str | None = None
    task_hash: str | None = None
    balance: str | None = None
    credits: int = 0
    results: msgspec.Raw = NULL
    unexpected: int = 0  # answers about things we never asked, dropped


class SnovReused(Entry, frozen=True, tag="snov.reused"):
    """A company whose name was already looked up for another: it takes that answer, no request."""

    company_number: str
    name: str
    source_company: str


class SnovStopped(Entry, frozen=True, tag="snov.stopped"):
    """Enrichment stopped (the stream and Companies House work go on): `code` is
    not_enough_credits, budget_exhausted, balance_low, unauthorized or failed."""

    code: str
    reason: str


# --- the customer's dataset ----------------------------------------------------------------------


class SuppressionAdded(Entry, frozen=True, tag="suppression.added"):
    """Never deliver rows of `subject`: `officer:<id>`, `email:<sha256>` (the address itself is
    not recorded) or `company:<number>`. Adding one already listed changes nothing."""

    subject: str


class SuppressionRemoved(Entry, frozen=True, tag="suppression.removed"):
    """`subject` may be delivered again."""

    subject: str


class LeadsExported(Entry, frozen=True, tag="export.leads"):
    """A lead export named `name` was delivered: taken at ledger `position` (whose entry was
    received at `as_of`), holding `rows` rows after `withheld` suppressed ones were left out.
    `since` is the cut it was asked for (rows newer than it), if any. Counts only, no data."""

    name: str
    format: str
    position: int
    as_of: str
    rows: int
    withheld: int = 0
    since: str | None = None


AnyEntry = Union[
    StreamEvent,
    StreamLineRejected,
    StreamConnected,
    StreamDisconnected,
    StreamGap,
    RequestQueued,
    RequestSent,
    ResponseReceived,
    RateLimited,
    TransportError,
    RequestAbandoned,
    CompanyCompleted,
    BackfillCreated,
    WorkerStarted,
    WorkerStopped,
    EmergencyStopped,
    StreamGapsReconciled,
    PersonForgotten,
    BulkCompanyRecorded,
    BulkSnapshotImported,
    BatchCancelled,
    BatchesExpired,
    SnovStarted,
    SnovSent,
    SnovAnswered,
    SnovReused,
    SnovStopped,
    SuppressionAdded,
    SuppressionRemoved,
    LeadsExported,
]

ENTRY_TYPES: dict[str, type[Entry]] = {
    cls.__struct_config__.tag: cls for cls in AnyEntry.__args__  # type: ignore[attr-defined]
}

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(AnyEntry)


def encode(entry: Entry) -> bytes:
    return _encoder.encode(entry)


def decode(data: bytes | str) -> Entry:
    return _decoder.decode(data)


def normalise_company_number(raw: str | None) -> str | None:
    """Companies House numbers are 8 characters; digits-only ones are zero-padded.

    `"5954546"` → `"05954546"`, `" sc123456 "` → `"SC123456"`; anything that
    can't be a company number is returned upper-cased and stripped so the
    sender can refuse it with a clear error instead of calling the API.
    """
    if raw is None:
        return None
    text = raw.strip().upper()
    if text.isdigit() and len(text) < 8:
        return text.zfill(8)
    return text
