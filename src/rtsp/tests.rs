//! Test helpers: a packetiser (RFC 6184 / RFC 7798 as a camera would packetise), for the
//! depayloader's and the stream's tests.

use bytes::Bytes;
use proptest::prelude::*;

use super::rtp::Packet;
use crate::media::Codec;

/// A test packetiser: each picture's NAL units become RTP payloads, each NAL unit either
/// alone, aggregated with its neighbours, or fragmented, as `choices` (cycled) decide.
pub fn packetise(codec: Codec, pictures: &[Vec<Vec<u8>>], choices: &[u16]) -> Vec<Packet> {
    let hlen = if codec == Codec::H264 { 1 } else { 2 };
    let mut choice = choices.iter().cycle().copied();
    let mut out = Vec::new();
    let mut seq = 0u16;
    for (i, picture) in pictures.iter().enumerate() {
        let mut payloads: Vec<Vec<u8>> = Vec::new();
        let mut n = 0;
        while n < picture.len() {
            let c = choice.next().unwrap_or(0);
            let nal = &picture[n];
            match c % 3 {
                1 if n + 1 < picture.len() => {
                    let count = 2 + usize::from(c / 3) % 3;
                    let group: Vec<&Vec<u8>> = picture[n..].iter().take(count).collect();
                    let mut p = match codec {
                        Codec::H264 => vec![group[0][0] & 0x60 | 24],
                        Codec::H265 => vec![48 << 1, 1],
                    };
                    for g in &group {
                        p.extend_from_slice(&(g.len() as u16).to_be_bytes());
                        p.extend_from_slice(g);
                    }
                    payloads.push(p);
                    n += group.len();
                }
                2 if nal.len() > hlen + 1 => {
                    let piece = 1 + usize::from(c / 3) % 50;
                    let (header, body) = nal.split_at(hlen);
                    let chunks: Vec<&[u8]> = body.chunks(piece).collect();
                    for (k, chunk) in chunks.iter().enumerate() {
                        let se = (if k == 0 { 0x80 } else { 0 }) | (if k + 1 == chunks.len() { 0x40 } else { 0 });
                        let mut p = match codec {
                            Codec::H264 => vec![header[0] & 0xe0 | 28, se | header[0] & 0x1f],
                            Codec::H265 => {
                                vec![header[0] & 0x81 | 49 << 1, header[1], se | (header[0] >> 1) & 0x3f]
                            }
                        };
                        p.extend_from_slice(chunk);
                        payloads.push(p);
                    }
                    n += 1;
                }
                _ => {
                    payloads.push(nal.clone());
                    n += 1;
                }
            }
        }
        let last = payloads.len().saturating_sub(1);
        for (k, payload) in payloads.into_iter().enumerate() {
            out.push(Packet {
                payload_type: 96,
                marker: k == last,
                sequence: seq,
                timestamp: 3000 * i as u32,
                ssrc: 7,
                payload: Bytes::from(payload),
            });
            seq = seq.wrapping_add(1);
        }
    }
    out
}

/// Random NAL units of a codec: a valid header (type below the packetisation types) and
/// 1..300 bytes of body.
pub fn nal_strategy(codec: Codec) -> impl Strategy<Value = Vec<u8>> {
    (1u8..24, any::<u8>(), proptest::collection::vec(any::<u8>(), 1..300)).prop_map(move |(t, nri, body)| {
        let mut nal = match codec {
            Codec::H264 => vec![(nri & 0x60) | t],
            Codec::H265 => vec![(t % 41) << 1, 1],
        };
        nal.extend(body);
        nal
    })
}

pub fn sample(nals: &[Vec<u8>]) -> Vec<u8> {
    nals.iter().flat_map(|n| (n.len() as u32).to_be_bytes().into_iter().chain(n.iter().copied())).collect()
}
