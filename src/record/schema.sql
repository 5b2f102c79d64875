-- Frame storage of one camera: <database_path>/<camera>.db, schema version 2.
-- Applied by src/record/db.rs to a new file; older files are migrated there step by step.
-- All times are Unix milliseconds (UTC).

-- Recording sessions: what an operator started and stopped, with why.
CREATE TABLE sessions (
    id          INTEGER PRIMARY KEY,        -- session id used by the REST API and the control page
    start_ms    INTEGER NOT NULL,           -- when recording started
    end_ms      INTEGER,                    -- when it stopped; NULL while the session is active
    reason      TEXT,                       -- the operator's reason (free text), may be NULL
    keep        INTEGER NOT NULL DEFAULT 0, -- 1 = protected: retention never deletes it or its frames
    frame_count INTEGER NOT NULL DEFAULT 0, -- frames stored, maintained per committed batch
    byte_count  INTEGER NOT NULL DEFAULT 0, -- JPEG bytes stored, maintained per committed batch
    last_frame_ms INTEGER                   -- capture time of the newest frame; closes crashed sessions
) STRICT;

CREATE INDEX sessions_by_start ON sessions (start_ms);

-- One row per recorded JPEG. The capture time is the rowid, so a frame is found by one
-- B-tree descent (frame-exact seeking without a second index) and inserts are appends.
-- Two frames in the same millisecond get consecutive values (see writer.rs).
CREATE TABLE frames (
    ts_ms      INTEGER PRIMARY KEY,         -- capture time; unique per camera
    session_id INTEGER NOT NULL,            -- the session that recorded it (sessions.id)
    jpeg       BLOB NOT NULL                -- the frame exactly as streamed live
) STRICT;

-- Deleting a session deletes exactly its frames, wherever the clock put them (version 2).
CREATE INDEX frames_by_session ON frames (session_id, ts_ms);

-- Small key/value facts about the database itself.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,                 -- e.g. 'resume_session'
    value TEXT NOT NULL                     -- e.g. the id of the session active at a clean shutdown
) STRICT;
