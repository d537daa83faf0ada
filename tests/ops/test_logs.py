"""Structured logs: JSON off a terminal, readable on one, correlation ids, sampling, keys never logged."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging

import pytest
from freezegun import freeze_time

from eventlog.ops.logs import (
    REDACTED,
    correlation,
    current_correlation_id,
    kept,
    pipeline_id,
    routine,
    setup_logging,
)

KEY = "f3c9d2aa-5e1b-4c77-9d10-abcdef123456"
STREAM_KEY = "0a1b2c3d-stream-key-9999"


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def log():
    """A logger under the root, and a clean root afterwards."""
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    yield logging.getLogger("eventlog.worker")
    root.handlers[:] = saved[1]
    root.setLevel(saved[0])
    logging.captureWarnings(False)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@freeze_time("2025-01-15 10:30:45.123")
def test_json_lines_off_a_terminal(log):
    out = io.StringIO()
    setup_logging("INFO", stream=out)
    log.info("event_processed", extra={"company_number": "12345678", "processing_time_ms": 15,
                                       "event_type": "company_profile_changed"})
    log.debug("not shown at INFO")
    [line] = lines(out)
    assert line == {
        "timestamp": "2025-01-15T10:30:45.123000Z",
        "level": "INFO",
        "module": "eventlog.worker",
        "event": "event_processed",
        "company_number": "12345678",
        "processing_time_ms": 15,
        "event_type": "company_profile_changed",
    }


@freeze_time("2025-01-15 10:30:45")
def test_readable_lines_on_a_terminal(log):
    out = Tty()
    setup_logging("DEBUG", stream=out)
    log.warning("stream reconnecting", extra={"attempt": 3, "delay_s": 1.5})
    assert out.getvalue() == (
        "2025-01-15 10:30:45Z WARNING eventlog.worker  stream reconnecting  attempt=3 delay_s=1.5\n"
    )


def test_format_can_be_forced_either_way(log):
    out = Tty()
    setup_logging("INFO", stream=out, json_lines=True)
    log.info("x")
    assert json.loads(out.getvalue())["event"] == "x"
    out = io.StringIO()
    setup_logging("INFO", stream=out, json_lines=False)
    log.info("x")
    assert not out.getvalue().startswith("{")


def test_setup_twice_replaces_its_own_handler_only(log):
    root = logging.getLogger()
    other = logging.NullHandler()
    root.addHandler(other)
    first, second = io.StringIO(), io.StringIO()
    setup_logging("INFO", stream=first)
    setup_logging("WARNING", stream=second)
    log.warning("once")
    log.info("filtered by level")
    assert first.getvalue() == ""
    assert [line["event"] for line in lines(second)] == ["once"]
    assert other in root.handlers


def test_exceptions_are_kept_in_the_line(log):
    out = io.StringIO()
    setup_logging("INFO", stream=out)
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("sender failed", extra={"request_id": "r1"})
    [line] = lines(out)
    assert line["level"] == "ERROR" and line["request_id"] == "r1"
    assert "ValueError: boom" in line["exception"]


async def test_correlation_id_follows_a_pipeline_into_tasks(log):
    out = io.StringIO()
    setup_logging("INFO", stream=out)

    async def step(name: str) -> None:
        await asyncio.sleep(0)
        log.info(name)

    cid = pipeline_id("05954546", 68805561)
    assert cid == "05954546@68805561"
    with correlation(cid):
        assert current_correlation_id() == cid
        await asyncio.gather(asyncio.create_task(step("status_queued")), step("officers_queued"))
        log.info("explicit", extra={"correlation_id": "other"})
    log.info("outside")
    assert current_correlation_id() is None
    got = {line["event"]: line.get("correlation_id") for line in lines(out)}
    assert got == {"status_queued": cid, "officers_queued": cid, "explicit": "other", "outside": None}


def test_sampling_is_deterministic_and_close_to_the_rate(log):
    ids = [f"companies:{n}" for n in range(10_000)]
    chosen = [i for i in ids if kept(i, 0.1)]
    assert 900 <= len(chosen) <= 1100  # a hash, so not exact, but near 10%
    assert chosen == [i for i in ids if kept(i, 0.1)]  # the same ids every time
    assert all(kept(i, 1.0) for i in ids[:100]) and not any(kept(i, 0.0) for i in ids[:100])

    out = io.StringIO()
    setup_logging("INFO", stream=out, sample_rate=0.1)
    for i in ids[:1000]:
        log.info("event_processed", extra=routine(event_id=i))
    logged = [line["event_id"] for line in lines(out)]
    assert logged == [i for i in ids[:1000] if kept(i, 0.1)]
    assert all(line["sample_rate"] == 0.1 and "routine" not in line for line in lines(out))


def test_sampling_never_drops_failures_or_unmarked_records(log):
    out = io.StringIO()
    setup_logging("INFO", stream=out, sample_rate=0.0)
    log.info("event_processed", extra=routine(company_number="1"))
    log.info("stream connected")
    log.warning("request failed", extra=routine(company_number="1"))
    assert [line["event"] for line in lines(out)] == ["stream connected", "request failed"]


def test_sample_key_precedence(log):
    # sample_key beats event_id beats company_number: pick keys whose verdicts differ.
    yes = next(f"k{n}" for n in range(1000) if kept(f"k{n}", 0.5))
    no = next(f"k{n}" for n in range(1000) if not kept(f"k{n}", 0.5))
    out = io.StringIO()
    setup_logging("INFO", stream=out, sample_rate=0.5)
    log.info("a", extra=routine(sample_key=yes, event_id=no, company_number=no))
    log.info("b", extra=routine(sample_key=no, event_id=yes, company_number=yes))
    log.info("c", extra=routine(event_id=yes, company_number=no))
    log.info("d", extra=routine(company_number=no))
    assert [line["event"] for line in lines(out)] == ["a", "c"]


@pytest.mark.parametrize("json_lines", [True, False])
def test_keys_are_never_logged_in_any_form(log, json_lines):
    out = Tty()
    setup_logging("DEBUG", stream=out, json_lines=json_lines, secrets=[KEY, STREAM_KEY, None, ""])
    basic = "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()
    log.info(f"connecting with {KEY}")
    log.info("auth header %s for %s", basic, STREAM_KEY)
    log.info("url", extra={"url": f"https://x/?key={KEY.replace('-', '%2D')}"})
    log.info("headers", extra={"headers": {"Authorization": basic}, "keys": [STREAM_KEY]})
    try:
        raise RuntimeError(f"401 for key {KEY}")
    except RuntimeError:
        log.exception("stream failed")
    text = out.getvalue()
    for leaked in (KEY, STREAM_KEY, base64.b64encode(f"{KEY}:".encode()).decode(),
                   base64.b64encode(KEY.encode()).decode()):
        assert leaked not in text
    assert text.count(REDACTED) >= 6
    assert "connecting with [redacted]" in text
    assert "RuntimeError: 401 for key [redacted]" in text


def test_redaction_also_covers_other_libraries_records(log):
    out = io.StringIO()
    setup_logging("INFO", stream=out, secrets=[KEY])
    logging.getLogger("aiohttp.client").warning("GET https://u:%s@host failed", KEY)
    [line] = lines(out)
    assert line["module"] == "aiohttp.client" and KEY not in line["event"]


def test_tiny_secrets_are_not_treated_as_keys(log):
    out = io.StringIO()
    setup_logging("INFO", stream=out, secrets=["a"])
    log.info("a plain line")
    assert lines(out)[0]["event"] == "a plain line"


def test_a_broken_format_call_is_logged_redacted():
    # On a logger of its own: pytest's capture handler on the root would raise first.
    logger = logging.getLogger("chledger.test.isolated")
    logger.propagate = False
    out = io.StringIO()
    handler = setup_logging("INFO", stream=out, secrets=[KEY], logger=logger)
    try:
        logger.info("bad format %s %s", KEY)
    finally:
        logger.removeHandler(handler)
    [line] = lines(out)
    assert KEY not in line["event"] and REDACTED in line["event"] and "bad format" in line["event"]
