-- Photos the server has verified (hash and decode): only these are visible. Released: never edit.
CREATE TABLE server_photos (
    sha256      TEXT PRIMARY KEY,
    bytes       INTEGER NOT NULL,
    width       INTEGER NOT NULL,
    height      INTEGER NOT NULL,
    uploaded_by TEXT NOT NULL,
    uploaded_ms INTEGER NOT NULL
) WITHOUT ROWID;

-- Which premises' records refer to a photo (filled with the pull index), so an upload or a
-- download is allowed exactly to those who may see one of those records.
CREATE TABLE server_photo_refs (
    sha256      TEXT NOT NULL,
    premises_id TEXT NOT NULL,
    PRIMARY KEY (sha256, premises_id)
) WITHOUT ROWID;

INSERT OR IGNORE INTO server_photo_refs (sha256, premises_id)
SELECT j.value, s.premises_id
FROM server_op_scope s JOIN ops o ON o.id = s.op_id, json_tree(o.data) j
WHERE o.kind IN ('inspection', 'hazard_event') AND s.premises_id IS NOT NULL
  AND j.key = 'sha256' AND j.type = 'text';
