//! `config.json`'s `mqtt` section and the broker URL. A setting that cannot take effect is an
//! error at startup, never a silent downgrade: `mqtts://` always means TLS with a verified
//! broker certificate (the system we replace connected in plain TCP to someone who asked for
//! TLS), and TLS files that cannot be used stop startup naming the field.

use std::path::PathBuf;

use super::reader::Section;
use super::secret::Secret;
use crate::tls::client::ClientTls;

#[derive(Clone, Debug)]
pub struct MqttConfig {
    pub enabled: bool,
    pub broker_url: String,
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub base_topic: String,
    pub qos: u8,
    pub retain: bool,
    pub keep_alive_secs: u64,
    pub publish_interval_secs: f64,
    pub publish_picture_arrival: bool,
    pub max_packet_size: u64,
    /// Accept recording commands on `<base>/cameras/<id>/command`. Off by default: anyone who
    /// may publish to the broker could otherwise start and stop recordings. panelcam extension.
    pub commands_enabled: bool,
    /// `mqtt.tls`: CA and optional client certificate for `mqtts://`. panelcam extension.
    pub tls: ClientTls,
}

/// Where the broker is, from `mqtt://[user[:password]@]host[:port][/]`.
#[derive(Clone, Debug, PartialEq)]
pub struct BrokerAddr {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    /// `mqtts://` (or `ssl://`): TLS, the broker's certificate verified against `mqtt.tls`.
    pub tls: bool,
}

impl MqttConfig {
    /// The broker's address with the credentials to use: the `username`/`password` fields win
    /// over user-info in the URL.
    pub fn broker(&self) -> Result<BrokerAddr, String> {
        let mut addr = parse_broker_url(&self.broker_url)?;
        if let Some(user) = &self.username {
            addr.username = Some(user.clone());
            addr.password = self.password.as_ref().map(|p| p.expose().to_string());
        }
        Ok(addr)
    }
}

pub const DEFAULT_PORT: u16 = 1883;
pub const DEFAULT_TLS_PORT: u16 = 8883;

/// Parses a broker URL. Errors say what was expected; they never repeat the URL (it may hold
/// a password).
pub fn parse_broker_url(url: &str) -> Result<BrokerAddr, String> {
    let (rest, tls) = if let Some(r) = url.strip_prefix("mqtts://").or_else(|| url.strip_prefix("ssl://")) {
        (r, true)
    } else {
        let plain = url.strip_prefix("mqtt://").or_else(|| url.strip_prefix("tcp://"));
        (plain.ok_or("expected a URL such as mqtt://host:1883 or mqtts://host:8883")?, false)
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '#']) {
        return Err("expected mqtt://host[:port] without a path or query".into());
    }
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(u) => match u.split_once(':') {
            Some((user, pass)) => (Some(user.to_string()), Some(pass.to_string())),
            None => (Some(u.to_string()), None),
        },
    };
    let (host, port) = split_host_port(hostport, if tls { DEFAULT_TLS_PORT } else { DEFAULT_PORT })?;
    if host.is_empty() {
        return Err("expected a host name or address after mqtt:// or mqtts://".into());
    }
    Ok(BrokerAddr { host, port, username, password, tls })
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(s: &str, default_port: u16) -> Result<(String, u16), String> {
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("expected ']' after an IPv6 address")?;
        match after.strip_prefix(':') {
            Some(p) => (host, Some(p)),
            None if after.is_empty() => (host, None),
            None => return Err("expected ':port' after ']'".into()),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        None => default_port,
        Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or("expected a port number from 1 to 65535")?,
    };
    Ok((host.to_string(), port))
}

/// Topic names may not be empty nor contain MQTT's wildcards or NUL (the broker disconnects a
/// client that publishes to one).
pub fn valid_topic(topic: &str) -> bool {
    !topic.is_empty() && !topic.contains(['+', '#', '\0'])
}

