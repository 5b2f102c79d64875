//! `config.json`: the `server`, `mqtt`, `recording` and `transcoding` sections, each field with
//! the default documented by the compatibility spec.

use std::path::PathBuf;
use std::time::Duration;

use super::mqtt::{MqttConfig, read_mqtt};
use super::reader::Section;
use super::secret::Secret;

#[derive(Clone, Debug)]
pub struct Config {
    pub server: ServerConfig,
    pub mqtt: MqttConfig,
    pub recording: RecordingConfig,
    pub transcoding: Transcoding,
}

#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    /// `Access-Control-Allow-Origin`: `"*"` or one origin; `None` (`""` in the file) sends
    /// no CORS headers.
    pub cors_allow_origin: Option<String>,
    /// Origins whose pages may embed ours (CSP `frame-ancestors`, besides our own origin):
    /// `["*"]` by default, since WinCC panels embed the pages from their own origin; `[]`
    /// means our own origin only. panelcam extension.
    pub frame_ancestors: Vec<String>,
    pub admin_token: Option<Secret>,
    /// Bearer token that may read `/metrics` (besides the admin token), so a Prometheus
    /// server need not hold the token that deletes recordings. panelcam extension.
    pub metrics_token: Option<Secret>,
    pub tls: TlsConfig,
    /// Where per-camera FFmpeg logs go (`log_stderr: "file"`). panelcam extension.
    pub log_dir: PathBuf,
    /// Cap of each per-camera FFmpeg log file; one rotated copy is kept. panelcam extension.
    pub log_file_max_bytes: u64,
    /// hls.js for browsers without native HLS, served at `/assets/hls.min.js`; `None` =
    /// the first of `web/vendor/hls.min.js` and `/usr/share/panelcam/hls.min.js`.
    pub hls_js_path: Option<PathBuf>,
    /// This panel's name in the central database (rows are keyed by panel and camera).
    /// panelcam extension, default the hostname.
    pub panel_id: String,
    /// Live viewers (MJPEG and control sockets) per camera; more get 503. panelcam extension.
    pub max_viewers_per_camera: u32,
    /// Open connections at most; `None` = derived from the open-file limit at start.
    /// panelcam extension.
    pub max_connections: Option<usize>,
    /// Failed authentications from one address within a minute before it is locked out,
    /// and for how long (429). panelcam extension.
    pub auth_max_failures: u32,
    pub auth_lockout: Duration,
}

