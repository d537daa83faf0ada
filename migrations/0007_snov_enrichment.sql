-- Enrichment through Snov.io: its own rate-limit log, its lookup tasks, and what they found.
-- All four tables are projections of the ledger's snov.* entries: `replay` rebuilds them.

-- One row per Snov.io request (token, balance, start, poll), as api_rate_limit_log is for
-- Companies House: id = the ledger position of its snov.sent, written before the request goes
-- out, so the enrichment limiter counts it at once. `outcome` is NULL while it is on its way.
CREATE TABLE snov_request_log (
    id INTEGER PRIMARY KEY,
    timestamp TEXT NOT NULL,             -- ISO 8601 UTC, when it was counted (before the send)
    call TEXT NOT NULL,                  -- token, balance, domains_start, domains_poll, emails_start, emails_poll
    request_id TEXT NOT NULL,
    task_id TEXT,                        -- the lookup task of a start or a poll
    response_status INTEGER NOT NULL DEFAULT 0,  -- HTTP status; 0 until answered, and for no answer
    outcome TEXT,                        -- ok, in_progress, not_enough_credits, unauthorized, rate_limited, ...
    processing_time_ms INTEGER,
    cooldown_until TEXT                  -- a 429's or 5xx's: no request before this time
);
CREATE INDEX idx_snov_request_log_timestamp ON snov_request_log(timestamp);
CREATE INDEX idx_snov_request_log_request ON snov_request_log(request_id);
CREATE INDEX idx_snov_request_log_waiting ON snov_request_log(timestamp) WHERE outcome IS NULL;
CREATE INDEX idx_snov_request_log_cooldown ON snov_request_log(timestamp) WHERE cooldown_until IS NOT NULL;

-- One row per lookup task (one start of up to 10 names or rows, and its polls).
CREATE TABLE snov_tasks (
    task_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,                  -- domains or emails
    state TEXT NOT NULL,                 -- starting, polling, completed, not_enough_credits, refused, lost
    task_hash TEXT,
    items TEXT NOT NULL,                 -- the start's items as recorded (names of people sealed)
    item_count INTEGER NOT NULL,
    worst_credits INTEGER NOT NULL,      -- the most the task can cost, reserved while it runs
    credits INTEGER NOT NULL DEFAULT 0,  -- what it cost (completed), or the worst case (lost)
    polls INTEGER NOT NULL DEFAULT 0,
    started_at TEXT NOT NULL,
    last_poll_at TEXT,
    finished_at TEXT,
    error TEXT
);
CREATE INDEX idx_snov_tasks_state ON snov_tasks(state);

-- One row per company looked up (or that took the answer of a company with the same name).
CREATE TABLE domains (
    company_number TEXT PRIMARY KEY,
    company_name TEXT NOT NULL,          -- as asked
    name_key TEXT NOT NULL,              -- the name as compared: case, accents and spacing don't count
    state TEXT NOT NULL,                 -- looking_up, found, none, missing, ambiguous, lost, not_enough_credits, refused
    domain TEXT,
    task_id TEXT,
    source_company TEXT,                 -- the company whose lookup answered for this one, if another
    requested_at TEXT NOT NULL,
    answered_at TEXT
);
CREATE INDEX idx_domains_name_key ON domains(name_key);
CREATE INDEX idx_domains_task ON domains(task_id);
CREATE INDEX idx_domains_state ON domains(state);

-- One row per e-mail found for an officer on a domain; a lookup that found none (or is still
-- running) keeps one row with a NULL email. The address is personal: rewritten as erased when
-- the officer is forgotten.
CREATE TABLE emails (
    id INTEGER PRIMARY KEY,
    officer_id TEXT NOT NULL,
    company_number TEXT NOT NULL,        -- the company the officer was looked up for
    domain TEXT NOT NULL,
    state TEXT NOT NULL,                 -- looking_up, found, none, missing, ambiguous, lost, not_enough_credits, refused
    email TEXT,
    smtp_status TEXT,                    -- valid, unknown, not_valid, ...
    is_valid_format INTEGER,
    is_disposable INTEGER,
    is_webmail INTEGER,
    is_gibberish INTEGER,
    unknown_status_reason TEXT,
    task_id TEXT,
    requested_at TEXT NOT NULL,
    answered_at TEXT
);
CREATE INDEX idx_emails_officer ON emails(officer_id, domain);
CREATE INDEX idx_emails_task ON emails(task_id);
CREATE INDEX idx_emails_state ON emails(state);

-- The audit reads Snov.io's entries without walking the whole ledger a second time.
CREATE INDEX idx_event_log_snov ON event_log(id) WHERE event_type GLOB 'snov.*';
