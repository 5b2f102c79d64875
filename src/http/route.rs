//! Request paths decoded into data by one pure function; handlers `match` on the result.

/// Everything panelcam serves. Camera routes carry the camera's URL segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route<'a> {
    /// `/`: redirects to the dashboard.
    Root,
    Dashboard,
    ApiStatus,
    ApiCameras,
    Camera(&'a str, CameraRoute<'a>),
    /// `/assets/<file>`: browser libraries kept outside the binary (hls.js).
    Asset(&'a str),
    NotFound,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CameraRoute<'a> {
    /// `/<cam>`: test page, or the live WebSocket on upgrade.
    Index,
    /// `/<cam>/test`: test page.
    Test,
    /// `/<cam>/stream`: clean stream page for embedding (CWC), or the live WebSocket.
    Stream,
    /// `/<cam>/live`: the live WebSocket only.
    Live,
    /// `/<cam>/snapshot`: the latest JPEG.
    Snapshot,
    /// `/<cam>/control/...`
    Control(ControlRoute<'a>),
    /// `/<cam>/hls/<file>`: live HLS playlist (`live.m3u8`), init and media segments.
    Hls(&'a str),
}

/// The recording API under `/<cam>/control`. Identifiers stay raw strings here; handlers
/// parse them and answer 400 with a precise message when they are malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlRoute<'a> {
    /// `/<cam>/control`: control page, or the control WebSocket on upgrade.
    Page,
    /// `POST recording/start`
    RecordingStart,
    /// `POST recording/stop`
    RecordingStop,
    /// `GET recording/active`
    RecordingActive,
    /// `GET recording/size`
    RecordingSize,
    /// `GET recordings?from=&to=`
    Sessions,
    /// `GET recordings/<session_id>/frames?from=&to=`
    SessionFrames(&'a str),
    /// `GET recordings/frames/<timestamp>?tolerance=`
    FrameAt(&'a str),
    /// `DELETE recordings/sessions/<session_id>`
    Session(&'a str),
    /// `PUT recordings/<session_id>/keep`
    Keep(&'a str),
    /// `GET recordings/spans?from=&to=`: continuous recorded spans (for timelines)
    Spans,
    /// `GET|DELETE recordings/hls/timerange?t1=&t2=`: VOD playlist / delete a range
    HlsTimerange,
    /// `GET recordings/hls/segments/<start_ms>.m4s`
    HlsSegment(&'a str),
    /// `GET recordings/hls/init/<sha256>.mp4`
    HlsInit(&'a str),
    /// `DELETE recordings/hls/sessions/<session_id>`
    HlsSession(&'a str),
    /// `GET|DELETE recordings/mp4/segments?from=&to=`: list / bulk delete
    Mp4Segments,
    /// `GET|DELETE recordings/mp4/segments/<filename>`
    Mp4Segment(&'a str),
    /// `POST recordings/mp4/export` `{"from","to"}`
    Export,
    /// `GET recordings/mp4/export/jobs`
    ExportJobs,
    /// `GET recordings/mp4/export/jobs/<id>`
    ExportJob(&'a str),
    /// `GET recordings/mp4/export/download/<id>`
    ExportDownload(&'a str),
}

impl<'a> Route<'a> {
    /// Decodes a request path (without the query). Trailing slashes are ignored; a camera
    /// segment is only syntactically checked here, the handler looks it up.
    pub fn decode(path: &'a str) -> Route<'a> {
        let trimmed = path.trim_matches('/');
        let segments: Vec<&'a str> = if trimmed.is_empty() { Vec::new() } else { trimmed.split('/').collect() };
        match segments.as_slice() {
            [] => Route::Root,
            ["dashboard"] => Route::Dashboard,
            ["api", "status"] => Route::ApiStatus,
            ["api", "cameras"] => Route::ApiCameras,
            ["assets", file] => Route::Asset(file),
            ["api" | "dashboard" | "assets", ..] => Route::NotFound,
            [cam, rest @ ..] if is_camera_segment(cam) => match CameraRoute::decode(rest) {
                Some(r) => Route::Camera(cam, r),
                None => Route::NotFound,
            },
            _ => Route::NotFound,
        }
    }
}

impl<'a> CameraRoute<'a> {
    fn decode(rest: &[&'a str]) -> Option<CameraRoute<'a>> {
        Some(match rest {
            [] => CameraRoute::Index,
            ["test"] => CameraRoute::Test,
            ["stream"] => CameraRoute::Stream,
            ["live"] => CameraRoute::Live,
            ["snapshot"] => CameraRoute::Snapshot,
            ["control", rest @ ..] => CameraRoute::Control(ControlRoute::decode(rest)?),
            ["hls", file] => CameraRoute::Hls(file),
            _ => return None,
        })
    }
}

impl<'a> ControlRoute<'a> {
    fn decode(rest: &[&'a str]) -> Option<ControlRoute<'a>> {
        Some(match rest {
            [] => ControlRoute::Page,
            ["recording", "start"] => ControlRoute::RecordingStart,
            ["recording", "stop"] => ControlRoute::RecordingStop,
            ["recording", "active"] => ControlRoute::RecordingActive,
            ["recording", "size"] => ControlRoute::RecordingSize,
            ["recordings"] => ControlRoute::Sessions,
            ["recordings", "spans"] => ControlRoute::Spans,
            ["recordings", "hls", "timerange"] => ControlRoute::HlsTimerange,
            ["recordings", "hls", "segments", seg] => ControlRoute::HlsSegment(seg),
            ["recordings", "hls", "init", init] => ControlRoute::HlsInit(init),
            ["recordings", "hls", "sessions", id] => ControlRoute::HlsSession(id),
            ["recordings", "mp4", "segments"] => ControlRoute::Mp4Segments,
            ["recordings", "mp4", "segments", name] => ControlRoute::Mp4Segment(name),
            ["recordings", "mp4", "export"] => ControlRoute::Export,
            ["recordings", "mp4", "export", "jobs"] => ControlRoute::ExportJobs,
            ["recordings", "mp4", "export", "jobs", id] => ControlRoute::ExportJob(id),
            ["recordings", "mp4", "export", "download", id] => ControlRoute::ExportDownload(id),
            ["recordings", "hls" | "mp4", ..] => return None,
            ["recordings", "frames", ts] => ControlRoute::FrameAt(ts),
            ["recordings", "sessions", id] => ControlRoute::Session(id),
            ["recordings", id, "frames"] => ControlRoute::SessionFrames(id),
            ["recordings", id, "keep"] => ControlRoute::Keep(id),
            _ => return None,
        })
    }
}

/// The character set camera files may use for `path` (see `config::camera`).
fn is_camera_segment(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && s != "."
        && s != ".."
}

#[cfg(test)]
mod tests {
    use super::*;
    use CameraRoute::*;

    #[test]
    fn decodes_every_route() {
        let cases = [
            ("/", Route::Root),
            ("", Route::Root),
            ("/dashboard", Route::Dashboard),
            ("/dashboard/", Route::Dashboard),
            ("/api/status", Route::ApiStatus),
            ("/api/cameras", Route::ApiCameras),
            ("/cam1", Route::Camera("cam1", Index)),
            ("/cam1/", Route::Camera("cam1", Index)),
            ("/cam1/test", Route::Camera("cam1", Test)),
            ("/cam1/stream", Route::Camera("cam1", Stream)),
            ("/cam1/live", Route::Camera("cam1", Live)),
            ("/cam1/snapshot", Route::Camera("cam1", Snapshot)),
            ("/cam1/control", Route::Camera("cam1", Control(ControlRoute::Page))),
            ("/front-door_2.a/stream", Route::Camera("front-door_2.a", Stream)),
        ];
        for (path, want) in cases {
            assert_eq!(Route::decode(path), want, "{path}");
        }
    }

    #[test]
    fn decodes_the_recording_api() {
        use ControlRoute::*;
        let cases = [
            ("/cam1/control/recording/start", RecordingStart),
            ("/cam1/control/recording/stop", RecordingStop),
            ("/cam1/control/recording/active", RecordingActive),
            ("/cam1/control/recording/size", RecordingSize),
            ("/cam1/control/recordings", Sessions),
            ("/cam1/control/recordings/12/frames", SessionFrames("12")),
            ("/cam1/control/recordings/frames/2025-08-15T10:00:00Z", FrameAt("2025-08-15T10:00:00Z")),
            ("/cam1/control/recordings/sessions/12", Session("12")),
            ("/cam1/control/recordings/12/keep", Keep("12")),
            ("/cam1/control/recordings/spans", Spans),
            ("/cam1/control/recordings/hls/timerange", HlsTimerange),
            ("/cam1/control/recordings/hls/segments/1700000000000.m4s", HlsSegment("1700000000000.m4s")),
            ("/cam1/control/recordings/hls/init/ab12.mp4", HlsInit("ab12.mp4")),
            ("/cam1/control/recordings/hls/sessions/4", HlsSession("4")),
            ("/cam1/control/recordings/mp4/segments", Mp4Segments),
            ("/cam1/control/recordings/mp4/segments/cam1_20240819_140000.mp4", Mp4Segment("cam1_20240819_140000.mp4")),
            ("/cam1/control/recordings/mp4/export", Export),
            ("/cam1/control/recordings/mp4/export/jobs", ExportJobs),
            ("/cam1/control/recordings/mp4/export/jobs/7", ExportJob("7")),
            ("/cam1/control/recordings/mp4/export/download/7", ExportDownload("7")),
        ];
        for (path, want) in cases {
            assert_eq!(Route::decode(path), Route::Camera("cam1", CameraRoute::Control(want)), "{path}");
        }
        assert_eq!(Route::decode("/cam1/hls/live.m3u8"), Route::Camera("cam1", CameraRoute::Hls("live.m3u8")));
        for path in [
            "/cam1/control/recording",
            "/cam1/control/recordings/1/2/3",
            "/cam1/control/x",
            "/cam1/control/recordings/hls/x",
            "/cam1/hls/a/b",
        ] {
            assert_eq!(Route::decode(path), Route::NotFound, "{path}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        for path in [
            "/api",
            "/api/nope",
            "/dashboard/x",
            "/cam1/nope",
            "/cam1/stream/x",
            "/../etc/passwd",
            "/cam%201",
            "/..",
            "/a b",
        ] {
            assert_eq!(Route::decode(path), Route::NotFound, "{path}");
        }
    }
}
