//! MQTT (issue 9 §1): what the system we replace published under `mqtt.base_topic`, plus an
//! availability topic with a last will and, when enabled, recording commands. The topic tree
//! is in [`topics`] and README.md ("MQTT").
//!
//! One task owns rumqttc's event loop (connect, keep-alive, reconnect); everything else only
//! queues messages through [`outbound::Outbound`], which never waits. When the broker is down
//! panelcam streams on: the loop retries with a backoff growing to 30 s, and pictures and
//! statuses are dropped (and counted) meanwhile instead of piling up for a broker that is gone.

pub mod cameras;
pub mod command;
pub mod outbound;
pub mod pictures;
pub mod topics;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bytes::Bytes;
use rumqttc::{
    AsyncClient, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, Publish, TlsConfiguration, Transport,
};
use tokio::sync::{Semaphore, watch};
use tracing::{Instrument, info, warn};

use crate::config::mqtt::BrokerAddr;
use crate::redact::redact_url;
use crate::registry::Registry;
use outbound::{Outbound, Urgency, qos};
use topics::Topics;

/// Incoming packets are acknowledgements and commands; a command is at most
/// [`command::MAX_PAYLOAD`]. Anything larger ends the connection (rumqttc's rule).
const MAX_INCOMING: usize = 1 << 20;
/// Commands running at once; more are answered "busy" (a flood cannot pile up tasks).
const MAX_COMMANDS: usize = 4;
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long a clean stop waits to tell the broker "offline" before it gives up.
const GOODBYE: Duration = Duration::from_secs(2);

pub const ONLINE: &str = "online";
pub const OFFLINE: &str = "offline";

/// The MQTT client options for this configuration; `tls` for `mqtts://`.
fn options(
    registry: &Registry,
    broker: &BrokerAddr,
    topics: &Topics,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> MqttOptions {
    let cfg = &registry.config.mqtt;
    let mut o = MqttOptions::new(cfg.client_id.clone(), broker.host.clone(), broker.port);
    o.set_keep_alive(Duration::from_secs(cfg.keep_alive_secs.max(1)));
    let max_out = usize::try_from(cfg.max_packet_size).unwrap_or(usize::MAX);
    o.set_max_packet_size(MAX_INCOMING, max_out);
    o.set_clean_session(true);
    o.set_request_channel_capacity(outbound::QUEUE);
    // A panel that dies (power, kill -9) shows "offline": the broker publishes this for us.
    o.set_last_will(LastWill::new(topics.availability(), OFFLINE, qos(cfg.qos), true));
    if let Some(user) = &broker.username {
        o.set_credentials(user.clone(), broker.password.clone().unwrap_or_default());
    }
    if let Some(config) = tls {
        // rumqttc checks the certificate against the URL's host name with this configuration.
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(config)));
    }
    o
}

