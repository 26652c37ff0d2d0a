-- Letting a set-aside op through (an admin's decision once its author has the right): the op
-- is appended again at the end of the log, marked, and every replica moves it from its old
-- place (where it stays in the log, set aside) to the new one. So an op may be held twice:
-- once as it arrived and once let through, never more.
ALTER TABLE ops ADD COLUMN let_through BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE ops DROP CONSTRAINT ops_device_id_seq_key;
ALTER TABLE ops ADD CONSTRAINT ops_device_id_seq_let_through_key
    UNIQUE (device_id, seq, let_through);
