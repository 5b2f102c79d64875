//! One FFmpeg child process under nix control.
//!
//! - Its own process group (`setpgid(0, 0)`), so a stop signal reaches FFmpeg and anything
//!   it forks, and a terminal's Ctrl-C does not reach it behind our back.
//! - A parent-death signal (`PR_SET_PDEATHSIG` = SIGKILL): if panelcam dies, even by
//!   `kill -9`, the kernel kills FFmpeg, so no orphan keeps the camera's RTSP session.
//!   The signal fires when the *thread* that forked exits; FFmpeg is spawned from tokio worker
//!   threads, which live as long as the runtime, never from the blocking pool.
//! - Stop = SIGTERM (+ SIGCONT, in case it was stopped) to the group, SIGKILL after a grace
//!   period, and always a `wait()`, so no zombie is left.
//! - A lower scheduling priority ([`FFMPEG_NICENESS`] above panelcam's): decoding and encoding
//!   is the bulk work of the panel; panelcam's own threads (fan-out to viewers, the API) need
//!   little CPU but need it at once, and the panel's HMI must not starve behind video.

use std::io;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

/// How much nicer than panelcam FFmpeg runs. Measured with `scripts/bench.sh video
/// status-latency` (4 cameras decoding on 2 cores): see docs/benchmarks.md.
pub const FFMPEG_NICENESS: i32 = 5;

pub struct FfmpegProcess {
    child: Child,
    pid: u32,
}

pub struct Spawned {
    pub process: FfmpegProcess,
    pub stdout: ChildStdout,
    pub stderr: ChildStderr,
    /// Only for [`FfmpegProcess::spawn_fed`].
    pub stdin: Option<ChildStdin>,
}

impl FfmpegProcess {
    pub fn spawn(program: &str, args: &[String]) -> io::Result<Spawned> {
        Self::start(program, args, false)
    }

    /// Like [`FfmpegProcess::spawn`], with a pipe to FFmpeg's stdin (the transcoder's input).
    pub fn spawn_fed(program: &str, args: &[String]) -> io::Result<Spawned> {
        Self::start(program, args, true)
    }

    fn start(program: &str, args: &[String], fed: bool) -> io::Result<Spawned> {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(if fed { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        let parent = nix::unistd::getpid();
        // SAFETY: the closure runs in the forked child before exec and only makes the
        // async-signal-safe syscalls prctl(2), getpriority(2), setpriority(2) and getppid(2).
        unsafe {
            cmd.pre_exec(move || {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)?;
                // Relative to panelcam's own niceness; failing to lower a priority is harmless.
                let base = nix::libc::getpriority(nix::libc::PRIO_PROCESS, 0);
                nix::libc::setpriority(nix::libc::PRIO_PROCESS, 0, base + FFMPEG_NICENESS);
                // panelcam may have died between fork and prctl: then nobody would kill us.
                if nix::unistd::getppid() != parent {
                    return Err(io::Error::other("panelcam exited while starting FFmpeg"));
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        let pid = child.id().ok_or_else(|| io::Error::other("FFmpeg exited immediately"))?;
        let stdout = child.stdout.take().ok_or_else(|| io::Error::other("no stdout pipe"))?;
        let stderr = child.stderr.take().ok_or_else(|| io::Error::other("no stderr pipe"))?;
        let stdin = child.stdin.take();
        Ok(Spawned { process: FfmpegProcess { child, pid }, stdout, stderr, stdin })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Stops the whole process group and reaps FFmpeg. Returns its exit status when known.
    pub async fn stop(mut self, grace: Duration) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        let group = Pid::from_raw(self.pid as i32);
        let _ = killpg(group, Signal::SIGTERM);
        // A SIGSTOPped FFmpeg only acts on SIGTERM once continued.
        let _ = killpg(group, Signal::SIGCONT);
        if let Ok(status) = tokio::time::timeout(grace, self.child.wait()).await {
            return status.ok();
        }
        let _ = killpg(group, Signal::SIGKILL);
        self.child.wait().await.ok()
    }
}

/// "exit code 1", "killed by SIGKILL": for status pages and logs.
pub fn describe_exit(status: Option<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        None => "exit status unknown".into(),
        Some(s) => match (s.code(), s.signal()) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(sig)) => match Signal::try_from(sig) {
                Ok(sig) => format!("killed by {sig}"),
                Err(_) => format!("killed by signal {sig}"),
            },
            _ => "exited".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn stop_reaps_a_process_that_ignores_sigterm() {
        let args = ["-c".to_string(), "trap '' TERM; echo ready; sleep 30".to_string()];
        let mut spawned = FfmpegProcess::spawn("sh", &args).unwrap();
        let mut buf = [0u8; 6];
        spawned.stdout.read_exact(&mut buf).await.unwrap();
        let pid = spawned.process.pid();
        let started = std::time::Instant::now();
        let status = spawned.process.stop(Duration::from_millis(300)).await;
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(describe_exit(status), "killed by SIGKILL");
        // Reaped: the pid no longer exists (not even as a zombie).
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }

    #[tokio::test]
    async fn runs_nicer_than_panelcam() {
        let args = ["-c".to_string(), "cut -d' ' -f19 /proc/self/stat".to_string()];
        let mut spawned = FfmpegProcess::spawn("sh", &args).unwrap();
        let mut out = String::new();
        spawned.stdout.read_to_string(&mut out).await.unwrap();
        // SAFETY: a plain syscall on this process.
        let ours = unsafe { nix::libc::getpriority(nix::libc::PRIO_PROCESS, 0) };
        assert_eq!(out.trim().parse::<i32>().unwrap(), (ours + FFMPEG_NICENESS).min(19));
        spawned.process.stop(Duration::from_secs(1)).await;
    }

    #[tokio::test]
    async fn runs_in_its_own_process_group() {
        let args = ["-c".to_string(), "ps -o pgid= -p $$".to_string()];
        let mut spawned = FfmpegProcess::spawn("sh", &args).unwrap();
        let mut out = String::new();
        spawned.stdout.read_to_string(&mut out).await.unwrap();
        assert_eq!(out.trim(), spawned.process.pid().to_string());
        spawned.process.stop(Duration::from_secs(1)).await;
    }
}
