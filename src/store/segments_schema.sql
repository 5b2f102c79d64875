-- Video recordings of one camera kept on the panel: <database_path>/<camera>/segments.db
-- indexes HLS segments (database_type "sqlite") and MP4 files; the bytes are files under
-- <camera>/segments/ (HLS, MP4 with mp4_storage_type "database") or <camera>/YYYY/MM/DD/
-- (mp4_storage_type "filesystem"). Applied by src/store/local.rs to a new file; older ones
-- are migrated. Times are Unix milliseconds (UTC).

-- fMP4 init segments (ftyp+moov): the codec setup every media segment needs to play.
CREATE TABLE init_segments (
    sha256 TEXT PRIMARY KEY,   -- hex SHA-256 of data; segments refer to their init by it
    data   BLOB NOT NULL       -- the init segment exactly as FFmpeg wrote it
) STRICT;

-- HLS media segments (moof+mdat), the camera's H.264 copied without re-encoding.
CREATE TABLE hls_segments (
    start_ms    INTEGER PRIMARY KEY,  -- wall-clock start (EXT-X-PROGRAM-DATE-TIME)
    duration_ms INTEGER NOT NULL,     -- EXTINF
    init_sha256 TEXT NOT NULL,        -- init_segments.sha256
    session_id  INTEGER,              -- recording session it was kept for; NULL = continuous
    size        INTEGER NOT NULL,     -- bytes of the segment
    data        BLOB NOT NULL,        -- the segment (schema 1-2); empty when `file` is set
    file        TEXT                  -- its file under <camera>/segments/ (YYYYMMDD/<name>), schema 3
) STRICT;

-- Listing a time range must not read segment data: rows keep kilobytes of their blob in the
-- table's own pages, so a cold listing read most of the file. These covering indexes hold
-- just what a listing returns (schema version 2; benches/video.rs timerange).
CREATE INDEX hls_segments_listing ON hls_segments (start_ms, duration_ms, init_sha256, session_id, size);

-- MP4 segments: fragmented MP4 files of mp4_segment_minutes assembled from HLS segments.
CREATE TABLE mp4_segments (
    start_ms    INTEGER PRIMARY KEY,  -- wall-clock start of the first fragment
    duration_ms INTEGER NOT NULL,     -- sum of the fragments' durations
    name        TEXT NOT NULL UNIQUE, -- <camera>_YYYYMMDD_HHMMSS.mp4 (UTC)
    size        INTEGER NOT NULL,     -- bytes
    session_id  INTEGER,              -- recording session, NULL = continuous
    path        TEXT,                 -- file under <database_path>/<camera>/YYYY/MM/DD/ (filesystem storage)
    data        BLOB,                 -- the file itself (database storage, schema 1-2)
    file        TEXT                  -- the file held by the store under <camera>/segments/ (database storage, schema 3)
) STRICT;

CREATE INDEX mp4_segments_listing ON mp4_segments (start_ms, duration_ms, name, size, session_id, path);
