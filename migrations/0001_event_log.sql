-- The ledger: append-only, hash-chained, id = global position.
CREATE TABLE event_log (
    id INTEGER PRIMARY KEY,              -- global position, assigned by the appender
    event_id TEXT NOT NULL UNIQUE,       -- idempotency key, e.g. companies:68805561
    event_type TEXT NOT NULL,            -- the entry's tag, e.g. stream.event
    company_number TEXT,
    event_data TEXT NOT NULL,            -- the entry as msgspec JSON
    received_at TEXT NOT NULL,           -- ISO 8601 UTC, 2026-11-23T00:17:36.123456Z
    hash BLOB NOT NULL                   -- sha256(previous hash || canonical entry)
);

CREATE TRIGGER event_log_no_update BEFORE UPDATE ON event_log
BEGIN
    SELECT RAISE(ABORT, 'event_log is append-only: UPDATE rejected');
END;

CREATE TRIGGER event_log_no_delete BEFORE DELETE ON event_log
BEGIN
    SELECT RAISE(ABORT, 'event_log is append-only: DELETE rejected');
END;

-- Where each projection has got to; written in the same transaction as its rows.
CREATE TABLE projection_state (
    name TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    position INTEGER NOT NULL DEFAULT 0
);
