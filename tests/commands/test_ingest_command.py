"""The `ingest` command's wiring (`eventlog.commands.ingest`) and the runtime it wires.

The runtime (`eventlog.worker`) takes the ledger and the stream clients from the
command, and imports nothing of the command line, the ops package or the
simulator; the command builds one fresh ledger per session with the projections
and the fact log attached, and prints the progress line.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from eventlog.clock import FixedClock
from eventlog.config.settings import Settings
from eventlog.commands.ingest import build_worker, progress_line
from eventlog.ops.fact_log import LedgerLog
from support.obs import add_company, add_queued, add_request
from projections.testing import stream_event

from support import REPO as REPO_ROOT

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z
SETTINGS = Settings(rate_limit_requests=600, rate_limit_window=300.0, rate_limit_slack=2.0)


def test_the_progress_line_counts_from_the_projections_and_the_worker(conn):
    for number, state in [("00000001", "completed"), ("00000002", "completed"), ("00000003", "failed"),
                          ("00000004", "detected")]:
        add_company(conn, number, state)
    for i, status in enumerate([200, 429, 200]):  # inside the window ending at NOW
        add_request(conn, NOW - 10 - i, status, request_id=f"in-{i}")
    add_request(conn, NOW - 400, 200, request_id="old")  # before it
    add_queued(conn, "q-1", 0, at=NOW - 5, position=1)
    for i in range(2):
        add_queued(conn, f"q-l{i}", 1, at=NOW - 3, position=10 + i)
    lines: list[str] = []
    worker = build_worker(SETTINGS, conn, clock=FixedClock(NOW), report=lines.append)
    # the 429s of the line are this session's answers, counted by the sender lanes (none yet)
    assert progress_line(worker) == ("events 0 | queue HIGH 1 LOW 2 | window 3/600 | sent 0"
                                     " | completed 2 failed 1 | 429s 0")
    worker.progress(worker)  # what the runtime calls every interval and on the way out
    assert lines == [progress_line(worker)]


def test_each_session_gets_a_fresh_ledger_with_projections_and_the_fact_log(conn, clock):
    first = build_worker(SETTINGS, conn, clock=clock, report=lambda line: None)
    second = build_worker(SETTINGS, conn, clock=clock, report=lambda line: None)
    assert first.ledger is not second.ledger  # else the first session's observer would stay attached
    assert [type(h) for h in second.ledger.after_commit] == [LedgerLog]
    assert [c.stream for c in second.stream_clients] == ["companies", "filings"]  # both streams by default
    assert all(c.ledger is second.ledger for c in second.stream_clients)

    second.ledger.append_many([stream_event("00000042", 1001), stream_event("00000043", 1002)])
    assert (first.stream_events, second.stream_events) == (0, 2)
    assert second.dirty.is_set() and not first.dirty.is_set()
    # the projections ran in the append's transaction
    assert conn.execute("SELECT count(*) FROM companies").fetchone()[0] == 2


def test_the_worker_package_imports_no_command_ops_simulator_or_click():
    """Checked in a fresh interpreter, so modules other tests loaded don't hide an import."""
    probe = ("import sys, pkgutil, importlib, eventlog.worker as w\n"
             "for m in pkgutil.walk_packages(w.__path__, 'eventlog.worker.'):\n"
             "    importlib.import_module(m.name)\n"
             "print(sorted(n for n in sys.modules if n == 'click' or n.startswith(('click.', "
             "'eventlog.ops', 'eventlog.commands', 'eventlog.simulator'))))\n")
    ran = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True,
                         timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "[]"


def test_the_worker_package_has_no_function_level_imports():
    nested = []
    for path in sorted((REPO_ROOT / "eventlog" / "worker").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        top = {id(node) for node in tree.body}
        nested += [f"{path.relative_to(REPO_ROOT)}:{node.lineno}" for node in ast.walk(tree)
                   if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in top]
    assert nested == []


def test_status_maps_a_bad_setting_and_a_missing_database_to_exit_2_in_one_line(run_cli, tmp_path: Path):
    """The real `python cli.py status`: every known failure through `known_errors`, exit 2 as before."""
    bad = run_cli("status", "--db", tmp_path / "c.db", env={"RATE_LIMIT_REQUESTS": "abc"})
    missing = run_cli("status", "--db", tmp_path / "absent.db")
    for ran, words in [(bad, "RATE_LIMIT_REQUESTS='abc'"), (missing, "no database at")]:
        assert ran.returncode == 2, ran.stderr
        assert ran.stdout == ""
        assert len(ran.stderr.splitlines()) == 1 and ran.stderr.startswith("chledger: ") and words in ran.stderr
    assert not (tmp_path / "absent.db").exists()


def test_ingest_refuses_to_start_without_the_stream_key_naming_it(run_cli, tmp_path: Path):
    """The stream and REST keys differ: a REST key alone is not enough outside --simulate."""
    ran = run_cli("ingest", "--db", tmp_path / "c.db", env={"COMPANIES_HOUSE_API_KEY": "rest-key-123456"})
    assert ran.returncode != 0
    assert len(ran.stderr.splitlines()) == 1 and ran.stderr.startswith("chledger: ")
    assert "COMPANIES_HOUSE_STREAM_KEY" in ran.stderr and "rest-key-123456" not in ran.stderr
    assert not (tmp_path / "c.db").exists()  # refused before anything was created


def test_a_malformed_compressed_time_is_one_line_before_anything_is_created(run_cli, tmp_path: Path):
    """CHLEDGER_COMPRESSED_TIME (end-to-end runs over days) is START,ORIGIN,RATE or nothing."""
    ran = run_cli("ingest", "--simulate", "--db", tmp_path / "c.db", env={"CHLEDGER_COMPRESSED_TIME": "fast"})
    assert ran.returncode == 2, ran.stderr
    assert len(ran.stderr.splitlines()) == 1 and ran.stderr.startswith("chledger: CHLEDGER_COMPRESSED_TIME='fast'")
    ran = run_cli("ingest", "--simulate", "--db", tmp_path / "c.db", env={"CHLEDGER_COMPRESSED_TIME": "0,0,100"})
    assert ran.returncode == 2 and "not with --simulate" in ran.stderr, ran.stderr
    real = {"CHLEDGER_COMPRESSED_TIME": "0,0,100", "COMPANIES_HOUSE_API_KEY": "k", "COMPANIES_HOUSE_STREAM_KEY": "s"}
    ran = run_cli("ingest", "--db", tmp_path / "c.db", env=real)  # the default URLs: the real service
    assert ran.returncode == 2 and "not on loopback" in ran.stderr, ran.stderr
    assert not (tmp_path / "c.db").exists()
