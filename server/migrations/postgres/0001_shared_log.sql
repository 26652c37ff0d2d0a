-- PostgreSQL: the op log several server instances share, and the record of jobs that run
-- once per period. Numbered like the SQLite migrations; released: never edit.

CREATE TABLE server_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- The log's identity: a replica records it beside its position, so it never follows another
-- database's log from a position that means something else there.
INSERT INTO server_meta (key, value) VALUES ('log_id', gen_random_uuid()::text);

-- The op log in the order phones pull it. `position` is the pull cursor: given under a
-- transaction-scoped advisory lock, so positions commit in the order they are given and a
-- reader never sees a gap that a slower transaction fills later (see postgres/log.rs).
-- `data` is kept as text, byte for byte as the phone's core encoded it: a resent op is
-- compared with what is held, and the chain is taken over it.
CREATE TABLE ops (
    position    BIGINT PRIMARY KEY,
    device_id   TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    hlc         BIGINT NOT NULL,
    author      TEXT NOT NULL,
    schema      INTEGER NOT NULL,
    wall_ms     BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    data        TEXT NOT NULL,
    received_ms BIGINT NOT NULL,
    -- The premises the op is about and the grid it is filed under (NULL: only admins see it).
    premises_id TEXT,
    grid_id     TEXT,
    -- Digest chained over every op before it (db::chain_next), checked beside a cursor.
    chain       BYTEA NOT NULL,
    -- Set aside by the instance that took the push (refused for its author, e.g. outside the
    -- author's grids): kept, never applied, not pulled by phones. NULL: applied.
    aside_code       TEXT,
    aside_message    TEXT,
    aside_message_en TEXT,
    UNIQUE (device_id, seq)
);
CREATE INDEX ops_by_grid ON ops (grid_id, position);

-- Jobs that must run once per period across instances (escalation, the digest, backups...):
-- a run claims its (job, period) in the transaction that does its work, so a run that dies
-- leaves nothing claimed and another instance runs the period; one that commits is the only one.
CREATE TABLE job_runs (
    job      TEXT NOT NULL,
    period   TEXT NOT NULL,
    instance TEXT NOT NULL,
    ran_ms   BIGINT NOT NULL,
    PRIMARY KEY (job, period)
);
