"""Snov.io's wire vocabulary, with no I/O: paths, request builders, typed answers, credit costs.

Decoding is tolerant of what a service adds (unknown fields are ignored) and of what its
documentation leaves open (a name with no domain may come back as ``{}``, ``[]``, ``null``,
``{"domain": null}`` or ``{"domain": ""}``), and strict about everything a decision rests on: a
missing or mistyped field, or a status we don't know, is a ``SnovWireError`` naming the call and
the place, never a crash and never a guess. Errors never quote a body, which may hold a token.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import TypeVar

import msgspec

from eventlog.errors import SnovWireError

__all__ = [
    "BALANCE_PATH",
    "BASE_URL",
    "CHARGED_SMTP_STATUSES",
    "DOMAINS_RESULT_PATH",
    "DOMAINS_START_PATH",
    "EMAILS_RESULT_PATH",
    "EMAILS_START_PATH",
    "MAX_BATCH",
    "TOKEN_PATH",
    "Balance",
    "DomainAnswer",
    "DomainBatch",
    "DomainPoll",
    "DomainsCompleted",
    "EmailBatch",
    "EmailFinding",
    "EmailPoll",
    "EmailRow",
    "EmailsCompleted",
    "InProgress",
    "IssuedToken",
    "NotEnoughCredits",
    "PersonAnswer",
    "SnovWireError",
    "TaskStarted",
    "domain_batches",
    "domain_credits",
    "email_batches",
    "email_credits",
    "name_key",
    "parse_balance",
    "parse_domain_poll",
    "parse_email_poll",
    "parse_start",
    "parse_token",
]

BASE_URL = "https://api.snov.io"
TOKEN_PATH = "/v1/oauth/access_token"
DOMAINS_START_PATH = "/v2/company-domain-by-name/start"
DOMAINS_RESULT_PATH = "/v2/company-domain-by-name/result"
EMAILS_START_PATH = "/v2/emails-by-domain-by-name/start"
EMAILS_RESULT_PATH = "/v2/emails-by-domain-by-name/result"
BALANCE_PATH = "/v1/get-balance"

MAX_BATCH = 10  # names per domain start, rows per e-mail start
CHARGED_SMTP_STATUSES = frozenset({"valid", "unknown"})  # 1 credit each; other statuses are free


_T = TypeVar("_T")
_S = TypeVar("_S")


def name_key(text: str) -> str:
    """How two spellings of one name compare: case, accents and spacing don't count."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.casefold().split())


# --- requests -------------------------------------------------------------------------------------


class DomainBatch(msgspec.Struct, frozen=True):
    """Company names for one domain start: 1 to 10, none blank, none twice (by ``name_key``)."""

    names: tuple[str, ...]

    def __post_init__(self) -> None:
        _check_batch("names", [(n,) for n in self.names], [name_key(n) for n in self.names])

    def form(self) -> list[tuple[str, str]]:
        """The form body, one ``names[]`` field per name, as the documentation asks."""
        return [("names[]", name) for name in self.names]


class EmailRow(msgspec.Struct, frozen=True):
    """One person to look up: names as Snov.io wants them, and the company's domain."""

    first_name: str
    last_name: str
    domain: str

    def key(self) -> tuple[str, str, str]:
        return (name_key(self.first_name), name_key(self.last_name), name_key(self.domain))


class EmailBatch(msgspec.Struct, frozen=True):
    """Rows for one e-mail start: 1 to 10, no field blank, no row twice (by ``EmailRow.key``)."""

    rows: tuple[EmailRow, ...]

    def __post_init__(self) -> None:
        fields = [(r.first_name, r.last_name, r.domain) for r in self.rows]
        _check_batch("rows", fields, [r.key() for r in self.rows])

    def json(self) -> bytes:
        """The JSON body ``{"rows": [...]}``, as the documentation asks."""
        return msgspec.json.encode({"rows": self.rows})


def _check_batch(what: str, fields: list[tuple[str, ...]], keys: list[object]) -> None:
    if not 1 <= len(fields) <= MAX_BATCH:
        raise ValueError(f"a Snov.io start takes 1 to {MAX_BATCH} {what}, got {len(fields)}")
    if any(not value.strip() for row in fields for value in row):
        raise ValueError(f"a Snov.io start can't carry blank {what}")
    if len(set(keys)) != len(keys):
        raise ValueError(f"a Snov.io start must not carry the same {what[:-1]} twice: it would be charged twice")


