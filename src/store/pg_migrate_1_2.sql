-- Version 1 → 2: rows are keyed by panel as well as camera. Rows recorded before the
-- migration belong to the panel that runs it ($PANEL, a checked [A-Za-z0-9_.-] identifier):
-- in a database shared by several panels, the first panel to upgrade claims them.
ALTER TABLE init_segments ADD COLUMN panel text NOT NULL DEFAULT '$PANEL';
ALTER TABLE hls_segments ADD COLUMN panel text NOT NULL DEFAULT '$PANEL';
ALTER TABLE mp4_segments ADD COLUMN panel text NOT NULL DEFAULT '$PANEL';
ALTER TABLE init_segments ALTER COLUMN panel DROP DEFAULT;
ALTER TABLE hls_segments ALTER COLUMN panel DROP DEFAULT;
ALTER TABLE mp4_segments ALTER COLUMN panel DROP DEFAULT;
ALTER TABLE init_segments DROP CONSTRAINT init_segments_pkey, ADD PRIMARY KEY (panel, camera, sha256);
ALTER TABLE hls_segments DROP CONSTRAINT hls_segments_pkey, ADD PRIMARY KEY (panel, camera, start_ms);
ALTER TABLE mp4_segments DROP CONSTRAINT mp4_segments_pkey, ADD PRIMARY KEY (panel, camera, start_ms);
DROP INDEX IF EXISTS mp4_segments_by_name;
CREATE INDEX mp4_segments_by_name ON mp4_segments (panel, camera, name);