#[derive(Clone, Debug)]
pub struct TlsConfig {
    pub enabled: bool,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    /// A plain-HTTP port that only redirects to HTTPS (308). panelcam extension.
    pub redirect_http_port: Option<u16>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mp4Storage {
    Disabled,
    Filesystem,
    Database,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatabaseType {
    Sqlite,
    Postgresql,
}

/// Recording settings; a camera file may override the storage and retention fields.
#[derive(Clone, Debug)]
pub struct RecordingConfig {
    pub enabled: bool,
    pub frame_storage_enabled: bool,
    pub mp4_storage_type: Mp4Storage,
    pub hls_storage_enabled: bool,
    pub database_type: DatabaseType,
    pub database_path: PathBuf,
    pub database_url: Option<Secret>,
    pub max_frame_size: usize,
    pub mp4_framerate: f64,
    /// Legacy global frame retention; `frame_storage_retention` wins when both are set.
    pub max_recording_age: Option<Duration>,
    pub frame_storage_retention: Option<Duration>,
    pub mp4_storage_retention: Option<Duration>,
    pub hls_storage_retention: Option<Duration>,
    /// Fractions are allowed (e.g. 0.5 = 30 s), which tests and short events use.
    pub mp4_segment_minutes: f64,
    pub hls_segment_seconds: u64,
    pub cleanup_interval_hours: f64,
    // panelcam extensions for video recording (see README):
    /// RAM-backed directory for FFmpeg's HLS segments (tmpfs on the panel).
    pub spool_path: PathBuf,
    /// Seconds of video before a session's start that are kept with it.
    pub pre_event_seconds: u64,
    /// Persist segments all the time, not only during sessions.
    pub continuous: bool,
    /// Offer live HLS (`/<cam>/hls/live.m3u8`) even when nothing records.
    pub hls_live: bool,
    /// Disk budget of the store-and-forward outbox (segments waiting for PostgreSQL).
    pub outbox_max_bytes: u64,
    /// Delete the oldest recordings when the recordings filesystem is fuller than this
    /// (percent; 0 = off).
    pub disk_max_percent: f64,
    /// How long finished MP4 exports stay downloadable.
    pub export_retention: Duration,
}

impl RecordingConfig {
    /// The frame retention that applies: `frame_storage_retention`, else `max_recording_age`.
    pub fn frame_retention(&self) -> Option<Duration> {
        self.frame_storage_retention.or(self.max_recording_age)
    }

    /// True when this camera's H.264 is persisted in some form (HLS or MP4 storage).
    pub fn video_enabled(&self) -> bool {
        self.enabled && (self.hls_storage_enabled || self.mp4_storage_type != Mp4Storage::Disabled)
    }

    /// Why this camera has no recording sessions at all, if it has none.
    pub fn sessions_unavailable(&self) -> Option<&'static str> {
        if !self.enabled {
            Some("recording is disabled (recording.enabled = false in config.json)")
        } else if !self.frame_storage_enabled && !self.video_enabled() {
            Some(
                "nothing to record: frame storage is disabled (recording.frame_storage_enabled = false) and no video storage is configured",
            )
        } else {
            None
        }
    }

    /// Why frames cannot be recorded for this camera, if they cannot.
    pub fn frames_unavailable(&self) -> Option<&'static str> {
        if !self.enabled {
            Some("recording is disabled (recording.enabled = false in config.json)")
        } else if !self.frame_storage_enabled {
            Some("frame storage is disabled (recording.frame_storage_enabled = false)")
        } else {
            None
        }
    }
}

/// Live-preview transcoding; global in `config.json`, overridable per camera.
#[derive(Clone, Debug, PartialEq)]
pub struct Transcoding {
    pub output_format: String,
    /// JPEG quality 1-100 (100 = best).
    pub quality: u8,
    /// Frames per second FFmpeg produces from the camera; 0 = every camera frame.
    pub capture_framerate: f64,
    /// Frames per second panelcam forwards to live clients; 0 = every captured frame.
    pub output_framerate: f64,
    pub channel_buffer_size: usize,
    pub debug_capture: bool,
    pub debug_duplicate_frames: bool,
    /// Seconds the on-demand JPEG transcoder keeps running after its last consumer left
    /// (cameras read by panelcam's RTSP client; `crate::media::transcoder`).
    pub jpeg_idle_seconds: f64,
}

impl Default for Transcoding {
    fn default() -> Self {
        Transcoding {
            output_format: "mjpeg".into(),
            quality: 75,
            capture_framerate: 0.0,
            output_framerate: 0.0,
            channel_buffer_size: 50,
            debug_capture: false,
            debug_duplicate_frames: false,
            jpeg_idle_seconds: 10.0,
        }
    }
}

/// A camera's `transcoding_override`: every field optional.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TranscodingOverride {
    pub output_format: Option<String>,
    pub quality: Option<u8>,
    pub capture_framerate: Option<f64>,
    pub output_framerate: Option<f64>,
    pub channel_buffer_size: Option<usize>,
    pub debug_capture: Option<bool>,
    pub debug_duplicate_frames: Option<bool>,
    pub jpeg_idle_seconds: Option<f64>,
}

impl Transcoding {
    pub fn with_override(&self, o: &TranscodingOverride) -> Transcoding {
        Transcoding {
            output_format: o.output_format.clone().unwrap_or_else(|| self.output_format.clone()),
            quality: o.quality.unwrap_or(self.quality),
            capture_framerate: o.capture_framerate.unwrap_or(self.capture_framerate),
            output_framerate: o.output_framerate.unwrap_or(self.output_framerate),
            channel_buffer_size: o.channel_buffer_size.unwrap_or(self.channel_buffer_size),
            debug_capture: o.debug_capture.unwrap_or(self.debug_capture),
            debug_duplicate_frames: o.debug_duplicate_frames.unwrap_or(self.debug_duplicate_frames),
            jpeg_idle_seconds: o.jpeg_idle_seconds.unwrap_or(self.jpeg_idle_seconds),
        }
    }
}

