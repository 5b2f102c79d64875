//! One video track from raw RTP to [`Event`]s: payload type filter, SSRC lock, sequence
//! order, depayloading, then the rules the media router relies on: parameter sets before the
//! first unit and again when they change, the first unit a keyframe, and a 90 kHz `pts` that
//! keeps counting past the RTP timestamp's wrap.

use std::time::Instant;

use bytes::Bytes;

use super::depay::{Depayloader, Picture};
use super::rtp::{Packet, Reorder};
use crate::media::{AccessUnit, Codec, Event, Params, nal_units};

pub struct Stream {
    codec: Codec,
    payload_type: u8,
    ssrc: Option<u32>,
    reorder: Reorder,
    depay: Depayloader,
    /// Parameter sets as last seen: from the SDP, then in-band.
    vps: Option<Bytes>,
    sps: Option<Bytes>,
    pps: Option<Bytes>,
    emitted: Option<Params>,
    /// A keyframe has gone out since the start (or since a new SSRC).
    started: bool,
    /// The last unit's RTP timestamp and pts, and the step between the last two units.
    timeline: Option<(u32, i64, i64)>,
    /// The next unit's pts continues the timeline instead of following the RTP timestamp
    /// (a new SSRC starts its timestamps anywhere).
    rebase: bool,
    /// Something was lost or dropped since the last unit.
    lost: bool,
    pictures: Vec<Picture>,
}

/// Step assumed between two pictures when a new SSRC breaks the timeline: 25 fps.
const DEFAULT_STEP: i64 = 3600;

impl Stream {
    /// `window`: the reorder window in packets (0 over TCP).
    pub fn new(codec: Codec, payload_type: u8, sdp_params: Option<Params>, window: usize) -> Stream {
        let (vps, sps, pps) = match sdp_params {
            Some(p) => (p.vps, Some(p.sps), Some(p.pps)),
            None => (None, None, None),
        };
        Stream {
            codec,
            payload_type,
            ssrc: None,
            reorder: Reorder::new(window),
            depay: Depayloader::new(codec),
            vps,
            sps,
            pps,
            emitted: None,
            started: false,
            timeline: None,
            rebase: false,
            lost: false,
            pictures: Vec::new(),
        }
    }

    /// Takes one RTP packet as received. Returns whether it was a packet of this video track
    /// (what the no-video timeout watches).
    pub fn push(&mut self, data: Bytes, arrived: Instant, wall_ms: i64, out: &mut dyn FnMut(Event)) -> bool {
        let Ok(packet) = Packet::parse(data) else { return false };
        if packet.payload_type != self.payload_type {
            return false;
        }
        if self.ssrc.is_some_and(|s| s != packet.ssrc) {
            // The camera restarted its stream: start over at its next keyframe.
            self.reorder.reset();
            self.depay.reset();
            self.started = false;
            self.rebase = true;
        }
        self.ssrc = Some(packet.ssrc);
        let mut pictures = std::mem::take(&mut self.pictures);
        let depay = &mut self.depay;
        self.reorder.push(packet, &mut |p, lost| depay.push(&p, lost, &mut |picture| pictures.push(picture)));
        for picture in pictures.drain(..) {
            self.picture(picture, arrived, wall_ms, out);
        }
        self.pictures = pictures;
        true
    }

