//! Shared pieces of the frame-storage benchmarks: durations, the working directory, frame
//! payloads, statistics, result lines (collected for the summary table), per-thread CPU time
//! and page-cache control.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use panelcam::bus::Frame;

/// `BENCH_SECONDS` (default 30): the main measuring time. Every duration scales with it.
pub fn bench_seconds() -> f64 {
    std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse::<f64>().ok()).filter(|s| *s > 0.0).unwrap_or(30.0)
}

/// `fraction` of `BENCH_SECONDS`, at least `min` seconds.
pub fn scaled(fraction: f64, min: f64) -> Duration {
    Duration::from_secs_f64((bench_seconds() * fraction).max(min))
}

/// A numeric environment knob.
pub fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.replace('_', "").parse().ok())
}

/// Where the benchmark databases live: `BENCH_DIR`, default `/var/tmp/panelcam-bench` (a real
/// disk, not tmpfs: the numbers are about the disk). The seek database and the retention
/// template are cached there between runs (`BENCH_REBUILD=1` rebuilds them).
pub fn bench_dir() -> PathBuf {
    let dir = std::env::var_os("BENCH_DIR").map(PathBuf::from).unwrap_or_else(|| "/var/tmp/panelcam-bench".into());
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

pub fn rebuild_requested() -> bool {
    std::env::var("BENCH_REBUILD").is_ok_and(|v| v == "1")
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

pub fn wal_path(path: &Path) -> PathBuf {
    with_suffix(path, "-wal")
}

/// Removes a frame store: the database with its WAL, shared-memory and rollback-journal
/// files, and its data files.
pub fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(with_suffix(path, suffix));
    }
    let _ = std::fs::remove_dir_all(panelcam::record::data::dir_for(path));
}

/// Database, WAL (or rollback journal) and data files, in bytes.
pub fn db_bytes(path: &Path) -> u64 {
    let db: u64 =
        ["", "-wal", "-journal"].iter().map(|s| std::fs::metadata(with_suffix(path, s)).map_or(0, |m| m.len())).sum();
    db + panelcam::record::recover::data_bytes(&panelcam::record::data::dir_for(path))
}

/// Copies a frame store (database and data files) that is not open.
pub fn copy_db(from: &Path, to: &Path) {
    remove_db(to);
    std::fs::copy(from, to).expect("copy the database");
    let (src, dst) = (panelcam::record::data::dir_for(from), panelcam::record::data::dir_for(to));
    std::fs::create_dir_all(&dst).expect("create the data directory");
    for entry in std::fs::read_dir(&src).expect("read the data directory").flatten() {
        std::fs::copy(entry.path(), dst.join(entry.file_name())).expect("copy a data file");
    }
}

/// Writes back every dirty page of the machine, so one run's write-back does not land in the
/// next run's measurement.
pub fn sync_disk() {
    nix::unistd::sync();
}

/// Drops a database's pages from the OS page cache (`posix_fadvise(DONTNEED)`): the next read
/// comes from the disk. Only this file is affected, unlike `/proc/sys/vm/drop_caches`.
pub fn evict_from_page_cache(path: &Path) -> std::io::Result<()> {
    for p in [path.to_path_buf(), wal_path(path)] {
        let Ok(file) = std::fs::File::open(&p) else { continue };
        file.sync_all()?; // dirty pages cannot be dropped
        nix::fcntl::posix_fadvise(&file, 0, 0, nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED)
            .map_err(std::io::Error::from)?;
    }
    Ok(())
}

/// Reads a file once so its pages are in the OS page cache.
pub fn warm_page_cache(path: &Path) -> std::io::Result<u64> {
    let mut file = std::fs::File::open(path)?;
    std::io::copy(&mut file, &mut std::io::sink())
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

// ---------------------------------------------------------------------------------------------
// Frames.

/// xorshift64*: deterministic, fast, good enough for payloads and random probe times.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..hi` (`hi > lo`).
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % (hi - lo) as u64) as i64
    }
}

