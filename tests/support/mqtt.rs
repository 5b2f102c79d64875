//! MQTT test parts: a subscriber (rumqttc, as in panelcam) that hands every message to the
//! test, and a private Mosquitto that can be stopped and started on its port, in plain TCP or
//! with TLS listeners.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;

use serde_json::{Value, json};

use super::harness::eventually;

/// A unique base topic, so tests running in parallel on the shared broker never meet.
pub fn base(tag: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("panelcam-test/{tag}-{}-{n}", std::process::id())
}

/// A 320x240 lavfi camera at 10 fps (no RTSP server needed) with MQTT picture settings.
pub fn lavfi_camera(mqtt: Value) -> Value {
    json!({"path": "/cam", "url": "lavfi:testsrc2=size=320x240:rate=10", "reconnect_interval": 1, "mqtt": mqtt})
}

pub struct Message {
    pub topic: String,
    pub payload: Bytes,
    pub retain: bool,
    pub at: Instant,
}

/// Subscribes to `<base>/#` and hands every message to the test.
pub struct Subscriber {
    client: AsyncClient,
    rx: mpsc::UnboundedReceiver<Message>,
    task: tokio::task::JoinHandle<()>,
}

impl Subscriber {
    pub async fn connect(port: u16, filter: &str) -> Subscriber {
        let id = format!("test-sub-{}", filter.replace(['/', '#', '+'], "-"));
        let mut o = MqttOptions::new(id, "127.0.0.1", port);
        o.set_max_packet_size(16 << 20, 16 << 20);
        let (client, mut eventloop) = AsyncClient::new(o, 100);
        client.subscribe(filter, QoS::AtMostOnce).await.unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut subscribed_tx = Some(subscribed_tx);
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(s) = subscribed_tx.take() {
                            let _ = s.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let m = Message {
                            topic: p.topic.clone(),
                            payload: p.payload.clone(),
                            retain: p.retain,
                            at: Instant::now(),
                        };
                        if tx.send(m).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), subscribed).await.expect("subscribed").unwrap();
        Subscriber { client, rx, task }
    }

    /// The next message on `topic` within `timeout`.
    pub async fn next_on(&mut self, topic: &str, timeout: Duration) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(m)) if m.topic == topic => return Some(m),
                Ok(Some(_)) => {}
                _ => return None,
            }
        }
    }

    /// Every message that arrives within `span`.
    pub async fn collect(&mut self, span: Duration) -> Vec<Message> {
        let deadline = tokio::time::Instant::now() + span;
        let mut all = Vec::new();
        while let Ok(Some(m)) = tokio::time::timeout_at(deadline, self.rx.recv()).await {
            all.push(m);
        }
        all
    }

    pub async fn publish(&self, topic: &str, payload: &str) {
        self.client.publish(topic, QoS::AtLeastOnce, false, payload.as_bytes().to_vec()).await.unwrap();
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A private broker that can be stopped and started on the same port.
pub struct Broker {
    /// The plain-TCP port (also the one that tells the broker is up).
    pub port: u16,
    args: Vec<String>,
    child: Option<tokio::process::Child>,
}

impl Broker {
    /// Plain TCP on `port`.
    pub async fn start(port: u16) -> Broker {
        let mut b = Broker { port, args: vec!["-p".into(), port.to_string()], child: None };
        b.spawn().await;
        b
    }

    /// A plain listener on `port` (for test subscribers) and a TLS listener on `tls_port` with
    /// the server certificate `cert`/`key` and the client CA `ca` (client certificates are
    /// required when `require_client_cert`). The config file goes into `dir`.
    pub async fn start_tls(
        dir: &Path,
        port: u16,
        tls_port: u16,
        ca: &Path,
        cert: &Path,
        key: &Path,
        require_client_cert: bool,
    ) -> Broker {
        let conf = format!(
            "per_listener_settings false\nallow_anonymous true\n\
             listener {port} 127.0.0.1\n\
             listener {tls_port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate {require_client_cert}\n",
            ca.display(),
            cert.display(),
            key.display()
        );
        let path = dir.join(format!("mosquitto-{tls_port}.conf"));
        std::fs::write(&path, conf).unwrap();
        let mut b = Broker { port, args: vec!["-c".into(), path.display().to_string()], child: None };
        b.spawn().await;
        b
    }

    pub async fn spawn(&mut self) {
        let child = tokio::process::Command::new("mosquitto")
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("mosquitto (scripts/deps.sh test)");
        self.child = Some(child);
        let port = self.port;
        let up = eventually(Duration::from_secs(10), async || {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
        })
        .await;
        assert!(up, "mosquitto did not listen on {port}");
    }

    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }
}
