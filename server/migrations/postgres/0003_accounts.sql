-- Accounts on PostgreSQL, the same rows as the SQLite server's (server/migrations 0001, 0005,
-- 0007, 0008, 0009), reached through account_tables.rs. Released: never edit.

CREATE TABLE server_users (
    id            TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('worker', 'supervisor', 'admin')),
    password_hash TEXT NOT NULL,          -- argon2id, PHC string
    disabled      BOOLEAN NOT NULL DEFAULT false,
    created_ms    BIGINT NOT NULL,
    reminders     BOOLEAN NOT NULL DEFAULT true,
    phone         TEXT
);

CREATE TABLE server_grids (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    community   TEXT NOT NULL DEFAULT '',
    subdistrict TEXT NOT NULL DEFAULT '',
    epoch       BIGINT NOT NULL DEFAULT 0,
    geometry    TEXT
);

CREATE TABLE server_user_areas (
    user_id TEXT NOT NULL REFERENCES server_users (id),
    level   TEXT NOT NULL CHECK (level IN ('grid', 'community', 'subdistrict')),
    area    TEXT NOT NULL,
    PRIMARY KEY (user_id, level, area)
);

-- `device_no`: the device's number (its short code on notices): unique, never reused, as the
-- SQLite row id is.
CREATE TABLE server_devices (
    device_no   BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    device_id   TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES server_users (id),
    name        TEXT,
    token_hash  TEXT NOT NULL UNIQUE,
    enrolled_ms BIGINT NOT NULL,
    revoked     BOOLEAN NOT NULL DEFAULT false
);

CREATE TABLE server_sessions (
    device_id  TEXT PRIMARY KEY REFERENCES server_devices (device_id),
    csrf       TEXT NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX server_sessions_by_expiry ON server_sessions (expires_ms);