def domain_batches(names: Iterable[str]) -> list[DomainBatch]:
    """Names in batches of at most 10, in order, blanks and repeats (by ``name_key``) dropped."""
    unique = _unique((n for n in names if n.strip()), name_key)
    return [DomainBatch(tuple(chunk)) for chunk in _chunks(unique)]


def email_batches(rows: Iterable[EmailRow]) -> list[EmailBatch]:
    """Rows in batches of at most 10, in order, incomplete rows and repeats dropped."""
    complete = (r for r in rows if r.first_name.strip() and r.last_name.strip() and r.domain.strip())
    unique = _unique(complete, EmailRow.key)
    return [EmailBatch(tuple(chunk)) for chunk in _chunks(unique)]


def _unique(items: Iterable[_T], key: Callable[[_T], object]) -> list[_T]:
    seen: set[object] = set()
    out: list[_T] = []
    for item in items:
        k = key(item)
        if k not in seen:
            seen.add(k)
            out.append(item)
    return out


def _chunks(items: list[_T]) -> list[list[_T]]:
    return [items[i : i + MAX_BATCH] for i in range(0, len(items), MAX_BATCH)]


# --- answers --------------------------------------------------------------------------------------


class IssuedToken(msgspec.Struct, frozen=True):
    """A bearer token and its lifetime. ``repr`` hides the value, so a logged outcome can't leak
    it; only the transport reads ``value``."""

    value: str
    expires_in: float

    def __repr__(self) -> str:
        return f"IssuedToken(value=<hidden>, expires_in={self.expires_in!r})"

    __str__ = __repr__


class TaskStarted(msgspec.Struct, frozen=True):
    task_hash: str


class InProgress(msgspec.Struct, frozen=True):
    """The task has not finished: poll again later."""


class NotEnoughCredits(msgspec.Struct, frozen=True):
    """The account's balance can't pay for the task; nothing was found or charged."""


class DomainAnswer(msgspec.Struct, frozen=True):
    name: str  # as Snov.io echoed it
    domain: str | None  # None: no domain found (free)


class DomainsCompleted(msgspec.Struct, frozen=True):
    answers: tuple[DomainAnswer, ...]
    names: tuple[str, ...] | None = None  # meta.names: what the task was started with, if sent


class EmailFinding(msgspec.Struct, frozen=True):
    email: str
    smtp_status: str  # "valid" and "unknown" cost a credit each
    is_valid_format: bool | None = None
    is_disposable: bool | None = None
    is_webmail: bool | None = None
    is_gibberish: bool | None = None
    unknown_status_reason: str | None = None


class PersonAnswer(msgspec.Struct, frozen=True):
    people: str  # the person's name as Snov.io echoed it ("John Doe")
    emails: tuple[EmailFinding, ...]


class EmailsCompleted(msgspec.Struct, frozen=True):
    answers: tuple[PersonAnswer, ...]
    rows: tuple[EmailRow, ...] | None = None  # meta.rows: what the task was started with, if sent


class Balance(msgspec.Struct, frozen=True):
    credits: Decimal


DomainPoll = InProgress | NotEnoughCredits | DomainsCompleted
EmailPoll = InProgress | NotEnoughCredits | EmailsCompleted


# --- the wire shapes, decoded before they are judged ----------------------------------------------


class _Token(msgspec.Struct):
    access_token: str
    expires_in: float
    token_type: str = "Bearer"


class _StartData(msgspec.Struct):
    task_hash: str


class _Start(msgspec.Struct):
    data: _StartData


class _Status(msgspec.Struct):
    status: str


class _DomainResult(msgspec.Struct):
    domain: str | None = None


class _DomainEntry(msgspec.Struct):
    name: str
    result: _DomainResult | list[msgspec.Raw] | None = None


class _DomainMeta(msgspec.Struct):
    names: list[str] | None = None


class _DomainPoll(msgspec.Struct):
    status: str
    data: list[_DomainEntry]
    meta: _DomainMeta | list[msgspec.Raw] | None = None  # PHP sends an empty map as []