/// Size range of the "100 KB" frames.
pub const FRAME_MIN: usize = 90_000;
pub const FRAME_MAX: usize = 110_000;
pub const FRAME_TEXT: &str = "100 KB (90-110 KB)";

/// Incompressible frame contents: zero-copy slices at random offsets of one random buffer.
pub struct Payloads {
    pool: Bytes,
    rng: Rng,
}

impl Payloads {
    pub fn new(seed: u64) -> Payloads {
        let mut rng = Rng::new(seed);
        let pool: Vec<u8> = (0..(8 << 20) / 8).flat_map(|_| rng.next_u64().to_le_bytes()).collect();
        Payloads { pool: Bytes::from(pool), rng }
    }

    pub fn take(&mut self, len: usize) -> Bytes {
        let off = self.rng.range(0, (self.pool.len() - len) as i64) as usize;
        self.pool.slice(off..off + len)
    }

    /// A "100 KB" frame: uniform in 90-110 KB. Real JPEG sizes vary, and a fixed size could
    /// happen to fit (or miss) a page size's overflow chain exactly.
    pub fn frame_100k(&mut self) -> Bytes {
        let len = self.rng.range(FRAME_MIN as i64, FRAME_MAX as i64 + 1) as usize;
        self.take(len)
    }

    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }
}

pub fn frame(jpeg: Bytes, captured_ms: i64, seq: u64) -> Frame {
    Frame { jpeg, captured_ms, seq, received: Instant::now() }
}

// ---------------------------------------------------------------------------------------------
// Statistics and result lines.

#[derive(Clone, Copy, Debug)]
pub struct Summary {
    pub n: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Summary {
    /// Nearest-rank percentiles; `None` for no samples.
    pub fn of(values: &[f64]) -> Option<Summary> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let rank = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Some(Summary { n: v.len(), p50: rank(0.50), p99: rank(0.99), max: v[v.len() - 1] })
    }

    pub fn text(&self) -> String {
        format!("p50 {} ms  p99 {} ms  max {} ms  n={}", ms(self.p50), ms(self.p99), ms(self.max), self.n)
    }
}

/// Milliseconds: three decimals below 1 ms, two below 10 ms, one above.
pub fn ms(v: f64) -> String {
    match v.abs() {
        a if a < 1.0 => format!("{v:.3}"),
        a if a < 10.0 => format!("{v:.2}"),
        _ => format!("{v:.1}"),
    }
}

pub fn verdict(ok: bool) -> &'static str {
    if ok { "[ok]" } else { "[MISSED]" }
}

/// One line of the summary table printed at the end.
pub struct Row {
    pub what: String,
    pub value: String,
    pub target: String,
    pub ok: Option<bool>,
}

static ROWS: Mutex<Vec<Row>> = Mutex::new(Vec::new());

/// Prints a result line `what: value  (target ...)  [ok]` and keeps it for the summary.
/// `target` empty = informational.
pub fn result(what: &str, value: String, target: &str, ok: Option<bool>, note: &str) {
    let target_text = if target.is_empty() { String::new() } else { format!("  (target {target})") };
    let mark = ok.map(|ok| format!("  {}", verdict(ok))).unwrap_or_default();
    let note_text = if note.is_empty() { String::new() } else { format!("  {note}") };
    println!("{what}: {value}{target_text}{mark}{note_text}");
    let row = Row { what: what.to_string(), value, target: target.to_string(), ok };
    ROWS.lock().unwrap_or_else(|e| e.into_inner()).push(row);
}

pub fn take_rows() -> Vec<Row> {
    std::mem::take(&mut *ROWS.lock().unwrap_or_else(|e| e.into_inner()))
}

/// The 1-minute load average, printed with results: the machine is shared.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// CPU time of this process's threads.

/// CPU time of one thread: `utime + stime` from `/proc/self/task/<tid>/stat` (clock ticks) and,
/// where the kernel has schedstats, the nanosecond run time from `.../schedstat`.
#[derive(Clone, Debug)]
pub struct ThreadCpu {
    pub tid: u32,
    pub name: String,
    pub ticks: u64,
    pub run_ns: Option<u64>,
}

