"""The README is the newcomer's contract: every command is in it, and CI runs its test command."""

from __future__ import annotations

import re
from pathlib import Path

import cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_every_command_is_in_the_readme():
    missing = [name for name in cli.cli.commands if f"python cli.py {name}" not in README]
    assert missing == []


def test_two_commands_and_ci_runs_the_test_one():
    section = README.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)\n```", section, re.S)
    assert len(blocks) == 2
    run, test = blocks
    assert "ingest --simulate" in run and "pip install -e ." in run
    assert "python -m pytest" in test
    ci = (ROOT / ".ci" / "run").read_text()
    # CI installs the same way and runs the same test command
    assert "pip install --quiet -e '.[test]'" in ci and ci.rstrip().endswith("python -m pytest")
