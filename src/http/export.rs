//! MP4 export endpoints: start a job, follow it, download the result (with byte ranges).

use std::sync::Arc;

use http_body_util::{BodyExt, Limited};
use hyper::Request;
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::files::{range_header, serve_file};
use super::response::{self, Resp};
use super::route::ControlRoute;
use crate::app::App;
use crate::record::model::StoreError;
use crate::util::parse_time;
use crate::video::camera::VideoCamera;
use crate::video::export::JobState;

fn job_id(raw: &str) -> Result<u64, StoreError> {
    raw.parse().map_err(|_| StoreError::BadRequest(format!("export job id must be a number, got \"{raw}\"")))
}

pub async fn handle(
    app: &Arc<App>,
    video: &Arc<VideoCamera>,
    route: ControlRoute<'_>,
    req: &mut Request<Incoming>,
) -> Result<Resp, StoreError> {
    match route {
        ControlRoute::Export => {
            let body = Limited::new(req.body_mut(), 4096)
                .collect()
                .await
                .map_err(|_| StoreError::BadRequest("request body too large".into()))?
                .to_bytes();
            let v: Value = serde_json::from_slice(&body).map_err(|_| {
                StoreError::BadRequest(
                    "body must be JSON like {\"from\": \"2025-08-15T10:00:00Z\", \"to\": \"2025-08-15T10:05:00Z\"}"
                        .into(),
                )
            })?;
            let time = |key: &str| -> Result<i64, StoreError> {
                let raw = v
                    .get(key)
                    .and_then(Value::as_str)
                    .ok_or_else(|| StoreError::BadRequest(format!("`{key}` is required (an ISO time)")))?;
                parse_time(raw).ok_or_else(|| StoreError::BadRequest(format!("`{key}` is not a valid time: \"{raw}\"")))
            };
            let job = app.exports.start(video.clone(), time("from")?, time("to")?)?;
            let mut data = job.to_json();
            data["message"] = json!("Export started");
            data["status_url"] = json!(format!("export/jobs/{}", job.id));
            Ok(response::success(data))
        }
        ControlRoute::ExportJobs => {
            app.exports.expire();
            let jobs: Vec<Value> = app.exports.list(&video.camera).iter().map(|j| j.to_json()).collect();
            Ok(response::success(json!({"count": jobs.len(), "jobs": jobs})))
        }
        ControlRoute::ExportJob(id) => {
            let job = app
                .exports
                .get(&video.camera, job_id(id)?)
                .ok_or_else(|| StoreError::NotFound(format!("no export job {id}")))?;
            Ok(response::success(job.to_json()))
        }
        ControlRoute::ExportDownload(id) => {
            app.exports.expire();
            let job = app
                .exports
                .get(&video.camera, job_id(id)?)
                .ok_or_else(|| StoreError::NotFound(format!("no export job {id} (finished exports expire)")))?;
            match &job.state {
                JobState::Done => Ok(serve_file(
                    &job.path,
                    "video/mp4",
                    range_header(req.headers()).as_deref(),
                    Some(&job.file_name()),
                )
                .await),
                JobState::Failed(e) => Err(StoreError::Conflict(format!("export job {id} failed: {e}"), None)),
                _ => Err(StoreError::Conflict(
                    format!("export job {id} is not finished yet ({:.0}%)", job.progress * 100.0),
                    None,
                )),
            }
        }
        _ => Ok(response::not_found("no such recording endpoint")),
    }
}
