"""What the reliability tests share: the fault counter behind RELIABILITY.md, and the soak switch.

Each test calls `faults.record(fault, injected=..., lost=..., duplicates=..., breaches=...)` once
its checks have passed; with CHLEDGER_RELIABILITY_RESULTS set to a file, the counts are appended
there as JSON lines, and `tests/reliability/render.py` turns them into RELIABILITY.md. The counts
are only written after the assertions, so a failing test never reports a clean row.

CHLEDGER_SOAK=1 runs the long modes (every sync of the power-cut run, more kills, a million events).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

SOAK = os.environ.get("CHLEDGER_SOAK") == "1"


class Faults:
    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid

    def record(self, fault: str, *, injected: int, lost: int = 0, duplicates: int = 0, breaches: int = 0,
               **figures: object) -> None:
        out = os.environ.get("CHLEDGER_RELIABILITY_RESULTS")
        if not out:
            return
        row = {"fault": fault, "injected": injected, "lost": lost, "duplicates": duplicates,
               "breaches": breaches, "soak": SOAK,
               "command": ("CHLEDGER_SOAK=1 " if SOAK else "") + f"python -m pytest '{self.nodeid}'",
               **figures}
        with Path(out).open("a") as f:
            f.write(json.dumps(row) + "\n")


@pytest.fixture
def faults(request: pytest.FixtureRequest) -> Faults:
    return Faults(request.node.nodeid)
