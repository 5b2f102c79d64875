use std::time::Duration;

use super::*;

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("panelcam-cfg-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const SPEC_CONFIG: &str = r#"{
  "server": {"host": "0.0.0.0", "port": 8080, "cors_allow_origin": "*", "admin_token": "your-secure-admin-token",
             "tls": {"enabled": false, "cert_path": "certs/server.crt", "key_path": "certs/server.key"}},
  "mqtt": {"enabled": true, "broker_url": "mqtt://192.168.1.4:1883", "client_id": "videoserver-${hostname}",
           "base_topic": "Videoserver/${hostname}", "qos": 0, "retain": false, "keep_alive_secs": 60,
           "publish_interval_secs": 1, "publish_picture_arrival": true, "max_packet_size": 268435456},
  "recording": {"enabled": true, "database_path": "recordings", "max_frame_size": 10485760,
                "max_recording_age": "7d", "cleanup_interval_hours": 1},
  "transcoding": {"output_format": "mjpeg", "capture_framerate": 5, "output_framerate": 0,
                  "channel_buffer_size": 50, "debug_capture": false, "debug_duplicate_frames": false}
}"#;

const SPEC_CAMERA: &str = r#"{
  "enabled": true, "path": "/cam1", "url": "rtsp://admin007:pw%23x@192.168.1.10:554/stream1",
  "transport": "tcp", "reconnect_interval": 5, "chunk_read_size": 8192, "token": "secure-cam1-token",
  "ffmpeg": {"command": null, "use_wallclock_as_timestamps": true, "output_format": "mjpeg", "video_codec": "mjpeg",
    "video_bitrate": "200k", "quality": 75, "output_framerate": 5, "scale": "640:-1", "movflags": null,
    "rtbufsize": 65536, "fflags": "+nobuffer+discardcorrupt", "flags": "low_delay", "avioflags": "direct",
    "fps_mode": "cfr", "flush_packets": "1", "extra_input_args": ["-analyzeduration", "100000", "-probesize", "100000"],
    "extra_output_args": [], "log_stderr": "file"},
  "mqtt": {"publish_interval": 5, "topic_name": "surveillance/cameras/cam1/image"},
  "recording": {"frame_storage_enabled": true, "frame_storage_retention": "24h", "mp4_storage_type": "filesystem",
    "mp4_storage_retention": "7d", "mp4_segment_minutes": 5},
  "transcoding_override": {"output_format": "mjpeg", "quality": 75, "capture_framerate": 10, "output_framerate": 5,
    "channel_buffer_size": 50, "debug_capture": false, "debug_duplicate_frames": false},
  "ptz": {"enabled": true, "protocol": "onvif", "onvif_url": "http://10.0.0.9/onvif/device_service",
    "username": "admin", "password": "pass"}
}"#;

#[test]
fn spec_config_reads_without_problems() {
    let dir = TempDir::new("spec");
    let (config, warnings) = load_config(&dir.write("config.json", SPEC_CONFIG)).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(config.mqtt.enabled);
    assert!(!config.mqtt.commands_enabled, "commands are off unless asked for");
    assert_eq!(config.mqtt.broker().unwrap().port, 1883);
    assert_eq!(config.server.port, 8080);
    assert_eq!(config.server.admin_token.as_ref().unwrap().expose(), "your-secure-admin-token");
    assert_eq!(config.mqtt.client_id, format!("videoserver-{}", hostname()));
    assert_eq!(config.recording.frame_retention(), Some(Duration::from_secs(7 * 86_400)));
    assert_eq!(config.transcoding.capture_framerate, 5.0);
    assert_eq!(config.transcoding.quality, 75);
}

#[test]
fn mqtt_commands_flag_and_tls_broker() {
    let dir = TempDir::new("mqtt");
    let on = r#"{"mqtt": {"enabled": true, "commands_enabled": true, "broker_url": "mqtt://u:pw@b:1884"}}"#;
    let (config, warnings) = load_config(&dir.write("config.json", on)).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(config.mqtt.commands_enabled);
    // mqtts:// reads its CA file at startup: a wrong path is named, the password is not.
    let tls = r#"{"mqtt": {"enabled": true, "broker_url": "mqtts://u:pw@b:8883", "tls": {"ca_path": "/nonexistent/ca.pem"}}}"#;
    let problems = load_config(&dir.write("config.json", tls)).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].field, "mqtt.tls.ca_path");
    assert!(
        problems[0].message.contains("/nonexistent/ca.pem: cannot read the CA certificate"),
        "{}",
        problems[0].message
    );
    assert!(!problems[0].to_string().contains("pw"), "{}", problems[0]);
    // TLS files with a plain-TCP broker would be a setting that does nothing.
    let plain = r#"{"mqtt": {"enabled": true, "broker_url": "mqtt://b", "tls": {"ca_path": "ca.pem"}}}"#;
    let problems = load_config(&dir.write("config.json", plain)).unwrap_err();
    assert_eq!(problems[0].field, "mqtt.tls", "{problems:?}");
    assert!(problems[0].message.contains("use mqtts://"), "{}", problems[0].message);
    // A disabled section is not judged.
    let off = r#"{"mqtt": {"enabled": false, "broker_url": "mqtts://b"}}"#;
    assert!(load_config(&dir.write("config.json", off)).is_ok());
}

