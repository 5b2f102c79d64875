//! H.264 (RFC 6184) and H.265 (RFC 7798) depayloading: RTP payloads in, whole pictures out,
//! each NAL unit with a 4-byte length (MP4 sample form). The two formats share their shape
//! (single NAL unit, aggregation packet, fragmentation unit), so one machine serves both;
//! only the header sizes and type numbers differ.
//!
//! A picture is handed out the moment its last packet (marker bit) arrives, or, from cameras
//! that never set the marker, when the next picture's first packet shows a new timestamp.
//! After a loss nothing damaged leaves: the picture the gap may belong to and the picture of
//! the first packet after it are both dropped (the lost packets could have been the start of
//! either), and the next picture carries `after_loss`.

use crate::media::Codec;

use super::rtp::Packet;

/// The largest picture accepted: more is a broken or hostile stream, not video.
pub const MAX_PICTURE: usize = 8 << 20;

/// One complete picture, NAL units length-prefixed.
#[derive(Debug, PartialEq, Eq)]
pub struct Picture {
    pub data: Vec<u8>,
    pub timestamp: u32,
    pub after_loss: bool,
}

pub struct Depayloader {
    codec: Codec,
    picture: Vec<u8>,
    /// The RTP timestamp of the picture being collected; `None` right after a marker.
    timestamp: Option<u32>,
    /// Offset in `picture` of the length of the NAL unit a fragmentation unit is rebuilding.
    fragment: Option<usize>,
    /// The picture being collected is damaged and will be dropped at its end.
    broken: bool,
    /// Something was lost or dropped since the last picture handed out.
    lost: bool,
}

impl Depayloader {
    pub fn new(codec: Codec) -> Depayloader {
        Depayloader { codec, picture: Vec::new(), timestamp: None, fragment: None, broken: false, lost: false }
    }

    /// Forgets the picture in progress (a new SSRC); the next picture carries `after_loss`.
    pub fn reset(&mut self) {
        self.clear();
        self.lost = true;
    }

    /// Takes the next packet in sequence order; `lost_before` says packets are missing
    /// right before it.
    pub fn push(&mut self, packet: &Packet, lost_before: bool, out: &mut dyn FnMut(Picture)) {
        if lost_before {
            self.lost = true;
            self.broken = true;
        }
        if self.timestamp.is_some_and(|t| t != packet.timestamp) {
            self.finish(out);
            // The lost packets may have been this picture's first ones.
            self.broken = lost_before;
        }
        self.timestamp = Some(packet.timestamp);
        if !self.broken && self.add(&packet.payload).is_err() {
            self.broken = true;
            self.lost = true;
            // Free a large partial picture now rather than at its end.
            self.picture = Vec::new();
        }
        if packet.marker {
            self.finish(out);
        }
    }

    fn finish(&mut self, out: &mut dyn FnMut(Picture)) {
        if self.broken || self.fragment.is_some() {
            self.lost = true;
        } else if let Some(timestamp) = self.timestamp
            && !self.picture.is_empty()
        {
            let capacity = self.picture.len().min(1 << 20);
            let data = std::mem::replace(&mut self.picture, Vec::with_capacity(capacity));
            out(Picture { data, timestamp, after_loss: std::mem::take(&mut self.lost) });
        }
        self.clear();
    }

    fn clear(&mut self) {
        self.picture.clear();
        self.timestamp = None;
        self.fragment = None;
        self.broken = false;
    }

    /// Adds one RTP payload to the picture; `Err` marks it damaged.
    fn add(&mut self, payload: &[u8]) -> Result<(), ()> {
        match self.codec {
            Codec::H264 => {
                let (&header, body) = payload.split_first().ok_or(())?;
                match header & 0x1f {
                    1..=23 => self.single(payload),
                    24 => self.aggregate(body),
                    28 => {
                        let (&fu, data) = body.split_first().ok_or(())?;
                        self.fragment(&[(header & 0xe0) | (fu & 0x1f)], fu, data)
                    }
                    // STAP-B, MTAP and FU-B need interleaved mode, which the SDP check refuses.
                    _ => Err(()),
                }
            }
            Codec::H265 => {
                let (&[h0, h1], body) = payload.split_first_chunk::<2>().ok_or(())?;
                match (h0 >> 1) & 0x3f {
                    0..=47 => self.single(payload),
                    48 => self.aggregate(body),
                    49 => {
                        let (&fu, data) = body.split_first().ok_or(())?;
                        self.fragment(&[(h0 & 0x81) | ((fu & 0x3f) << 1), h1], fu, data)
                    }
                    _ => Err(()),
                }
            }
        }
    }