pub const OUTPUT_FORMATS: &[&str] = &["mjpeg"];

/// Reads a transcoding section into overrides; `config.json` fills the gaps with defaults.
pub fn read_transcoding_override(s: &Section) -> TranscodingOverride {
    let o = TranscodingOverride {
        output_format: s.opt_choice("output_format", OUTPUT_FORMATS),
        quality: s.opt_u64("quality", 1..=100).map(|q| q as u8),
        capture_framerate: s.opt_f64("capture_framerate", 0.0..=240.0),
        output_framerate: s.opt_f64("output_framerate", 0.0..=240.0),
        channel_buffer_size: s.opt_u64("channel_buffer_size", 1..=10_000).map(|n| n as usize),
        debug_capture: s.opt_bool("debug_capture"),
        debug_duplicate_frames: s.opt_bool("debug_duplicate_frames"),
        jpeg_idle_seconds: s.opt_f64("jpeg_idle_seconds", 0.0..=3600.0),
    };
    s.finish();
    o
}

impl Config {
    /// Reads `config.json`'s root object.
    pub fn read(root: &Section) -> Config {
        Config {
            server: read_server(&root.section("server")),
            mqtt: read_mqtt(&root.section("mqtt")),
            recording: read_recording(&root.section("recording")),
            transcoding: Transcoding::default().with_override(&read_transcoding_override(&root.section("transcoding"))),
        }
    }
}

fn read_server(s: &Section) -> ServerConfig {
    let tls_section = s.section("tls");
    let tls = TlsConfig {
        enabled: tls_section.bool("enabled", false),
        cert_path: tls_section.string("cert_path", "certs/server.crt").into(),
        key_path: tls_section.string("key_path", "certs/server.key").into(),
        redirect_http_port: tls_section.opt_u64("redirect_http_port", 1..=65535).map(|p| p as u16),
    };
    tls_section.finish();
    let server = ServerConfig {
        host: s.string("host", "0.0.0.0"),
        port: s.u64("port", 1..=65535, 8080) as u16,
        cors_allow_origin: read_cors_origin(s),
        frame_ancestors: read_frame_ancestors(s),
        admin_token: s.opt_string("admin_token").map(Secret::new),
        metrics_token: s.opt_string("metrics_token").map(Secret::new),
        tls,
        log_dir: s.string("log_dir", "logs").into(),
        log_file_max_bytes: s.u64("log_file_max_bytes", 4096..=u64::MAX, 1 << 20),
        hls_js_path: s.opt_string("hls_js_path").map(PathBuf::from),
        panel_id: s.opt_string("panel_id").unwrap_or_else(super::hostname),
        max_viewers_per_camera: s.u64("max_viewers_per_camera", 1..=100_000, 100) as u32,
        max_connections: s.opt_u64("max_connections", 16..=1_000_000).map(|n| n as usize),
        auth_max_failures: s.u64("auth_max_failures", 1..=1_000_000, 10) as u32,
        auth_lockout: Duration::from_secs(s.u64("auth_lockout_secs", 1..=86_400, 60)),
    };
    if !super::is_identifier(&server.panel_id) {
        s.ctx().error(
            &s.field("panel_id"),
            format!(
                "expected 1 to 64 letters, digits, '_', '-' or '.' (it keys this panel's rows in the central database), found \"{}\"",
                server.panel_id
            ),
        );
    }
    if server.tls.enabled {
        check_tls(s, &server);
    } else if server.tls.redirect_http_port.is_some() {
        s.ctx().error(
            &format!("{}.redirect_http_port", s.field("tls")),
            "redirects to HTTPS, which is off; set tls.enabled to true or remove it",
        );
    }
    if server.admin_token.as_ref().is_some_and(|t| t.expose().len() < 16) {
        s.ctx().warn(
            &s.field("admin_token"),
            "is shorter than 16 characters; it allows deleting recordings, use a long random one",
        );
    }
    if server.metrics_token.as_ref().is_some_and(|t| t.expose().len() < 16) {
        s.ctx().warn(&s.field("metrics_token"), "is shorter than 16 characters; use a long random one");
    }
    s.finish();
    server
}

