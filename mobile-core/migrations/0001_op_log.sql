-- The op log: every op this replica holds, in arrival order. Released: never edit.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- Device ids are long strings; ops refer to them by a small local number.
CREATE TABLE devices (
    device_no INTEGER PRIMARY KEY,
    device_id TEXT NOT NULL UNIQUE
);

CREATE TABLE ops (
    id        INTEGER PRIMARY KEY,   -- local arrival order (the server's pull cursor)
    device_no INTEGER NOT NULL REFERENCES devices (device_no),
    seq       INTEGER NOT NULL,
    hlc       INTEGER NOT NULL,
    author    TEXT NOT NULL,
    schema    INTEGER NOT NULL,
    wall_ms   INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    data      TEXT NOT NULL,
    applied   INTEGER NOT NULL,      -- 0: kept but not understood by this version
    UNIQUE (device_no, seq)
);
CREATE INDEX ops_deferred ON ops (applied) WHERE applied = 0;