    fn single(&mut self, nal: &[u8]) -> Result<(), ()> {
        if self.fragment.is_some() {
            return Err(()); // the fragmented NAL unit never ended
        }
        self.reserve(4 + nal.len())?;
        self.picture.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        self.picture.extend_from_slice(nal);
        Ok(())
    }

    /// STAP-A / AP: (16-bit size, NAL unit) repeated.
    fn aggregate(&mut self, mut body: &[u8]) -> Result<(), ()> {
        if body.is_empty() {
            return Err(());
        }
        while !body.is_empty() {
            let (size, rest) = body.split_first_chunk::<2>().ok_or(())?;
            let (nal, rest) = rest.split_at_checked(usize::from(u16::from_be_bytes(*size))).ok_or(())?;
            if nal.is_empty() {
                return Err(());
            }
            self.single(nal)?;
            body = rest;
        }
        Ok(())
    }

    /// FU-A / FU: `header` is the rebuilt NAL unit header, `fu` the start/end bits.
    fn fragment(&mut self, header: &[u8], fu: u8, data: &[u8]) -> Result<(), ()> {
        let (start, end) = (fu & 0x80 != 0, fu & 0x40 != 0);
        if start {
            if self.fragment.is_some() {
                return Err(());
            }
            self.reserve(4 + header.len())?;
            self.fragment = Some(self.picture.len());
            self.picture.extend_from_slice(&[0; 4]);
            self.picture.extend_from_slice(header);
        }
        let Some(at) = self.fragment else { return Err(()) };
        self.reserve(data.len())?;
        self.picture.extend_from_slice(data);
        if end {
            let len = (self.picture.len() - at - 4) as u32;
            self.picture.get_mut(at..at + 4).ok_or(())?.copy_from_slice(&len.to_be_bytes());
            self.fragment = None;
        }
        Ok(())
    }

    fn reserve(&self, more: usize) -> Result<(), ()> {
        if self.picture.len() + more > MAX_PICTURE { Err(()) } else { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtsp::rtp::Reorder;
    use crate::rtsp::tests::{nal_strategy, packetise, sample};
    use bytes::Bytes;
    use proptest::prelude::*;

    fn pictures_strategy() -> impl Strategy<Value = (Codec, Vec<Vec<Vec<u8>>>, Vec<u16>)> {
        prop_oneof![Just(Codec::H264), Just(Codec::H265)].prop_flat_map(|codec| {
            (
                Just(codec),
                proptest::collection::vec(proptest::collection::vec(nal_strategy(codec), 1..5), 1..8),
                proptest::collection::vec(any::<u16>(), 1..20),
            )
        })
    }

    fn depayload(codec: Codec, packets: &[(Packet, bool)]) -> Vec<Picture> {
        let mut d = Depayloader::new(codec);
        let mut got = Vec::new();
        for (p, lost) in packets {
            d.push(p, *lost, &mut |pic| got.push(pic));
        }
        got
    }

    #[test]
    fn single_stap_and_fu() {
        let idr = [0x65, 1, 2, 3, 4, 5];
        let packets = [
            // STAP-A with SPS and PPS, then the IDR in three FU-A pieces, marker on the last.
            (vec![0x18, 0, 2, 0x67, 9, 0, 2, 0x68, 8], false),
            (vec![0x7c, 0x85, 1, 2], false),
            (vec![0x7c, 0x05, 3], false),
            (vec![0x7c, 0x45, 4, 5], true),
        ];
        let packets: Vec<_> = packets
            .into_iter()
            .enumerate()
            .map(|(i, (payload, marker))| {
                let p = Packet {
                    payload_type: 96,
                    marker,
                    sequence: i as u16,
                    timestamp: 1,
                    ssrc: 1,
                    payload: payload.into(),
                };
                (p, false)
            })
            .collect();
        let got = depayload(Codec::H264, &packets);
        assert_eq!(
            got,
            [Picture { data: sample(&[vec![0x67, 9], vec![0x68, 8], idr.to_vec()]), timestamp: 1, after_loss: false }]
        );
    }

    #[test]
    fn pictures_end_on_a_new_timestamp_without_marker() {
        let p = |seq: u16, ts: u32| {
            (
                Packet {
                    payload_type: 96,
                    marker: false,
                    sequence: seq,
                    timestamp: ts,
                    ssrc: 1,
                    payload: Bytes::from_static(&[0x41, 7]),
                },
                false,
            )
        };
        let got = depayload(Codec::H264, &[p(0, 0), p(1, 0), p(2, 3000), p(3, 6000)]);
        assert_eq!(got.iter().map(|g| (g.timestamp, g.data.len())).collect::<Vec<_>>(), [(0, 12), (3000, 6)]);
    }

    #[test]
    fn oversized_pictures_are_dropped() {
        let fu = |seq: u16, fu: u8| {
            let mut payload = vec![0x7c, fu];
            payload.resize(60_000, 0xaa);
            (
                Packet {
                    payload_type: 96,
                    marker: fu & 0x40 != 0,
                    sequence: seq,
                    timestamp: 0,
                    ssrc: 1,
                    payload: payload.into(),
                },
                false,
            )
        };
        let mut packets = vec![fu(0, 0x85)];
        packets.extend((1..200).map(|s| fu(s, 0x05)));
        packets.push(fu(200, 0x45));
        assert!(depayload(Codec::H264, &packets).is_empty());
    }

    proptest! {
        #[test]
        fn arbitrary_payloads_never_panic(payloads in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 0..40), any::<bool>(), 0u32..3), 0..30), h265 in any::<bool>()) {
            let codec = if h265 { Codec::H265 } else { Codec::H264 };
            let packets: Vec<_> = payloads.into_iter().enumerate().map(|(i, (p, m, ts))| {
                (Packet { payload_type: 96, marker: m, sequence: i as u16, timestamp: ts, ssrc: 1, payload: p.into() }, i % 7 == 3)
            }).collect();
            for pic in depayload(codec, &packets) {
                prop_assert_eq!(crate::media::nal_units(&pic.data).map(|n| n.len() + 4).sum::<usize>(), pic.data.len());
            }
        }