class _PersonEntry(msgspec.Struct):
    people: str
    result: list[EmailFinding] | None = None


class _EmailMeta(msgspec.Struct):
    rows: list[EmailRow] | None = None


class _EmailPoll(msgspec.Struct):
    status: str
    data: list[_PersonEntry]
    meta: _EmailMeta | list[msgspec.Raw] | None = None


class _BalanceData(msgspec.Struct):
    balance: Decimal


class _Balance(msgspec.Struct):
    data: _BalanceData
    success: bool = True


def _decode(body: bytes, kind: type[_S], call: str) -> _S:
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        raise SnovWireError(f"Snov.io {call}: unexpected answer: {exc}") from None
    except msgspec.DecodeError:
        raise SnovWireError(f"Snov.io {call}: the answer is not JSON") from None


def parse_token(body: bytes) -> IssuedToken:
    token = _decode(body, _Token, "token")
    if not token.access_token.strip():
        raise SnovWireError("Snov.io token: the access_token is empty")
    if token.token_type.lower() != "bearer":
        raise SnovWireError(f"Snov.io token: token_type {token.token_type[:20]!r} is not Bearer")
    if not token.expires_in > 0:
        raise SnovWireError(f"Snov.io token: expires_in {token.expires_in!r} is not positive")
    return IssuedToken(value=token.access_token, expires_in=float(token.expires_in))


def parse_start(body: bytes, call: str = "start") -> TaskStarted:
    started = _decode(body, _Start, call)
    task_hash = started.data.task_hash.strip()
    if not task_hash:
        raise SnovWireError(f"Snov.io {call}: the task_hash is empty")
    return TaskStarted(task_hash)


def _early_status(body: bytes, call: str) -> InProgress | NotEnoughCredits | None:
    """A poll's answer that carries no result, or None when it says "completed"."""
    status = _decode(body, _Status, call).status
    if status == "in_progress":
        return InProgress()
    if status == "not_enough_credits":
        return NotEnoughCredits()
    if status == "completed":
        return None
    raise SnovWireError(f"Snov.io {call}: unknown status {status[:40]!r}")


def parse_domain_poll(body: bytes) -> DomainPoll:
    call = "company-domain-by-name result"
    early = _early_status(body, call)
    if early is not None:
        return early
    poll = _decode(body, _DomainPoll, call)
    answers = []
    for index, entry in enumerate(poll.data):
        if isinstance(entry.result, list) and entry.result:
            raise SnovWireError(f"Snov.io {call}: a non-empty list as result at $.data[{index}]")
        domain = entry.result.domain if isinstance(entry.result, _DomainResult) else None
        answers.append(DomainAnswer(name=entry.name, domain=(domain or "").strip() or None))
    names = poll.meta.names if isinstance(poll.meta, _DomainMeta) else None
    return DomainsCompleted(tuple(answers), None if names is None else tuple(names))


def parse_email_poll(body: bytes) -> EmailPoll:
    call = "emails-by-domain-by-name result"
    early = _early_status(body, call)
    if early is not None:
        return early
    poll = _decode(body, _EmailPoll, call)
    answers = tuple(PersonAnswer(people=e.people, emails=tuple(e.result or ())) for e in poll.data)
    rows = poll.meta.rows if isinstance(poll.meta, _EmailMeta) else None
    return EmailsCompleted(answers, None if rows is None else tuple(rows))


def parse_balance(body: bytes) -> Balance:
    answer = _decode(body, _Balance, "get-balance")
    if not answer.success:
        raise SnovWireError("Snov.io get-balance: success is false")
    return Balance(credits=answer.data.balance)


# --- credits --------------------------------------------------------------------------------------


def domain_credits(result: DomainsCompleted) -> int:
    """What a completed domain task cost: 1 credit per domain found."""
    return sum(1 for answer in result.answers if answer.domain is not None)


def email_credits(result: EmailsCompleted) -> int:
    """What a completed e-mail task cost: 1 credit per e-mail whose status is valid or unknown."""
    return sum(
        1
        for answer in result.answers
        for finding in answer.emails
        if finding.smtp_status in CHARGED_SMTP_STATUSES
    )