/// Runs MQTT until shutdown; returns at once when `mqtt.enabled` is false.
pub async fn run(registry: Arc<Registry>, mut shutdown: watch::Receiver<bool>) {
    let cfg = &registry.config.mqtt;
    if !cfg.enabled {
        return;
    }
    let status = &registry.status.mqtt;
    status.enabled.store(true, Relaxed);
    let broker = match cfg.broker() {
        Ok(b) => b,
        Err(e) => {
            // The config reader refuses such URLs; this is only reached if that changes.
            warn!("mqtt.broker_url: {e}; MQTT is off");
            status.set_error(Some(e));
            return;
        }
    };
    let tls = match broker.tls.then(|| cfg.tls.config("mqtt.tls")) {
        None => None,
        Some(Ok(config)) => Some(Arc::new(config)),
        Some(Err(problem)) => {
            // Checked at startup; reached only if a file changed since. Never fall back to plain TCP.
            warn!("{problem}; MQTT is off");
            status.set_error(Some(problem.to_string()));
            return;
        }
    };
    let topics = Topics::new(&cfg.base_topic);
    let (client, mut eventloop) = AsyncClient::new(options(&registry, &broker, &topics, tls), outbound::QUEUE);
    let max_packet = usize::try_from(cfg.max_packet_size).unwrap_or(usize::MAX);
    let out = Arc::new(Outbound::new(client, qos(cfg.qos), cfg.retain, max_packet, registry.clone()));
    let shown = redact_url(&cfg.broker_url);
    info!(broker = %shown, base_topic = %cfg.base_topic, commands = cfg.commands_enabled, "MQTT publishing");
    let periodic =
        tokio::spawn(cameras::run(registry.clone(), out.clone(), topics.clone(), shutdown.clone()).in_current_span());
    let commands = Arc::new(Semaphore::new(MAX_COMMANDS));
    let mut backoff = BACKOFF_FIRST;
    loop {
        let event = tokio::select! {
            e = eventloop.poll() => e,
            _ = shutdown.wait_for(|s| *s) => break,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff = BACKOFF_FIRST;
                status.connected.store(true, Relaxed);
                status.set_error(None);
                info!(broker = %shown, "MQTT connected");
                out.send(topics.availability(), Bytes::from_static(ONLINE.as_bytes()), true, Urgency::Keep);
                if cfg.commands_enabled {
                    // A clean session forgets subscriptions: subscribe on every connection.
                    let filter = topics.command_filter();
                    if out.client().try_subscribe(filter, out.qos).is_err() {
                        warn!(
                            "cannot subscribe to the command topics (request queue full); retried on the next connection"
                        );
                    }
                }
                out.connected_now.notify_one();
            }
            Ok(Event::Incoming(Packet::Publish(p))) => on_command(&registry, &out, &topics, &commands, p),
            Ok(Event::Outgoing(Outgoing::Publish(_))) => {
                status.published.fetch_add(1, Relaxed);
            }
            Ok(_) => {}
            Err(e) => {
                let was_connected = status.connected.swap(false, Relaxed);
                let message = redact_url(&e.to_string());
                if was_connected || status.last_error().as_deref() != Some(message.as_str()) {
                    warn!(broker = %shown, "MQTT connection: {message}; retrying in {} s", backoff.as_secs());
                }
                if was_connected {
                    status.reconnects.fetch_add(1, Relaxed);
                }
                status.set_error(Some(message));
                // Unacknowledged pictures and statuses from the lost session are stale by the
                // time the broker is back; fresh ones follow the new connection.
                eventloop.pending.clear();
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.wait_for(|s| *s) => break,
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
    // The periodic task ends its picture tasks on the same signal; nothing is queued after
    // "offline" once it has.
    if tokio::time::timeout(Duration::from_secs(1), periodic).await.is_err() {
        warn!("MQTT: the status task did not stop within 1 s");
    }
    if status.connected.load(Relaxed) {
        goodbye(&out, &topics, &mut eventloop).await;
    }
    status.connected.store(false, Relaxed);
}

/// A clean stop: "offline" (retained) and a DISCONNECT, so the broker does not publish the
/// will and dashboards see the panel went away on purpose.
async fn goodbye(out: &Outbound, topics: &Topics, eventloop: &mut EventLoop) {
    out.send(topics.availability(), Bytes::from_static(OFFLINE.as_bytes()), true, Urgency::Keep);
    let _ = out.client().try_disconnect();
    let drained = tokio::time::timeout(GOODBYE, async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    if drained.is_err() {
        warn!("MQTT: the broker did not take \"offline\" within {} s", GOODBYE.as_secs());
    }
}

/// A message on a command topic: parsed here, run on its own task (the event loop must keep
/// polling), answered on `<topic>/reply`.
fn on_command(registry: &Arc<Registry>, out: &Arc<Outbound>, topics: &Topics, slots: &Arc<Semaphore>, p: Publish) {
    if !registry.config.mqtt.commands_enabled || p.retain {
        // A retained command would run again on every connection: never act on one.
        return;
    }
    let Some(camera) = topics.command_camera(&p.topic) else { return };
    registry.status.mqtt.commands.fetch_add(1, Relaxed);
    let reply_topic = format!("{}/reply", p.topic);
    let command = match command::parse(&p.payload) {
        Ok(c) => c,
        Err(e) => {
            info!(camera = %camera, "MQTT command refused: {e}");
            out.send_json(reply_topic, &command::rejected(&e), false, Urgency::Keep);
            return;
        }
    };
    let Ok(slot) = slots.clone().try_acquire_owned() else {
        let busy = serde_json::json!({"status": "busy", "error": "too many commands at once; try again"});
        out.send_json(reply_topic, &busy, false, Urgency::Keep);
        return;
    };
    let (registry, out, camera) = (registry.clone(), out.clone(), camera.to_string());
    tokio::spawn(
        async move {
            let reply = command::execute(&registry, &camera, command).await;
            info!(camera = %camera, status = %reply["status"], action = %reply["action"], "MQTT command");
            out.send_json(reply_topic, &reply, false, Urgency::Keep);
            drop(slot);
        }
        .in_current_span(),
    );
}
