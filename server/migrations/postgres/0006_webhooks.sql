-- Outgoing webhook deliveries, queued and logged once for every instance (webhook_tables.rs).
-- Released: never edit.
CREATE TABLE server_webhook_deliveries (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event           TEXT NOT NULL,
    body            TEXT NOT NULL,
    created_ms      BIGINT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    last_status     INTEGER,
    last_error      TEXT,
    delivered_ms    BIGINT
);
CREATE INDEX server_webhook_pending ON server_webhook_deliveries (next_attempt_ms)
    WHERE delivered_ms IS NULL;
