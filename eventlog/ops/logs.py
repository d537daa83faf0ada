"""Logging for a worker nobody watches: JSON lines for machines, short lines for people.

- Off a terminal (Render, a pipe, a file) each record is one JSON object, in the
  shape the operations guide documents: `timestamp` (canonical ISO UTC), `level`,
  `module`, `event`, then the record's extra fields. On a terminal, one
  readable line with the same fields as `key=value`.
- A correlation id ties together the lines of one company's pipeline, which
  runs as several steps in several tasks (stream event, status request, officers
  request). `pipeline_id()` builds it; `fact_log` uses the company number
  alone (why: its docstring), so every step, in any task and after a restart,
  computes the same id without storing it; `correlation()` binds an id for a
  block of code (a contextvar, so tasks created inside inherit it).
- Routine successes (`extra=routine(...)`) are sampled, `sample_rate` of them
  kept (10% by default). Which ones is decided by a hash of the record's id, not
  by a random number, so the same event is always kept or always dropped: a
  test is stable and a kept event's later lines are kept too.
- Keys are never logged: a filter on the handler replaces every configured
  secret (and the forms it takes on the wire: basic-auth base64, URL-quoted)
  wherever it appears in a record: message, arguments, extra fields, traceback.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import hashlib
import logging
import sys
import urllib.parse
from typing import Any, Iterable, Iterator, TextIO

import msgspec

from eventlog.clock import from_epoch

__all__ = [
    "setup_logging",
    "correlation",
    "pipeline_id",
    "current_correlation_id",
    "routine",
    "kept",
    "JsonFormatter",
    "TextFormatter",
    "RedactSecrets",
    "SampleRoutine",
    "REDACTED",
]

REDACTED = "[redacted]"
MIN_SECRET_LENGTH = 4  # shorter strings are not keys, and redacting them would shred the logs

_correlation: contextvars.ContextVar[str | None] = contextvars.ContextVar("chledger_correlation_id", default=None)

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}
_CONTROL = {"routine", "sample_key"}  # our own markers, not output fields

_encoder = msgspec.json.Encoder(enc_hook=str)


def pipeline_id(company_number: str, origin: int | str | None = None) -> str:
    """A correlation id: the company number, or `<company>@<origin>` when a caller has an origin to name."""
    return f"{company_number}@{origin}" if origin is not None else company_number


def current_correlation_id() -> str | None:
    return _correlation.get()


@contextlib.contextmanager
def correlation(correlation_id: str) -> Iterator[str]:
    """Tag every record logged inside the block (and in tasks started in it)."""
    token = _correlation.set(correlation_id)
    try:
        yield correlation_id
    finally:
        _correlation.reset(token)


def routine(**fields: Any) -> dict[str, Any]:
    """`extra=` for a routine success that may be sampled away.

    The sampling key is `sample_key`, else `event_id`, else `company_number`.
    """
    return {"routine": True, **fields}


def kept(key: object, rate: float) -> bool:
    """Whether a routine record with this key is logged at this sample rate: a pure function."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    digest = hashlib.blake2b(str(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < rate * 2**64


class SampleRoutine(logging.Filter):
    """Keep `sample_rate` of the records marked routine; never drops a warning or worse."""

    def __init__(self, sample_rate: float):
        super().__init__()
        self.sample_rate = sample_rate

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "routine", False) or record.levelno > logging.INFO:
            return True
        key = next(
            (getattr(record, a) for a in ("sample_key", "event_id", "company_number") if getattr(record, a, None)),
            None,
        )
        if key is None:
            key = record.msg
        if not kept(key, self.sample_rate):
            return False
        if self.sample_rate < 1.0:
            record.sample_rate = self.sample_rate  # a reader scales counts by 1/rate
        return True


def _forms(secret: str) -> list[str]:
    """A key as it may appear: itself, in a basic-auth header (user name, empty password), URL-quoted."""
    forms = {
        secret,
        base64.b64encode(f"{secret}:".encode()).decode(),
        base64.b64encode(secret.encode()).decode(),
        urllib.parse.quote(secret, safe=""),
    }
    return sorted(forms, key=len, reverse=True)


