//! Request paths decoded into data by one pure function; handlers `match` on the result.

/// Everything panelcam serves. Camera routes carry the camera's URL segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route<'a> {
    /// `/`: redirects to the dashboard.
    Root,
    Dashboard,
    ApiStatus,
    ApiCameras,
    Camera(&'a str, CameraRoute),
    NotFound,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CameraRoute {
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
    /// `/<cam>/control`: control page, or the control WebSocket on upgrade.
    Control,
}

impl<'a> Route<'a> {
    /// Decodes a request path (without the query). Trailing slashes are ignored; a camera
    /// segment is only syntactically checked here, the handler looks it up.
    pub fn decode(path: &'a str) -> Route<'a> {
        let trimmed = path.trim_matches('/');
        let mut parts = trimmed.split('/');
        let first = parts.next().unwrap_or("");
        let second = parts.next();
        let third = parts.next();
        if third.is_some() {
            return Route::NotFound;
        }
        match (first, second) {
            ("", None) => Route::Root,
            ("dashboard", None) => Route::Dashboard,
            ("api", Some("status")) => Route::ApiStatus,
            ("api", Some("cameras")) => Route::ApiCameras,
            ("api", _) | ("dashboard", _) => Route::NotFound,
            (cam, rest) if is_camera_segment(cam) => match rest {
                None => Route::Camera(cam, CameraRoute::Index),
                Some("test") => Route::Camera(cam, CameraRoute::Test),
                Some("stream") => Route::Camera(cam, CameraRoute::Stream),
                Some("live") => Route::Camera(cam, CameraRoute::Live),
                Some("snapshot") => Route::Camera(cam, CameraRoute::Snapshot),
                Some("control") => Route::Camera(cam, CameraRoute::Control),
                Some(_) => Route::NotFound,
            },
            _ => Route::NotFound,
        }
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
            ("/cam1/control", Route::Camera("cam1", Control)),
            ("/front-door_2.a/stream", Route::Camera("front-door_2.a", Stream)),
        ];
        for (path, want) in cases {
            assert_eq!(Route::decode(path), want, "{path}");
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
