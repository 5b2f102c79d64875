//! Requests decoded into data by one pure function, and who may make each one.
//!
//! [`Route::decode`] turns a method and a path into a [`Route`] (or says why not), and
//! [`Route::role`] gives its [`Role`] by an exhaustive match: a route cannot be added without
//! deciding who may use it, and handlers `match` on routes, so a route cannot be added
//! without a handler either.

use hyper::Method;

/// Who may make a request. Checked before anything else is looked at, so an unauthorized
/// request learns nothing about what exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Anyone on the panel network: the dashboard, the server status (camera URLs shown
    /// without user names or passwords), browser libraries.
    Public,
    /// The camera's `token` (no credential when the camera has none), or the admin token.
    Viewer,
    /// `server.admin_token` as `Authorization: Bearer`.
    Admin,
    /// `server.metrics_token` or the admin token, as `Authorization: Bearer`.
    Metrics,
}

/// Everything panelcam serves. Camera routes carry the camera's URL segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route<'a> {
    /// `GET /`: redirects to the dashboard.
    Root,
    /// `GET /dashboard`
    Dashboard,
    /// `GET /admin`: the admin page (it holds nothing secret; its API calls need the token).
    AdminPage,
    /// `GET /api/status`
    ApiStatus,
    /// `GET /api/cameras`
    ApiCameras,
    /// `GET /metrics`: Prometheus text format.
    Metrics,
    /// `/api/admin/...`: camera files and `config.json`.
    Admin(AdminRoute<'a>),
    /// `GET /assets/<file>`: browser libraries kept outside the binary (hls.js).
    Asset(&'a str),
    Camera(&'a str, CameraRoute<'a>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CameraRoute<'a> {
    /// `GET /<cam>`: test page, or the live WebSocket on upgrade.
    Index,
    /// `GET /<cam>/test`: test page.
    Test,
    /// `GET /<cam>/stream`: clean stream page for embedding (CWC), or the live WebSocket.
    Stream,
    /// `GET /<cam>/live`: the live WebSocket only.
    Live,
    /// `GET /<cam>/video`: the live H.264/H.265 WebSocket (fMP4, `live::video`).
    Video,
    /// `GET /<cam>/snapshot`: the latest JPEG.
    Snapshot,
    /// `GET /<cam>/control`: control page, or the control WebSocket on upgrade.
    ControlPage,
    /// `GET /<cam>/hls/<file>`: live HLS playlist (`live.m3u8`), init and media segments.
    Hls(&'a str),
    /// `/<cam>/control/...`: the recording API.
    Api(ControlRoute<'a>),
}

/// The recording API under `/<cam>/control`. Identifiers stay raw strings here; handlers
/// parse them and answer 400 with a precise message when they are malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlRoute<'a> {
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
    DeleteSession(&'a str),
    /// `PUT recordings/<session_id>/keep` (`{"keep": false}` needs the admin role too)
    Keep(&'a str),
    /// `GET recordings/spans?from=&to=`: continuous recorded spans (for timelines)
    Spans,
    /// `GET recordings/hls/timerange?t1=&t2=`: VOD playlist
    HlsPlaylist,
    /// `DELETE recordings/hls/timerange?t1=&t2=`
    DeleteHlsRange,
    /// `GET recordings/hls/segments/<start_ms>.m4s`
    HlsSegment(&'a str),
    /// `GET recordings/hls/init/<sha256>.mp4`
    HlsInit(&'a str),
    /// `DELETE recordings/hls/sessions/<session_id>`
    DeleteHlsSession(&'a str),
    /// `GET recordings/mp4/segments?from=&to=`
    Mp4List,
    /// `DELETE recordings/mp4/segments?from=&to=`: bulk delete
    DeleteMp4Range,
    /// `GET recordings/mp4/segments/<filename>`
    Mp4Download(&'a str),
    /// `DELETE recordings/mp4/segments/<filename>`
    DeleteMp4(&'a str),
    /// `POST recordings/mp4/export` `{"from","to"}`
    Export,
    /// `GET recordings/mp4/export/jobs`
    ExportJobs,
    /// `GET recordings/mp4/export/jobs/<id>`
    ExportJob(&'a str),
    /// `GET recordings/mp4/export/download/<id>`
    ExportDownload(&'a str),
    /// `DELETE recordings/mp4/export/jobs/<id>`
    DeleteExport(&'a str),
    /// `POST ptz/move` `{"pan","tilt","zoom"?,"timeout_secs"?}`
    PtzMove,
    /// `POST ptz/stop`
    PtzStop,
    /// `POST ptz/goto_preset` `{"token"}` or `{"preset": n}`
    PtzGotoPreset,
    /// `POST ptz/set_preset` `{"name"?,"token"?}`
    PtzSetPreset,
    /// `GET ptz/presets`
    PtzPresets,
}

/// The admin API: camera files and `config.json`, edited as the admin page does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminRoute<'a> {
    /// `GET /api/admin/cameras`
    ListCameras,
    /// `POST /api/admin/cameras` `{"camera_id", "config"}`
    CreateCamera,
    /// `GET /api/admin/cameras/<id>`
    GetCamera(&'a str),
    /// `PUT /api/admin/cameras/<id>`: the whole camera file (secrets left out are kept)
    PutCamera(&'a str),
    /// `DELETE /api/admin/cameras/<id>`
    DeleteCamera(&'a str),
    /// `GET /api/admin/config`
    GetConfig,
    /// `PUT /api/admin/config`: a partial document, merged (JSON merge patch)
    PutConfig,
}

/// Why a request has no route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteError {
    NotFound,
    /// The path exists, with these methods.
    MethodNotAllowed(&'static [Method]),
}

const GET: &[Method] = &[Method::GET, Method::HEAD];
const POST: &[Method] = &[Method::POST];
const PUT: &[Method] = &[Method::PUT];
const DELETE: &[Method] = &[Method::DELETE];
const GET_DELETE: &[Method] = &[Method::GET, Method::HEAD, Method::DELETE];
const GET_POST: &[Method] = &[Method::GET, Method::HEAD, Method::POST];
const GET_PUT: &[Method] = &[Method::GET, Method::HEAD, Method::PUT];
const GET_PUT_DELETE: &[Method] = &[Method::GET, Method::HEAD, Method::PUT, Method::DELETE];

/// Picks the route for `method` among a path's `(allowed methods, route)` pairs.
fn by_method<'a>(method: &Method, options: &[(&'static [Method], Route<'a>)]) -> Result<Route<'a>, RouteError> {
    for (methods, route) in options {
        if methods.contains(method) {
            return Ok(*route);
        }
    }
    let allowed = match options {
        [(methods, _)] => methods,
        [(GET, _), (POST, _)] => GET_POST,
        [(GET, _), (PUT, _)] => GET_PUT,
        [(GET, _), (PUT, _), (DELETE, _)] => GET_PUT_DELETE,
        _ => GET_DELETE,
    };
    Err(RouteError::MethodNotAllowed(allowed))
}

impl<'a> Route<'a> {
    /// Decodes a request (the path without its query). Trailing slashes are ignored; a
    /// camera segment is only checked for its characters here, the handler looks it up.
    pub fn decode(method: &Method, path: &'a str) -> Result<Route<'a>, RouteError> {
        let trimmed = path.trim_matches('/');
        let segments: Vec<&'a str> = if trimmed.is_empty() { Vec::new() } else { trimmed.split('/').collect() };
        let get = |r: Route<'a>| by_method(method, &[(GET, r)]);
        match segments.as_slice() {
            [] => get(Route::Root),
            ["dashboard"] => get(Route::Dashboard),
            ["admin"] => get(Route::AdminPage),
            ["api", "status"] => get(Route::ApiStatus),
            ["api", "cameras"] => get(Route::ApiCameras),
            ["metrics"] => get(Route::Metrics),
            ["api", "admin", "cameras"] => by_method(
                method,
                &[(GET, Route::Admin(AdminRoute::ListCameras)), (POST, Route::Admin(AdminRoute::CreateCamera))],
            ),
            ["api", "admin", "cameras", id] => by_method(
                method,
                &[
                    (GET, Route::Admin(AdminRoute::GetCamera(id))),
                    (PUT, Route::Admin(AdminRoute::PutCamera(id))),
                    (DELETE, Route::Admin(AdminRoute::DeleteCamera(id))),
                ],
            ),
            ["api", "admin", "config"] => by_method(
                method,
                &[(GET, Route::Admin(AdminRoute::GetConfig)), (PUT, Route::Admin(AdminRoute::PutConfig))],
            ),
            ["assets", file] => get(Route::Asset(file)),
            ["api" | "dashboard" | "assets" | "admin" | "metrics", ..] => Err(RouteError::NotFound),
            [cam, rest @ ..] if is_camera_segment(cam) => CameraRoute::decode(method, cam, rest),
            _ => Err(RouteError::NotFound),
        }
    }

    /// Who may make this request.
    pub fn role(&self) -> Role {
        match self {
            Route::Root
            | Route::Dashboard
            | Route::AdminPage
            | Route::ApiStatus
            | Route::ApiCameras
            | Route::Asset(_) => Role::Public,
            Route::Metrics => Role::Metrics,
            Route::Admin(_) => Role::Admin,
            Route::Camera(_, r) => match r {
                CameraRoute::Index
                | CameraRoute::Test
                | CameraRoute::Stream
                | CameraRoute::Live
                | CameraRoute::Video
                | CameraRoute::Snapshot
                | CameraRoute::ControlPage
                | CameraRoute::Hls(_) => Role::Viewer,
                CameraRoute::Api(api) => api.role(),
            },
        }
    }
}

impl<'a> CameraRoute<'a> {
    fn decode(method: &Method, cam: &'a str, rest: &[&'a str]) -> Result<Route<'a>, RouteError> {
        let c = |r: CameraRoute<'a>| Route::Camera(cam, r);
        let get = |r: CameraRoute<'a>| by_method(method, &[(GET, c(r))]);
        match rest {
            [] => get(CameraRoute::Index),
            ["test"] => get(CameraRoute::Test),
            ["stream"] => get(CameraRoute::Stream),
            ["live"] => get(CameraRoute::Live),
            ["video"] => get(CameraRoute::Video),
            ["snapshot"] => get(CameraRoute::Snapshot),
            ["control"] => get(CameraRoute::ControlPage),
            ["hls", file] => get(CameraRoute::Hls(file)),
            ["control", rest @ ..] => ControlRoute::decode(method, rest, |r| c(CameraRoute::Api(r))),
            _ => Err(RouteError::NotFound),
        }
    }
}

impl<'a> ControlRoute<'a> {
    fn decode(
        method: &Method,
        rest: &[&'a str],
        wrap: impl Fn(ControlRoute<'a>) -> Route<'a>,
    ) -> Result<Route<'a>, RouteError> {
        use ControlRoute::*;
        let one = |methods: &'static [Method], r| by_method(method, &[(methods, wrap(r))]);
        let get_or_delete =
            |get_route, delete_route| by_method(method, &[(GET, wrap(get_route)), (DELETE, wrap(delete_route))]);
        match rest {
            ["recording", "start"] => one(POST, RecordingStart),
            ["recording", "stop"] => one(POST, RecordingStop),
            ["recording", "active"] => one(GET, RecordingActive),
            ["recording", "size"] => one(GET, RecordingSize),
            ["recordings"] => one(GET, Sessions),
            ["recordings", "spans"] => one(GET, Spans),
            ["recordings", "hls", "timerange"] => get_or_delete(HlsPlaylist, DeleteHlsRange),
            ["recordings", "hls", "segments", seg] => one(GET, HlsSegment(seg)),
            ["recordings", "hls", "init", init] => one(GET, HlsInit(init)),
            ["recordings", "hls", "sessions", id] => one(DELETE, DeleteHlsSession(id)),
            ["recordings", "mp4", "segments"] => get_or_delete(Mp4List, DeleteMp4Range),
            ["recordings", "mp4", "segments", name] => get_or_delete(Mp4Download(name), DeleteMp4(name)),
            ["recordings", "mp4", "export"] => one(POST, Export),
            ["recordings", "mp4", "export", "jobs"] => one(GET, ExportJobs),
            ["recordings", "mp4", "export", "jobs", id] => get_or_delete(ExportJob(id), DeleteExport(id)),
            ["recordings", "mp4", "export", "download", id] => one(GET, ExportDownload(id)),
            ["recordings", "hls" | "mp4", ..] => Err(RouteError::NotFound),
            ["recordings", "frames", ts] => one(GET, FrameAt(ts)),
            ["recordings", "sessions", id] => one(DELETE, DeleteSession(id)),
            ["recordings", id, "frames"] => one(GET, SessionFrames(id)),
            ["recordings", id, "keep"] => one(PUT, Keep(id)),
            ["ptz", "move"] => one(POST, PtzMove),
            ["ptz", "stop"] => one(POST, PtzStop),
            ["ptz", "goto_preset"] => one(POST, PtzGotoPreset),
            ["ptz", "set_preset"] => one(POST, PtzSetPreset),
            ["ptz", "presets"] => one(GET, PtzPresets),
            _ => Err(RouteError::NotFound),
        }
    }

    fn role(&self) -> Role {
        use ControlRoute::*;
        match self {
            RecordingStart | RecordingStop | RecordingActive | RecordingSize | Sessions | SessionFrames(_)
            | FrameAt(_) | Keep(_) | Spans | HlsPlaylist | HlsSegment(_) | HlsInit(_) | Mp4List | Mp4Download(_)
            | Export | ExportJobs | ExportJob(_) | ExportDownload(_) => Role::Viewer,
            // Moving the camera is an operator's action like starting a recording: whoever may
            // watch and record this camera may point it (the old system had no finer role).
            // Setting a preset changes the camera, but only its list of positions.
            PtzMove | PtzStop | PtzGotoPreset | PtzSetPreset | PtzPresets => Role::Viewer,
            DeleteSession(_) | DeleteHlsRange | DeleteHlsSession(_) | DeleteMp4Range | DeleteMp4(_)
            | DeleteExport(_) => Role::Admin,
        }
    }
}

/// The character set camera files may use for `path` (see `config::camera`).
fn is_camera_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && s != "."
        && s != ".."
}

#[cfg(test)]
mod tests;
