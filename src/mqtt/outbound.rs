//! Everything panelcam publishes goes through [`Outbound::send`]: it never waits. The request
//! queue to the connection is bounded; a message that does not fit, that is larger than
//! `mqtt.max_packet_size`, or that would only go stale while the broker is away is dropped and
//! counted (`/api/status` → `mqtt`). A camera and its viewers therefore never wait for MQTT.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use futures_util::FutureExt;
use rumqttc::{AsyncClient, QoS};
use tokio::sync::Notify;

use crate::registry::Registry;
use crate::registry::status::MqttStatus;

/// Requests waiting for the connection at most. A picture is the big one; a few of them per
/// camera are plenty when the network keeps up, and nothing helps when it does not.
pub const QUEUE: usize = 64;

pub struct Outbound {
    client: AsyncClient,
    pub qos: QoS,
    /// `mqtt.retain` for status and pictures; availability is always retained.
    pub retain: bool,
    max_packet: usize,
    registry: Arc<Registry>,
    /// Woken when the broker accepted a connection, so statuses go out at once.
    pub connected_now: Notify,
}

/// Whether a message is worth sending while the broker is away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Urgency {
    /// Pictures, arrivals and statuses: a newer one follows; drop it while disconnected.
    Fresh,
    /// Cleared retained topics and command replies: queued until the broker is back.
    Keep,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    Queued,
    NotConnected,
    QueueFull,
    TooLarge,
}

pub fn qos(level: u8) -> QoS {
    match level {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

/// The size of a PUBLISH packet on the wire (MQTT 3.1.1 §3.3): fixed header with its
/// variable-length remaining length, topic with its length prefix, packet id when QoS > 0.
pub fn publish_size(topic: &str, payload: usize, qos: QoS) -> usize {
    let remaining = 2 + topic.len() + payload + if qos == QoS::AtMostOnce { 0 } else { 2 };
    let len_len = match remaining {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    };
    1 + len_len + remaining
}

impl Outbound {
    pub fn new(client: AsyncClient, qos: QoS, retain: bool, max_packet: usize, registry: Arc<Registry>) -> Outbound {
        Outbound { client, qos, retain, max_packet, registry, connected_now: Notify::new() }
    }

    pub fn status(&self) -> &MqttStatus {
        &self.registry.status.mqtt
    }

    pub fn connected(&self) -> bool {
        self.status().connected.load(Relaxed)
    }

    /// Queues one message without waiting; anything not queued is counted.
    pub fn send(&self, topic: String, payload: Bytes, retain: bool, urgency: Urgency) -> Sent {
        let status = self.status();
        if publish_size(&topic, payload.len(), self.qos) > self.max_packet {
            status.too_large.fetch_add(1, Relaxed);
            return Sent::TooLarge;
        }
        if urgency == Urgency::Fresh && !self.connected() {
            status.dropped.fetch_add(1, Relaxed);
            return Sent::NotConnected;
        }
        // `publish_bytes` shares the frame's allocation (no copy per picture); polled once,
        // it either takes a free slot in the bounded queue or the message is dropped here.
        match self.client.publish_bytes(topic, self.qos, retain, payload).now_or_never() {
            Some(Ok(())) => Sent::Queued,
            _ => {
                status.dropped.fetch_add(1, Relaxed);
                Sent::QueueFull
            }
        }
    }

    pub fn send_json(&self, topic: String, doc: &serde_json::Value, retain: bool, urgency: Urgency) -> Sent {
        self.send(topic, Bytes::from(doc.to_string()), retain, urgency)
    }

    pub fn client(&self) -> &AsyncClient {
        &self.client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_sizes_follow_the_spec() {
        // 1 (header) + 1 (length) + 2 + 1 (topic "a") + 3 (payload) = 8
        assert_eq!(publish_size("a", 3, QoS::AtMostOnce), 8);
        assert_eq!(publish_size("a", 3, QoS::AtLeastOnce), 10);
        // Remaining length 128 needs two length bytes.
        assert_eq!(publish_size("a", 125, QoS::AtMostOnce), 1 + 2 + 128);
        assert_eq!(publish_size("a", 1 << 20, QoS::ExactlyOnce), 1 + 3 + 2 + 1 + (1 << 20) + 2);
    }
}
