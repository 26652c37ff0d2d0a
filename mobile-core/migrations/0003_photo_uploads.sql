-- Photos this device recorded that the server has not yet verified: the upload queue, kept
-- apart from the op outbox (photos are large and may go later, e.g. on Wi-Fi). A row is
-- deleted once the server has verified the photo. Released: never edit.
CREATE TABLE photo_uploads (
    sha256     TEXT PRIMARY KEY,
    queued_ms  INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    refused    INTEGER NOT NULL DEFAULT 0   -- 1: the server refused it for good; not retried
) WITHOUT ROWID;
