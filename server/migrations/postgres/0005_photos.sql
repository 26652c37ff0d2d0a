-- Verified photos' records, shared by every instance (the pictures are in the bucket). Which
-- premises refer to a photo is derived from the op log by each instance's replica. Released:
-- never edit.
CREATE TABLE server_photos (
    sha256      TEXT PRIMARY KEY,
    bytes       BIGINT NOT NULL,
    width       INTEGER NOT NULL,
    height      INTEGER NOT NULL,
    uploaded_by TEXT NOT NULL,
    uploaded_ms BIGINT NOT NULL
);
