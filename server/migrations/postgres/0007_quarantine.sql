-- Ops stamped too far in the future, held for every instance until the clock catches up or an
-- admin releases them (quarantine_tables.rs; rules in sync.rs). Released: never edit.
CREATE TABLE server_quarantine (
    device_id   TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    hlc         BIGINT NOT NULL,
    received_ms BIGINT NOT NULL,
    op          TEXT NOT NULL,            -- the op as JSON
    PRIMARY KEY (device_id, seq)
);
