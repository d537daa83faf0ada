"""The key vault: one random AES-256 key per person, kept outside the hash chain.

`person_keys` and `forgotten_subjects` (migration 0005) are the only state erasure needs beyond
the ledger. A key is created inside the caller's open transaction, the one that appends the
entry it seals, so the key and the ciphertext commit together or not at all: never a sealed
entry whose key was rolled back, never a key for an entry that was not written.

A `KeyVault` caches nothing. A worker that kept keys in memory would go on decrypting a person
that `forget` (another process) has just erased, and write them back into its tables; reading
the row each time, inside the transaction, sees a delete as soon as it commits. The one SELECT
by primary key costs a few microseconds (benchmarks/privacy.py). Callers that want to avoid
repeating it within one transaction (`Sealer`, `Opener`) cache for that transaction only.
"""

from __future__ import annotations

import os

import apsw

from eventlog.privacy.errors import TransactionNeeded

__all__ = ["KeyVault", "KEY_BYTES"]

KEY_BYTES = 32  # AES-256


class KeyVault:
    """Reads and writes `person_keys` and `forgotten_subjects` of one connection."""

    __slots__ = ("conn",)

    def __init__(self, conn: apsw.Connection):
        self.conn = conn

    # --- keys -----------------------------------------------------------------------

    def key(self, subject: str) -> bytes | None:
        row = self.conn.execute("SELECT key FROM person_keys WHERE subject = ?", (subject,)).fetchone()
        return bytes(row[0]) if row else None

    def create(self, subject: str, created_at: str) -> bytes:
        """A new random key for `subject`, inside the caller's transaction; the existing one if
        there is one (two appends for one person share a key)."""
        self._require_transaction("creating a key")
        key = os.urandom(KEY_BYTES)
        self.conn.execute("INSERT OR IGNORE INTO person_keys(subject, key, created_at) VALUES (?, ?, ?)",
                          (subject, key, created_at))
        if self.conn.changes() == 0:
            return self.key(subject)  # type: ignore[return-value]  # there is one: the row exists
        return key

    def delete(self, subject: str) -> bool:
        """Delete the subject's key; whether there was one. The caller turns secure_delete on."""
        self._require_transaction("deleting a key")
        self.conn.execute("DELETE FROM person_keys WHERE subject = ?", (subject,))
        return self.conn.changes() > 0

    def count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM person_keys").fetchone()[0])

    # --- the forgotten list ----------------------------------------------------------

    def is_forgotten(self, subject: str) -> bool:
        return self.conn.execute("SELECT 1 FROM forgotten_subjects WHERE subject = ?",
                                 (subject,)).fetchone() is not None

    def forgotten(self) -> frozenset[str]:
        """Every forgotten subject: few (one per erasure request), so read whole once per batch."""
        return frozenset(r[0] for r in self.conn.execute("SELECT subject FROM forgotten_subjects"))

    def mark_forgotten(self, subject: str, at: str) -> bool:
        """List the subject as forgotten; whether it was new (forgetting twice changes nothing)."""
        self._require_transaction("listing a forgotten subject")
        self.conn.execute("INSERT OR IGNORE INTO forgotten_subjects(subject, forgotten_at) VALUES (?, ?)",
                          (subject, at))
        return self.conn.changes() > 0

    def _require_transaction(self, what: str) -> None:
        if self.conn.getautocommit():
            raise TransactionNeeded(f"{what} needs the caller's open transaction (BEGIN IMMEDIATE), so that "
                                    "it commits with the ledger entry it belongs to")
