-- Each op in the pull index carries a digest chained over every op before it in the index
-- (filled by the server when it indexes ops; rows from before this migration are filled at
-- start). A phone sends the chain value at its cursor with each pull: if the log before the
-- cursor is not the one it pulled (the server's data went back to an older copy and renumbered
-- ops), the values differ and the phone pulls from the start. Released: never edit.
ALTER TABLE server_op_scope ADD COLUMN chain BLOB;
