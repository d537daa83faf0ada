-- The bulk snapshot and the batches it creates.

-- The snapshot a company's row last took its profile from (ISO date), so a stream event
-- published before that day (or an older snapshot) never overwrites it, and the snapshot never
-- overwrites stream or REST data newer than itself.
ALTER TABLE companies ADD COLUMN bulk_snapshot_date TEXT;

-- Jobs of a cancelled batch that were dropped before they finished.
ALTER TABLE processing_batches ADD COLUMN cancelled_jobs INTEGER DEFAULT 0;

-- One row per imported snapshot file: its SHA-256 is what makes a second import of the same
-- file a no-op. A projection of bulk.snapshot entries.
CREATE TABLE bulk_snapshots (
    sha256 TEXT PRIMARY KEY,
    file_name TEXT NOT NULL,
    snapshot_date TEXT,
    part INTEGER,
    parts INTEGER,
    rows_read INTEGER NOT NULL,
    rows_kept INTEGER NOT NULL,
    position INTEGER NOT NULL,             -- the bulk.snapshot entry's ledger position
    imported_at TEXT NOT NULL
) WITHOUT ROWID;
