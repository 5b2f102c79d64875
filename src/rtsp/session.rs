//! One RTSP session from connect to TEARDOWN: OPTIONS, DESCRIBE, SETUP (TCP interleaved or
//! UDP), PLAY, then receiving with keep-alives until the stop signal, a failure, or
//! `data_timeout` without video.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::time::sleep_until;

use super::conn::{Conn, ok};
use super::message::{Frame, Message};
use super::sdp::{self, SdpError};
use super::stream::Stream;
use super::url::RtspUrl;
use super::{Error, Options};
use crate::config::Transport;
use crate::media::Event;

/// Keep-alive interval when the camera names no session timeout: half of RFC 2326's 60 s.
const DEFAULT_SESSION_TIMEOUT: u64 = 60;
/// TEARDOWN is a courtesy: the camera ends the session on its own when the connection closes
/// or the keep-alives stop. Stopping must not wait longer for it.
const TEARDOWN_TIMEOUT: Duration = Duration::from_secs(1);
/// UDP packets held back to restore their order (see `rtp::Reorder`).
const UDP_REORDER_WINDOW: usize = 8;

/// What SETUP and PLAY left behind for the receive loop.
struct Playing {
    conn: Conn,
    stream: Stream,
    /// TCP: the channel RTP arrives on. UDP: the RTP and RTCP sockets.
    media: Media,
    play_url: String,
    keepalive_method: &'static str,
    keepalive_every: Duration,
}

enum Media {
    Interleaved(u8),
    Udp { rtp: UdpSocket, rtcp: UdpSocket },
}

pub async fn run(
    options: &Options,
    on_event: &mut (dyn FnMut(Event) + Send),
    stop: &mut watch::Receiver<bool>,
) -> Result<(), Error> {
    let url = RtspUrl::parse(&options.url).map_err(Error::Failed)?;
    let playing = tokio::select! {
        p = start(&url, options.transport) => p?,
        _ = stopped(stop) => return Ok(()),
    };
    receive(playing, options.data_timeout, on_event, stop).await
}

/// Resolves once `stop` is true, or its sender is gone (nobody is left to stop the session).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    loop {
        if *stop.borrow_and_update() || stop.changed().await.is_err() {
            return;
        }
    }
}

async fn start(url: &RtspUrl, transport: Transport) -> Result<Playing, Error> {
    let mut conn = Conn::connect(url).await?;
    let target = url.request_url.as_str();

    // OPTIONS only tells whether GET_PARAMETER works for keep-alives; a camera that refuses
    // it can still stream.
    let options = conn.request("OPTIONS", target, &[]).await?;
    let public = ok("OPTIONS", options).ok().and_then(|m| m.header("Public").map(str::to_string));
    let get_parameter = public.is_some_and(|p| p.split(',').any(|m| m.trim().eq_ignore_ascii_case("GET_PARAMETER")));

    let describe = ok("DESCRIBE", conn.request("DESCRIBE", target, &[("Accept", "application/sdp")]).await?)?;
    let base = describe.header("Content-Base").or(describe.header("Content-Location")).unwrap_or(target).to_string();
    let video = match sdp::parse(&String::from_utf8_lossy(&describe.body), &base) {
        Ok(v) => v,
        Err(SdpError::Unsupported(what)) => return Err(Error::Unsupported(what)),
        Err(SdpError::Malformed(what)) => return Err(Error::Failed(format!("DESCRIBE answered {what}"))),
    };
    if video.control.contains(|c: char| c.is_control() || c == ' ') {
        return Err(Error::Failed("DESCRIBE answered a control URL with spaces or control characters".into()));
    }

    let (transport_header, udp) = match transport {
        Transport::Tcp => ("RTP/AVP/TCP;unicast;interleaved=0-1".to_string(), None),
        Transport::Udp => {
            let (rtp, rtcp, port) = udp_pair(conn.peer).await?;
            (format!("RTP/AVP;unicast;client_port={}-{}", port, port + 1), Some((rtp, rtcp)))
        }
    };
    let setup = ok("SETUP", conn.request("SETUP", &video.control, &[("Transport", &transport_header)]).await?)?;
    let session = setup.header("Session").ok_or_else(|| Error::Failed("SETUP answered without a Session".into()))?;
    let (id, timeout) = parse_session(session);
    conn.session = Some(id);
    let media = match udp {
        None => Media::Interleaved(interleaved_channel(&setup)),
        Some((rtp, rtcp)) => Media::Udp { rtp, rtcp },
    };

    ok("PLAY", conn.request("PLAY", &video.play, &[("Range", "npt=0.000-")]).await?)?;
    let window = if matches!(media, Media::Udp { .. }) { UDP_REORDER_WINDOW } else { 0 };
    Ok(Playing {
        stream: Stream::new(video.codec, video.payload_type, video.params, window),
        conn,
        media,
        play_url: video.play,
        keepalive_method: if get_parameter { "GET_PARAMETER" } else { "OPTIONS" },
        keepalive_every: Duration::from_secs((timeout / 2).max(1)),
    })
}

