//! Scenario `tls` (issue 10): what HTTPS/WSS costs, against the same over plain WS.
//!
//! 1. New viewers: sequential connections to `/cam/live` (at least 200 and `BENCH_SECONDS` / 6
//!    per variant), alternating between a plain panelcam and ones with `server.tls` on (an
//!    ECDSA P-256 leaf from a throw-away CA, rcgen's default key; and an RSA 2048 leaf if
//!    `openssl` is there to make the key, which ring cannot), so a neighbour's load falls on
//!    every variant alike. Each connection is timed to the end of the
//!    TCP + TLS handshake, to the `101` and to the first frame (panelcam sends the latest one
//!    at once), then dropped. The client never resumes a session: every viewer pays the full
//!    handshake, as a new browser does. panelcam's CPU per new viewer is its utime + stime over
//!    the loop, minus its idle rate (the fake camera keeps it busy a little), divided by the
//!    connections; it covers accept, handshake, upgrade, the first frame and the teardown.
//!    Then the same with TLS 1.3 session resumption (a browser reconnecting within the session).
//! 2. Fifty viewers on one camera: the server-added latency of `server_latency` and panelcam's
//!    CPU, over WS and over WSS (ECDSA), two rounds each, alternating.
//!
//! All servers run side by side on the fake FFmpeg of `server_latency` (`main` sets it).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::common::*;
use crate::server_latency::{CLIENTS, Measured, TARGET, Transport, fake_camera, measure};
use crate::support::harness::next_binary;
use crate::support::pki::{Ca, Pair};

/// Sequential new viewers per variant, at least: enough for a p99.
const CONNECTIONS: usize = 200;

/// The connection loops run at least `BENCH_SECONDS` / 6 (5 s): natively, 200 WS upgrades take
/// 2-3 CPU ticks (10 ms each), too few to count.
fn min_loop() -> Duration {
    scaled(1.0 / 6.0, 2.0)
}

/// A panelcam to connect to and how.
struct Endpoint {
    label: String,
    server: Panelcam,
    /// `None` for plain WS; for WSS a client that trusts the test CA and never resumes.
    tls: Option<Arc<rustls::ClientConfig>>,
    /// panelcam's CPU ticks per second with the camera running and nobody connected.
    idle_ticks_per_sec: f64,
}

/// How long one new viewer took, in ms from the start of the TCP connect.
struct NewViewer {
    /// TCP connected and, for WSS, the TLS handshake done.
    secured: f64,
    /// The `101 Switching Protocols` read.
    upgraded: f64,
    first_frame: f64,
    /// For WSS: version, cipher suite, key exchange and whether the session was resumed.
    tls: Option<String>,
    resumed: bool,
}

pub async fn tls() {
    let pki = ScratchDir::new("pki");
    let ca = Ca::new(&pki.0, "bench");
    let names = ["127.0.0.1", "localhost"];
    let fresh = client(&ca, false);

    let mut endpoints = vec![Endpoint::start("WS", json!({}), None).await];
    let ecdsa = ca.issue(&pki.0, "ecdsa", &names);
    endpoints.push(Endpoint::start("WSS ECDSA P-256", tls_config(&ecdsa), Some(fresh.clone())).await);
    let rsa = match rsa_2048_key(&pki.0) {
        Ok(key) => {
            let rsa = ca.issue_with_key(&pki.0, "rsa", &names, key);
            endpoints.push(Endpoint::start("WSS RSA 2048", tls_config(&rsa), Some(fresh.clone())).await);
            "; RSA 2048 key: openssl genpkey (ring cannot generate RSA keys)".to_string()
        }
        Err(why) => format!("; RSA 2048 skipped: {why}"),
    };
    println!(
        "server certificates: leaves for 127.0.0.1 signed by a throw-away ECDSA P-256 CA (tests/support/pki.rs); \
         ECDSA P-256 key: rcgen's default{rsa}"
    );
    let idle = scaled(1.0 / 6.0, 3.0);
    let ticks_before: Vec<u64> = endpoints.iter().map(|e| cpu_ticks(e.server.pid())).collect();
    tokio::time::sleep(idle).await;
    for (endpoint, before) in endpoints.iter_mut().zip(ticks_before) {
        endpoint.idle_ticks_per_sec = (cpu_ticks(endpoint.server.pid()) - before) as f64 / idle.as_secs_f64();
    }

    new_viewers(&endpoints).await;
    resumed_viewers(&endpoints[1], &ca).await;
    println!();

    endpoints.truncate(2); // the RSA server has nothing more to do: stop it
    fifty_viewers(&endpoints[0].server, &endpoints[1].server, &fresh).await;
}

