-- Ops the server set aside: refused for their author (the premises had left the author's
-- grids, say), kept in the op log but not applied, on the author's phone as on the server
-- (ops.applied = 2), so both hold the same state; the reason is kept to show the worker and
-- the supervisors. Released: never edit.
CREATE TABLE set_aside (
    op_id      INTEGER PRIMARY KEY REFERENCES ops (id),
    code       TEXT NOT NULL,
    message    TEXT NOT NULL,
    message_en TEXT NOT NULL
);
