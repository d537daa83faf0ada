-- What the real Companies House does that the first simulator didn't.

-- An appointment's status as Companies House means it: active, resigned (it has a resigned_on),
-- or inactive (no resigned_on, but the company is dissolved, closed or converted-closed, so its
-- formerly active officers are not current). projections/projectors/officers.py writes it and
-- exports current_condition() for every reader that wants current officers.
ALTER TABLE officers ADD COLUMN status TEXT;

-- 1 when the company's latest profile had no links.officers: there is nothing to fetch (a call
-- would be a wasted 404), and the policy records a NO_OFFICERS_LINK completion instead.
ALTER TABLE company_processing_state ADD COLUMN no_officers_link INTEGER NOT NULL DEFAULT 0;

-- When each stream last spoke (an event or a connection): the dark horizon is measured from it.
ALTER TABLE stream_metadata ADD COLUMN last_heard_at TEXT;

-- Every 416 gap: what the stream lost for good, until a bulk snapshot newer than it reconciles it.
CREATE TABLE stream_gaps (
    position INTEGER PRIMARY KEY,        -- the stream.gap entry's ledger position
    stream TEXT NOT NULL,
    requested_timepoint INTEGER,
    gap_at TEXT NOT NULL,                -- received_at of the stream.gap entry
    reason TEXT,
    reconciled_at TEXT,                  -- received_at of the stream.gaps_reconciled entry, or NULL
    reconciled_by TEXT                   -- the snapshot's file name(s)
);
CREATE INDEX idx_stream_gaps_open ON stream_gaps(reconciled_at);

-- The audit reads the gaps and their reconciliations from the ledger alone (it trusts no
-- projection); this keeps that read off a scan of the whole ledger.
CREATE INDEX idx_event_log_gaps ON event_log(id) WHERE event_type IN ('stream.gap', 'stream.gaps_reconciled');
