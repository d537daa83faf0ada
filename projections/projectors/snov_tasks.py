"""`snov_tasks`: one row per Snov.io lookup task, and the account's state in `projection_vars`.

A task is one start of up to 10 names (domains) or rows (e-mails) and the polls that follow:

    starting ─► polling ─► completed | not_enough_credits | lost (a result we can't read)
        ├─► refused   the start was turned away (429, 401, another 4xx, no credits): nothing
        │             was started, its lookups may be asked again
        └─► lost      no readable answer (a crash, a timeout, a 5xx, a body we can't read): the
                      service may have started it, so it is never started again and its worst
                      case counts as spent

Credits: a completed task cost what its results say (1 per domain found, 1 per valid or
unknown e-mail); a lost one is counted at its worst case. Running tasks reserve their worst case.
The account (`projection_vars`): the last balance read and when, the budget of the last
`snov.started`, and why enrichment stopped (cleared by the next `snov.started`).
"""

from __future__ import annotations

from typing import NamedTuple

import apsw
import msgspec

from projections.records import Batch
from projections.rows import Rows, Table

NAME = "snov_tasks"
VERSION = 1
TABLES = ("snov_tasks",)
LOOKUP_INDEXES: tuple[str, ...] = ()

STARTS = frozenset({"domains_start", "emails_start"})
POLLS = frozenset({"domains_poll", "emails_poll"})
REFUSED = frozenset({"rate_limited", "unauthorized", "rejected", "not_enough_credits"})
RUNNING = ("starting", "polling")

_TABLE = Table("snov_tasks", (
    "task_id", "kind", "state", "task_hash", "items", "item_count", "worst_credits", "credits", "polls",
    "started_at", "last_poll_at", "finished_at", "error",
), key="task_id")

_GET_VAR = "SELECT value FROM projection_vars WHERE projection = ? AND key = ?"
_SET_VAR = ("INSERT INTO projection_vars(projection, key, value) VALUES (?, ?, ?) "
            "ON CONFLICT(projection, key) DO UPDATE SET value = excluded.value")
_DEL_VAR = "DELETE FROM projection_vars WHERE projection = ? AND key = ?"


POLL_ENDS = frozenset({"ok", "not_enough_credits", "malformed", "rejected"})


def poll_outcome(outcome: str) -> str:
    """The task state a poll's answer ends it in: completed, not_enough_credits, or lost (a
    result we can't read or match, or a task the service no longer knows: what it cost is
    unknown, so its worst case counts). Other answers (429, 5xx, no answer) end nothing."""
    return {"ok": "completed", "not_enough_credits": "not_enough_credits"}.get(outcome, "lost")


def start_outcome(outcome: str) -> str:
    """The task state a start's answer leads to: polling, refused or lost."""
    if outcome == "ok":
        return "polling"
    return "refused" if outcome in REFUSED else "lost"


def apply(conn: apsw.Connection, batch: Batch) -> None:
    records = [r for r in batch.records if r.event_type.startswith("snov.")]
    if not records:
        return
    keys = [getattr(r.entry, "task_id", None) or None for r in records]
    rows = Rows(_TABLE, conn, keys)
    for r in records:
        e = r.entry
        t = r.event_type
        if t == "snov.started":
            _set(conn, "budget", {"max_credits": e.max_credits, "credits_per_person": e.credits_per_person})  # type: ignore[attr-defined]
            conn.execute(_DEL_VAR, (NAME, "stopped"))
        elif t == "snov.stopped":
            _set(conn, "stopped", {"code": e.code, "reason": e.reason, "at": r.received_at})  # type: ignore[attr-defined]
        elif t == "snov.sent":
            _sent(rows, r)
        elif t == "snov.answered":
            if e.call == "balance" and e.outcome == "ok" and e.balance is not None:  # type: ignore[attr-defined]
                _set(conn, "balance", {"balance": e.balance, "at": r.received_at})  # type: ignore[attr-defined]
            else:
                _answered(rows, r)
    rows.flush(conn)


