-- Frame storage of one camera, schema version 3: the index and the sessions in SQLite,
-- <database_path>/<camera>.db; the JPEGs themselves appended to data files in
-- <database_path>/<camera>.db.frames/ (src/record/data.rs). Applied by src/record/db.rs to a
-- new file; older files are migrated there step by step. Times are Unix ms (UTC).

-- Recording sessions: what an operator started and stopped, with why.
CREATE TABLE sessions (
    id          INTEGER PRIMARY KEY,        -- session id used by the REST API and the control page
    start_ms    INTEGER NOT NULL,           -- when recording started
    end_ms      INTEGER,                    -- when it stopped; NULL while the session is active
    reason      TEXT,                       -- the operator's reason (free text), may be NULL
    keep        INTEGER NOT NULL DEFAULT 0, -- 1 = protected: retention never deletes it or its frames
    frame_count INTEGER NOT NULL DEFAULT 0, -- frames stored, maintained per committed chunk
    byte_count  INTEGER NOT NULL DEFAULT 0, -- JPEG bytes stored, maintained per committed chunk
    last_frame_ms INTEGER                   -- capture time of the newest frame; closes crashed sessions
) STRICT;

CREATE INDEX sessions_by_start ON sessions (start_ms);

-- Data files: one session's frames, appended; a new file at each session, every
-- 10 minutes and every 64 MiB, so that deleting old recordings frees whole files.
CREATE TABLE files (
    id         INTEGER PRIMARY KEY AUTOINCREMENT, -- the file <id>.jpgs; never reused
    session_id INTEGER NOT NULL,                  -- the session whose frames it holds
    created_ms INTEGER NOT NULL,                  -- when the first frame was appended
    bytes      INTEGER NOT NULL DEFAULT 0,        -- its length when it was closed
    closed     INTEGER NOT NULL DEFAULT 0         -- 1 = nothing more is appended
) STRICT;

-- The index: one row per few seconds of a session's frames (src/record/chunk.rs).
CREATE TABLE chunks (
    id         INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL,   -- sessions.id
    file_id    INTEGER NOT NULL,   -- files.id
    first_ts   INTEGER NOT NULL,   -- capture time of the first frame
    last_ts    INTEGER NOT NULL,   -- capture time of the last frame (times only increase within a chunk)
    offset     INTEGER NOT NULL,   -- offset of the first frame's record in the data file
    end_offset INTEGER NOT NULL,   -- offset just after the last frame's record
    frames     INTEGER NOT NULL,   -- number of frames
    bytes      INTEGER NOT NULL,   -- JPEG bytes
    idx        BLOB NOT NULL       -- 12 bytes per frame: time since first_ts, offset since `offset`, JPEG length
) STRICT;

-- Seeking: chunks by time. A chunk spans at most a minute, which bounds every range scan.
CREATE INDEX chunks_by_time ON chunks (first_ts);
-- Deleting and listing a session's frames.
CREATE INDEX chunks_by_session ON chunks (session_id, first_ts);

-- Frames of schema versions 1 and 2 (JPEGs inside SQLite): still read, deleted by
-- retention, never written. Empty in a database created by version 3.
CREATE TABLE frames (
    ts_ms      INTEGER PRIMARY KEY,         -- capture time; unique per camera
    session_id INTEGER NOT NULL,            -- the session that recorded it (sessions.id)
    jpeg       BLOB NOT NULL                -- the frame exactly as streamed live
) STRICT;
CREATE INDEX frames_by_session ON frames (session_id, ts_ms);

-- Small key/value facts about the database itself.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,                 -- e.g. 'resume_session'
    value TEXT NOT NULL                     -- e.g. the id of the session active at a clean shutdown
) STRICT;
