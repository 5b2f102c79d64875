//! `ffmpeg-options`: what holds frames in FFmpeg's RTSP → H.264 → MJPEG path. Runs FFmpeg
//! alone (as the latency floor does) with variants of panelcam's argv, one after the other,
//! and prints a table of glass-to-glass latencies.
//!
//! What it found (FFmpeg 5.1, test camera 1280x720 at 25 fps, Nov 2026): panelcam's argv sits
//! at the floor, ~45 ms = one camera frame interval + ~5 ms. The frame interval is FFmpeg's
//! H.264 parser: the RTSP demuxer hands it RTP payloads, and it only knows an access unit is
//! complete when the next one starts (45 ms at 25 fps, 26 ms at 50 fps, 105 ms at 10 fps via
//! `BENCH_CAMERA_ARGS="--fps N"`). No option removes it (`-fflags +noparse` breaks on FU-A
//! fragments). Removing `-flags low_delay` (+80 ms), the encoder's `-threads 1` (+80-120 ms),
//! `-fps_mode passthrough` (duplicates, +120 ms at p90) or using `fps=10` for `select`
//! (+40 ms) hurts; everything else is noise. A variant that FAILS with "Invalid pts <= last"
//! hit the passthrough/select timestamp collision after a stall (see `ffmpeg-stall`), not a
//! problem of its option.
//!
//! `BENCH_VARIANTS=a,b` runs only the variants whose name contains `a` or `b`;
//! `BENCH_EXTRA_INPUT="-opt val ..."` / `BENCH_EXTRA_OUTPUT="..."` add a `custom` variant with
//! those options appended to the input / output side of the baseline.

use crate::common::*;
use crate::latency::measure_ffmpeg;

/// panelcam's argv cut into input options, URL, the live MJPEG output (up to its `pipe:1`)
/// and any further outputs (the HLS segments of recording / live HLS).
#[derive(Clone, Debug)]
pub struct Argv {
    input: Vec<String>,
    url: String,
    live: Vec<String>,
    others: Vec<String>,
}

impl Argv {
    pub fn split(args: &[String]) -> Argv {
        let i = args.iter().position(|a| a == "-i").expect("an -i in the FFmpeg argv");
        let rest = &args[i + 2..];
        let end = rest.iter().position(|a| a == "pipe:1").expect("the live output on pipe:1") + 1;
        Argv {
            input: args[..i].to_vec(),
            url: args[i + 1].clone(),
            live: rest[..end].to_vec(),
            others: rest[end..].to_vec(),
        }
    }

    pub fn join(&self) -> Vec<String> {
        let mut a = self.input.clone();
        a.extend(["-i".to_string(), self.url.clone()]);
        a.extend(self.live.iter().cloned());
        a.extend(self.others.iter().cloned());
        a
    }

    fn remove(list: &mut Vec<String>, opt: &str) {
        if let Some(i) = list.iter().position(|a| a == opt) {
            list.drain(i..(i + 2).min(list.len()));
        }
    }

    pub fn remove_input(&mut self, opt: &str) {
        Self::remove(&mut self.input, opt);
    }

    pub fn remove_output(&mut self, opt: &str) {
        Self::remove(&mut self.live, opt);
    }

    /// Replaces the input option's value, or adds the option just before `-i`.
    pub fn set_input(&mut self, opt: &str, value: &str) {
        match self.input.iter().position(|a| a == opt) {
            Some(i) => self.input[i + 1] = value.to_string(),
            None => self.input.extend([opt.to_string(), value.to_string()]),
        }
    }

    /// Adds the input option if absent, removes it if present.
    pub fn toggle_input(&mut self, opt: &str, value: &str) {
        if self.input.iter().any(|a| a == opt) {
            self.remove_input(opt);
        } else {
            self.set_input(opt, value);
        }
    }

    /// Replaces the live output's option value, or adds it before its `-f <fmt> pipe:1`.
    pub fn set_output(&mut self, opt: &str, value: &str) {
        match self.live.iter().position(|a| a == opt) {
            Some(i) => self.live[i + 1] = value.to_string(),
            None => {
                let at = self.live.len().saturating_sub(3);
                self.live.splice(at..at, [opt.to_string(), value.to_string()]);
            }
        }
    }

