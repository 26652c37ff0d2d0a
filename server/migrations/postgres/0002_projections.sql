-- The state the core derives from the log, for the city's own queries and reports (written by
-- postgres/projections.rs from an instance's replica, never computed in SQL). `position`: the
-- log position the writing replica had reached; rows only move forward. Released: never edit.

CREATE TABLE premises (
    id       TEXT PRIMARY KEY,
    grid_id  TEXT,
    name     TEXT NOT NULL,
    record   JSONB NOT NULL,           -- every field, as the core's Premises serialises
    position BIGINT NOT NULL
);
CREATE INDEX premises_by_grid ON premises (grid_id);

CREATE TABLE inspections (
    id           TEXT PRIMARY KEY,
    premises_id  TEXT NOT NULL,
    inspector    TEXT NOT NULL,
    performed_on DATE NOT NULL,
    record       JSONB NOT NULL,
    position     BIGINT NOT NULL
);
CREATE INDEX inspections_by_premises ON inspections (premises_id, performed_on);

CREATE TABLE hazards (
    id          TEXT PRIMARY KEY,
    premises_id TEXT NOT NULL,
    status      TEXT NOT NULL,
    severity    TEXT NOT NULL,
    deadline    DATE,
    assignee    TEXT NOT NULL,
    state       JSONB NOT NULL,           -- the core's folded Hazard, history summary included
    position    BIGINT NOT NULL
);
CREATE INDEX hazards_open_by_deadline ON hazards (status, deadline);
CREATE INDEX hazards_by_premises ON hazards (premises_id);

CREATE TABLE campaigns (
    campaign_id TEXT NOT NULL,
    grid_id     TEXT NOT NULL,
    record      JSONB NOT NULL,
    position    BIGINT NOT NULL,
    PRIMARY KEY (campaign_id, grid_id)
);
