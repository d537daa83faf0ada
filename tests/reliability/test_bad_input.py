"""Bad input from every side, fed to the real parts that read it.

A hostile Companies House on loopback serves the real worker a stream of good events with bad
lines between them (malformed JSON, JSON of the wrong shape, an oversized line, binary garbage,
an event for a malformed company number, an unknown event.type), and REST answers that are not
JSON, are truncated, or carry a negative, huge or missing X-Ratelimit-Reset. Then a bulk file that
is not a ZIP, one with a wrong header, and Snov.io answers of the wrong shape. Each: no crash, no
traceback, the good input all recorded, the bad either recorded as rejected or refused in one line.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import web

from eventlog.errors import SnovWireError
from eventlog.ledger.chain import walk
from eventlog.ledger.db import connect
from eventlog.worker.enrich.snov_api import parse_start, parse_token
from eventlog.worker.stream.ndjson import DEFAULT_MAX_LINE
from support import REPO

TEMPLATE = json.loads((REPO / "tests" / "data" / "captured-events.ndjson").read_text().splitlines()[0])
NUMBERS = ["01000001", "01000002", "01000003", "01000004", "01000005", "01000006"]
BAD_NUMBER = "../../x"


def event_line(number: str, timepoint: int, kind: str = "changed") -> bytes:
    event = json.loads(json.dumps(TEMPLATE))
    event["resource_id"], event["resource_uri"] = number, f"/company/{number}"
    event["data"]["company_number"] = number
    event["data"]["company_status"] = "active"
    event["data"]["company_status_detail"] = "active-proposal-to-strike-off"
    event["event"] = {"timepoint": timepoint, "published_at": "2023-11-04T14:33:29", "type": kind}
    return json.dumps(event).encode() + b"\n"


BAD_LINES = {
    "malformed JSON": b'{"resource_kind": "company-profile", "data": {\n',
    "JSON of the wrong shape (a list)": b"[1, 2, 3]\n",
    "JSON of the wrong shape (fields)": b'{"event": {"timepoint": "soon"}, "data": 7}\n',
    "an oversized line": b'{"x": "' + b"a" * (DEFAULT_MAX_LINE + 100) + b'"}\n',
    "binary garbage": bytes(b for b in range(256) if b != 10) * 4 + b"\n",
    "a malformed company number": event_line(BAD_NUMBER, 107),
    "an unknown event.type": event_line("01000099", 109, kind="exploded"),
}
OFFICERS = json.dumps({"items": [{"name": "SMITH, Jane", "officer_role": "director", "appointed_on": "2015-03-01"}],
                       "total_results": 1, "active_count": 1, "inactive_count": 0, "resigned_count": 0}).encode()
REST_ANSWERS = {  # company -> (body, X-Ratelimit-Reset or None for no rate-limit headers at all)
    NUMBERS[0]: (b"<html>Service Unavailable</html>", "now"),
    NUMBERS[1]: (OFFICERS[: len(OFFICERS) // 2], "now"),
    NUMBERS[2]: (OFFICERS, "-5"),
    NUMBERS[3]: (OFFICERS, "99999999999999999999"),
    NUMBERS[4]: (OFFICERS, None),
    NUMBERS[5]: (OFFICERS, "now"),
}


async def hostile_app(seen: list[str]) -> web.Application:
    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_type = "application/json"
        await response.prepare(request)
        if len([p for p in seen if p.startswith("/companies")]) == 0:
            lines, bad = [], list(BAD_LINES.values())
            for i, number in enumerate(NUMBERS):
                lines.append(event_line(number, 100 + 2 * i))
                if i < len(bad):
                    lines.append(bad[i])
            lines += bad[len(NUMBERS):]
            for line in lines:
                await response.write(line)
        seen.append(request.path_qs)
        while True:  # heartbeats until the client leaves
            await asyncio.sleep(0.2)
            await response.write(b"\n")

    async def rest(request: web.Request) -> web.Response:
        seen.append(request.path_qs)
        number = request.match_info["number"]
        if "officers" not in request.path:
            data = json.loads(event_line(number, 1))["data"]
            return web.json_response(data)
        body, reset = REST_ANSWERS.get(number, (OFFICERS, "now"))
        headers = {}
        if reset is not None:
            now = int(asyncio.get_running_loop().time())
            headers = {"X-Ratelimit-Limit": "600", "X-Ratelimit-Remain": "599", "X-Ratelimit-Window": "5m",
                       "X-Ratelimit-Reset": str(now + 300) if reset == "now" else reset}
        return web.Response(body=body, headers=headers, content_type="application/json")

    app = web.Application()
    app.router.add_get("/companies", stream)
    app.router.add_get("/company/{number}", rest)
    app.router.add_get("/company/{number}/officers", rest)
    return app


async def test_bad_stream_lines_and_bad_rest_answers_neither_crash_the_worker_nor_hide_good_input(tmp_path, faults):
    seen: list[str] = []
    runner = web.AppRunner(await hostile_app(seen))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # noqa: SLF001
    db = tmp_path / "bad.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPANIES_HOUSE", "RATE_LIMIT", "CHLEDGER_"))}
    env.update(COMPANIES_HOUSE_API_KEY="k-rest", COMPANIES_HOUSE_STREAM_KEY="k-stream", DATABASE_PATH=str(db),
               STREAMING_API_URL=f"{base}/companies", COMPANIES_HOUSE_API_URL=base, DISK_RESERVE_MB="0",
               LOG_LEVEL="WARNING", INITIAL_RETRY_DELAY="0.05", MAX_RETRY_DELAY="0.1", MAX_RETRIES="2")
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(REPO / "cli.py"), "ingest", "--duration", "3", env=env, cwd=str(tmp_path),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        await runner.cleanup()
    text = err.decode()
    assert proc.returncode == 0 and "Traceback" not in text, text[-3000:]
    conn = connect(db, readonly=True)
    try:
        assert walk(conn).ok
        events = {r[0] for r in conn.execute("SELECT company_number FROM event_log WHERE event_type = 'stream.event'")}
        rejected = conn.execute("SELECT count(*) FROM event_log WHERE event_type = 'stream.rejected'").fetchone()[0]
        sent = [r[0] for r in conn.execute("SELECT json_extract(event_data, '$.path') FROM event_log "
                                           "WHERE event_type = 'request.sent'")]
    finally:
        conn.close()
    assert set(NUMBERS) <= events, f"good events missing: {set(NUMBERS) - events}"
    assert rejected >= 5, rejected  # malformed, two wrong shapes, oversized, garbage
    assert not any(BAD_NUMBER in p or ".." in p for p in seen), "a request for a malformed company number"
    officers = [p for p in seen if "/officers" in p]
    assert {n for n in NUMBERS if any(f"/company/{n}/" in p for p in officers)} == set(NUMBERS), officers
    rest_seen = [p for p in seen if p.startswith("/company/")]
    assert len(sent) >= len(rest_seen), "a request the server received is not in the ledger"
    faults.record("bad stream lines and REST answers (JSON, shape, size, garbage, number, type, "
                  "bodies, X-Ratelimit-Reset)", injected=len(BAD_LINES) + len(REST_ANSWERS) - 1,
                  stream_lines_rejected=rejected)


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPANIES_HOUSE", "DATABASE", "CHLEDGER_"))}
    return subprocess.run([sys.executable, str(REPO / "cli.py"), *args], env={**env, "DISK_RESERVE_MB": "0"},
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("name, content", [
    pytest.param("BasicCompanyData-2024-05-01.zip", b"this is not a zip" * 100, id="not-a-zip"),
    pytest.param("BasicCompanyData-2024-05-01.csv", b"foo,bar\n1,2\n", id="wrong-header")])
def test_a_bulk_file_that_is_not_a_zip_or_has_a_wrong_header_is_refused_in_one_line(tmp_path, name, content, faults):
    bad = tmp_path / name
    bad.write_bytes(content)
    db = tmp_path / "bulk.db"
    ran = _cli("bulk", str(bad), "--db", str(db))
    lines = [line for line in ran.stderr.splitlines() if line.strip()]
    assert ran.returncode == 2 and len(lines) == 1 and lines[0].startswith("chledger: "), ran.stderr
    assert "Traceback" not in ran.stderr
    if db.exists():
        conn = connect(db, readonly=True)
        try:
            imported = conn.execute("SELECT count(*) FROM event_log WHERE event_type LIKE 'bulk.%'").fetchone()[0]
        finally:
            conn.close()
        assert imported == 0
    faults.record("bulk file " + ("not a ZIP" if name.endswith(".zip") else "with a wrong header"), injected=1)


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"data": 5}', b'{"access_token": 7}', b"\xff\xfe"],
                         ids=["not-json", "a-list", "data-a-number", "token-a-number", "not-utf8"])
def test_snov_answers_of_the_wrong_shape_are_a_named_wire_error(body, faults):
    for parse in (parse_token, parse_start):
        with pytest.raises(SnovWireError) as caught:
            parse(body)
        message = str(caught.value)
        assert "\n" not in message and message.startswith("Snov.io "), message
    faults.record(f"Snov.io answer of the wrong shape: {body[:20]!r}", injected=2)
