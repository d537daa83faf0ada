"""Asynchronous lookups: a start creates a task, polls answer until its result is ready.

Where the documentation is silent the simulator is strict:
- a task answers ``in_progress`` to its first ``polls_before_completion`` polls (and until
  ``seconds_before_completion`` have passed), then its result; later polls repeat that result
  without charging again;
- credits are charged when the result is first served: 1 per domain found, 1 per e-mail whose
  smtp_status is "valid" or "unknown";
- the balance must cover the larger of the task's inputs (names or rows) and its real cost, or the
  task answers ``not_enough_credits`` for good and charges nothing;
- a name with no domain comes back in one of four shapes (``{}``, ``[]``, ``{"domain": null}``,
  ``{"domain": ""}``), chosen per name, since the real one is undocumented;
- ``shuffle_results`` puts ``data`` in an order unrelated to the request's;
- a task belongs to the account that started it: another account's hash is 404.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

from eventlog.simulator.snov.config import SnovSimulatorConfig
from eventlog.simulator.snov.directory import Directory, EmailFound, normalise
from eventlog.simulator.snov.record import SnovSimulatorState

__all__ = ["Task", "TaskBook", "domain_lookup_key", "email_lookup_key"]

Row = tuple[str, str, str]  # first_name, last_name, domain as the client sent them
_EMPTY_DOMAIN_SHAPES: tuple[Any, ...] = ({}, [], {"domain": None}, {"domain": ""})
_CHARGED_STATUSES = frozenset({"valid", "unknown"})


def domain_lookup_key(name: str) -> str:
    return f"domain:{normalise(name)}"


def email_lookup_key(first: str, last: str, domain: str) -> str:
    return f"email:{normalise(first)}|{normalise(last)}|{normalise(domain)}"


class Task:
    """One started lookup and how far it has got."""

    def __init__(self, task_hash: str, account: str, kind: str, created: float,
                 names: tuple[str, ...] = (), rows: tuple[Row, ...] = ()) -> None:
        self.hash = task_hash
        self.account = account
        self.kind = kind  # "domains" or "emails"
        self.created = created
        self.names = names
        self.rows = rows
        self.polls = 0
        self.state = "in_progress"  # then "completed" or "not_enough_credits"
        self.body: dict[str, Any] | None = None
        self.credits = 0

    @property
    def size(self) -> int:
        return len(self.names) if self.kind == "domains" else len(self.rows)

    def meta(self) -> dict[str, Any]:
        if self.kind == "domains":
            return {"names": list(self.names), "task_hash": self.hash}
        rows = [{"first_name": f, "last_name": l, "domain": d} for f, l, d in self.rows]
        return {"rows": rows, "task_hash": self.hash}


class TaskBook:
    """Every task of one simulator, and the rules that move them along."""

    def __init__(self, config: SnovSimulatorConfig, directory: Directory,
                 state: SnovSimulatorState) -> None:
        self.config = config
        self.directory = directory
        self.state = state
        self._tasks: dict[str, Task] = {}

    def start(self, account: str, kind: str, now: float, *, names: tuple[str, ...] = (),
              rows: tuple[Row, ...] = ()) -> Task:
        task_hash = hashlib.sha1(f"{self.config.seed}:task:{len(self._tasks)}".encode()).hexdigest()
        task = Task(task_hash, account, kind, now, names=names, rows=rows)
        self._tasks[task_hash] = task
        keys = [domain_lookup_key(n) for n in names] + [email_lookup_key(*r) for r in rows]
        self.state.starts_per_lookup.update(keys)
        return task

    def find(self, task_hash: str, account: str, kind: str) -> Task | None:
        task = self._tasks.get(task_hash)
        if task is None or task.account != account or task.kind != kind:
            return None
        return task

    def poll(self, task: Task, now: float) -> tuple[dict[str, Any], int]:
        """The answer to one poll, and the credits this poll charged."""
        task.polls += 1
        if task.state == "in_progress":
            ready = (task.polls > self.config.polls_before_completion
                     and now - task.created >= self.config.seconds_before_completion)
            if not ready:
                return {"status": "in_progress"}, 0
            data, cost = self._result(task)
            if self.state.balance < max(task.size, cost):
                task.state = "not_enough_credits"
            else:
                task.state, task.credits = "completed", cost
                task.body = {"status": "completed", "data": data, "meta": task.meta()}
                self.state.charge(cost)
                return task.body, cost
        if task.state == "not_enough_credits":
            return {"status": "not_enough_credits"}, 0
        assert task.body is not None
        return task.body, 0

    def _result(self, task: Task) -> tuple[list[dict[str, Any]], int]:
        if task.kind == "domains":
            data, cost = self._domains(task.names)
        else:
            data, cost = self._emails(task.rows)
        if self.config.shuffle_results:
            random.Random(f"{self.config.seed}:shuffle:{task.hash}").shuffle(data)
        return data, cost

    def _domains(self, names: tuple[str, ...]) -> tuple[list[dict[str, Any]], int]:
        data: list[dict[str, Any]] = []
        cost = 0
        for name in names:
            domain = self.directory.domain_of(name)
            if domain is None:
                digest = hashlib.sha1(f"{self.config.seed}:empty:{normalise(name)}".encode()).digest()
                result = _EMPTY_DOMAIN_SHAPES[digest[0] % len(_EMPTY_DOMAIN_SHAPES)]
            else:
                result, cost = {"domain": domain}, cost + 1
            data.append({"name": name, "result": result})
        return data, cost

    def _emails(self, rows: tuple[Row, ...]) -> tuple[list[dict[str, Any]], int]:
        data: list[dict[str, Any]] = []
        cost = 0
        for first, last, domain in rows:
            found = self.directory.emails_of(first, last, domain)
            if not found and self.config.omit_people_without_email:
                continue
            cost += sum(1 for f in found if f.smtp_status in _CHARGED_STATUSES)
            people = " ".join(f"{first} {last}".split())
            data.append({"people": people, "result": [_email_dict(f) for f in found]})
        return data, cost


def _email_dict(found: EmailFound) -> dict[str, Any]:
    out = {
        "email": found.email,
        "smtp_status": found.smtp_status,
        "is_valid_format": found.is_valid_format,
        "is_disposable": found.is_disposable,
        "is_webmail": found.is_webmail,
        "is_gibberish": found.is_gibberish,
    }
    if found.unknown_status_reason is not None:
        out["unknown_status_reason"] = found.unknown_status_reason
    return out