    fn picture(&mut self, picture: Picture, arrived: Instant, wall_ms: i64, out: &mut dyn FnMut(Event)) {
        // Before the first unit nothing is lost yet: there is no picture it could follow.
        self.lost = (self.lost || picture.after_loss) && self.timeline.is_some();
        // Dropped from here on, the picture is a loss to whoever has the units before it.
        let dropped = self.timeline.is_some();
        let mut keyframe = false;
        for nal in nal_units(&picture.data) {
            let kind = match self.codec {
                Codec::H264 => nal.first().map(|b| b & 0x1f),
                Codec::H265 => nal.first().map(|b| (b >> 1) & 0x3f),
            };
            let slot = match (self.codec, kind) {
                (Codec::H264, Some(5)) | (Codec::H265, Some(16..=21)) => {
                    keyframe = true;
                    continue;
                }
                (Codec::H264, Some(7)) | (Codec::H265, Some(33)) => &mut self.sps,
                (Codec::H264, Some(8)) | (Codec::H265, Some(34)) => &mut self.pps,
                (Codec::H265, Some(32)) => &mut self.vps,
                _ => continue,
            };
            if slot.as_deref() != Some(nal) {
                *slot = Some(Bytes::copy_from_slice(nal));
            }
        }
        if !self.started && !keyframe {
            self.lost |= dropped;
            return; // a decoder could not start here
        }
        let params = match (&self.sps, &self.pps, self.codec, &self.vps) {
            (Some(sps), Some(pps), Codec::H264, _) => {
                Params { codec: Codec::H264, vps: None, sps: sps.clone(), pps: pps.clone() }
            }
            (Some(sps), Some(pps), Codec::H265, Some(vps)) => {
                Params { codec: Codec::H265, vps: Some(vps.clone()), sps: sps.clone(), pps: pps.clone() }
            }
            _ => {
                self.lost |= dropped;
                return; // not decodable yet: no parameter sets seen
            }
        };
        // Parameter sets are compared at keyframes only: that is where a new set takes effect,
        // and a camera that alternates two PPS ids would otherwise flood the consumers.
        if self.emitted.is_none() || (keyframe && self.emitted.as_ref() != Some(&params)) {
            out(Event::Params(params.clone()));
            self.emitted = Some(params);
        }
        let pts = match self.timeline {
            None => 0,
            Some((_, last, step)) if self.rebase => last + step,
            Some((ts, last, _)) => last + i64::from(picture.timestamp.wrapping_sub(ts) as i32),
        };
        let step = match self.timeline {
            Some((_, last, _)) if pts > last => pts - last,
            Some((_, _, step)) => step,
            None => DEFAULT_STEP,
        };
        self.timeline = Some((picture.timestamp, pts, step));
        let after_loss = std::mem::take(&mut self.lost);
        self.started = true;
        self.rebase = false;
        out(Event::Unit(AccessUnit { data: Bytes::from(picture.data), keyframe, pts, after_loss, wall_ms, arrived }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtsp::tests::{packetise, sample};

    fn rtp(p: &Packet) -> Bytes {
        let mut raw = vec![0x80, p.payload_type | if p.marker { 0x80 } else { 0 }];
        raw.extend_from_slice(&p.sequence.to_be_bytes());
        raw.extend_from_slice(&p.timestamp.to_be_bytes());
        raw.extend_from_slice(&p.ssrc.to_be_bytes());
        raw.extend_from_slice(&p.payload);
        raw.into()
    }

    fn events(stream: &mut Stream, packets: &[Packet]) -> Vec<Event> {
        let mut got = Vec::new();
        for p in packets {
            stream.push(rtp(p), Instant::now(), 0, &mut |e| got.push(e));
        }
        got
    }

    fn summary(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                Event::Params(p) => format!("params {:02x?}", &p.sps[..]),
                Event::Unit(u) => format!("unit pts={} key={} loss={}", u.pts, u.keyframe, u.after_loss),
            })
            .collect()
    }

    const SPS: &[u8] = &[0x67, 1];
    const SPS2: &[u8] = &[0x67, 2];
    const PPS: &[u8] = &[0x68, 1];
    const IDR: &[u8] = &[0x65, 0x88, 1];
    const P: &[u8] = &[0x41, 0x9a, 1];

    #[test]
    fn waits_for_parameter_sets_and_a_keyframe() {
        let pictures = vec![
            vec![P.to_vec()],
            vec![IDR.to_vec()], // no parameter sets yet: dropped
            vec![SPS.to_vec(), PPS.to_vec(), IDR.to_vec()],
            vec![P.to_vec()],
            vec![SPS2.to_vec(), PPS.to_vec(), IDR.to_vec()],
        ];
        let mut s = Stream::new(Codec::H264, 96, None, 0);
        let got = events(&mut s, &packetise(Codec::H264, &pictures, &[0]));
        assert_eq!(
            summary(&got),
            [
                "params [67, 01]",
                "unit pts=0 key=true loss=false",
                "unit pts=3000 key=false loss=false",
                "params [67, 02]",
                "unit pts=6000 key=true loss=false"
            ]
        );
        let Event::Unit(u) = &got[1] else { panic!() };
        assert_eq!(&u.data[..], &sample(&pictures[2])[..]);
    }

    #[test]
    fn sdp_parameter_sets_allow_the_first_keyframe_and_pts_survives_the_wrap() {
        let params =
            Params { codec: Codec::H264, vps: None, sps: Bytes::from_static(SPS), pps: Bytes::from_static(PPS) };
        let mut s = Stream::new(Codec::H264, 96, Some(params), 0);
        let mut packets = packetise(Codec::H264, &[vec![IDR.to_vec()], vec![P.to_vec()], vec![P.to_vec()]], &[0]);
        for p in &mut packets {
            p.timestamp = p.timestamp.wrapping_add(u32::MAX - 3000);
        }
        // Another payload type (audio, say) is ignored.
        let mut audio = packets[1].clone();
        audio.payload_type = 0;
        packets.insert(1, audio);
        let got = events(&mut s, &packets);
        assert_eq!(
            summary(&got),
            [
                "params [67, 01]",
                "unit pts=0 key=true loss=false",
                "unit pts=3000 key=false loss=false",
                "unit pts=6000 key=false loss=false"
            ]
        );
    }

    #[test]
    fn h265_takes_in_band_parameter_sets_and_starts_at_an_irap() {
        let nal = |t: u8, b: u8| vec![t << 1, 1, b];
        let (vps, sps, pps) = (nal(32, 1), nal(33, 1), nal(34, 1));
        let pictures = vec![
            vec![nal(1, 0)],                                         // TRAIL_R before any IRAP
            vec![vps.clone(), sps.clone(), pps.clone(), nal(19, 0)], // IDR_W_RADL
            vec![nal(1, 1)],
            vec![vps, nal(33, 2), pps, nal(21, 0)], // CRA with a new SPS
        ];
        let mut s = Stream::new(Codec::H265, 96, None, 0);
        let got = events(&mut s, &packetise(Codec::H265, &pictures, &[0, 2, 5]));
        assert_eq!(
            summary(&got),
            [
                "params [42, 01, 01]",
                "unit pts=0 key=true loss=false",
                "unit pts=3000 key=false loss=false",
                "params [42, 01, 02]",
                "unit pts=6000 key=true loss=false"
            ]
        );
        let Event::Params(p) = &got[0] else { panic!() };
        assert_eq!(p.vps.as_deref(), Some(&[64, 1, 1][..]));
    }

    #[test]
    fn a_new_ssrc_restarts_at_a_keyframe_and_keeps_pts_rising() {
        let pictures = vec![vec![SPS.to_vec(), PPS.to_vec(), IDR.to_vec()], vec![P.to_vec()]];
        let mut packets = packetise(Codec::H264, &pictures, &[0]);
        let mut restarted = packetise(Codec::H264, &[vec![P.to_vec()], vec![IDR.to_vec()]], &[0]);
        for p in &mut restarted {
            p.ssrc = 99;
            p.timestamp += 1_000_000;
            p.sequence += 5000;
        }
        packets.extend(restarted);
        let mut s = Stream::new(Codec::H264, 96, None, 8);
        assert_eq!(
            summary(&events(&mut s, &packets)),
            [
                "params [67, 01]",
                "unit pts=0 key=true loss=false",
                "unit pts=3000 key=false loss=false",
                "unit pts=6000 key=true loss=true"
            ]
        );
    }

    proptest::proptest! {
        /// Whatever a camera (or anyone who can reach the UDP port) sends: no panic, and
        /// nothing leaves before parameter sets, nor a first unit that is not a keyframe.
        #[test]
        fn hostile_packets_never_panic_and_keep_the_order_of_events(
            packets in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64), 0..80),
            h265 in proptest::prelude::any::<bool>(),
            window in 0usize..9,
        ) {
            let codec = if h265 { Codec::H265 } else { Codec::H264 };
            let mut stream = Stream::new(codec, 96, None, window);
            let mut events = Vec::new();
            let t0 = Instant::now();
            for (i, mut p) in packets.into_iter().enumerate() {
                // Half of them look like RTP of the right payload type, so they get past the header.
                if i % 2 == 0 && p.len() >= 2 {
                    p[0] = 0x80;
                    p[1] = (p[1] & 0x80) | 96;
                }
                stream.push(Bytes::from(p), t0, 0, &mut |e| events.push(e));
            }
            let first_unit = events.iter().position(|e| matches!(e, Event::Unit(_)));
            if let Some(i) = first_unit {
                proptest::prop_assert!(events[..i].iter().any(|e| matches!(e, Event::Params(_))));
                proptest::prop_assert!(matches!(&events[i], Event::Unit(u) if u.keyframe));
            }
        }
    }
}
