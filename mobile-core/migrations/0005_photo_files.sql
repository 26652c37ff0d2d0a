-- Photos kept in the database itself, for shells without a file system of their own (the
-- field app in a browser keeps its whole replica in one file of the Origin Private File
-- System). Native apps keep photos as files beside the database and leave this empty.
-- Released: never edit.
CREATE TABLE photo_files (
    sha256    TEXT PRIMARY KEY,   -- of the stored JPEG
    jpeg      BLOB NOT NULL,
    thumbnail BLOB NOT NULL
) WITHOUT ROWID;