/// The URL parses, and its TLS parameters (`sslmode`, `sslrootcert`) can take effect: the CA
/// file is read now, so a wrong path stops startup instead of every upload.
fn check_database_url(s: &Section, url: &str) {
    let field = s.field("database_url");
    let pg_url = match crate::tls::postgres::split_url(url) {
        Ok(u) => u,
        Err(e) => return s.ctx().error(&field, e),
    };
    if pg_url.url.parse::<tokio_postgres::Config>().is_err() {
        return s.ctx().error(&field, "expected a PostgreSQL URL such as postgres://user:pass@host:5432/[database]");
    }
    if let Err(p) = pg_url.connector() {
        s.ctx().error(&field, p.message);
    }
}

/// `cors_allow_origin`: absent or `null` is the spec's `"*"`; `""` turns CORS off.
fn read_cors_origin(s: &Section) -> Option<String> {
    let Some(origin) = s.opt_string("cors_allow_origin") else {
        // A wrong type was reported; absent (or `null`) is the default.
        return (!s.present("cors_allow_origin")).then(|| "*".into());
    };
    let checked = match origin.as_str() {
        "" => return None,
        "*" => Ok(()),
        "null" => Err("write \"\" to send no CORS headers; the origin \"null\" is any sandboxed page or local file, never trust it".to_string()),
        _ => super::origin::check_origin(&origin),
    };
    match checked {
        Ok(()) => Some(origin),
        Err(e) => {
            s.ctx().error(&s.field("cors_allow_origin"), e);
            None
        }
    }
}

/// `frame_ancestors`: absent or `null` is `["*"]`.
fn read_frame_ancestors(s: &Section) -> Vec<String> {
    if !s.present("frame_ancestors") {
        let _ = s.raw("frame_ancestors");
        return vec!["*".into()];
    }
    let list = s.string_list("frame_ancestors");
    for (i, source) in list.iter().enumerate() {
        if let Err(e) = super::origin::check_frame_ancestor(source) {
            s.ctx().error(&format!("{}[{i}]", s.field("frame_ancestors")), e);
        }
    }
    list
}

/// Reads the certificate and key now, so `panelcam check` and startup name a wrong file. An
/// expired certificate only warns: the panel must stay reachable to be given a new one.
fn check_tls(s: &Section, server: &ServerConfig) {
    let section = s.field("tls");
    let tls = &server.tls;
    match crate::tls::server::ServerTls::load(&tls.cert_path, &tls.key_path, &section) {
        Err(p) => s.ctx().error(&p.field, p.message),
        Ok((_, loaded)) if loaded.expired(crate::util::now_ms() / 1000) => s.ctx().warn(
            &format!("{section}.cert_path"),
            format!(
                "{}: EXPIRED on {}; browsers refuse it. panelcam serves it anyway so the panel stays reachable: renew it (it is picked up without a restart)",
                tls.cert_path.display(),
                crate::util::iso_ms(loaded.not_after.unwrap_or(0).saturating_mul(1000))
            ),
        ),
        Ok(_) => {}
    }
    if tls.redirect_http_port == Some(server.port) {
        s.ctx().error(&format!("{section}.redirect_http_port"), "expected a port other than server.port");
    }
}

pub const MP4_STORAGE_TYPES: &[&str] = &["disabled", "filesystem", "database"];

pub fn parse_mp4_storage(s: &str) -> Mp4Storage {
    match s {
        "filesystem" => Mp4Storage::Filesystem,
        "database" => Mp4Storage::Database,
        _ => Mp4Storage::Disabled,
    }
}

/// The highest camera bit rate an MP4 segment is sized for: a segment must stay below
/// PostgreSQL's 1 GiB per value when it is shipped there.
pub const MAX_VIDEO_BITRATE_KBPS: f64 = 16_000.0;

