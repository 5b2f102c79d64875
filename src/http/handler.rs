//! Turns a request into a response: decode the route, refuse a locked-out address, check
//! the route's role, and only then look at cameras, sessions or files.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::header::{ALLOW, HeaderValue, RETRY_AFTER};
use hyper::{Method, Request, StatusCode};
use tracing::warn;

use super::auth::{Denied, Grant, Lockouts, Presented, authorize};
use super::pages::{Page, pages};
use super::response::{self, Resp};
use super::route::{CameraRoute, Role, Route, RouteError};
use super::upgrade;
use super::{Peer, control, cors, security};
use crate::camera::Camera;
use crate::camera::stats::ClientGuard;
use crate::live::{control::serve_control, stream::serve_live, video::serve_video};
use crate::redact::redact_url;
use crate::registry::Registry;

pub async fn handle(
    registry: Arc<Registry>,
    lockouts: Arc<Lockouts>,
    mut req: Request<Incoming>,
) -> Result<Resp, Infallible> {
    let allow_origin = registry.config.server.cors_allow_origin.clone();
    let mut resp = if req.method() == Method::OPTIONS {
        cors::preflight(allow_origin.as_deref(), req.headers())
    } else {
        route(&registry, &lockouts, &mut req).await
    };
    cors::apply(allow_origin.as_deref(), req.headers(), resp.headers_mut());
    security::apply_common(resp.headers_mut());
    Ok(resp)
}

fn method_not_allowed(methods: &[Method]) -> Resp {
    let list = methods.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
    let mut r = response::error(StatusCode::METHOD_NOT_ALLOWED, &format!("use {list} here"));
    if let Ok(v) = HeaderValue::from_str(&list) {
        r.headers_mut().insert(ALLOW, v);
    }
    r
}

async fn route(registry: &Arc<Registry>, lockouts: &Lockouts, req: &mut Request<Incoming>) -> Resp {
    let path = req.uri().path().to_string();
    let route = match Route::decode(req.method(), &path) {
        Ok(r) => r,
        Err(RouteError::NotFound) => {
            return response::not_found(&format!("nothing at {}", super::params::shown(&redact_url(&path))));
        }
        Err(RouteError::MethodNotAllowed(methods)) => return method_not_allowed(methods),
    };
    let role = route.role();
    let peer = req.extensions().get::<Peer>().map(|p| p.0);
    if role != Role::Public
        && let Some(peer) = peer
        && let Err(wait) = lockouts.check(peer.ip(), Instant::now())
    {
        registry.status.auth_lockouts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let secs = wait.as_secs().max(1);
        let mut r = response::error(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("too many failed authentications from this address; try again in {secs} s"),
        );
        r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
        return r;
    }
    // Admin routes are decided before the camera is even looked up; viewer routes need the
    // camera's token, so its camera first (whether a camera exists is public anyway:
    // `/api/status` lists them).
    let camera = match route {
        Route::Camera(name, _) if role == Role::Viewer => match registry.camera_by_path(name) {
            Some(c) => Some(c),
            None => return response::not_found(&format!("no camera at /{name}")),
        },
        _ => None,
    };
    let camera_token = match route {
        Route::Metrics => registry.config.server.metrics_token.clone(),
        _ => camera.as_ref().and_then(|c| c.config().token.clone()),
    };
    let presented = Presented::of(req.headers(), req.uri().query());
    let grant = match authorize(role, camera_token.as_ref(), registry.config.server.admin_token.as_ref(), &presented) {
        Ok(g) => g,
        Err(denied) => {
            let guess = presented.fingerprint(&lockouts.keys);
            return refuse(registry, lockouts, req, peer, guess, denied);
        }
    };
    let camera = match (camera, route) {
        (Some(c), _) => Some(c),
        (None, Route::Camera(name, _)) => match registry.camera_by_path(name) {
            Some(c) => Some(c),
            None => return response::not_found(&format!("no camera at /{name}")),
        },
        (None, _) => None,
    };
    match (route, camera) {
        (Route::Root, _) => response::redirect("dashboard"),
        (Route::Dashboard, _) => html_page(registry, &pages().dashboard),
        (Route::AdminPage, _) => html_page(registry, &pages().admin),
        (Route::ApiStatus, _) => response::success(crate::registry::report::status(registry)),
        (Route::ApiCameras, _) => response::success(crate::registry::report::cameras(registry)),
        (Route::Metrics, _) => response::prometheus(super::metrics::render(registry)),
        (Route::Admin(admin), _) => super::admin::handle(registry, admin, req).await,
        (Route::Asset(file), _) => asset(registry, file).await,
        (Route::Camera(_, page), Some(camera)) => camera_route(registry, camera, page, grant, req).await,
        (Route::Camera(name, _), None) => response::not_found(&format!("no camera at /{name}")),
    }
}

/// A page with its Content-Security-Policy, framing as configured.
fn html_page(registry: &Registry, page: &Page) -> Resp {
    let mut r = response::html(page.html.clone());
    security::apply_page(r.headers_mut(), &page.policy, &registry.config.server.frame_ancestors);
    r
}