pub fn read_mqtt(s: &Section) -> MqttConfig {
    let m = MqttConfig {
        enabled: s.bool("enabled", false),
        broker_url: s.string("broker_url", "mqtt://127.0.0.1:1883"),
        client_id: s.string("client_id", "panelcam"),
        username: s.opt_string("username"),
        password: s.opt_string("password").map(Secret::new),
        base_topic: s.string("base_topic", "panelcam"),
        qos: s.u64("qos", 0..=2, 0) as u8,
        retain: s.bool("retain", false),
        keep_alive_secs: s.u64("keep_alive_secs", 1..=65535, 60),
        publish_interval_secs: s.f64("publish_interval_secs", 0.0..=86_400.0, 1.0),
        publish_picture_arrival: s.bool("publish_picture_arrival", true),
        max_packet_size: s.u64("max_packet_size", 1024..=268_435_456, 268_435_456),
        commands_enabled: s.bool("commands_enabled", false),
        tls: read_tls(&s.section("tls")),
    };
    if m.enabled {
        match parse_broker_url(&m.broker_url) {
            Err(e) => s.ctx().error(&s.field("broker_url"), e),
            // Read the files now, so a wrong path stops startup (and `panelcam check`) instead
            // of showing up later as a broker that never connects.
            Ok(b) if b.tls => {
                if let Err(p) = m.tls.config(&s.field("tls")) {
                    s.ctx().error(&p.field, p.message);
                }
            }
            Ok(_) if m.tls != ClientTls::default() => s.ctx().error(
                &s.field("tls"),
                "is set but broker_url is mqtt:// (plain TCP); use mqtts:// for TLS, or remove mqtt.tls",
            ),
            Ok(_) => {}
        }
        if !valid_topic(&m.base_topic) {
            s.ctx().error(&s.field("base_topic"), "expected a topic without '+', '#' or NUL, not empty");
        }
        if m.client_id.is_empty() || m.client_id.len() > 128 {
            s.ctx().error(&s.field("client_id"), "expected 1 to 128 characters");
        }
    }
    s.finish();
    m
}

fn read_tls(s: &Section) -> ClientTls {
    let path = |key| s.opt_string(key).map(PathBuf::from);
    let tls =
        ClientTls { ca_path: path("ca_path"), cert_path: path("client_cert_path"), key_path: path("client_key_path") };
    s.finish();
    tls
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(host: &str, port: u16) -> BrokerAddr {
        BrokerAddr { host: host.into(), port, username: None, password: None, tls: false }
    }

    #[test]
    fn broker_urls() {
        assert_eq!(parse_broker_url("mqtt://192.168.1.4:1883"), Ok(addr("192.168.1.4", 1883)));
        assert_eq!(parse_broker_url("mqtt://broker"), Ok(addr("broker", 1883)));
        assert_eq!(parse_broker_url("mqtt://broker:1884/"), Ok(addr("broker", 1884)));
        assert_eq!(parse_broker_url("mqtt://[::1]:1885"), Ok(addr("::1", 1885)));
        assert_eq!(parse_broker_url("mqtt://[::1]"), Ok(addr("::1", 1883)));
        let with_user = parse_broker_url("mqtt://u:p@w@h:1").unwrap();
        assert_eq!((with_user.username.as_deref(), with_user.password.as_deref()), (Some("u"), Some("p@w")));
        for bad in ["http://h", "mqtt://", "mqtt://h:0", "mqtt://h:99999", "mqtt://h/x", "mqtt://[::1", "mqtt://h:x"] {
            assert!(parse_broker_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mqtts_means_tls_on_8883_unless_told() {
        let tls = |host: &str, port| BrokerAddr { tls: true, ..addr(host, port) };
        assert_eq!(parse_broker_url("mqtts://broker"), Ok(tls("broker", 8883)));
        assert_eq!(parse_broker_url("ssl://broker:8884"), Ok(tls("broker", 8884)));
        assert_eq!(parse_broker_url("mqtts://[::1]"), Ok(tls("::1", 8883)));
        assert!(parse_broker_url("mqtts://u:secret@").unwrap_err().contains("mqtts://"));
    }

    #[test]
    fn errors_never_repeat_the_password() {
        for bad in ["mqtt://u:secret@h:x", "mqtt://u:secret@/p", "mqtt://u:secret@"] {
            let e = parse_broker_url(bad).unwrap_err();
            assert!(!e.contains("secret"), "{e}");
        }
    }

    #[test]
    fn topics_without_wildcards() {
        assert!(valid_topic("a/b/c"));
        assert!(!valid_topic(""));
        assert!(!valid_topic("a/+/c"));
        assert!(!valid_topic("a/#"));
    }
}
