//! One `cameras/<id>.json` file. The camera id is the file name without `.json`; its URL
//! path is the `path` field.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::global::{
    MP4_STORAGE_TYPES, Mp4Storage, RecordingConfig, TranscodingOverride, parse_mp4_storage, read_transcoding_override,
};
use super::ptz::{PtzConfig, read_ptz};
use super::reader::Section;
use super::secret::{CameraUrl, Secret};

#[derive(Clone, Debug, PartialEq)]
pub struct CameraConfig {
    /// File stem; appears in every log line and in `/api/status`.
    pub id: String,
    pub file: PathBuf,
    pub enabled: bool,
    /// URL segment without the leading `/` (`"/cam1"` in the file → `cam1`).
    pub path: String,
    pub url: CameraUrl,
    pub transport: Transport,
    /// `rtsp_client`: who reads an RTSP camera, panelcam's own client (the default: H.264
    /// passthrough, JPEGs only on demand) or FFmpeg (`"ffmpeg"`, as before issue 11).
    pub rtsp_client: RtspClient,
    pub reconnect_interval: Duration,
    pub chunk_read_size: usize,
    pub token: Option<Secret>,
    /// Restart FFmpeg when no frame arrived for this long (stalled camera, stopped process).
    /// panelcam extension, default 10 s.
    pub data_timeout: Duration,
    pub frame_storage_retention: Option<Duration>,
    pub ffmpeg: FfmpegOptions,
    pub mqtt: CameraMqtt,
    pub recording: RecordingOverride,
    pub transcoding: TranscodingOverride,
    pub ptz: PtzConfig,
}

/// Where FFmpeg reads the camera from, decided by the URL scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    Rtsp,
    Http,
    /// `lavfi:<filtergraph>`: FFmpeg's built-in test sources (the demo camera).
    Lavfi,
    /// `file:<path>`: a recorded clip played in real time, looped.
    File,
}

