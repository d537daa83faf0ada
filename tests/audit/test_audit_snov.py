"""The audit's Snov.io section, on ledgers written entry by entry on a fixed clock."""

from __future__ import annotations

import projections
from eventlog.audit import audit, summary
from eventlog.clock import from_epoch
from eventlog.ledger.entries import SnovAnswered, SnovSent, SnovStarted
from eventlog.ledger.store import Ledger


def counts(report) -> dict[str, int]:
    return {k: v for k, v in report.violation_counts.items() if v}


def started(ledger: Ledger, limit: int = 60, window: float = 60.0) -> None:
    ledger.append(SnovStarted(rate_limit=limit, rate_window=window, max_credits=100, credits_per_person=3))


def start(ledger: Ledger, n: int, *lookups: str) -> tuple[SnovSent, int]:
    sent = SnovSent(request_id=f"s{n}", call="domains_start", task_id=f"t{n}", lookups=lookups, worst_credits=len(lookups))
    return sent, ledger.append(sent).position


def answer(ledger: Ledger, sent: SnovSent, outcome: str, **kw) -> None:
    ledger.append(SnovAnswered(request_id=sent.request_id, call=sent.call, task_id=sent.task_id, outcome=outcome,
                               elapsed_ms=5, **kw))


def test_a_ledger_without_snov_entries_has_no_section(db_path, conn, clock):
    report = audit(str(db_path))
    assert report.snov is None and report.exit_code == 0
    assert "snov.io    not used" in summary(report)


def test_more_requests_than_the_limit_in_one_window_is_a_violation_and_at_the_limit_is_not(db_path, conn, clock):
    ledger = Ledger(conn, clock)
    projections.attach(ledger)
    started(ledger, limit=5, window=10.0)
    for i in range(5):  # five in [0, 10): at the limit
        ledger.append(SnovSent(request_id=f"p{i}", call="balance"))
        clock.advance(1.9)
    clock.advance(0.6)  # the sixth, 10.1 s after the first: never six in 10 s
    ledger.append(SnovSent(request_id="p5", call="balance"))
    report = audit(str(db_path))
    assert report.exit_code == 0 and report.snov.windows.max.count == 5 and report.snov.sent == 6
    assert report.snov.limit.source == "snov.started" and report.snov.limit.requests == 5
    clock.advance(0.1)
    for i in range(3):  # three more at 10.2 s: [1.9, 11.9) now holds 8
        ledger.append(SnovSent(request_id=f"q{i}", call="balance"))
    report = audit(str(db_path))
    assert counts(report) == {"snov_window": 1} and report.exit_code == 1  # one run of windows over
    assert report.snov.windows.max.count == 8 and report.snov.windows.headroom == -3


def test_each_429_is_listed_and_a_request_inside_its_cooldown_is_a_breach(db_path, conn, clock):
    ledger = Ledger(conn, clock)
    started(ledger)
    sent = SnovSent(request_id="a", call="domains_poll", task_id="t")
    ledger.append(sent)
    answer(ledger, sent, "rate_limited", status=429, cooldown_until=from_epoch(clock.now() + 30))
    clock.advance(30)  # exactly at the cooldown's end: allowed
    ledger.append(SnovSent(request_id="b", call="domains_poll", task_id="t"))
    report = audit(str(db_path))
    assert counts(report) == {"snov_rate_limited": 1} and report.snov.rate_limited[0].honoured
    answer(ledger, SnovSent(request_id="b", call="domains_poll", task_id="t"), "rate_limited", status=429,
           cooldown_until=from_epoch(clock.now() + 30))
    clock.advance(29)
    ledger.append(SnovSent(request_id="c", call="domains_poll", task_id="t"))
    report = audit(str(db_path))
    assert counts(report) == {"snov_rate_limited": 2, "snov_cooldown": 1}
    assert not report.snov.rate_limited[1].honoured and report.snov.rate_limited[1].breaches[0].at


def test_a_lookup_started_again_while_held_is_a_violation_and_one_given_back_is_not(db_path, conn, clock):
    ledger = Ledger(conn, clock)
    started(ledger)
    a, _ = start(ledger, 1, "domain:acorn", "domain:bramble")
    answer(ledger, a, "unauthorized", status=401)  # turned away: nothing started, both given back
    b, _ = start(ledger, 2, "domain:acorn", "domain:bramble")
    answer(ledger, b, "ok", task_hash="h2")
    poll = SnovSent(request_id="p2", call="domains_poll", task_id="t2", task_hash="h2")
    ledger.append(poll)
    answer(ledger, poll, "not_enough_credits")  # nothing found or charged: given back
    c, held_by_c = start(ledger, 3, "domain:acorn")
    answer(ledger, c, "ok", task_hash="h3")
    assert counts(audit(str(db_path))) == {}
    _, held_by_d = start(ledger, 4, "domain:cedar")  # its answer never came: spent, held for ever
    _, again = start(ledger, 5, "domain:acorn", "domain:cedar")  # both held: paid twice
    report = audit(str(db_path))
    assert counts(report) == {"snov_repeated_start": 2}
    assert {(r.lookup, r.position, r.first_position) for r in report.snov.repeated_starts} == {
        ("domain:acorn", again, held_by_c), ("domain:cedar", again, held_by_d)}
    assert "2 lookup(s) started twice" in summary(report)
