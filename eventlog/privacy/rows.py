"""Rewriting the rows of a forgotten officer with the erased values.

The officers projector calls this when it meets a `person.forgotten` entry, live and in replay:
live it overwrites the plaintext the rows held (under the secure_delete that
`forget_in_transaction` turned on, so the old bytes are zeroed); in replay the rows were built
from erased envelopes already and it changes nothing. Either way the table ends the same.
"""

from __future__ import annotations

import apsw

from eventlog.privacy.fields import ERASED_OFFICER_COLUMNS

__all__ = ["erase_officer_rows"]


def erase_officer_rows(conn: apsw.Connection, subject: str, table: str = "officers") -> int:
    """Set the personal columns of the subject's rows to `ERASED_OFFICER_COLUMNS`; rows changed.

    Rows are found by `officer_id` for an `officer:` subject, and by a `subject` column for the
    others when the table has one (items without an officer id can't be found otherwise)."""
    kind, _, rest = subject.partition(":")
    cols = {row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')}
    if kind == "officer":
        where, value = "officer_id = ?", rest
    elif "subject" in cols:
        where, value = "subject = ?", subject
    else:
        return 0
    sets = [c for c in ERASED_OFFICER_COLUMNS if c in cols]
    conn.execute(f'UPDATE "{table}" SET {", ".join(c + " = ?" for c in sets)} WHERE {where}',
                 (*(ERASED_OFFICER_COLUMNS[c] for c in sets), value))
    return conn.changes()