impl Endpoint {
    async fn start(label: &str, config: Value, tls: Option<Arc<rustls::ClientConfig>>) -> Endpoint {
        let server = start_panelcam_with(&[("cam", fake_camera())], config, tls.clone()).await;
        Endpoint { label: label.to_string(), server, tls, idle_ticks_per_sec: 0.0 }
    }

    /// panelcam's CPU per connection in ms: ticks over a loop of `secs`, idle rate subtracted.
    fn cpu_ms_per_connection(&self, ticks: u64, secs: f64, connections: usize) -> f64 {
        let busy = ticks as f64 - self.idle_ticks_per_sec * secs;
        busy / clock_ticks_per_sec() * 1000.0 / connections as f64
    }
}

fn tls_config(pair: &Pair) -> Value {
    json!({"server": {"tls": {"enabled": true, "cert_path": pair.cert_path, "key_path": pair.key_path}}})
}

/// A TLS client (ring, TLS 1.2 and 1.3) that trusts `ca` and resumes sessions only if `resume`.
/// `BENCH_TLS_SUITE` keeps only the cipher suites whose name contains it, e.g. `CHACHA20` (what
/// browsers choose on CPUs without AES instructions); unset, rustls' order: AES-256-GCM first.
fn client(ca: &Ca, resume: bool) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(&ca.cert_path).expect("the test CA's PEM")).expect("the test CA");
    let mut provider = rustls::crypto::ring::default_provider();
    if let Ok(wanted) = std::env::var("BENCH_TLS_SUITE")
        && !wanted.trim().is_empty()
    {
        let all: Vec<String> = provider.cipher_suites.iter().map(|s| format!("{:?}", s.suite())).collect();
        provider.cipher_suites.retain(|s| format!("{:?}", s.suite()).contains(wanted.trim()));
        assert!(!provider.cipher_suites.is_empty(), "BENCH_TLS_SUITE={wanted} matches none of {all:?}");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    if !resume {
        config.resumption = rustls::client::Resumption::disabled();
    }
    Arc::new(config)
}

