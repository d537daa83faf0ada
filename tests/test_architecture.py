"""The architecture as written down: the import rules of pyproject.toml hold, and the repository
speaks of itself alone.

`lint-imports` checks the contracts (layers, the audit's independence, who may start a simulator,
who may talk to the terminal, no cycles); a violation fails the suite, so it fails CI.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "broken" not in result.stdout.lower().split("contracts:")[-1].split("kept")[0]


def test_only_cli_py_imports_click_among_top_level_modules():
    for path in REPO.glob("*.py"):
        if path.name in ("cli.py", "setup.py"):
            continue
        assert "import click" not in path.read_text(), path


# Built from pieces, so this file does not match itself: the repository speaks for itself.
_OUTSIDE = re.compile("|".join([r"[Ss]eeds? 00\d", "the " + "seeds", "DESIGN" + r"\.md", "stream-" + "samples",
                                "/" + "shared/"]))


def test_code_help_and_docs_point_at_nothing_outside_the_repository():
    places = [REPO / "cli.py", REPO / "README.md", *(REPO / "eventlog").rglob("*.py"),
              *(REPO / "eventlog").rglob("*.md"), *(REPO / "projections").rglob("*.py"),
              *(REPO / "docs").rglob("*.md"), *(REPO / "migrations").glob("*.sql"),
              *(REPO / "benchmarks").glob("*.*"), REPO / "render.yaml", REPO / "pyproject.toml",
              *REPO.glob("*.md"), *(REPO / "tests").rglob("*.py"), *(REPO / "tests").rglob("*.md")]
    found = [f"{p.relative_to(REPO)}:{n}: {line.strip()}" for p in places
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if _OUTSIDE.search(line)]
    assert not found, "\n".join(found)
