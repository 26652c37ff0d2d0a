-- A push that moved premises to another grid re-files every op of those premises under the
-- new grid for pulls (the grid's phones then receive its history). The op that did it carries
-- the mark, so each instance's pull index re-files the same rows at the same place in the log.
ALTER TABLE ops ADD COLUMN refile BOOLEAN NOT NULL DEFAULT FALSE;
