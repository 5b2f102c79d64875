//! MP4 export endpoints: start a job, follow it, download the result (with byte ranges),
//! delete it (admin).

use hyper::Request;
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::files::{range_header, serve_file};
use super::params::{read_json, shown};
use super::response::{self, Resp};
use super::video::video_of;
use crate::camera::Camera;
use crate::registry::Registry;
use crate::store::StoreError;
use crate::util::parse_time;
use crate::video::export::JobState;

fn job_id(raw: &str) -> Result<u64, StoreError> {
    raw.parse().map_err(|_| StoreError::Invalid(format!("export job id must be a number, got \"{}\"", shown(raw))))
}

const EXAMPLE: &str = "body must be JSON like {\"from\": \"2025-08-15T10:00:00Z\", \"to\": \"2025-08-15T10:05:00Z\"}";

pub async fn start(registry: &Registry, camera: &Camera, req: &mut Request<Incoming>) -> Result<Resp, StoreError> {
    let video = video_of(camera)?;
    let v = read_json(req, 4096).await?.ok_or_else(|| StoreError::Invalid(EXAMPLE.into()))?;
    let time = |key: &str| -> Result<i64, StoreError> {
        let raw = v
            .get(key)
            .and_then(Value::as_str)
            .ok_or_else(|| StoreError::Invalid(format!("`{key}` is required (an ISO time); {EXAMPLE}")))?;
        parse_time(raw).map_err(|e| StoreError::Invalid(format!("`{key}`: {e}, got \"{}\"", shown(raw))))
    };
    let job = registry.exports.start(video.store.clone(), time("from")?, time("to")?).await?;
    let mut data = job.to_json();
    data["message"] = json!("Export started");
    data["status_url"] = json!(format!("export/jobs/{}", job.id));
    Ok(response::success(data))
}

pub async fn jobs(registry: &Registry, camera: &Camera) -> Result<Resp, StoreError> {
    registry.exports.expire().await;
    let jobs: Vec<Value> = registry.exports.list(&camera.id()).iter().map(|j| j.to_json()).collect();
    Ok(response::success(json!({"count": jobs.len(), "jobs": jobs})))
}

pub fn job(registry: &Registry, camera: &Camera, id: &str) -> Result<Resp, StoreError> {
    let job = registry
        .exports
        .get(&camera.id(), job_id(id)?)
        .ok_or_else(|| StoreError::NotFound(format!("no export job {id}")))?;
    Ok(response::success(job.to_json()))
}

pub async fn download(
    registry: &Registry,
    camera: &Camera,
    id: &str,
    req: &Request<Incoming>,
) -> Result<Resp, StoreError> {
    registry.exports.expire().await;
    let job = registry
        .exports
        .get(&camera.id(), job_id(id)?)
        .ok_or_else(|| StoreError::NotFound(format!("no export job {id} (finished exports expire)")))?;
    match &job.state {
        JobState::Done => {
            let range = range_header(req.headers());
            Ok(serve_file(registry.exports.dir(), &job.path, "video/mp4", range.as_deref(), Some(&job.file_name()))
                .await)
        }
        JobState::Failed(e) => Err(StoreError::Conflict(format!("export job {id} failed: {e}"), None)),
        _ => Err(StoreError::Conflict(
            format!("export job {id} is not finished yet ({:.0}%)", job.progress * 100.0),
            None,
        )),
    }
}

pub async fn delete(registry: &Registry, camera: &Camera, id: &str) -> Result<Resp, StoreError> {
    let id = job_id(id)?;
    registry.exports.remove(&camera.id(), id).await?;
    Ok(response::success(json!({"job_id": id, "message": "Export deleted"})))
}
