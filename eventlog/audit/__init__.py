"""The audit: proves from the ledger alone that the key kept to its rate limit.

`audit(db_path, ...)` returns a `Report`; `summary` and `to_json` render it. What it checks and
how: `run.py`; the report and its JSON keys: `report.py` and `report.md`.
"""

from eventlog.audit.report import Report, summary, to_json
from eventlog.audit.run import audit

__all__ = ["audit", "Report", "summary", "to_json"]
