"""The endpoints. Attribution, the limit, expiry, faults and the record are the gate's job
(gate.py); a handler only answers, and notes its outcome and credits for the record.

Request shapes are checked strictly: the domain start takes form fields ``names[]`` only, the
e-mail start a JSON body only, 1 to 10 items, no blank ones; anything else is 422.
"""

from __future__ import annotations

import json
from contextvars import ContextVar

from aiohttp import web

from eventlog.simulator.snov.config import MAX_BATCH
from eventlog.simulator.snov.context import SNOV_SIMULATOR, SnovSimulator
from eventlog.simulator.snov.record import TokenIssued
from eventlog.simulator.snov.tasks import Task

__all__ = [
    "NOTE",
    "Note",
    "access_token",
    "domains_result",
    "domains_start",
    "emails_result",
    "emails_start",
    "get_balance",
    "invalid_client",
]

class Note:
    """What the gate tells a handler (the account) and the handler tells the gate's record."""

    def __init__(self, account: str) -> None:
        self.account = account
        self.outcome = ""
        self.credits = 0
        self.task = ""


# The gate awaits the handler in the same task, so a context variable carries the note between
# them without putting untyped keys on the request.
NOTE: ContextVar[Note] = ContextVar("snov_simulator_note")


def _note(outcome: str, credits: int = 0, task: str = "") -> None:
    note = NOTE.get()
    note.outcome, note.credits, note.task = outcome, credits, task


def invalid_client() -> web.Response:
    """The OAuth server's answer to an unknown client id or a wrong secret."""
    body = {
        "error": "invalid_client",
        "error_description": "Client authentication failed",
        "message": "Client authentication failed",
    }
    return web.json_response(body, status=401)


def _invalid(field: str, message: str) -> web.Response:
    body = {"success": False, "message": "The given data was invalid.", "errors": {field: [message]}}
    return web.json_response(body, status=422)


async def access_token(request: web.Request) -> web.Response:
    """POST /v1/oauth/access_token (form): a bearer token for ``token_lifetime`` seconds."""
    sim: SnovSimulator = request.app[SNOV_SIMULATOR]
    form = await request.post()
    if form.get("grant_type") != "client_credentials":
        body = {
            "error": "unsupported_grant_type",
            "error_description": "The authorization grant type is not supported.",
            "message": "The authorization grant type is not supported.",
        }
        return web.json_response(body, status=400)
    if form.get("client_id") != sim.config.client_id or form.get("client_secret") != sim.config.client_secret:
        return invalid_client()
    now = sim.clock()
    value, state = sim.tokens.issue(sim.config.client_id, now)
    sim.state.tokens.append(TokenIssued(time=now, expires_at=state.expires_at, account=state.account))
    _note("token")
    return web.json_response(
        {"access_token": value, "token_type": "Bearer", "expires_in": sim.config.token_lifetime}
    )


async def domains_start(request: web.Request) -> web.Response:
    """POST /v2/company-domain-by-name/start with up to 10 form fields ``names[]``."""
    sim: SnovSimulator = request.app[SNOV_SIMULATOR]
    names: list[object] = []
    if request.content_type != "application/json":  # a JSON body carries no form fields
        names = list((await request.post()).getall("names[]", []))
    if not names:
        return _invalid("names", "The names field is required.")
    if len(names) > MAX_BATCH:
        return _invalid("names", f"The names may not have more than {MAX_BATCH} items.")
    if any(not isinstance(n, str) or not n.strip() for n in names):
        return _invalid("names", "Every name must be a non-empty string.")
    task = sim.tasks.start(NOTE.get().account, "domains", sim.clock(), names=tuple(map(str, names)))
    _note("started", task=task.hash)
    return web.json_response({"data": {"task_hash": task.hash}, "meta": {"names": names}})


async def emails_start(request: web.Request) -> web.Response:
    """POST /v2/emails-by-domain-by-name/start with JSON ``{"rows": [...]}`` (up to 10 rows)."""
    sim: SnovSimulator = request.app[SNOV_SIMULATOR]
    if request.content_type != "application/json":
        return _invalid("rows", "The rows field is required (a JSON body).")
    try:
        payload = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        return _invalid("rows", "The body is not JSON.")
    rows = payload.get("rows") if isinstance(payload, dict) else None
    if not isinstance(rows, list) or not rows:
        return _invalid("rows", "The rows field is required.")
    if len(rows) > MAX_BATCH:
        return _invalid("rows", f"The rows may not have more than {MAX_BATCH} items.")
    parsed: list[tuple[str, str, str]] = []
    for index, row in enumerate(rows):
        fields = [row.get(k) if isinstance(row, dict) else None for k in ("first_name", "last_name", "domain")]
        if not all(isinstance(v, str) and v.strip() for v in fields):
            return _invalid(f"rows.{index}", "first_name, last_name and domain are required.")
        parsed.append((fields[0], fields[1], fields[2]))  # type: ignore[arg-type]
    task = sim.tasks.start(NOTE.get().account, "emails", sim.clock(), rows=tuple(parsed))
    _note("started", task=task.hash)
    meta_rows = [{"first_name": f, "last_name": l, "domain": d} for f, l, d in parsed]
    return web.json_response({"data": {"task_hash": task.hash}, "meta": {"rows": meta_rows}})


def _poll(request: web.Request, kind: str) -> web.Response:
    sim: SnovSimulator = request.app[SNOV_SIMULATOR]
    task_hash = request.query.get("task_hash", "")
    if not task_hash:
        return _invalid("task_hash", "The task_hash field is required.")
    task: Task | None = sim.tasks.find(task_hash, NOTE.get().account, kind)
    if task is None:
        return web.json_response({"success": False, "errors": "Task not found"}, status=404)
    body, credits = sim.tasks.poll(task, sim.clock())
    _note(body["status"], credits, task.hash)
    return web.json_response(body)


async def domains_result(request: web.Request) -> web.Response:
    """GET /v2/company-domain-by-name/result?task_hash=..."""
    return _poll(request, "domains")


async def emails_result(request: web.Request) -> web.Response:
    """GET /v2/emails-by-domain-by-name/result?task_hash=..."""
    return _poll(request, "emails")


async def get_balance(request: web.Request) -> web.Response:
    """GET /v1/get-balance: free, but counted against the limit like every request."""
    sim: SnovSimulator = request.app[SNOV_SIMULATOR]
    _note("balance")
    data = {
        "balance": f"{sim.state.balance:.2f}",
        "teamwork": False,
        "unique_recipients_used": 0,
        "limit_resets_in": 30,
        "expires_in": 300,
    }
    return web.json_response({"success": True, "data": data})