/// This process's threads whose name starts with one of `prefixes` (`rec-`, `ckpt-`).
pub fn threads(prefixes: &[&str]) -> Vec<ThreadCpu> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return out };
    for task in tasks.flatten() {
        let Some(tid) = task.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let dir = task.path();
        let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default().trim().to_string();
        if !prefixes.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        // `rest` starts at field 3 (state); utime and stime are fields 14 and 15.
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
        let run_ns = std::fs::read_to_string(dir.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|f| f.parse().ok()));
        out.push(ThreadCpu { tid, name, ticks: field(14) + field(15), run_ns });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Clock ticks per second (`getconf CLK_TCK`, practically always 100 on Linux).
pub fn clock_ticks_per_sec() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// The shared `main` of the benches: picks scenarios from the first argument (comma-separated
/// or `all`; names of other benches are ignored), runs each on its own runtime, survives a
/// panicking scenario, and prints a summary of every result line. (The video bench's entry;
/// framestore uses `run_bench_with`.)
#[allow(dead_code)]
pub fn run_bench(
    bench: &str,
    scenarios: &[(&str, &str)],
    run: impl Fn(&str) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>>,
) -> std::process::ExitCode {
    run_bench_with(bench, scenarios, &[], run)
}

/// `run_bench` where the scenarios named in `only_by_name` (long ones) are left out of the
/// default run: they run when named, or with `all`.
pub fn run_bench_with(
    bench: &str,
    scenarios: &[(&str, &str)],
    only_by_name: &[&str],
    run: impl Fn(&str) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>>,
) -> std::process::ExitCode {
    use std::process::ExitCode;
    // `cargo bench` passes `--bench`; the first other argument selects scenarios.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let requested: Vec<&str> = match &filter {
        None => scenarios.iter().map(|s| s.0).filter(|n| !only_by_name.contains(n)).collect(),
        Some(f) if f == "all" => scenarios.iter().map(|s| s.0).collect(),
        Some(f) => f.split(',').map(str::trim).filter(|s| !s.is_empty()).collect(),
    };
    let known = |n: &&str| scenarios.iter().any(|s| s.0 == *n);
    let selected: Vec<&str> = requested.iter().copied().filter(known).collect();
    if selected.is_empty() {
        // `scripts/bench.sh <scenario>` passes the name to every bench: not ours, skip.
        println!("{bench}: no scenario named {:?}; its scenarios (comma-separated, or `all`):", requested.join(","));
        for (name, what) in scenarios {
            let by_name = if only_by_name.contains(name) { " [only by name]" } else { "" };
            println!("  {name:<12} {what}{by_name}");
        }
        return ExitCode::SUCCESS;
    }
    for unknown in requested.iter().filter(|n| !known(n)) {
        println!("{bench}: ignoring {unknown:?}, not one of its scenarios");
    }
    let mut failed = Vec::new();
    for name in selected {
        let what = scenarios.iter().find(|s| s.0 == name).unwrap().1;
        println!(
            "== {name}: {what}  (BENCH_SECONDS={}, {} cores, load {})",
            bench_seconds(),
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            loadavg()
        );
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime");
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runtime.block_on(run(name))));
        runtime.shutdown_timeout(std::time::Duration::from_secs(5));
        if outcome.is_err() {
            println!("{name}: FAILED (see the panic above)");
            failed.push(name);
        }
        println!();
    }
    let rows = take_rows();
    if !rows.is_empty() {
        println!("== summary (load {})", loadavg());
        for r in &rows {
            let target = if r.target.is_empty() { String::new() } else { format!("  (target {})", r.target) };
            let mark = r.ok.map(|ok| format!("  {}", verdict(ok))).unwrap_or_default();
            println!("{}: {}{target}{mark}", r.what, r.value);
        }
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        println!("failed scenarios: {}", failed.join(", "));
        ExitCode::FAILURE
    }
}
