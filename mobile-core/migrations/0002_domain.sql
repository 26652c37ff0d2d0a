-- Materialised domain state, derived from the op log by the merge rules. Released: never edit.

-- One last-writer-wins register per premises field.
CREATE TABLE premises_fields (
    premises_id TEXT NOT NULL,
    field       TEXT NOT NULL,
    value       TEXT NOT NULL,   -- JSON
    hlc         INTEGER NOT NULL,
    device_id   TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    PRIMARY KEY (premises_id, field)
) WITHOUT ROWID;

-- Inspections: a grow-only set.
CREATE TABLE inspections (
    id           TEXT PRIMARY KEY,
    premises_id  TEXT NOT NULL,
    root         TEXT NOT NULL,
    supersedes   TEXT,
    inspector    TEXT NOT NULL,
    performed_on TEXT NOT NULL,
    hlc          INTEGER NOT NULL,
    op_id        INTEGER NOT NULL REFERENCES ops (id)   -- the op holds the inspection's JSON
);
CREATE INDEX inspections_by_premises ON inspections (premises_id, performed_on);
CREATE INDEX inspections_by_supersedes ON inspections (supersedes) WHERE supersedes IS NOT NULL;

-- Everything that happened to a hazard: its finding (origin set) and later actions.
-- Appended in arrival order; the fold sorts by (hlc, device_id, seq).
CREATE TABLE hazard_events (
    hazard_id TEXT NOT NULL,
    hlc       INTEGER NOT NULL,
    device_id TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    author    TEXT NOT NULL,
    wall_ms   INTEGER NOT NULL,
    origin    TEXT,              -- JSON HazardOrigin, for the finding
    action    TEXT,              -- JSON HazardAction, for later events
    geotag    TEXT,
    note      TEXT
);
CREATE INDEX hazard_events_by_hazard ON hazard_events (hazard_id);

-- The fold of each hazard's events, for queries.
CREATE TABLE hazards (
    id          TEXT PRIMARY KEY,
    premises_id TEXT NOT NULL,
    status      TEXT NOT NULL,
    severity    TEXT NOT NULL,
    deadline    TEXT,
    assignee    TEXT NOT NULL,
    state       TEXT NOT NULL    -- JSON of the folded Hazard
);
CREATE INDEX hazards_by_status ON hazards (status, deadline);
CREATE INDEX hazards_by_premises ON hazards (premises_id);
