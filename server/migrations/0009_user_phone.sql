-- A contact phone for each account (bulk user import, the admin's list of users).
ALTER TABLE server_users ADD COLUMN phone TEXT;