/// Answers a refused request: logged with the client's address and the path (never a
/// token: the query is left out), counted towards the address's lockout.
fn refuse(
    registry: &Registry,
    lockouts: &Lockouts,
    req: &Request<Incoming>,
    peer: Option<std::net::SocketAddr>,
    guess: u64,
    denied: Denied,
) -> Resp {
    let (status, message) = match denied {
        Denied::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m),
        Denied::Forbidden(m) => (StatusCode::FORBIDDEN, m),
    };
    if denied.is_attempt() {
        registry.status.auth_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let client = peer.map(|p| p.ip().to_string()).unwrap_or_else(|| "unknown".into());
        let locked = peer.is_some_and(|p| lockouts.failed(p.ip(), guess, Instant::now()));
        warn!(client = %client, method = %req.method(), path = %redact_url(req.uri().path()), status = status.as_u16(),
              "refused: {message}{}", if locked { "; this address is locked out for a while" } else { "" });
    }
    let mut r = response::error(status, message);
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(hyper::header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    r
}

/// The 503 that says a camera has as many viewers as it may.
fn camera_full(camera: &Camera) -> Resp {
    response::error(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!(
            "camera {} has {} viewers, the most allowed (server.max_viewers_per_camera)",
            camera.id(),
            camera.max_viewers
        ),
    )
}

/// The newest JPEG. A camera whose JPEGs are made on demand makes them for a moment: the
/// transcoder starts (or keeps running for its grace period) and the first new JPEG is it.
async fn snapshot(camera: &Camera) -> Option<crate::bus::Frame> {
    if camera.hub().is_none() {
        return camera.bus.latest();
    }
    let _jpegs = camera.bus.want_jpegs();
    let fresh =
        |f: &Option<crate::bus::Frame>| f.as_ref().is_some_and(|f| f.received.elapsed() < Duration::from_secs(1));
    let mut frames = camera.bus.watch();
    match tokio::time::timeout(Duration::from_secs(5), frames.wait_for(fresh)).await {
        Ok(Ok(frame)) => frame.clone(),
        _ => None,
    }
}

async fn camera_route(
    registry: &Arc<Registry>,
    camera: Arc<Camera>,
    page: CameraRoute<'_>,
    grant: Grant,
    req: &mut Request<Incoming>,
) -> Resp {
    let wants_socket = upgrade::is_upgrade(req);
    match (page, wants_socket) {
        (CameraRoute::Index | CameraRoute::Stream | CameraRoute::Live, true) => {
            match ClientGuard::try_new(&camera.stats, camera.max_viewers) {
                Some(slot) => upgrade::accept(req, move |socket| serve_live(camera, slot, socket)),
                None => camera_full(&camera),
            }
        }
        (CameraRoute::Video, true) => match ClientGuard::try_new(&camera.stats, camera.max_viewers) {
            Some(slot) => upgrade::accept(req, move |socket| serve_video(camera, slot, socket)),
            None => camera_full(&camera),
        },
        (CameraRoute::Video, false) => {
            response::error(StatusCode::UPGRADE_REQUIRED, "connect to this URL with a WebSocket")
        }
        (CameraRoute::ControlPage, true) => match ClientGuard::try_new(&camera.stats, camera.max_viewers) {
            Some(slot) => upgrade::accept(req, move |socket| serve_control(camera, slot, socket)),
            None => camera_full(&camera),
        },
        (CameraRoute::Live, false) => {
            response::error(StatusCode::UPGRADE_REQUIRED, "connect to this URL with a WebSocket")
        }
        (CameraRoute::Index | CameraRoute::Test, false) => html_page(registry, &pages().test),
        (CameraRoute::Stream, false) => html_page(registry, &pages().stream),
        (CameraRoute::ControlPage, false) => html_page(registry, &pages().control),
        (CameraRoute::Snapshot, _) => match snapshot(&camera).await {
            Some(frame) => response::jpeg(frame.jpeg),
            None => response::error(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("camera {} has no picture yet ({})", camera.id(), camera.stats.state().as_str()),
            ),
        },
        (CameraRoute::Hls(file), false) => super::video::live_hls(&camera, file).await,
        (CameraRoute::Hls(_), true) => response::error(StatusCode::BAD_REQUEST, "HLS is plain HTTP, not a WebSocket"),
        (CameraRoute::Test, true) => {
            response::error(StatusCode::BAD_REQUEST, "connect the WebSocket to /<camera>/live, not to the test page")
        }
        (CameraRoute::Api(api), _) => control::handle(registry, &camera, api, grant, req).await,
    }
}

/// Serves hls.js from disk (it is too big to embed in a binary that must fit a panel's flash).
async fn asset(registry: &Registry, file: &str) -> Resp {
    if file != "hls.min.js" {
        return response::not_found("no such asset");
    }
    let candidates = match &registry.config.server.hls_js_path {
        Some(p) => vec![p.clone()],
        None => vec!["web/vendor/hls.min.js".into(), "/usr/share/panelcam/hls.min.js".into()],
    };
    // The one name and its places are fixed by the configuration, not the request, so a
    // packaged hls.js may be a symlink into the system's JavaScript libraries.
    for path in candidates {
        if let Ok(file) = tokio::fs::File::open(&path).await {
            let mut r = super::files::serve_open_file(file, "application/javascript", None, None).await;
            r.headers_mut().insert(hyper::header::CACHE_CONTROL, HeaderValue::from_static("max-age=86400"));
            return r;
        }
    }
    response::not_found("hls.js is not installed (scripts/deps.sh run fetches it; or set server.hls_js_path)")
}
