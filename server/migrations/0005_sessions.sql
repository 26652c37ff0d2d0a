-- Dashboard sessions: each is a device (`web-…`) of its user, with an expiry and the token the
-- page must send back with every change (CSRF). Released: never edit.
CREATE TABLE server_sessions (
    device_id  TEXT PRIMARY KEY REFERENCES server_devices (device_id),
    csrf       TEXT NOT NULL,
    expires_ms INTEGER NOT NULL
) WITHOUT ROWID;
