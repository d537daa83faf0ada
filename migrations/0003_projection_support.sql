-- What projections/ needs beyond the read models of 0002.

-- State a projector carries from one batch to the next, rebuilt by replay with its
-- projection (e.g. the interest predicate of the latest worker.started), so live
-- and replay agree without reading any setting.
CREATE TABLE projection_vars (
    projection TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (projection, key)
);

-- A response is matched to its request.sent row by request id.
CREATE INDEX idx_api_rate_limit_request ON api_rate_limit_log(request_id);

-- The original stream_events_log, as a view over the ledger: the ledger already
-- holds every event once, and projections run inside the append transaction, so an
-- event is processed when it is received; a line that could not be read is failed.
CREATE VIEW stream_events_log AS
SELECT id,
       event_id,
       event_type,
       company_number,
       event_data,
       CASE event_type WHEN 'stream.rejected' THEN 'failed' ELSE 'processed' END AS processing_status,
       CASE event_type WHEN 'stream.rejected' THEN json_extract(event_data, '$.reason') END AS error_message,
       received_at,
       received_at AS processed_at
FROM event_log
WHERE event_type IN ('stream.event', 'stream.rejected');