impl SourceKind {
    /// Whether a source's video can be stored as it is. RTSP cameras (and files) deliver
    /// H.264/H.265 that is copied bit for bit; MJPEG-over-HTTP cameras and test sources have
    /// no such stream and are the one case that is encoded (at `mp4_framerate`).
    pub fn copies_video(self) -> bool {
        matches!(self, SourceKind::Rtsp | SourceKind::File)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtspClient {
    Panelcam,
    Ffmpeg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Udp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogStderr {
    #[default]
    Off,
    File,
    Console,
    Both,
}

impl LogStderr {
    pub fn to_file(self) -> bool {
        matches!(self, LogStderr::File | LogStderr::Both)
    }
    pub fn to_console(self) -> bool {
        matches!(self, LogStderr::Console | LogStderr::Both)
    }
}

/// The camera's `ffmpeg` section. `None` means "panelcam's measured default" (see
/// `camera::argv`), not "leave FFmpeg's own default".
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FfmpegOptions {
    pub command: Option<String>,
    /// `None` (not in the file): on for the live preview (the spec's default), off when the
    /// camera's video is recorded — HLS segments are cut on the camera's own timestamps;
    /// arrival times jitter and make segment lengths swing by a whole GOP.
    pub use_wallclock_as_timestamps: Option<bool>,
    pub output_format: Option<String>,
    pub video_codec: Option<String>,
    pub video_bitrate: Option<String>,
    pub quality: Option<u8>,
    pub output_framerate: Option<f64>,
    pub scale: Option<String>,
    pub movflags: Option<String>,
    pub rtbufsize: Option<u64>,
    pub fflags: Option<String>,
    pub flags: Option<String>,
    pub avioflags: Option<String>,
    pub fps_mode: Option<String>,
    pub flush_packets: Option<String>,
    pub extra_input_args: Vec<String>,
    pub extra_output_args: Vec<String>,
    pub log_stderr: LogStderr,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct CameraMqtt {
    /// Seconds between image publishes; 0 = every frame.
    pub publish_interval: Option<f64>,
    pub topic_name: Option<String>,
}

/// A camera's `recording` section: overrides of the global recording settings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecordingOverride {
    pub frame_storage_enabled: Option<bool>,
    pub frame_storage_retention: Option<Duration>,
    pub mp4_storage_type: Option<Mp4Storage>,
    pub mp4_storage_retention: Option<Duration>,
    pub mp4_segment_minutes: Option<f64>,
    pub hls_storage_enabled: Option<bool>,
    pub hls_storage_retention: Option<Duration>,
    pub hls_segment_seconds: Option<u64>,
    pub continuous: Option<bool>,
    pub pre_event_seconds: Option<u64>,
}

/// URL segments that belong to the server, not to a camera.
pub const RESERVED_PATHS: &[&str] = &["dashboard", "api", "admin", "assets", "health", "metrics", "favicon.ico"];

impl CameraConfig {
    /// Why FFmpeg, not panelcam's RTSP client, reads this camera; `None` when panelcam does
    /// (and passes the camera's H.264/H.265 through). A setting for FFmpeg's input must take
    /// effect, so any of them keeps FFmpeg as the input.
    pub fn ffmpeg_input_reason(&self) -> Option<String> {
        let f = &self.ffmpeg;
        if self.source_kind() != SourceKind::Rtsp {
            return Some("the camera is not an RTSP source".into());
        }
        if self.rtsp_client == RtspClient::Ffmpeg {
            return Some("rtsp_client is \"ffmpeg\"".into());
        }
        let input_settings = [
            ("ffmpeg.command", f.command.is_some()),
            ("ffmpeg.rtbufsize (or ffmpeg_buffer_size)", f.rtbufsize.is_some()),
            ("ffmpeg.fflags", f.fflags.is_some()),
            ("ffmpeg.flags", f.flags.is_some()),
            ("ffmpeg.avioflags", f.avioflags.is_some()),
            ("ffmpeg.use_wallclock_as_timestamps", f.use_wallclock_as_timestamps.is_some()),
            ("ffmpeg.extra_input_args", !f.extra_input_args.is_empty()),
        ];
        input_settings.iter().find(|(_, set)| *set).map(|(name, _)| format!("{name} is set (an FFmpeg input setting)"))
    }

    /// Reads a camera file's root object. Returns `None` when a required field is unusable;
    /// the problems are in the section's context either way.
    pub fn read(id: &str, file: PathBuf, s: &Section) -> Option<CameraConfig> {
        let enabled = s.bool("enabled", true);
        let path = s.required_string("path", "a URL path such as \"/cam1\"").and_then(|p| check_path(s, &p));
        let url = s.required_string("url", "an rtsp://, http(s):// or lavfi: camera URL").and_then(|u| check_url(s, u));
        let transport = match s.choice("transport", &["tcp", "udp"], "tcp").as_str() {
            "udp" => Transport::Udp,
            _ => Transport::Tcp,
        };
        let rtsp_client = match s.choice("rtsp_client", &["panelcam", "ffmpeg"], "panelcam").as_str() {
            "ffmpeg" => RtspClient::Ffmpeg,
            _ => RtspClient::Panelcam,
        };
        let reconnect_interval = Duration::from_secs_f64(s.f64("reconnect_interval", 0.1..=3600.0, 5.0));
        let chunk_read_size = s.u64("chunk_read_size", 512..=16 << 20, 64 << 10) as usize;
        let token = s.opt_string("token").filter(|t| !t.is_empty()).map(Secret::new);
        let data_timeout = Duration::from_secs_f64(s.f64("data_timeout", 1.0..=3600.0, 10.0));
        let frame_storage_retention = s.opt_duration("frame_storage_retention");
        let mut ffmpeg = read_ffmpeg(&s.section("ffmpeg"));
        // Older camera files put the RTSP buffer size at the top level.
        if let Some(size) = s.opt_u64("ffmpeg_buffer_size", 1..=1 << 30) {
            ffmpeg.rtbufsize.get_or_insert(size);
        }
        let mqtt_section = s.section("mqtt");
        let mqtt = CameraMqtt {
            publish_interval: mqtt_section.opt_f64("publish_interval", 0.0..=86_400.0),
            topic_name: mqtt_section.opt_string("topic_name"),
        };
        if mqtt.topic_name.as_deref().is_some_and(|t| !super::mqtt::valid_topic(t)) {
            s.ctx().error(
                &mqtt_section.field("topic_name"),
                "expected an MQTT topic without '+', '#' or NUL, not empty (pictures are published to it)",
            );
        }
        mqtt_section.finish();
        let recording = read_recording_override(&s.section("recording"));
        let transcoding = read_transcoding_override(&s.section("transcoding_override"));
        let ptz = read_ptz(&s.section("ptz"));
        Some(CameraConfig {
            id: id.to_string(),
            file,
            enabled,
            path: path?,
            url: url?,
            transport,
            rtsp_client,
            reconnect_interval,
            chunk_read_size,
            token,
            data_timeout,
            frame_storage_retention,
            ffmpeg,
            mqtt,
            recording,
            transcoding,
            ptz,
        })
    }

    pub fn source_kind(&self) -> SourceKind {
        match self.url.scheme() {
            "http" | "https" => SourceKind::Http,
            "lavfi" => SourceKind::Lavfi,
            "file" => SourceKind::File,
            _ => SourceKind::Rtsp,
        }
    }

    /// Secrets this camera knows, for exact-match redaction of FFmpeg output.
    pub fn secrets(&self) -> Vec<String> {
        let mut v: Vec<String> = self.url.password().map(str::to_string).into_iter().collect();
        v.extend(self.token.as_ref().map(|t| t.expose().to_string()));
        v.extend(self.ptz.password.as_ref().map(|p| p.expose().to_string()));
        v
    }
}

impl RecordingConfig {
    /// The settings for one camera: its `recording` section wins, then its top-level
    /// `frame_storage_retention`, then these global values.
    pub fn for_camera(&self, cam: &CameraConfig) -> RecordingConfig {
        let o = &cam.recording;
        let mut r = self.clone();
        r.frame_storage_enabled = o.frame_storage_enabled.unwrap_or(r.frame_storage_enabled);
        r.frame_storage_retention = o.frame_storage_retention.or(cam.frame_storage_retention).or(r.frame_retention());
        r.mp4_storage_type = o.mp4_storage_type.unwrap_or(r.mp4_storage_type);
        r.mp4_storage_retention = o.mp4_storage_retention.or(r.mp4_storage_retention);
        r.mp4_segment_minutes = o.mp4_segment_minutes.unwrap_or(r.mp4_segment_minutes);
        r.hls_storage_enabled = o.hls_storage_enabled.unwrap_or(r.hls_storage_enabled);
        r.hls_storage_retention = o.hls_storage_retention.or(r.hls_storage_retention);
        r.hls_segment_seconds = o.hls_segment_seconds.unwrap_or(r.hls_segment_seconds);
        r.continuous = o.continuous.unwrap_or(r.continuous);
        r.pre_event_seconds = o.pre_event_seconds.unwrap_or(r.pre_event_seconds);
        r
    }
}

fn check_path(s: &Section, raw: &str) -> Option<String> {
    let name = raw.strip_prefix('/').unwrap_or(raw);
    let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !valid {
        s.ctx().error(
            &s.field("path"),
            format!("expected one URL segment of letters, digits, '_', '-' or '.', such as \"/cam1\", found \"{raw}\""),
        );
        return None;
    }
    if RESERVED_PATHS.contains(&name) {
        s.ctx().error(&s.field("path"), format!("\"/{name}\" is used by the server itself; choose another path"));
        return None;
    }
    Some(name.to_string())
}

fn check_url(s: &Section, url: String) -> Option<CameraUrl> {
    let url = CameraUrl::new(url);
    match url.scheme() {
        "rtsp" | "rtsps" | "http" | "https" | "lavfi" | "file" => Some(url),
        _ => {
            s.ctx().error(
                &s.field("url"),
                format!("expected an rtsp://, http(s)://, lavfi: or file: URL, found \"{url}\""),
            );
            None
        }
    }
}

fn read_ffmpeg(s: &Section) -> FfmpegOptions {
    let log_stderr = match s.opt_choice("log_stderr", &["file", "console", "both"]).as_deref() {
        Some("file") => LogStderr::File,
        Some("console") => LogStderr::Console,
        Some("both") => LogStderr::Both,
        _ => LogStderr::Off,
    };
    let f = FfmpegOptions {
        command: s.opt_string("command").filter(|c| !c.trim().is_empty()),
        use_wallclock_as_timestamps: s.opt_bool("use_wallclock_as_timestamps"),
        output_format: s.opt_string("output_format"),
        video_codec: s.opt_string("video_codec"),
        video_bitrate: s.opt_string("video_bitrate"),
        quality: s.opt_u64("quality", 1..=100).map(|q| q as u8),
        output_framerate: s.opt_f64("output_framerate", 0.0..=240.0).filter(|r| *r > 0.0),
        scale: s.opt_string("scale"),
        movflags: s.opt_string("movflags"),
        rtbufsize: s.opt_u64("rtbufsize", 1..=1 << 30),
        fflags: s.opt_string("fflags"),
        flags: s.opt_string("flags"),
        avioflags: s.opt_string("avioflags"),
        fps_mode: s.opt_choice("fps_mode", &["cfr", "vfr", "passthrough", "auto"]),
        flush_packets: flush_packets(s),
        extra_input_args: s.string_list("extra_input_args"),
        extra_output_args: s.string_list("extra_output_args"),
        log_stderr,
    };
    if let Some(command) = &f.command {
        match crate::cmdline::split_command(command) {
            Ok(args) if !matches!(args.last().map(String::as_str), Some("-" | "pipe:" | "pipe:1")) => {
                s.ctx().warn(
                    &s.field("command"),
                    "should end with the output `-` (MJPEG on stdout); panelcam reads frames from FFmpeg's stdout",
                );
            }
            Ok(_) => {}
            Err(e) => s.ctx().error(&s.field("command"), format!("cannot split into arguments: {e}")),
        }
    }
    if let Some(scale) = &f.scale {
        let ok = scale.split_once(':').is_some_and(|(w, h)| is_dim(w) && is_dim(h));
        if !ok {
            s.ctx().error(&s.field("scale"), format!("expected \"<width>:<height>\" with -1 or -2 for aspect ratio, such as \"640:-1\", found \"{scale}\""));
        }
    }
    s.finish();
    f
}

fn is_dim(d: &str) -> bool {
    d.parse::<i32>().is_ok_and(|n| n == -1 || n == -2 || (1..=8192).contains(&n))
}

/// `flush_packets` is a string in the spec ("1") but people write 1 or true.
fn flush_packets(s: &Section) -> Option<String> {
    match s.raw("flush_packets")? {
        Value::Bool(b) => Some(if *b { "1" } else { "0" }.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(v) => Some(v.clone()),
        other => {
            s.expected("flush_packets", "\"1\" or \"0\"", other);
            None
        }
    }
}

fn read_recording_override(s: &Section) -> RecordingOverride {
    let r = RecordingOverride {
        frame_storage_enabled: s.opt_bool("frame_storage_enabled"),
        frame_storage_retention: s.opt_duration("frame_storage_retention"),
        mp4_storage_type: s.opt_choice("mp4_storage_type", MP4_STORAGE_TYPES).map(|t| parse_mp4_storage(&t)),
        mp4_storage_retention: s.opt_duration("mp4_storage_retention"),
        mp4_segment_minutes: s.opt_f64("mp4_segment_minutes", 0.05..=1440.0),
        hls_storage_enabled: s.opt_bool("hls_storage_enabled"),
        hls_storage_retention: s.opt_duration("hls_storage_retention"),
        hls_segment_seconds: s.opt_u64("hls_segment_seconds", 1..=600),
        continuous: s.opt_bool("continuous"),
        pre_event_seconds: s.opt_u64("pre_event_seconds", 0..=3600),
    };
    s.finish();
    r
}
