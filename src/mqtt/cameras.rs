//! The periodic side of MQTT: every `publish_interval_secs` (and at once after connecting) the
//! server's and each camera's status, from the same documents as `/api/status`; and keeping
//! one picture task per running camera. A removed camera's retained topics are cleared (an
//! empty retained payload), so a dashboard does not show a camera that is gone.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::outbound::{Outbound, Urgency};
use super::pictures;
use super::topics::Topics;
use crate::camera::Camera;
use crate::registry::{Registry, report};

/// Topics a camera may have retained on the broker.
const CAMERA_LEAVES: &[&str] = &["status", "capturing", "jpg"];

struct Running {
    camera: Arc<Camera>,
    task: JoinHandle<()>,
}

pub async fn run(registry: Arc<Registry>, out: Arc<Outbound>, topics: Topics, mut shutdown: watch::Receiver<bool>) {
    let cfg = &registry.config.mqtt;
    // 0 in the spec's range would mean "continuously"; a tenth of a second is plenty.
    let period = Duration::from_secs_f64(cfg.publish_interval_secs.max(0.1));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut running: BTreeMap<String, Running> = BTreeMap::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = out.connected_now.notified() => {}
            _ = shutdown.wait_for(|s| *s) => break,
        }
        // Statuses first: a camera removed meanwhile is cleared by `sync` after its last status.
        if out.connected() {
            publish_status(&registry, &out, &topics);
        }
        sync(&registry, &out, &topics, &mut running);
    }
    for r in running.into_values() {
        r.task.abort();
    }
}

fn publish_status(registry: &Registry, out: &Outbound, topics: &Topics) {
    out.send_json(topics.status(), &report::summary(registry), out.retain, Urgency::Fresh);
    for camera in registry.cameras() {
        let doc = report::camera_json(&camera);
        out.send_json(topics.camera(&camera.id(), "status"), &doc, out.retain, Urgency::Fresh);
    }
}

/// Starts picture tasks for new (or replaced) cameras, ends those of removed ones.
fn sync(registry: &Registry, out: &Arc<Outbound>, topics: &Topics, running: &mut BTreeMap<String, Running>) {
    let cfg = &registry.config.mqtt;
    let cameras: BTreeMap<String, Arc<Camera>> = registry.cameras().into_iter().map(|c| (c.id(), c)).collect();
    running.retain(|id, r| {
        let same = cameras.get(id).is_some_and(|c| Arc::ptr_eq(c, &r.camera)) && !r.task.is_finished();
        if !same {
            r.task.abort();
        }
        if !cameras.contains_key(id) {
            clear_retained(out, topics, id, &r.camera);
        }
        same
    });
    for (id, camera) in cameras {
        if running.contains_key(&id) {
            continue;
        }
        let task = tokio::spawn(
            pictures::run(
                camera.clone(),
                out.clone(),
                topics.clone(),
                cfg.publish_picture_arrival,
                cfg.publish_interval_secs,
            )
            .in_current_span(),
        );
        running.insert(id, Running { camera, task });
    }
}

fn clear_retained(out: &Outbound, topics: &Topics, id: &str, camera: &Camera) {
    let mut clear: Vec<String> = CAMERA_LEAVES.iter().map(|leaf| topics.camera(id, leaf)).collect();
    clear.extend(camera.config().mqtt.topic_name.clone());
    for topic in clear {
        out.send(topic, Bytes::new(), true, Urgency::Keep);
    }
    tracing::info!(camera = %id, "camera removed: its retained MQTT topics are cleared");
}
