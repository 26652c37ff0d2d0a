-- Campaigns (专项行动): one last-writer-wins record per campaign and grid. Released: never edit.
CREATE TABLE campaigns (
    campaign_id TEXT NOT NULL,
    grid_id     TEXT NOT NULL,
    data        TEXT NOT NULL,   -- JSON of the Campaign
    hlc         INTEGER NOT NULL,
    device_id   TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, grid_id)
) WITHOUT ROWID;