/// An RSA 2048 key from `openssl genpkey`: rcgen's ring backend cannot generate RSA keys
/// (`KeyPair::generate_for(&PKCS_RSA_SHA256)` is aws-lc-only), but signs with them.
fn rsa_2048_key(dir: &Path) -> Result<rcgen::KeyPair, String> {
    let path = dir.join("rsa-2048.key");
    let out = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out"])
        .arg(&path)
        .output()
        .map_err(|e| format!("ring cannot generate RSA keys and openssl did not run: {e}"))?;
    if !out.status.success() {
        return Err(format!("openssl genpkey failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    let pem = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    rcgen::KeyPair::from_pem(&pem).map_err(|e| format!("{}: not usable by rcgen: {e}", path.display()))
}

/// Part 1: new viewers per endpoint, interleaved, at least [`CONNECTIONS`] and [`min_loop`];
/// times and CPU per viewer.
async fn new_viewers(endpoints: &[Endpoint]) {
    let mut viewers: Vec<Vec<NewViewer>> = endpoints.iter().map(|_| Vec::new()).collect();
    let ticks_before: Vec<u64> = endpoints.iter().map(|e| cpu_ticks(e.server.pid())).collect();
    let (start, mut connections) = (Instant::now(), 0);
    while connections < CONNECTIONS || start.elapsed() < min_loop() {
        connections += 1;
        for (endpoint, seen) in endpoints.iter().zip(&mut viewers) {
            let viewer = new_viewer(endpoint.server.port, endpoint.tls.as_ref())
                .await
                .unwrap_or_else(|e| panic!("new viewer over {}: {e}", endpoint.label));
            seen.push(viewer);
        }
    }
    // The last connections' teardown belongs to the loop too.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let secs = start.elapsed().as_secs_f64();
    let ticks: Vec<u64> =
        endpoints.iter().zip(ticks_before).map(|(e, before)| cpu_ticks(e.server.pid()) - before).collect();

    println!(
        "new viewers: {connections} sequential connections per variant, interleaved, over {secs:.1} s; \
         times from the start of the TCP connect, client never resumes; load {}{}",
        loadavg(),
        bench_config_note()
    );
    let mut cpu = Vec::new();
    for ((endpoint, seen), ticks) in endpoints.iter().zip(&viewers).zip(&ticks) {
        let tls = seen[0].tls.as_deref().map(|t| format!("  ({t})")).unwrap_or_default();
        let resumed = seen.iter().filter(|v| v.resumed).count();
        let resumed = if resumed > 0 { format!("  RESUMED {resumed}x") } else { String::new() };
        let upgraded: Vec<f64> = seen.iter().map(|v| v.upgraded).collect();
        print_latency(&format!("new viewer, {}: connected + upgraded (101)", endpoint.label), &upgraded, None, "");
        let secured: Vec<f64> = seen.iter().map(|v| v.secured).collect();
        let first: Vec<f64> = seen.iter().map(|v| v.first_frame).collect();
        let what = if endpoint.tls.is_some() { "TCP + TLS handshake" } else { "TCP connect" };
        println!("  {what} {}; to the first frame {}{tls}{resumed}", p50_p99(&secured), p50_p99(&first));
        let per_connection = endpoint.cpu_ms_per_connection(*ticks, secs, connections);
        cpu.push(per_connection);
        println!(
            "  panelcam CPU per new viewer: {} ms  ({ticks} ticks over the loop, idle {:.2} % of a core subtracted)",
            ms(per_connection),
            endpoint.idle_ticks_per_sec / clock_ticks_per_sec() * 100.0
        );
    }
    let ws_p50 = Summary::of(&viewers[0].iter().map(|v| v.upgraded).collect::<Vec<_>>()).unwrap().p50;
    for (i, endpoint) in endpoints.iter().enumerate().skip(1) {
        let p50 = Summary::of(&viewers[i].iter().map(|v| v.upgraded).collect::<Vec<_>>()).unwrap().p50;
        println!(
            "{} / WS: time to the 101 p50 {:.1}x; CPU per new viewer {:.1}x, the TLS part {} ms  (load {})",
            endpoint.label,
            p50 / ws_p50,
            cpu[i] / cpu[0],
            ms(cpu[i] - cpu[0]),
            loadavg()
        );
    }
}

/// Part 1b: the same WSS server, the client resuming its TLS 1.3 session each time.
async fn resumed_viewers(endpoint: &Endpoint, ca: &Ca) {
    let client = client(ca, true);
    let port = endpoint.server.port;
    new_viewer(port, Some(&client)).await.unwrap_or_else(|e| panic!("first WSS viewer: {e}"));
    let (before, start) = (cpu_ticks(endpoint.server.pid()), Instant::now());
    let mut seen = Vec::new();
    while seen.len() < CONNECTIONS || start.elapsed() < min_loop() {
        seen.push(new_viewer(port, Some(&client)).await.unwrap_or_else(|e| panic!("resuming WSS viewer: {e}")));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (ticks, secs) = (cpu_ticks(endpoint.server.pid()) - before, start.elapsed().as_secs_f64());
    let resumed = seen.iter().filter(|v| v.resumed).count();
    let upgraded: Vec<f64> = seen.iter().map(|v| v.upgraded).collect();
    print_latency(
        &format!("new viewer, {} resumed: connected + upgraded (101)", endpoint.label),
        &upgraded,
        None,
        &format!("{resumed} of {} resumed", seen.len()),
    );
    let secured: Vec<f64> = seen.iter().map(|v| v.secured).collect();
    println!(
        "  TCP + TLS handshake {}; panelcam CPU per new viewer {} ms  ({ticks} ticks over {secs:.1} s, idle subtracted); load {}",
        p50_p99(&secured),
        ms(endpoint.cpu_ms_per_connection(ticks, secs, seen.len())),
        loadavg()
    );
}

/// "p50 .. ms  p99 .. ms".
fn p50_p99(samples: &[f64]) -> String {
    Summary::of(samples).map_or("no samples".into(), |s| format!("p50 {} ms  p99 {} ms", ms(s.p50), ms(s.p99)))
}

/// One new viewer of `/cam/live` on 127.0.0.1:`port`, over TLS if `tls` is given.
async fn new_viewer(port: u16, tls: Option<&Arc<rustls::ClientConfig>>) -> Result<NewViewer, String> {
    let attempt = async {
        let start = Instant::now();
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| format!("connect: {e}"))?;
        // As browsers do: no Nagle delay between the TLS Finished and the upgrade request.
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        match tls {
            None => upgrade(tcp, format!("ws://127.0.0.1:{port}/cam/live"), start, None, false).await,
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
                let stream = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS: {e}"))?;
                let conn = stream.get_ref().1;
                let resumed = conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
                let params = format!(
                    "{:?} {:?} {:?}",
                    conn.protocol_version().unwrap_or(rustls::ProtocolVersion::Unknown(0)),
                    conn.negotiated_cipher_suite().map_or(rustls::CipherSuite::Unknown(0), |s| s.suite()),
                    conn.negotiated_key_exchange_group().map_or(rustls::NamedGroup::Unknown(0), |g| g.name()),
                );
                upgrade(stream, format!("wss://127.0.0.1:{port}/cam/live"), start, Some(params), resumed).await
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), attempt)
        .await
        .map_err(|_| "no first frame within 10 s".to_string())?
}

/// The WebSocket upgrade and the first frame on a connected (and secured) stream.
async fn upgrade<S>(
    stream: S,
    url: String,
    start: Instant,
    tls: Option<String>,
    resumed: bool,
) -> Result<NewViewer, String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let since = |t: Instant| t.duration_since(start).as_secs_f64() * 1000.0;
    let secured = since(Instant::now());
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await.map_err(|e| format!("upgrade: {e}"))?;
    let upgraded = since(Instant::now());
    next_binary(&mut ws, Duration::from_secs(5)).await.ok_or("no frame after the upgrade")?;
    let first_frame = since(Instant::now());
    Ok(NewViewer { secured, upgraded, first_frame, tls, resumed })
}

/// Part 2: [`CLIENTS`] viewers over WS on `plain`, then over WSS on `secure`, twice.
async fn fifty_viewers(plain: &Panelcam, secure: &Panelcam, tls: &Arc<rustls::ClientConfig>) {
    let window = scaled(0.5, 3.0);
    let transports = [(plain, Transport::Ws), (secure, Transport::Wss(tls.clone()))];
    let mut results = [Measured::default(), Measured::default()];
    let mut loads = Vec::new();
    for _round in 0..2 {
        for ((server, transport), result) in transports.iter().zip(&mut results) {
            result.extend(measure(server, transport, window).await);
            loads.push(loadavg());
        }
    }
    for ((_, transport), m) in transports.iter().zip(&results) {
        let note = format!(
            "panelcam CPU {:.2} % of one core over {:.0} s; {}{}",
            m.cpu_percent(),
            m.seconds,
            m.fps_note(),
            bench_config_note()
        );
        let label = format!("server-added latency (FFmpeg stdout -> {} message, {CLIENTS} clients)", transport.name());
        print_latency(&label, &m.latencies, Some(TARGET), &note);
    }
    let [ws, wss] = &results;
    if let (Some(a), Some(b)) = (Summary::of(&ws.latencies), Summary::of(&wss.latencies)) {
        println!(
            "WSS - WS with {CLIENTS} viewers: latency p50 {:+.2} ms, p99 {:+.2} ms; panelcam CPU {:+.2} % of one core \
             ({:.1}x)  (load after each window: {})",
            b.p50 - a.p50,
            b.p99 - a.p99,
            wss.cpu_percent() - ws.cpu_percent(),
            wss.cpu_percent() / ws.cpu_percent().max(1e-9),
            loads.join(" | ")
        );
    }
}