/// Longest `mp4_segment_minutes` whose files fit one PostgreSQL value at the highest bit rate.
pub fn max_mp4_minutes_for_postgresql() -> f64 {
    let bytes_per_minute = MAX_VIDEO_BITRATE_KBPS * 1000.0 / 8.0 * 60.0;
    ((1u64 << 30) as f64 * 0.95 / bytes_per_minute * 10.0).floor() / 10.0
}

/// MP4 segments shipped to PostgreSQL must fit a `bytea` (1 GiB); the assembler also closes
/// files before that size, but a configuration that would routinely hit it is refused.
pub fn mp4_minutes_fit(minutes: f64) -> bool {
    minutes <= max_mp4_minutes_for_postgresql()
}

fn check_mp4_fits_postgresql(s: &Section, r: &RecordingConfig) {
    if r.database_type == DatabaseType::Postgresql
        && r.mp4_storage_type == Mp4Storage::Database
        && !mp4_minutes_fit(r.mp4_segment_minutes)
    {
        s.ctx().error(
            &s.field("mp4_segment_minutes"),
            format!(
                "{} minutes of video at up to {} Mbit/s exceed PostgreSQL's 1 GiB per stored value; use at most {} minutes when MP4 segments go to PostgreSQL",
                r.mp4_segment_minutes,
                MAX_VIDEO_BITRATE_KBPS / 1000.0,
                max_mp4_minutes_for_postgresql()
            ),
        );
    }
}

fn read_recording(s: &Section) -> RecordingConfig {
    let database_type = match s.choice("database_type", &["sqlite", "postgresql"], "sqlite").as_str() {
        "postgresql" => DatabaseType::Postgresql,
        _ => DatabaseType::Sqlite,
    };
    let r = RecordingConfig {
        enabled: s.bool("enabled", true),
        frame_storage_enabled: s.bool("frame_storage_enabled", true),
        mp4_storage_type: parse_mp4_storage(&s.choice("mp4_storage_type", MP4_STORAGE_TYPES, "disabled")),
        hls_storage_enabled: s.bool("hls_storage_enabled", false),
        database_type,
        database_path: s.string("database_path", "recordings").into(),
        database_url: s.opt_string("database_url").map(Secret::new),
        max_frame_size: s.u64("max_frame_size", 1024..=256 << 20, 10 << 20) as usize,
        mp4_framerate: s.f64("mp4_framerate", 0.1..=120.0, 5.0),
        max_recording_age: s.opt_duration("max_recording_age"),
        frame_storage_retention: s.opt_duration("frame_storage_retention"),
        mp4_storage_retention: s.opt_duration("mp4_storage_retention"),
        hls_storage_retention: s.opt_duration("hls_storage_retention"),
        mp4_segment_minutes: s.f64("mp4_segment_minutes", 0.05..=1440.0, 5.0),
        hls_segment_seconds: s.u64("hls_segment_seconds", 1..=600, 6),
        cleanup_interval_hours: s.f64("cleanup_interval_hours", 0.0001..=8760.0, 1.0),
        spool_path: s.string("spool_path", "/dev/shm/panelcam").into(),
        pre_event_seconds: s.u64("pre_event_seconds", 0..=3600, 10),
        continuous: s.bool("continuous", false),
        hls_live: s.bool("hls_live", true),
        outbox_max_bytes: s.u64("outbox_max_mb", 1..=1 << 20, 512) << 20,
        disk_max_percent: s.f64("disk_max_percent", 0.0..=100.0, 90.0),
        export_retention: s.opt_duration("export_retention").unwrap_or(Duration::from_secs(3600)),
    };
    if let Some(url) = &r.database_url {
        check_database_url(s, url.expose());
    }
    check_mp4_fits_postgresql(s, &r);
    if r.database_type == DatabaseType::Postgresql && r.database_url.is_none() {
        s.ctx().error(
            &s.field("database_url"),
            "is required when database_type is \"postgresql\"; expected postgres://user:pass@host/[database]",
        );
    }
    s.finish();
    r
}
