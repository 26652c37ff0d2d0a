-- Whether a user receives the morning reminder (the `worker.reminder` webhook event): on
-- unless the worker or an admin turned it off.
ALTER TABLE server_users ADD COLUMN reminders INTEGER NOT NULL DEFAULT 1;
