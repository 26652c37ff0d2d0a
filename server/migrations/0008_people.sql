-- What each person did in a period (the dashboard's per-worker view): visits by inspector
-- and date, hazard actions by author and time.
CREATE INDEX IF NOT EXISTS inspections_by_inspector ON inspections (inspector, performed_on);
CREATE INDEX IF NOT EXISTS hazard_events_by_author ON hazard_events (author, wall_ms);
