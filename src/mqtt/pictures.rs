//! One task per camera that turns its live frames into picture-arrival events and pictures.
//! It watches the FrameBus's newest-frame slot like a live viewer: when MQTT is slow it skips
//! frames instead of queueing them, so the camera and its viewers never wait for the broker.
//!
//! Arrival events (`mqtt.publish_picture_arrival`) are `{"t": capture time in ms since the
//! epoch, "d": ms since the previous frame (0 for the first), "s": JPEG bytes}`. Pictures are
//! sent only for cameras whose file has an `mqtt` section with `publish_interval` (seconds;
//! 0 = every frame) or `topic_name`: JPEGs to a broker cost the panel's network and CPU, so
//! they are asked for, not sent by default.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::outbound::{Outbound, Urgency};
use super::topics::Topics;
use crate::bus::RatePacer;
use crate::camera::Camera;
use crate::config::camera::CameraMqtt;

/// Where and how often a camera's pictures go, or `None` when it sends none.
#[derive(Clone, Debug, PartialEq)]
pub struct PicturePlan {
    pub topic: String,
    pub interval_secs: f64,
}

pub fn picture_plan(id: &str, mqtt: &CameraMqtt, topics: &Topics, default_interval: f64) -> Option<PicturePlan> {
    if mqtt.publish_interval.is_none() && mqtt.topic_name.is_none() {
        return None;
    }
    let topic = mqtt.topic_name.clone().unwrap_or_else(|| topics.camera(id, "jpg"));
    Some(PicturePlan { topic, interval_secs: mqtt.publish_interval.unwrap_or(default_interval) })
}

fn pacer(interval_secs: f64) -> RatePacer {
    RatePacer::new(if interval_secs > 0.0 { 1.0 / interval_secs } else { 0.0 })
}

pub async fn run(camera: Arc<Camera>, out: Arc<Outbound>, topics: Topics, arrival: bool, default_interval: f64) {
    let mut frames = camera.bus.watch();
    let mut stopped = camera.stopped();
    let mut previous_ms: Option<i64> = None;
    let mut plan: Option<PicturePlan> = None;
    let mut pictures = pacer(0.0);
    // JPEGs are made on demand (bus::JpegDemand): held while pictures or arrival events are
    // published. The plan is looked at again every few seconds, camera files change it.
    let mut demand = None;
    let mut recheck = tokio::time::interval(Duration::from_secs(2));
    loop {
        let config = camera.config();
        let now_plan = picture_plan(&config.id, &config.mqtt, &topics, default_interval);
        if now_plan != plan {
            pictures = pacer(now_plan.as_ref().map_or(0.0, |p| p.interval_secs));
            plan = now_plan;
        }
        let wanted = arrival || plan.is_some();
        if wanted != demand.is_some() {
            demand = wanted.then(|| camera.bus.want_jpegs());
        }
        tokio::select! {
            changed = frames.changed() => if changed.is_err() { return },
            _ = recheck.tick() => continue,
            _ = stopped.wait_for(|s| *s) => return,
        }
        let Some(frame) = frames.borrow_and_update().clone() else { continue };
        let delta = previous_ms.map_or(0, |p| (frame.captured_ms - p).max(0));
        previous_ms = Some(frame.captured_ms);
        if arrival {
            let event = json!({"t": frame.captured_ms, "d": delta, "s": frame.jpeg.len()});
            out.send_json(topics.camera(&config.id, "capturing"), &event, false, Urgency::Fresh);
        }
        if let Some(p) = &plan
            && pictures.admit(Instant::now())
        {
            out.send(p.topic.clone(), frame.jpeg, out.retain, Urgency::Fresh);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pictures_are_asked_for() {
        let t = Topics::new("b");
        assert_eq!(picture_plan("c", &CameraMqtt::default(), &t, 1.0), None);
        let every = CameraMqtt { publish_interval: Some(0.0), topic_name: None };
        assert_eq!(
            picture_plan("c", &every, &t, 1.0),
            Some(PicturePlan { topic: "b/cameras/c/jpg".into(), interval_secs: 0.0 })
        );
        let named = CameraMqtt { publish_interval: None, topic_name: Some("x/y".into()) };
        assert_eq!(picture_plan("c", &named, &t, 5.0), Some(PicturePlan { topic: "x/y".into(), interval_secs: 5.0 }));
    }
}
