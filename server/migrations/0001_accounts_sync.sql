-- The server's own tables, beside the replica's (prefixed server_). Released: never edit.

CREATE TABLE server_users (
    id            TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('worker', 'supervisor', 'admin')),
    password_hash TEXT NOT NULL,          -- argon2id, PHC string
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_ms    INTEGER NOT NULL
);

-- Grids (网格) with the community (社区) and sub-district (街道) they belong to. `epoch`
-- changes when premises move into the grid, so phones covering it pull again from the start.
CREATE TABLE server_grids (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    community   TEXT NOT NULL DEFAULT '',
    subdistrict TEXT NOT NULL DEFAULT '',
    epoch       INTEGER NOT NULL DEFAULT 0
);

-- What a user covers: grids, whole communities or whole sub-districts.
CREATE TABLE server_user_areas (
    user_id TEXT NOT NULL REFERENCES server_users (id),
    level   TEXT NOT NULL CHECK (level IN ('grid', 'community', 'subdistrict')),
    area    TEXT NOT NULL,
    PRIMARY KEY (user_id, level, area)
) WITHOUT ROWID;

-- Enrolled phones. The token itself is never stored, only its SHA-256.
CREATE TABLE server_devices (
    device_id   TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES server_users (id),
    name        TEXT,
    token_hash  TEXT NOT NULL UNIQUE,
    enrolled_ms INTEGER NOT NULL,
    revoked     INTEGER NOT NULL DEFAULT 0
);

-- Pull index: the premises each op in the log is about and the grid it is filed under
-- (NULL: only admins see it), and when the server received it (evidence beside the device's
-- own wall time). When premises move to another grid, their rows are filed under the new one.
CREATE TABLE server_op_scope (
    op_id       INTEGER PRIMARY KEY,      -- ops.id, the pull cursor
    premises_id TEXT,
    grid_id     TEXT,
    received_ms INTEGER NOT NULL
);
CREATE INDEX server_op_scope_by_grid ON server_op_scope (grid_id, op_id);
-- No index on premises_id: it doubled the cost of a push (measured), and it is only read when
-- premises move to another grid, which is rare and may scan.

-- Ops stamped too far in the future: stored (and acknowledged) but not applied until the
-- server's clock catches up or an admin releases them. Later ops of the same device wait too,
-- so a device's ops are always applied in seq order.
CREATE TABLE server_quarantine (
    device_id   TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    hlc         INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    op          TEXT NOT NULL,            -- the op as JSON
    PRIMARY KEY (device_id, seq)
) WITHOUT ROWID;