/// `Session: <id>[;timeout=<s>]`: the id to send back and the timeout in seconds.
fn parse_session(value: &str) -> (String, u64) {
    let mut parts = value.split(';');
    let id = parts.next().unwrap_or_default().trim().to_string();
    let timeout = parts
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("timeout"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(DEFAULT_SESSION_TIMEOUT);
    (id, timeout)
}

/// The RTP channel SETUP's answer assigned (`interleaved=a-b`); 0 when it does not say.
fn interleaved_channel(setup: &Message) -> u8 {
    setup
        .header("Transport")
        .and_then(|t| t.split(';').find_map(|p| p.trim().strip_prefix("interleaved=")))
        .and_then(|v| v.split('-').next()?.trim().parse().ok())
        .unwrap_or(0)
}

/// Two UDP sockets on consecutive ports, the first even (RFC 3550 §11), in the camera's
/// address family.
async fn udp_pair(peer: SocketAddr) -> Result<(UdpSocket, UdpSocket, u16), Error> {
    let any = if peer.is_ipv6() { "[::]:0" } else { "0.0.0.0:0" };
    for _ in 0..20 {
        let rtp = UdpSocket::bind(any).await.map_err(|e| Error::Failed(format!("binding a UDP port for RTP: {e}")))?;
        let port = rtp.local_addr().map_err(|e| Error::Failed(format!("binding a UDP port for RTP: {e}")))?.port();
        if port % 2 != 0 || port == u16::MAX {
            continue;
        }
        let mut rtcp_addr = rtp.local_addr().map_err(|e| Error::Failed(format!("binding a UDP port: {e}")))?;
        rtcp_addr.set_port(port + 1);
        if let Ok(rtcp) = UdpSocket::bind(rtcp_addr).await {
            return Ok((rtp, rtcp, port));
        }
    }
    Err(Error::Failed("no two consecutive free UDP ports for RTP and RTCP".into()))
}

fn wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

async fn receive(
    mut p: Playing,
    data_timeout: Duration,
    on_event: &mut (dyn FnMut(Event) + Send),
    stop: &mut watch::Receiver<bool>,
) -> Result<(), Error> {
    let mut last_video = Instant::now();
    let rtp_channel = match p.media {
        Media::Interleaved(c) => Some(c),
        Media::Udp { .. } => None,
    };
    for (channel, payload) in p.conn.take_early() {
        if Some(channel) == rtp_channel && p.stream.push(payload, Instant::now(), wall_ms(), on_event) {
            last_video = Instant::now();
        }
    }
    let mut data_deadline = tokio::time::Instant::from_std(last_video + data_timeout);
    let mut keepalive_at = tokio::time::Instant::now() + p.keepalive_every;
    let mut udp_buf = vec![0u8; 65536];
    let mut rtcp_buf = vec![0u8; 2048];
    let camera_ip = p.conn.peer.ip();
    loop {
        let (payload, arrived) = tokio::select! {
            _ = stopped(stop) => {
                let _ = tokio::time::timeout(TEARDOWN_TIMEOUT, p.conn.request("TEARDOWN", &p.play_url, &[])).await;
                return Ok(());
            }
            frame = p.conn.read_frame() => match frame? {
                Frame::Interleaved { channel, payload } if Some(channel) == rtp_channel => (payload, Instant::now()),
                // RTCP, keep-alive answers, requests from the camera: nothing to act on.
                _ => continue,
            },
            received = recv_rtp(&p.media, &mut udp_buf) => {
                let (n, from) = received.map_err(|e| Error::Failed(format!("receiving RTP over UDP: {e}")))?;
                // Only the camera may feed the stream: anyone on the LAN can send to the port.
                if from.ip() != camera_ip {
                    continue;
                }
                (Bytes::copy_from_slice(udp_buf.get(..n).unwrap_or_default()), Instant::now())
            }
            _ = recv_rtcp(&p.media, &mut rtcp_buf) => continue,
            _ = sleep_until(keepalive_at) => {
                p.conn.send(p.keepalive_method, &p.play_url, &[]).await?;
                keepalive_at += p.keepalive_every;
                continue;
            }
            _ = sleep_until(data_deadline) => {
                if last_video.elapsed() >= data_timeout {
                    return Err(Error::Failed(format!("no video for {} s", data_timeout.as_secs_f64())));
                }
                data_deadline = tokio::time::Instant::from_std(last_video + data_timeout);
                continue;
            }
        };
        if p.stream.push(payload, arrived, wall_ms(), on_event) {
            last_video = arrived;
        }
    }
}

async fn recv_rtp(media: &Media, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
    match media {
        Media::Udp { rtp, .. } => rtp.recv_from(buf).await,
        Media::Interleaved(_) => std::future::pending().await,
    }
}

async fn recv_rtcp(media: &Media, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
    match media {
        Media::Udp { rtcp, .. } => rtcp.recv_from(buf).await,
        Media::Interleaved(_) => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_header() {
        assert_eq!(parse_session("47112344;timeout=20"), ("47112344".into(), 20));
        assert_eq!(parse_session(" abc "), ("abc".into(), 60));
        assert_eq!(parse_session("abc; Timeout = x"), ("abc".into(), 60));
    }
}