class RedactSecrets(logging.Filter):
    """Replace every configured secret in a record before any formatter sees it.

    Attached to the handler, so it also covers records of other libraries
    (aiohttp, asyncio) that propagate to the root logger.
    """

    def __init__(self, secrets: Iterable[str | None]):
        super().__init__()
        self.forms: list[str] = []
        for s in secrets:
            if s and len(s) >= MIN_SECRET_LENGTH:
                self.forms.extend(_forms(s))
        self.forms.sort(key=len, reverse=True)

    def redact(self, text: str) -> str:
        for form in self.forms:
            if form in text:
                text = text.replace(form, REDACTED)
        return text

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if value is None or isinstance(value, (bool, int, float)):
            return value
        text = value if isinstance(value, str) else _encoder.encode(value).decode()
        cleaned = self.redact(text)
        return value if cleaned == text else cleaned

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.forms:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string still gets logged, redacted
            message = f"{record.msg!r} % {record.args!r}"
        record.msg, record.args = self.redact(message), None
        for name, value in list(vars(record).items()):
            if name not in _STANDARD:
                setattr(record, name, self._clean(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    out = {k: v for k, v in vars(record).items() if k not in _STANDARD and k not in _CONTROL}
    cid = out.pop("correlation_id", None) or _correlation.get()
    if cid is not None:
        out["correlation_id"] = cid
    return out


def _exception_text(formatter: logging.Formatter, record: logging.LogRecord) -> str | None:
    if record.exc_info and not record.exc_text:
        record.exc_text = formatter.formatException(record.exc_info)
    text = record.exc_text or ""
    if record.stack_info:
        text = f"{text}\n{record.stack_info}" if text else record.stack_info
    return text or None


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, module, event, then the extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": from_epoch(record.created),
            "level": record.levelname,
            "module": record.name,
            "event": record.getMessage(),
        }
        for key, value in _fields(record).items():
            line.setdefault(key, value)
        exc = _exception_text(self, record)
        if exc:
            line["exception"] = exc
        return _encoder.encode(line).decode()


class TextFormatter(logging.Formatter):
    """`2025-01-15 10:30:45Z INFO  streaming.client  event_processed  key=value …`."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = from_epoch(record.created)
        head = f"{stamp[:10]} {stamp[11:19]}Z {record.levelname:<7} {record.name}  {record.getMessage()}"
        extras = " ".join(
            f"{k}={v if isinstance(v, str) else _encoder.encode(v).decode()}" for k, v in _fields(record).items()
        )
        line = f"{head}  {extras}" if extras else head
        exc = _exception_text(self, record)
        return f"{line}\n{exc}" if exc else line


_MARK = "_chledger_handler"


def setup_logging(
    level: str | int = "INFO",
    *,
    stream: TextIO | None = None,
    json_lines: bool | None = None,
    secrets: Iterable[str | None] = (),
    sample_rate: float = 0.1,
    logger: logging.Logger | None = None,
) -> logging.Handler:
    """Send records to `stream` (stderr by default) as JSON lines or readable lines.

    `json_lines=None` picks by the stream: readable on a terminal, JSON
    otherwise. Calling it again replaces the handler it installed before, so
    tests and `cli.py` can call it freely. Returns the handler.
    """
    stream = sys.stderr if stream is None else stream
    if json_lines is None:
        isatty = getattr(stream, "isatty", None)
        json_lines = not (isatty and isatty())
    target = logger or logging.getLogger()
    for old in [h for h in target.handlers if getattr(h, _MARK, False)]:
        target.removeHandler(old)
    handler = logging.StreamHandler(stream)
    setattr(handler, _MARK, True)
    # Sampling first (cheap, drops most routine records), then redaction of what remains.
    handler.addFilter(SampleRoutine(sample_rate))
    handler.addFilter(RedactSecrets(secrets))
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    target.addHandler(handler)
    target.setLevel(level.upper() if isinstance(level, str) else level)
    logging.captureWarnings(True)
    return handler
