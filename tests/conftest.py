"""Shared fixtures: a real SQLite file in a tmp dir, migrated, and a ledger on a fixed clock.

Kept small on purpose; anything specific to one module belongs in its test file.

- `db_path`: a path (not yet created) inside the test's tmp dir.
- `clock`: a `FixedClock` at 2023-11-14T22:13:20Z that moves only when told to.
- `conn`: `eventlog.db.connect(db_path)` with every migration applied; closed after.
- `ledger`: a `Ledger` on `conn` and `clock`, no hooks.
- `run_cli`: runs `python cli.py ...` as a real subprocess (cwd: the tmp dir).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator, Mapping

import apsw
import pytest

from eventlog.clock import FixedClock
from eventlog.ledger.db import connect
from eventlog.ledger.store import Ledger
from eventlog.ledger.migrate import migrate
from eventlog.config.settings import FIELDS

REPO_ROOT = Path(__file__).resolve().parent.parent
START = 1_700_000_000.0  # 2023-11-14T22:13:20Z

# The settings of the machine running the tests must not leak into CLI runs.
_SETTINGS_ENV = frozenset(var for var, _, _ in FIELDS.values())


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "chledger.db"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def conn(db_path: Path, clock: FixedClock) -> Iterator[apsw.Connection]:
    c = connect(db_path)
    migrate(c, clock)
    yield c
    c.close()


@pytest.fixture
def ledger(conn: apsw.Connection, clock: FixedClock) -> Ledger:
    return Ledger(conn, clock)


CliRunner = Callable[..., subprocess.CompletedProcess]


@pytest.fixture
def run_cli(tmp_path: Path) -> CliRunner:
    """`run_cli("migrate", "--db", path, env={...}, prefix=[...])` → CompletedProcess (text).

    The child runs in the test's `tmp_path` (so a default `companies.db` lands
    there, never in the checkout) with the settings variables of the outer
    environment removed, plus `env`. `prefix` wraps the command (e.g. `unshare ...`).
    """

    def run(*args: str | os.PathLike[str], env: Mapping[str, str] | None = None,
            prefix: list[str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        child_env = {k: v for k, v in os.environ.items() if k not in _SETTINGS_ENV}
        child_env.update(env or {})
        cmd = [*(prefix or []), sys.executable, str(REPO_ROOT / "cli.py"), *map(str, args)]
        return subprocess.run(cmd, cwd=tmp_path, env=child_env, capture_output=True,
                              text=True, timeout=timeout)

    return run
