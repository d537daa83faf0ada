-- Read models rebuilt from event_log by projections/. Names follow the original schemas, so existing SQL keeps working.

CREATE TABLE companies (
    company_number TEXT PRIMARY KEY,
    company_name TEXT,
    company_status TEXT,
    company_status_detail TEXT,
    company_type TEXT,
    jurisdiction TEXT,
    date_of_creation TEXT,
    registered_office_address TEXT,      -- JSON
    sic_codes TEXT,                      -- JSON array
    etag TEXT,
    deleted INTEGER NOT NULL DEFAULT 0,
    -- streaming metadata (the original streaming schema)
    stream_last_updated TEXT,            -- the event's published_at
    stream_event_id TEXT,                -- ledger event_id, e.g. companies:68805561
    stream_event_type TEXT,              -- changed / deleted
    stream_timepoint INTEGER,
    stream_processing_status TEXT DEFAULT 'pending',
    stream_status TEXT DEFAULT 'unknown',
    data_source TEXT DEFAULT 'bulk',     -- bulk / stream / both
    last_stream_event_id TEXT,
    stream_metadata TEXT,                -- JSON
    rest_fetched_at TEXT,
    updated_at TEXT
);
CREATE INDEX idx_companies_stream_status ON companies(stream_processing_status);
CREATE INDEX idx_companies_stream_updated ON companies(stream_last_updated);
CREATE INDEX idx_companies_status_detail ON companies(company_status_detail);

CREATE TABLE officers (
    id INTEGER PRIMARY KEY,
    company_number TEXT NOT NULL,
    officer_id TEXT,                     -- from links.officer.appointments
    name TEXT,
    officer_role TEXT,
    appointed_on TEXT,
    resigned_on TEXT,
    nationality TEXT,
    occupation TEXT,
    country_of_residence TEXT,
    date_of_birth_month INTEGER,
    date_of_birth_year INTEGER,
    address TEXT,                        -- JSON
    fetched_at TEXT,
    request_id TEXT
);
CREATE INDEX idx_officers_company ON officers(company_number);
CREATE INDEX idx_officers_officer ON officers(officer_id);

-- The original schema, exactly.
CREATE TABLE company_processing_state (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    company_number TEXT NOT NULL,
    processing_state TEXT NOT NULL DEFAULT 'detected',
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    status_queued_at TIMESTAMP NULL,
    status_fetched_at TIMESTAMP NULL,
    officers_queued_at TIMESTAMP NULL,
    officers_fetched_at TIMESTAMP NULL,
    completed_at TIMESTAMP NULL,
    status_retry_count INTEGER DEFAULT 0,
    officers_retry_count INTEGER DEFAULT 0,
    status_request_id TEXT NULL,
    officers_request_id TEXT NULL,
    last_error TEXT NULL,
    last_error_at TIMESTAMP NULL,
    last_429_response_at TIMESTAMP NULL,
    rate_limit_violations INTEGER DEFAULT 0,
    FOREIGN KEY (company_number) REFERENCES companies(company_number),
    UNIQUE(company_number)
);
CREATE INDEX idx_company_processing_state_status ON company_processing_state(processing_state);
CREATE INDEX idx_company_processing_state_updated ON company_processing_state(updated_at);
CREATE INDEX idx_company_processing_state_company ON company_processing_state(company_number);
CREATE INDEX idx_company_processing_state_requests ON company_processing_state(status_request_id, officers_request_id);
CREATE INDEX idx_company_processing_state_violations ON company_processing_state(rate_limit_violations, last_429_response_at);

-- The original schema, exactly. id = the ledger position of the request.sent entry;
-- response_status is 0 until the response (or 429, or transport error) is appended.
CREATE TABLE api_rate_limit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    request_type TEXT NOT NULL,
    response_status INTEGER NOT NULL,
    company_number TEXT NULL,
    request_id TEXT NULL,
    processing_time_ms INTEGER NULL
);
CREATE INDEX idx_api_rate_limit_timestamp ON api_rate_limit_log(timestamp);
CREATE INDEX idx_api_rate_limit_status ON api_rate_limit_log(response_status);

CREATE TABLE stream_metadata (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_type TEXT NOT NULL UNIQUE,    -- the stream path, e.g. companies
    last_event_id TEXT,
    last_timepoint INTEGER,
    last_processed_timestamp TEXT,
    connection_status TEXT DEFAULT 'disconnected',
    error_count INTEGER DEFAULT 0,
    reconnect_count INTEGER DEFAULT 0,
    gap_count INTEGER DEFAULT 0,
    last_error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- The queue: request.queued entries not yet finished.
CREATE TABLE request_queue (
    request_id TEXT PRIMARY KEY,
    company_number TEXT NOT NULL,
    kind TEXT NOT NULL,
    priority INTEGER NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 1,
    not_before TEXT,
    queued_at TEXT NOT NULL,
    queued_position INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'queued',  -- queued / in_flight
    cause TEXT,
    batch_id TEXT
);
CREATE INDEX idx_request_queue_next ON request_queue(status, priority, queued_position);
CREATE INDEX idx_request_queue_company ON request_queue(company_number, kind);

-- The original batch shapes, carrying backfill batches.
CREATE TABLE processing_batches (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    total_jobs INTEGER NOT NULL,
    completed_jobs INTEGER DEFAULT 0,
    failed_jobs INTEGER DEFAULT 0,
    status TEXT DEFAULT 'pending',       -- pending|processing|completed|failed|partial|cancelled
    created_at TEXT,
    started_at TEXT,
    completed_at TEXT,
    expires_at TEXT,
    last_event_id INTEGER DEFAULT 0      -- ledger position, for SSE resumption
);
CREATE INDEX idx_batches_status ON processing_batches(status);
CREATE INDEX idx_batches_created ON processing_batches(created_at);
CREATE INDEX idx_batches_expires ON processing_batches(expires_at);

CREATE TABLE batch_jobs (
    id TEXT PRIMARY KEY,
    batch_id TEXT NOT NULL REFERENCES processing_batches(id) ON DELETE CASCADE,
    sequence INTEGER NOT NULL,
    company_number TEXT NOT NULL,
    status TEXT DEFAULT 'pending',       -- pending|processing|completed|failed|cancelled
    stage TEXT,                          -- queued|status|officers|done
    progress_message TEXT,
    error_message TEXT,
    error_code TEXT,                     -- RATE_LIMIT|TIMEOUT|NETWORK_ERROR|NOT_FOUND|...
    retry_count INTEGER DEFAULT 0,
    created_at TEXT,
    started_at TEXT,
    completed_at TEXT
);
CREATE INDEX idx_jobs_batch ON batch_jobs(batch_id, sequence);
CREATE INDEX idx_jobs_status ON batch_jobs(status) WHERE status IN ('pending', 'processing');
CREATE INDEX idx_jobs_company ON batch_jobs(company_number);