        #[test]
        fn packetised_pictures_come_back_exactly((codec, pictures, choices) in pictures_strategy()) {
            let packets: Vec<_> = packetise(codec, &pictures, &choices).into_iter().map(|p| (p, false)).collect();
            let got = depayload(codec, &packets);
            let want: Vec<_> = pictures.iter().enumerate().map(|(i, p)| Picture { data: sample(p), timestamp: 3000 * i as u32, after_loss: false }).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn a_lost_packet_damages_nothing_that_leaves((codec, pictures, choices) in pictures_strategy(), drop in any::<prop::sample::Index>()) {
            let packets = packetise(codec, &pictures, &choices);
            let dropped = drop.index(packets.len());
            let lossy: Vec<_> = packets.iter().enumerate().filter(|(i, _)| *i != dropped).map(|(i, p)| (p.clone(), i == dropped + 1)).collect();
            let got = depayload(codec, &lossy);
            let lost_picture = packets[dropped].timestamp;
            let mut first_after = true;
            for pic in &got {
                let i = (pic.timestamp / 3000) as usize;
                prop_assert_eq!(&pic.data, &sample(&pictures[i]), "picture {} damaged", i);
                prop_assert!(pic.timestamp != lost_picture);
                if pic.timestamp > lost_picture && first_after {
                    prop_assert!(pic.after_loss, "the first picture after the loss must say so");
                    first_after = false;
                } else {
                    prop_assert!(!pic.after_loss);
                }
            }
        }

        #[test]
        fn reordering_within_the_window_changes_nothing((codec, pictures, choices) in pictures_strategy(), swaps in proptest::collection::vec(any::<prop::sample::Index>(), 0..6)) {
            let packets = packetise(codec, &pictures, &choices);
            let mut shuffled = packets.clone();
            // Disjoint swaps of neighbours: the reordering a LAN produces. The session's first
            // packet sets where the sequence starts, so it stays first.
            let mut taken = vec![false; shuffled.len()];
            for s in swaps {
                if shuffled.len() < 3 { break; }
                let i = 1 + s.index(shuffled.len() - 2);
                if !taken[i] && !taken[i + 1] {
                    shuffled.swap(i, i + 1);
                    taken[i] = true;
                    taken[i + 1] = true;
                }
            }
            let run = |input: &[Packet]| {
                let mut r = Reorder::new(8);
                let mut d = Depayloader::new(codec);
                let mut got = Vec::new();
                for p in input {
                    r.push(p.clone(), &mut |p, lost| d.push(&p, lost, &mut |pic| got.push(pic)));
                }
                got
            };
            prop_assert_eq!(run(&shuffled), run(&packets));
        }
    }
}
