-- panelcam's recordings in the central PostgreSQL, schema version 2. Applied by
-- src/store/pg.rs under an advisory lock (many panels may start at once). One shared
-- database, or one database per camera (rtsp_<camera>) with the same tables. Rows are keyed
-- by panel as well as camera: two panels with a camera called cam1 never collide.
-- Times: Unix ms (UTC).

CREATE TABLE IF NOT EXISTS init_segments (
    panel   text   NOT NULL,                        -- server.panel_id of the panel that recorded it
    camera  text   NOT NULL,                        -- camera id (file name of its cameras/*.json)
    sha256  text   NOT NULL,                        -- hex SHA-256 of data
    data    bytea  NOT NULL,                        -- fMP4 init segment (ftyp+moov)
    PRIMARY KEY (panel, camera, sha256)
);
COMMENT ON TABLE init_segments IS 'fMP4 init segments; hls_segments.init_sha256 refers here';

CREATE TABLE IF NOT EXISTS hls_segments (
    panel       text        NOT NULL,               -- server.panel_id
    camera      text        NOT NULL,               -- camera id
    start_ms    bigint      NOT NULL,               -- wall-clock start of the segment
    duration_ms integer     NOT NULL,               -- segment length
    init_sha256 text        NOT NULL,               -- its init segment
    session_id  bigint,                             -- panel-local recording session, NULL = continuous
    size        bigint      NOT NULL,               -- bytes of data
    sha256      text        NOT NULL,               -- hex SHA-256 of data, checked after upload
    uploaded_at timestamptz NOT NULL DEFAULT now(), -- when it arrived
    data        bytea       NOT NULL,               -- the camera's H.264 in fMP4 fragments (moof+mdat)
    PRIMARY KEY (panel, camera, start_ms)
);
COMMENT ON TABLE hls_segments IS 'HLS fMP4 media segments, camera video copied without re-encoding';

CREATE TABLE IF NOT EXISTS mp4_segments (
    panel       text        NOT NULL,               -- server.panel_id
    camera      text        NOT NULL,               -- camera id
    start_ms    bigint      NOT NULL,               -- wall-clock start of the file
    duration_ms bigint      NOT NULL,               -- file length
    name        text        NOT NULL,               -- <camera>_YYYYMMDD_HHMMSS.mp4 (UTC)
    session_id  bigint,                             -- recording session, NULL = continuous
    size        bigint      NOT NULL,               -- bytes of data
    sha256      text        NOT NULL,               -- hex SHA-256 of data, checked after upload
    uploaded_at timestamptz NOT NULL DEFAULT now(), -- when it arrived
    data        bytea       NOT NULL,               -- fragmented MP4 file
    PRIMARY KEY (panel, camera, start_ms)
);
COMMENT ON TABLE mp4_segments IS 'MP4 segments (fragmented MP4 assembled from HLS segments)';
CREATE INDEX IF NOT EXISTS mp4_segments_by_name ON mp4_segments (panel, camera, name);

-- Video does not compress: store it out of line and uncompressed, which also lets
-- substring() fetch byte ranges without reading whole values.
ALTER TABLE init_segments ALTER COLUMN data SET STORAGE EXTERNAL;
ALTER TABLE hls_segments ALTER COLUMN data SET STORAGE EXTERNAL;
ALTER TABLE mp4_segments ALTER COLUMN data SET STORAGE EXTERNAL;
