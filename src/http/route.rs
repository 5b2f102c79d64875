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
            ["api" | "dashboard", ..] => Route::NotFound,
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
        ];
        for (path, want) in cases {
            assert_eq!(Route::decode(path), Route::Camera("cam1", CameraRoute::Control(want)), "{path}");
        }
        for path in ["/cam1/control/recording", "/cam1/control/recordings/1/2/3", "/cam1/control/x"] {
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
