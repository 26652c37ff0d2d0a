-- Outgoing webhook deliveries: the queue and its log. Released: never edit.
CREATE TABLE server_webhook_deliveries (
    id              INTEGER PRIMARY KEY,
    event           TEXT NOT NULL,             -- e.g. hazard.escalated, overdue.digest
    body            TEXT NOT NULL,             -- the JSON sent, signed as is
    created_ms      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    last_status     INTEGER,                   -- HTTP status of the last attempt
    last_error      TEXT,
    delivered_ms    INTEGER                    -- NULL until a 2xx answer
);
CREATE INDEX server_webhook_pending ON server_webhook_deliveries (next_attempt_ms)
    WHERE delivered_ms IS NULL;