    /// Replaces panelcam's `select='...'` rate filter in the live `-vf` chain (whatever else
    /// the chain holds, e.g. a `setpts` restamp, stays), or drops it for `None`.
    pub fn set_rate_filter(&mut self, rate: Option<&str>) {
        let i = self.live.iter().position(|a| a == "-vf").expect("a -vf on the live output");
        let vf = &self.live[i + 1];
        let start = vf.find("select='").expect("panelcam's select rate filter");
        let end = start + 8 + vf[start + 8..].find('\'').expect("closing quote") + 1;
        let parts: Vec<&str> =
            [vf[..start].trim_end_matches(','), rate.unwrap_or(""), vf[end..].trim_start_matches(',')]
                .into_iter()
                .filter(|p| !p.is_empty())
                .collect();
        self.live[i + 1] = parts.join(",");
    }

    /// `scale=W:H` in the live `-vf` chain gets `:flags=<flags>`.
    pub fn set_scale_flags(&mut self, flags: &str) {
        let i = self.live.iter().position(|a| a == "-vf").expect("a -vf on the live output");
        let chain: Vec<String> = self.live[i + 1]
            .split(',')
            .map(|f| if f.starts_with("scale=") { format!("{f}:flags={flags}") } else { f.to_string() })
            .collect();
        self.live[i + 1] = chain.join(",");
    }

    fn extend_input(&mut self, words: &str) {
        self.input.extend(words.split_whitespace().map(str::to_string));
    }

    fn extend_output(&mut self, words: &str) {
        let at = self.live.len().saturating_sub(3);
        self.live.splice(at..at, words.split_whitespace().map(str::to_string));
    }
}

type Edit = Box<dyn Fn(&mut Argv)>;

/// The no-wait parser path: packets from the RTP depacketizer go to the decoder as they
/// arrive (no H.264 parser waiting for the next access unit), and the decoder outputs a
/// picture as soon as its last macroblock row is decoded.
fn no_parser(a: &mut Argv) {
    a.set_input("-fflags", "+nobuffer+discardcorrupt+noparse+nofillin");
    a.set_input("-flags2", "+chunks");
}

