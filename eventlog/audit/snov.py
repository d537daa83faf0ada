"""The audit's Snov.io section: its limit kept, its 429s, and no lookup started twice.

From the ledger's `snov.*` entries alone (found through the partial index
`idx_event_log_snov`; without it, a scan), never from `snov_request_log`:

- **windows**: every `snov.sent` (token, balance, start, poll: Snov.io counts them all) by its
  time, the most in any half-open window of the limit's length (`windows.window_stats`, exact),
  each run over the limit a violation. The limit is the last `snov.started`'s, else 60 per 60 s.
- **429s**: each one a violation (the service refused a request), and each request sent before
  its `cooldown_until` (in ledger order after it) a breach.
- **repeated starts**: a lookup (a company name as compared, an officer + domain) is taken from
  the moment a start carrying it is recorded, and given back only when that start was turned
  away (429, 401, another 4xx, not enough credits: nothing was started) or its task answered
  `not_enough_credits`. A start carrying a lookup still taken is a violation: Snov.io starts are
  not idempotent, so it would be paid twice. A start whose answer never came keeps its lookups
  taken for ever, as the worker treats it.
- **malformed**: a `snov.*` entry that does not decode.
"""

from __future__ import annotations

from array import array

import apsw
import msgspec

from eventlog.audit.timestamps import from_us, to_us
from eventlog.audit.windows import window_stats

__all__ = ["SnovFindings", "RepeatedStart", "SnovRefusal", "scan_snov", "DEFAULT_SNOV_LIMIT", "DEFAULT_SNOV_WINDOW"]

DEFAULT_SNOV_LIMIT = 60
DEFAULT_SNOV_WINDOW = 60.0
_TURNED_AWAY = frozenset({"rate_limited", "unauthorized", "rejected", "not_enough_credits"})
_SQL = ("SELECT id, event_type, received_at, event_data FROM event_log WHERE event_type GLOB 'snov.*' "
        "ORDER BY id")


class _Started(msgspec.Struct):
    rate_limit: int
    rate_window: float


class _Sent(msgspec.Struct):
    request_id: str
    call: str
    task_id: str = ""
    lookups: list[str] = []


class _Answered(msgspec.Struct):
    request_id: str
    call: str
    outcome: str
    task_id: str = ""
    cooldown_until: str | None = None


class SnovRefusal(msgspec.Struct, frozen=True):
    position: int
    at: str
    call: str
    cooldown_until: str | None
    breaches: list[tuple[int, str]]  # (position, at) of sends inside its cooldown


class RepeatedStart(msgspec.Struct, frozen=True):
    position: int
    at: str
    lookup: str
    first_position: int  # the start that took it


class SnovFindings(msgspec.Struct):
    entries: int
    limit: int
    window: float
    limit_source: str  # "option", "snov.started" or "default"
    times: array  # send times within since/until (µs), ledger order
    refusals: list[SnovRefusal]
    repeated: list[RepeatedStart]
    malformed: list[tuple[int, str, str]]
    stats: object  # windows.WindowStats


def scan_snov(conn: apsw.Connection, *, since: str, until: str, limit: int | None = None,
              window: float | None = None) -> SnovFindings:
    """Everything the Snov.io section says, from one pass over the `snov.*` entries."""
    times = array("q")
    sent_at: list[tuple[int, int]] = []  # (position, µs) of every send, for cooldown breaches
    refusals: list[tuple[int, str, str, str | None]] = []
    repeated: list[RepeatedStart] = []
    malformed: list[tuple[int, str, str]] = []
    taken: dict[str, int] = {}  # lookup -> position of the start holding it
    by_task: dict[str, list[str]] = {}
    found: tuple[int, float] | None = None
    entries = 0
    for pos, event_type, at, data in conn.execute(_SQL):
        entries += 1
        try:
            if event_type == "snov.sent":
                s = msgspec.json.decode(data, type=_Sent)
                t = to_us(at)
                sent_at.append((pos, t))
                if since <= at < until:
                    times.append(t)
                for key in s.lookups:
                    if key in taken:
                        repeated.append(RepeatedStart(pos, at, key, taken[key]))
                    taken[key] = pos
                if s.lookups:
                    by_task[s.task_id or s.request_id] = list(s.lookups)
            elif event_type == "snov.answered":
                a = msgspec.json.decode(data, type=_Answered)
                task = a.task_id or a.request_id
                gave_back = ((a.call.endswith("_start") and a.outcome in _TURNED_AWAY)
                             or (a.call.endswith("_poll") and a.outcome == "not_enough_credits"))
                if gave_back:
                    for key in by_task.pop(task, []):
                        taken.pop(key, None)
                if a.outcome == "rate_limited":
                    refusals.append((pos, at, a.call, a.cooldown_until))
            elif event_type == "snov.started" and at < until:
                st = msgspec.json.decode(data, type=_Started)
                found = (st.rate_limit, st.rate_window)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            malformed.append((pos, event_type, str(exc)))
    source = "option" if limit is not None or window is not None else ("snov.started" if found else "default")
    limit = limit if limit is not None else (found[0] if found else DEFAULT_SNOV_LIMIT)
    window = window if window is not None else (found[1] if found else DEFAULT_SNOV_WINDOW)
    judged = []
    for pos, at, call, until_text in refusals:
        if not since <= at < until:
            continue
        end = to_us(until_text) if until_text else None
        breaches = [(p, from_us(t)) for p, t in sent_at if p > pos and end is not None and t < end]
        judged.append(SnovRefusal(pos, at, call, until_text, breaches))
    stats = window_stats(times, round(window * 1_000_000), limit)
    return SnovFindings(entries, limit, window, source, times, judged,
                        [r for r in repeated if since <= r.at < until], malformed, stats)
