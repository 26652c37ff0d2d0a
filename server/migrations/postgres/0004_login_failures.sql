-- Failed sign-ins counted per user name and per client address, shared by every instance (so
-- a guesser gains nothing by spreading attempts over instances). Rule: login.rs. Released:
-- never edit.
CREATE TABLE login_failures (
    key      TEXT PRIMARY KEY,           -- 'user:NAME' or 'addr:ADDRESS'
    count    INTEGER NOT NULL,
    since_ms BIGINT NOT NULL             -- the window's start, on the database's clock
);
-- Windows long over are dropped as attempts come (a flood of made-up names cannot grow it).
CREATE INDEX login_failures_by_start ON login_failures (since_ms);

-- Milliseconds since the epoch on the database's clock: one clock for every instance.
CREATE FUNCTION now_ms() RETURNS BIGINT LANGUAGE sql VOLATILE
    AS $$ SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint $$;