fn variants() -> Vec<(String, Edit)> {
    let v: Vec<(&str, Edit)> = vec![
        ("baseline: panelcam's argv", Box::new(|_| {})),
        ("- input -flags low_delay", Box::new(|a| a.remove_input("-flags"))),
        ("- input -fflags (FFmpeg default)", Box::new(|a| a.remove_input("-fflags"))),
        ("-use_wallclock_as_timestamps 1 toggled", Box::new(|a| a.toggle_input("-use_wallclock_as_timestamps", "1"))),
        ("without the HLS segment output", Box::new(|a| a.others.clear())),
        ("+ input -threads 1 (decoder)", Box::new(|a| a.set_input("-threads", "1"))),
        ("- output -threads 1 (encoder auto)", Box::new(|a| a.remove_output("-threads"))),
        ("+ -probesize 32 -analyzeduration 0", Box::new(|a| a.extend_input("-probesize 32 -analyzeduration 0"))),
        ("+ -max_delay 0", Box::new(|a| a.set_input("-max_delay", "0"))),
        ("+ -reorder_queue_size 0", Box::new(|a| a.set_input("-reorder_queue_size", "0"))),
        (
            "-fflags +nobuffer+flush_packets",
            Box::new(|a| a.set_input("-fflags", "+nobuffer+discardcorrupt+flush_packets")),
        ),
        ("+ -avioflags direct", Box::new(|a| a.set_input("-avioflags", "direct"))),
        ("+ -strict experimental", Box::new(|a| a.set_input("-strict", "experimental"))),
        ("+ -rtsp_flags prefer_tcp", Box::new(|a| a.set_input("-rtsp_flags", "prefer_tcp"))),
        ("- -fps_mode passthrough (FFmpeg default: cfr)", Box::new(|a| a.remove_output("-fps_mode"))),
        ("-fps_mode vfr", Box::new(|a| a.set_output("-fps_mode", "vfr"))),
        ("rate filter fps=10 (not select)", Box::new(|a| a.set_rate_filter(Some("fps=10")))),
        ("no rate filter (every camera frame)", Box::new(|a| a.set_rate_filter(None))),
        ("+ -flags2 +fast", Box::new(|a| a.set_input("-flags2", "+fast"))),
        ("+ -skip_loop_filter all", Box::new(|a| a.set_input("-skip_loop_filter", "all"))),
        ("-rtsp_transport udp", Box::new(|a| a.set_input("-rtsp_transport", "udp"))),
        ("+ -fflags +noparse+nofillin -flags2 +chunks", Box::new(no_parser)),
        (
            "input -threads 1 instead of -flags low_delay",
            Box::new(|a| {
                a.remove_input("-flags");
                a.set_input("-threads", "1");
            }),
        ),
        ("scale flags=fast_bilinear", Box::new(|a| a.set_scale_flags("fast_bilinear"))),
    ];
    let mut v: Vec<(String, Edit)> = v.into_iter().map(|(name, edit)| (name.to_string(), edit)).collect();
    let extra_in = std::env::var("BENCH_EXTRA_INPUT").unwrap_or_default();
    let extra_out = std::env::var("BENCH_EXTRA_OUTPUT").unwrap_or_default();
    if !extra_in.trim().is_empty() || !extra_out.trim().is_empty() {
        let name = format!("custom: in [{extra_in}] out [{extra_out}]");
        v.push((
            name,
            Box::new(move |a| {
                a.extend_input(&extra_in);
                a.extend_output(&extra_out);
            }),
        ));
    }
    v
}

pub async fn ffmpeg_options() {
    let measure = scaled(0.5, 5.0);
    let camera = reference_camera(&["--barcode"]).await;
    // The baseline is what panelcam really runs for the camera file when FFmpeg
    // reads RTSP (`"rtsp_client": "ffmpeg"`).
    let server = ffmpeg_reference_server(&camera).await;
    let base = running_ffmpeg_args(camera.port);
    let server_spool = server.spool.0.clone();
    drop(server);
    let spool = ScratchDir::new("variants");
    let base = move_spool(&base, &server_spool, &spool.0);
    println!("baseline argv: ffmpeg {}{}", base.join(" "), bench_config_note());
    let wanted: Vec<String> = std::env::var("BENCH_VARIANTS")
        .map(|s| s.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect())
        .unwrap_or_default();
    println!(
        "FFmpeg alone, {:.0} s per variant (+{} s warm-up), glass-to-glass ms:",
        measure.as_secs_f64(),
        crate::latency::WARMUP.as_secs()
    );
    println!("{:<46} {:>5} {:>7} {:>7} {:>7} {:>7} {:>5}  load", "variant", "fps", "p50", "p90", "p99", "max", "n");
    for (name, edit) in variants() {
        if !wanted.is_empty() && !wanted.iter().any(|w| name.contains(w.as_str())) {
            continue;
        }
        let mut argv = Argv::split(&base);
        edit(&mut argv);
        let args = argv.join();
        let result = tokio::task::spawn_blocking(move || measure_ffmpeg(&args, measure)).await.unwrap();
        match result.as_ref().map(|run| (run, Summary::of(&run.latencies))) {
            Ok((run, Some(s))) => println!(
                "{name:<46} {:>5.1} {:>7.1} {:>7.1} {:>7.1} {:>7.1} {:>5}  {}{}",
                run.fps(),
                s.p50,
                s.p90,
                s.p99,
                s.max,
                s.n,
                loadavg(),
                if run.no_barcode > 0 { format!("  ({} without barcode)", run.no_barcode) } else { String::new() }
            ),
            Ok((_, None)) => println!("{name:<46} no decodable frames"),
            Err(e) => println!("{name:<46} FAILED: {e}"),
        }
    }
}