#[test]
fn spec_camera_reads_every_field() {
    let dir = TempDir::new("cam");
    let (cam, warnings) = load_camera_file(&dir.write("cam1.json", SPEC_CAMERA)).unwrap();
    // PTZ is implemented: the spec's camera file reads without a word.
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(cam.id, "cam1");
    assert_eq!(cam.path, "cam1");
    assert_eq!(cam.url.password(), Some("pw%23x"));
    assert_eq!(cam.chunk_read_size, 8192);
    assert_eq!(cam.ffmpeg.extra_input_args.len(), 4);
    assert_eq!(cam.ffmpeg.log_stderr, LogStderr::File);
    assert_eq!(cam.ffmpeg.fps_mode.as_deref(), Some("cfr"));
    assert_eq!(cam.mqtt.publish_interval, Some(5.0));
    assert_eq!(cam.recording.mp4_storage_type, Some(Mp4Storage::Filesystem));
    assert_eq!(cam.recording.frame_storage_retention, Some(Duration::from_secs(86_400)));
    assert_eq!(cam.transcoding.capture_framerate, Some(10.0));
    assert_eq!(cam.ptz.profile_token, "profile1");
    assert!(cam.ptz.enabled);
    // Its FFmpeg input options ask for FFmpeg, and get it (and say why).
    assert!(cam.ffmpeg_input_reason().unwrap().contains("ffmpeg.rtbufsize"), "{:?}", cam.ffmpeg_input_reason());
}

