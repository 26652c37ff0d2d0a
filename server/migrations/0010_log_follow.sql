-- Where this replica stands in a shared PostgreSQL op log (several instances, issue #20): the
-- log's identity and the last position applied, written in the transaction that applied it.
-- Empty on a server whose log is this file. Released: never edit.
CREATE TABLE server_log_follow (
    log_id   TEXT NOT NULL,
    position INTEGER NOT NULL
);
