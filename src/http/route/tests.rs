use hyper::Method;
use proptest::prelude::*;

use super::*;
use CameraRoute::*;
use ControlRoute::*;

fn decode(method: &str, path: &str) -> Result<Route<'static>, RouteError> {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let path: &'static str = Box::leak(path.to_string().into_boxed_str());
    Route::decode(&method, path)
}

fn cam(r: CameraRoute<'static>) -> Route<'static> {
    Route::Camera("cam1", r)
}

/// Every route, an example request for it, and who may make it. A new route does not
/// compile until `Route::role` gives it a role; this table is the reviewed list of them.
const ROLE_TABLE: &[(&str, &str, Role)] = &[
    ("GET", "/", Role::Public),
    ("GET", "/dashboard", Role::Public),
    ("GET", "/admin", Role::Public),
    ("GET", "/api/status", Role::Public),
    ("GET", "/api/cameras", Role::Public),
    ("GET", "/metrics", Role::Metrics),
    ("GET", "/api/admin/cameras", Role::Admin),
    ("POST", "/api/admin/cameras", Role::Admin),
    ("GET", "/api/admin/cameras/cam1", Role::Admin),
    ("PUT", "/api/admin/cameras/cam1", Role::Admin),
    ("DELETE", "/api/admin/cameras/cam1", Role::Admin),
    ("GET", "/api/admin/config", Role::Admin),
    ("PUT", "/api/admin/config", Role::Admin),
    ("GET", "/assets/hls.min.js", Role::Public),
    ("GET", "/cam1", Role::Viewer),
    ("GET", "/cam1/test", Role::Viewer),
    ("GET", "/cam1/stream", Role::Viewer),
    ("GET", "/cam1/live", Role::Viewer),
    ("GET", "/cam1/snapshot", Role::Viewer),
    ("GET", "/cam1/video", Role::Viewer),
    ("GET", "/cam1/control", Role::Viewer),
    ("GET", "/cam1/hls/live.m3u8", Role::Viewer),
    ("POST", "/cam1/control/recording/start", Role::Viewer),
    ("POST", "/cam1/control/recording/stop", Role::Viewer),
    ("GET", "/cam1/control/recording/active", Role::Viewer),
    ("GET", "/cam1/control/recording/size", Role::Viewer),
    ("GET", "/cam1/control/recordings", Role::Viewer),
    ("GET", "/cam1/control/recordings/12/frames", Role::Viewer),
    ("GET", "/cam1/control/recordings/frames/2025-08-15T10:00:00Z", Role::Viewer),
    ("PUT", "/cam1/control/recordings/12/keep", Role::Viewer),
    ("GET", "/cam1/control/recordings/spans", Role::Viewer),
    ("GET", "/cam1/control/recordings/hls/timerange", Role::Viewer),
    ("GET", "/cam1/control/recordings/hls/segments/1700000000000.m4s", Role::Viewer),
    ("GET", "/cam1/control/recordings/hls/init/ab12.mp4", Role::Viewer),
    ("GET", "/cam1/control/recordings/mp4/segments", Role::Viewer),
    ("GET", "/cam1/control/recordings/mp4/segments/cam1_20240819_140000.mp4", Role::Viewer),
    ("POST", "/cam1/control/recordings/mp4/export", Role::Viewer),
    ("GET", "/cam1/control/recordings/mp4/export/jobs", Role::Viewer),
    ("GET", "/cam1/control/recordings/mp4/export/jobs/7", Role::Viewer),
    ("GET", "/cam1/control/recordings/mp4/export/download/7", Role::Viewer),
    ("POST", "/cam1/control/ptz/move", Role::Viewer),
    ("POST", "/cam1/control/ptz/stop", Role::Viewer),
    ("POST", "/cam1/control/ptz/goto_preset", Role::Viewer),
    ("POST", "/cam1/control/ptz/set_preset", Role::Viewer),
    ("GET", "/cam1/control/ptz/presets", Role::Viewer),
    ("DELETE", "/cam1/control/recordings/sessions/12", Role::Admin),
    ("DELETE", "/cam1/control/recordings/hls/timerange", Role::Admin),
    ("DELETE", "/cam1/control/recordings/hls/sessions/4", Role::Admin),
    ("DELETE", "/cam1/control/recordings/mp4/segments", Role::Admin),
    ("DELETE", "/cam1/control/recordings/mp4/segments/cam1_20240819_140000.mp4", Role::Admin),
    ("DELETE", "/cam1/control/recordings/mp4/export/jobs/7", Role::Admin),
];

#[test]
fn every_route_has_its_role() {
    let mut variants = std::collections::HashSet::new();
    for (method, path, role) in ROLE_TABLE {
        let route = decode(method, path).unwrap_or_else(|e| panic!("{method} {path}: {e:?}"));
        assert_eq!(route.role(), *role, "{method} {path}");
        // The variant chain without its strings: `Camera(, Api(DeleteMp4()))`.
        let name = format!("{route:?}");
        let shape: String = name.split('"').step_by(2).collect();
        variants.insert(shape);
    }
    // Each distinct route appears once in the table (a missing one would not be reviewed).
    assert_eq!(variants.len(), ROLE_TABLE.len(), "the table lists each route once: {variants:?}");
    // Every deleting method is an admin action, and admin actions are deletes or the admin API.
    for (method, path, role) in ROLE_TABLE {
        assert_eq!(*method == "DELETE" || path.starts_with("/api/admin/"), *role == Role::Admin, "{method} {path}");
    }
}

#[test]
fn decodes_pages_and_sockets() {
    let cases = [
        ("/", Route::Root),
        ("", Route::Root),
        ("/dashboard/", Route::Dashboard),
        ("/cam1/", cam(Index)),
        ("/cam1/stream", cam(Stream)),
        ("/cam1/control", cam(ControlPage)),
        ("/front-door_2.a/stream", Route::Camera("front-door_2.a", Stream)),
    ];
    for (path, want) in cases {
        assert_eq!(decode("GET", path), Ok(want), "{path}");
        assert_eq!(decode("HEAD", path), Ok(want), "HEAD {path}");
    }
}

#[test]
fn the_method_picks_between_reading_and_deleting() {
    let path = "/cam1/control/recordings/mp4/segments/a.mp4";
    assert_eq!(decode("GET", path), Ok(cam(Api(Mp4Download("a.mp4")))));
    assert_eq!(decode("DELETE", path), Ok(cam(Api(DeleteMp4("a.mp4")))));
    assert_eq!(decode("POST", path), Err(RouteError::MethodNotAllowed(GET_DELETE)));
    assert_eq!(decode("GET", "/cam1/control/recording/start"), Err(RouteError::MethodNotAllowed(POST)));
    assert_eq!(decode("DELETE", "/cam1/snapshot"), Err(RouteError::MethodNotAllowed(GET)));
    assert_eq!(decode("POST", "/api/status"), Err(RouteError::MethodNotAllowed(GET)));
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
        "/cam1/control/recording",
        "/cam1/control/recordings/1/2/3",
        "/cam1/control/x",
        "/cam1/control/recordings/hls/x",
        "/cam1/hls/a/b",
    ] {
        assert_eq!(decode("GET", path), Err(RouteError::NotFound), "{path}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn any_path_and_method_decode_without_panicking(
        method in "GET|HEAD|POST|PUT|DELETE|PATCH|[A-Z]{1,8}",
        path in "(/[a-z0-9.%_~-]{0,12}){0,8}/?|\\PC{0,200}",
    ) {
        if let Ok(route) = decode(&method, &path) {
            // Whatever decodes has a role, and only DELETE reaches admin routes.
            prop_assert!(route.role() != Role::Admin || method == "DELETE");
        }
    }

    #[test]
    fn camera_routes_keep_their_segment(seg in "[A-Za-z0-9_.-]{1,20}", tail in "(test|stream|live|video|snapshot|control)?") {
        let path = format!("/{seg}/{tail}");
        if let Ok(Route::Camera(c, _)) = decode("GET", &path) {
            prop_assert_eq!(c, seg.as_str());
        }
    }
}
