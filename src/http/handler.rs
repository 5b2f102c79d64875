//! Turns a decoded [`Route`] into a response.

use std::convert::Infallible;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue,
};
use hyper::{Method, Request, StatusCode};

use super::api;
use super::auth::authorized;
use super::pages::pages;
use super::response::{self, Resp};
use super::route::{CameraRoute, ControlRoute, Route};
use super::{control, video};
use crate::app::App;
use crate::live::{control::serve_control, stream::serve_live, upgrade};

pub async fn handle(app: Arc<App>, mut req: Request<Incoming>) -> Result<Resp, Infallible> {
    let mut resp = if req.method() == Method::OPTIONS {
        let mut r = response::with_type(StatusCode::NO_CONTENT, "text/plain", "");
        let h = r.headers_mut();
        h.insert(ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, PUT, DELETE, OPTIONS"));
        h.insert(ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("Authorization, Content-Type, Range"));
        r
    } else {
        route(&app, &mut req).await
    };
    if let Some(origin) = app.config.server.cors_allow_origin.as_deref().and_then(|o| HeaderValue::from_str(o).ok()) {
        resp.headers_mut().insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    Ok(resp)
}

async fn route(app: &Arc<App>, req: &mut Request<Incoming>) -> Resp {
    let path = req.uri().path().to_string();
    let read_only = matches!(*req.method(), Method::GET | Method::HEAD);
    match Route::decode(&path) {
        Route::NotFound => response::not_found(&format!("nothing at {}", crate::redact::redact_url(&path))),
        Route::Camera(name, CameraRoute::Control(api)) if api != ControlRoute::Page => {
            control::handle(app, name, api, req).await
        }
        _ if !read_only => response::error(StatusCode::METHOD_NOT_ALLOWED, "only GET is allowed here"),
        Route::Root => response::redirect("dashboard"),
        Route::Dashboard => response::html(pages().dashboard.clone()),
        Route::ApiStatus => response::success(api::status(app)),
        Route::ApiCameras => response::success(api::cameras(app)),
        Route::Asset(file) => asset(app, file).await,
        Route::Camera(name, page) => camera_route(app, name, page, req).await,
    }
}

async fn camera_route(app: &Arc<App>, name: &str, page: CameraRoute<'_>, req: &mut Request<Incoming>) -> Resp {
    let Some(camera) = app.camera(name) else {
        return response::not_found(&format!("no camera at /{name}"));
    };
    let wants_socket = upgrade::is_upgrade(req);
    let needs_token = wants_socket || matches!(page, CameraRoute::Snapshot | CameraRoute::Live | CameraRoute::Hls(_));
    if needs_token && !authorized(camera.config.token.as_ref(), req.headers(), req.uri().query()) {
        return response::error(
            StatusCode::UNAUTHORIZED,
            "this camera requires a token (?token= or Authorization: Bearer)",
        );
    }
    match (page, wants_socket) {
        (CameraRoute::Index | CameraRoute::Stream | CameraRoute::Live, true) => {
            upgrade::accept(req, move |socket| serve_live(camera, socket))
        }
        (CameraRoute::Live, false) => {
            response::error(StatusCode::UPGRADE_REQUIRED, "connect to this URL with a WebSocket")
        }
        (CameraRoute::Index | CameraRoute::Test, false) => response::html(pages().test.clone()),
        (CameraRoute::Stream, false) => response::html(pages().stream.clone()),
        (CameraRoute::Snapshot, _) => match camera.bus.latest() {
            Some(frame) => response::jpeg(frame.jpeg),
            None => response::error(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("camera {} has no picture yet ({})", camera.id(), camera.stats.state().as_str()),
            ),
        },
        (CameraRoute::Control(_), true) => upgrade::accept(req, move |socket| serve_control(camera, socket)),
        (CameraRoute::Control(_), false) => response::html(pages().control.clone()),
        (CameraRoute::Hls(file), false) => video::live_hls(&camera, file).await,
        (CameraRoute::Hls(_), true) => response::error(StatusCode::BAD_REQUEST, "HLS is plain HTTP, not a WebSocket"),
        (CameraRoute::Test, true) => {
            response::error(StatusCode::BAD_REQUEST, "connect the WebSocket to /<camera>/live, not to the test page")
        }
    }
}

/// Serves hls.js from disk (it is too big to embed in a binary that must fit a panel's flash).
async fn asset(app: &App, file: &str) -> Resp {
    if file != "hls.min.js" {
        return response::not_found("no such asset");
    }
    let candidates = match &app.config.server.hls_js_path {
        Some(p) => vec![p.clone()],
        None => vec!["web/vendor/hls.min.js".into(), "/usr/share/panelcam/hls.min.js".into()],
    };
    for path in candidates {
        if tokio::fs::metadata(&path).await.is_ok() {
            let mut r = super::files::serve_file(&path, "application/javascript", None, None).await;
            r.headers_mut().insert(hyper::header::CACHE_CONTROL, HeaderValue::from_static("max-age=86400"));
            return r;
        }
    }
    response::not_found("hls.js is not installed (scripts/deps.sh run fetches it; or set server.hls_js_path)")
}