#[test]
fn panelcam_reads_rtsp_cameras_unless_told_or_given_ffmpeg_input_options() {
    let dir = TempDir::new("client");
    let read = |name: &str, json: &str| load_camera_file(&dir.write(name, json)).unwrap().0;
    let plain = read("a.json", r#"{"path": "/a", "url": "rtsp://10.0.0.1/s"}"#);
    assert_eq!(plain.ffmpeg_input_reason(), None);
    let told = read("b.json", r#"{"path": "/b", "url": "rtsp://10.0.0.1/s", "rtsp_client": "ffmpeg"}"#);
    assert_eq!(told.ffmpeg_input_reason().as_deref(), Some("rtsp_client is \"ffmpeg\""));
    let http = read("c.json", r#"{"path": "/c", "url": "http://10.0.0.1/mjpg"}"#);
    assert!(http.ffmpeg_input_reason().unwrap().contains("not an RTSP source"));
    let flags = read("d.json", r#"{"path": "/d", "url": "rtsp://10.0.0.1/s", "ffmpeg": {"fflags": "+genpts"}}"#);
    assert!(flags.ffmpeg_input_reason().unwrap().contains("ffmpeg.fflags"));
    // Output options apply to the transcoder: they keep panelcam's client.
    let output =
        read("e.json", r#"{"path": "/e", "url": "rtsp://10.0.0.1/s", "ffmpeg": {"scale": "320:-1", "quality": 50}}"#);
    assert_eq!(output.ffmpeg_input_reason(), None);
    let bad =
        load_camera_file(&dir.write("f.json", r#"{"path": "/f", "url": "rtsp://10.0.0.1/s", "rtsp_client": "vlc"}"#));
    let text = format!("{bad:?}");
    assert!(text.contains("rtsp_client"), "a wrong value names the field: {text}");
}

#[test]
fn cors_and_framing_origins_read_as_documented() {
    let dir = TempDir::new("origins");
    let read = |server: &str| {
        load_config(&dir.write("config.json", &format!("{{\"server\": {server}}}"))).map(|(c, _)| c.server)
    };
    let s = read("{}").unwrap();
    assert_eq!(
        (s.cors_allow_origin.as_deref(), s.frame_ancestors.as_slice()),
        (Some("*"), ["*".to_string()].as_slice())
    );
    let s = read(r#"{"cors_allow_origin": null, "frame_ancestors": null}"#).unwrap();
    assert_eq!((s.cors_allow_origin.as_deref(), s.frame_ancestors.len()), (Some("*"), 1), "null is the default");
    let s = read(r#"{"cors_allow_origin": "", "frame_ancestors": []}"#).unwrap();
    assert_eq!((s.cors_allow_origin, s.frame_ancestors.len()), (None, 0), "\"\" is no CORS, [] only our own origin");
    let s = read(r#"{"cors_allow_origin": "https://WinCC.example:8443", "frame_ancestors": ["https://*.example"]}"#)
        .unwrap();
    assert_eq!(s.cors_allow_origin.as_deref(), Some("https://WinCC.example:8443"));
    let problems = read(r#"{"cors_allow_origin": 5, "frame_ancestors": ["*", 7, "http://x/"]}"#).unwrap_err();
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        ["server.cors_allow_origin", "server.frame_ancestors[1]", "server.frame_ancestors[2]"],
        "{problems:?}"
    );
}

#[test]
fn minimal_files_get_documented_defaults() {
    let dir = TempDir::new("min");
    let (config, _) = load_config(&dir.write("config.json", "{}")).unwrap();
    assert_eq!(config.server.host, "0.0.0.0");
    assert_eq!(config.server.port, 8080);
    assert_eq!(config.server.cors_allow_origin.as_deref(), Some("*"));
    assert!(!config.mqtt.enabled);
    assert_eq!(config.recording.mp4_segment_minutes, 5.0);
    assert_eq!(config.recording.hls_segment_seconds, 6);
    assert_eq!(config.recording.mp4_framerate, 5.0);
    assert_eq!(config.recording.max_frame_size, 10 << 20);
    assert_eq!(config.transcoding, Transcoding::default());
    let (cam, _) =
        load_camera_file(&dir.write("simple.json", r#"{"path": "/simple", "url": "rtsp://10.0.0.1/s"}"#)).unwrap();
    assert!(cam.enabled);
    assert_eq!(cam.transport, Transport::Tcp);
    assert_eq!(cam.reconnect_interval, Duration::from_secs(5));
    assert_eq!(cam.ffmpeg.use_wallclock_as_timestamps, None, "default: on for the preview, off when recording");
    assert_eq!(cam.ffmpeg.log_stderr, LogStderr::Off);
    assert!(cam.token.is_none());
}

#[test]
fn every_problem_is_listed_with_file_and_field() {
    let dir = TempDir::new("bad");
    let file = dir.write(
        "cam9.json",
        r#"{"path": "/a b", "url": "ftp://x", "transport": "sctp", "ffmpeg": {"quality": 0, "scale": "wide"},
            "recording": {"mp4_storage_retention": "7 days"}, "colour": "red"}"#,
    );
    let problems = load_camera_file(&file).unwrap_err();
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    for f in ["path", "url", "transport", "ffmpeg.quality", "ffmpeg.scale", "recording.mp4_storage_retention", "colour"]
    {
        assert!(fields.contains(&f), "missing {f} in {problems:#?}");
    }
    assert!(problems.iter().all(|p| p.file == file));
    let colour = problems.iter().find(|p| p.field == "colour").unwrap();
    assert_eq!(colour.severity, Severity::Warning);
}

#[test]
fn broken_config_json_is_an_error_with_position() {
    let dir = TempDir::new("broken");
    let problems = load_config(&dir.write("config.json", "{\"server\": {\"port\": 80,}}")).unwrap_err();
    assert_eq!(problems.len(), 1);
    assert!(problems[0].message.contains("not valid JSON"), "{}", problems[0]);
    let problems = load_config(&dir.write("config.json", r#"{"server": {"port": 99999}}"#)).unwrap_err();
    assert_eq!(problems[0].field, "server.port");
    let missing = load_config(&dir.0.join("nope.json")).unwrap_err();
    assert!(missing[0].message.contains("cannot read file"));
}

#[test]
fn a_broken_camera_does_not_hide_the_others() {
    let dir = TempDir::new("set");
    dir.write("a.json", r#"{"path": "/a", "url": "rtsp://h/a"}"#);
    dir.write("b.json", r#"{"path": "/b", "url": "#);
    dir.write("c.json", r#"{"path": "/a", "url": "rtsp://h/c"}"#);
    dir.write("notes.txt", "not a camera");
    let set = load_cameras(&dir.0);
    let ids: Vec<&str> = set.cameras.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, vec!["a"]);
    let rejected: Vec<&str> = set.rejected.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(rejected, vec!["b", "c"]);
    assert!(set.rejected[1].problems[0].message.contains("already used"));
}

#[test]
fn reserved_paths_are_refused() {
    let dir = TempDir::new("reserved");
    let problems = load_camera_file(&dir.write("x.json", r#"{"path": "/dashboard", "url": "rtsp://h/"}"#)).unwrap_err();
    assert!(problems[0].message.contains("used by the server"));
}

#[test]
fn settings_that_cannot_take_effect_stop_startup() {
    let dir = TempDir::new("tls");
    // HTTPS without its certificate file would serve nothing: the default path is named.
    let problems = load_config(&dir.write("config.json", r#"{"server": {"tls": {"enabled": true}}}"#)).unwrap_err();
    assert_eq!(problems[0].field, "server.tls.cert_path");
    assert!(problems[0].message.contains("certs/server.crt: cannot read the server certificate"), "{}", problems[0]);
    let problems = load_config(&dir.write("config.json", r#"{"server": {"panel_id": "panel 1; drop"}}"#)).unwrap_err();
    assert_eq!(problems[0].field, "server.panel_id");
}

#[test]
fn mp4_segments_for_postgresql_must_fit_one_value() {
    let dir = TempDir::new("bytea");
    let text = r#"{"recording": {"database_type": "postgresql", "database_url": "postgres://u@h/db",
                   "mp4_storage_type": "database", "mp4_segment_minutes": 60}}"#;
    let problems = load_config(&dir.write("config.json", text)).unwrap_err();
    assert_eq!(problems[0].field, "recording.mp4_segment_minutes");
    assert!(problems[0].message.contains("1 GiB"), "{}", problems[0]);
    assert!(load_config(&dir.write("config.json", &text.replace("60", "5"))).is_ok());
    let files = text.replace("\"database\",", "\"filesystem\",");
    assert!(load_config(&dir.write("config.json", &files)).is_ok(), "files on the panel have no such limit");
}

#[test]
fn camera_ids_become_paths_and_sql_values_so_they_are_checked() {
    let dir = TempDir::new("ids");
    for bad in ["a b", "x%d", ".hidden2", "caf\u{e9}", &"x".repeat(65)] {
        let problems = load_camera_file(&dir.write(&format!("{bad}.json"), r#"{"path": "/p", "url": "rtsp://h/"}"#));
        let problems = problems.unwrap_err();
        assert!(problems[0].message.contains("camera id"), "{bad}: {problems:?}");
    }
    assert!(load_camera_file(&dir.write("front-door_2.json", r#"{"path": "/p", "url": "rtsp://h/"}"#)).is_ok());
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Map, Value};

    /// Keys that reach the readers, mixed with noise, so the readers' every branch sees
    /// hostile values.
    const KEYS: &[&str] = &[
        "server",
        "mqtt",
        "recording",
        "transcoding",
        "tls",
        "enabled",
        "port",
        "host",
        "admin_token",
        "metrics_token",
        "panel_id",
        "cors_allow_origin",
        "max_connections",
        "database_type",
        "database_url",
        "mp4_storage_type",
        "mp4_segment_minutes",
        "frame_storage_retention",
        "path",
        "url",
        "token",
        "ffmpeg",
        "scale",
        "quality",
        "command",
        "extra_input_args",
        "ptz",
        "onvif_url",
        "cert_sha256",
        "ca_path",
        "transcoding_override",
        "reconnect_interval",
        "flush_packets",
        "max_recording_age",
        "outbox_max_mb",
        "disk_max_percent",
        "hls_segment_seconds",
        "publish_interval",
        "qos",
    ];

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
            "\\PC{0,40}".prop_map(Value::String),
            "[0-9]{1,30}[smhdw]?".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::vec((proptest::sample::select(KEYS).prop_map(str::to_string), inner), 0..8)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<String, Value>>())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_document_reads_without_panicking(doc in value()) {
            let text = doc.to_string();
            let _ = parse_camera(std::path::Path::new("cameras/cam1.json"), &text);
            let ctx = reader::Ctx::new(std::path::Path::new("config.json"));
            if let Some(v) = ctx.parse_json(&text) {
                let root = ctx.root(&v);
                let _ = Config::read(&root);
                root.finish();
            }
        }

        #[test]
        fn identifiers_are_safe_as_paths_and_names(id in "\\PC{0,80}") {
            if is_identifier(&id) {
                prop_assert!(!id.contains('/') && !id.contains('%') && !id.starts_with('.') && id.len() <= 64);
                prop_assert!(id.is_ascii());
            }
        }

        #[test]
        fn any_text_reads_without_panicking(text in "\\PC{0,200}") {
            let _ = parse_camera(std::path::Path::new("c.json"), &text);
            let _ = duration::parse_duration(&text);
        }
    }
}
