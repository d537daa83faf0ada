-- Erasure without breaking the chain: what lives outside the hash chain on purpose.
--
-- Personal fields of ledger entries are sealed (AES-256-GCM) under one key per person. The keys
-- live here, not in event_log, so deleting one (`forget`) makes that person's sealed fields
-- unreadable for ever while every ledger row, and so the hash chain, stays exactly as written.
-- Replay never writes these tables; projectors only read them. WITHOUT ROWID keeps each key in
-- one b-tree cell, so a delete under `PRAGMA secure_delete` zeroes the only copy in the file.
CREATE TABLE person_keys (
    subject TEXT PRIMARY KEY,            -- officer:<officer id>, email:<sha256>, appointment:<id>, item:<sha256>
    key BLOB NOT NULL,                   -- 32 random bytes (AES-256)
    created_at TEXT NOT NULL             -- ISO 8601 UTC, when the first entry needing it was appended
) WITHOUT ROWID;

-- Subjects that were forgotten: never given a key again (a later fetch of the same person is
-- stored already erased), and the redaction list for payloads written in plaintext before
-- sealing existed (projections and exports treat them as erased; their bytes stay in event_log).
-- It holds subjects only, never a name or an e-mail address.
CREATE TABLE forgotten_subjects (
    subject TEXT PRIMARY KEY,
    forgotten_at TEXT NOT NULL           -- ISO 8601 UTC
) WITHOUT ROWID;
