"""Helpers shared by tests in several folders (the fixtures themselves are in tests/conftest.py).

`tests/conftest.py` puts `tests/` on `sys.path`, so any test imports these as `support.<name>`.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # the checkout: cli.py, README.md, docs/
