"""Render RELIABILITY.md from one run of tests/reliability (counts written by the tests themselves).

    python tests/reliability/render.py                  # the CI sizes (about a minute)
    CHLEDGER_SOAK=1 python tests/reliability/render.py  # the soak sizes

It runs the folder with CHLEDGER_RELIABILITY_RESULTS pointing at a scratch file, which each test
appends its row to once its checks have passed, and writes the table only if every test passed.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXTRA = ("fault", "injected", "lost", "duplicates", "breaches", "soak", "command")


def main() -> int:
    with tempfile.TemporaryDirectory() as scratch:
        results = Path(scratch) / "rows.jsonl"
        started = time.monotonic()
        ran = subprocess.run([sys.executable, "-m", "pytest", "tests/reliability", "-p", "no:cacheprovider", "-n", "0"],
                             cwd=ROOT, env={**os.environ, "CHLEDGER_RELIABILITY_RESULTS": str(results)})
        seconds = time.monotonic() - started
        if ran.returncode != 0:
            print(f"chledger: tests/reliability failed (exit {ran.returncode}); RELIABILITY.md not written",
                  file=sys.stderr)
            return 1
        rows = [json.loads(line) for line in results.read_text().splitlines()]
    soak = os.environ.get("CHLEDGER_SOAK") == "1"
    out = [
        "# Reliability",
        "",
        "What the real worker survives, from one run of `tests/reliability`",
        f"({'soak' if soak else 'CI'} sizes, {len(rows)} rows, {seconds:.0f} s on {os.cpu_count()} shared cores, "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}).",
        f"Regenerate with `{'CHLEDGER_SOAK=1 ' if soak else ''}python tests/reliability/render.py` "
        "(`python tests/reliability/render.py` for the CI sizes); each row's command runs its test alone.",
        "",
        "*Injected*: how many times the fault was applied in this run. *Lost*: entries or requests the",
        "ledger should hold and does not. *Duplicates*: entries or lookups recorded twice. *Breaches*: a",
        "simulator's limit exceeded, or tampering not caught. Each row is written only after its test's",
        "checks passed, so a row is never clean because a check was skipped.",
        "",
        "| fault | injected | lost | duplicates | breaches | command |",
        "|---|---:|---:|---:|---:|---|",
    ]
    notes = []
    for row in rows:
        out.append(f"| {row['fault']} | {row['injected']:,} | {row['lost']} | {row['duplicates']} | "
                   f"{row['breaches']} | `{row['command']}` |")
        extra = {k: v for k, v in row.items() if k not in EXTRA}
        if extra:
            notes.append(f"- {row['fault']}: " + "; ".join(f"{k.replace('_', ' ')} {v:,}" if isinstance(v, int)
                                                           else f"{k.replace('_', ' ')}: {v}"
                                                           for k, v in extra.items()))
    if notes:
        out += ["", "Figures from the same run:", "", *notes]
    (ROOT / "RELIABILITY.md").write_text("\n".join(out) + "\n")
    print(f"RELIABILITY.md: {len(rows)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