def _sent(rows: Rows, r) -> None:
    e = r.entry
    if e.call in STARTS and e.task_id and rows.get(e.task_id) is None:
        rows.create(e.task_id, kind=e.call.partition("_")[0], state="starting",
                    items=bytes(e.items).decode(), item_count=len(e.lookups),
                    worst_credits=e.worst_credits, credits=0, polls=0, started_at=r.received_at)
    elif e.call in POLLS and e.task_id:
        row = rows.get(e.task_id)
        if row is not None:
            row["polls"] += 1
            row["last_poll_at"] = r.received_at
            rows.changed(e.task_id, row)


def _answered(rows: Rows, r) -> None:
    e = r.entry
    row = rows.get(e.task_id) if e.task_id else None
    if row is None:
        return
    if e.call in STARTS and row["state"] == "starting":
        state = start_outcome(e.outcome)
        row["state"] = state
        if state == "polling":
            row["task_hash"] = e.task_hash
        else:
            row["finished_at"] = r.received_at
            row["error"] = e.error or e.outcome
            if state == "lost":
                row["credits"] = row["worst_credits"]
    elif e.call in POLLS and row["state"] == "polling" and e.outcome in POLL_ENDS:
        state = poll_outcome(e.outcome)
        row["state"] = state
        row["credits"] = row["worst_credits"] if state == "lost" else e.credits
        row["finished_at"] = r.received_at
        if state == "lost":
            row["error"] = e.error or e.outcome
    else:
        return
    rows.changed(e.task_id, row)


def _set(conn: apsw.Connection, key: str, value: dict) -> None:
    conn.execute(_SET_VAR, (NAME, key, msgspec.json.encode(value).decode()))


def _get(conn: apsw.Connection, key: str) -> dict | None:
    row = conn.execute(_GET_VAR, (NAME, key)).fetchone()
    return msgspec.json.decode(row[0]) if row else None


# --- reads ---------------------------------------------------------------------------------------


class TaskToPoll(NamedTuple):
    task_id: str
    kind: str
    task_hash: str
    items: str
    polls: int


class Credits(NamedTuple):
    """What the ledger says of the money: spent (completed tasks' cost, lost tasks' worst case),
    reserved (running tasks' worst case), and the last balance read with what was spent since."""

    spent: int
    reserved: int
    balance: float | None
    balance_at: str | None
    spent_since_balance: int


class Account(NamedTuple):
    max_credits: int | None
    stopped_code: str | None
    stopped_reason: str | None
    stopped_at: str | None


def due_for_poll(conn: apsw.Connection, polled_before: str) -> TaskToPoll | None:
    """The running task whose last poll (or start) is oldest and older than `polled_before`."""
    row = conn.execute(
        "SELECT task_id, kind, task_hash, items, polls FROM snov_tasks WHERE state = 'polling' "
        "AND coalesce(last_poll_at, started_at) < ? ORDER BY coalesce(last_poll_at, started_at) LIMIT 1",
        (polled_before,)).fetchone()
    return TaskToPoll(*row) if row else None


def polling_count(conn: apsw.Connection) -> int:
    return conn.execute("SELECT count(*) FROM snov_tasks WHERE state = 'polling'").fetchone()[0]


def credits(conn: apsw.Connection) -> Credits:
    spent, reserved = conn.execute(
        "SELECT coalesce(sum(credits) FILTER (WHERE state NOT IN ('starting', 'polling')), 0), "
        "coalesce(sum(worst_credits) FILTER (WHERE state IN ('starting', 'polling')), 0) FROM snov_tasks").fetchone()
    balance = _get(conn, "balance")
    since = 0
    if balance is not None:
        since = conn.execute("SELECT coalesce(sum(credits), 0) FROM snov_tasks WHERE finished_at > ?",
                             (balance["at"],)).fetchone()[0]
    return Credits(int(spent), int(reserved), float(balance["balance"]) if balance else None,
                   balance["at"] if balance else None, int(since))


def account(conn: apsw.Connection) -> Account:
    budget = _get(conn, "budget") or {}
    stopped = _get(conn, "stopped") or {}
    return Account(budget.get("max_credits"), stopped.get("code"), stopped.get("reason"), stopped.get("at"))


def state_counts(conn: apsw.Connection) -> dict[str, int]:
    """Tasks by state."""
    return {str(s): int(n) for s, n in conn.execute("SELECT state, count(*) FROM snov_tasks GROUP BY 1 ORDER BY 1")}
