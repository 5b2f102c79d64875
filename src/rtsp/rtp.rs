//! RTP packets (RFC 3550): the fixed header parsed, and over UDP a small reorder window that
//! hands packets on in sequence order and says where some went missing.

use bytes::Bytes;

/// One RTP packet; `payload` is what follows the header, CSRCs, extension and padding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    pub payload_type: u8,
    pub marker: bool,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: Bytes,
}

impl Packet {
    pub fn parse(data: Bytes) -> Result<Packet, &'static str> {
        let Some((&[b0, b1, s0, s1, t0, t1, t2, t3, i0, i1, i2, i3], rest)) = data.split_first_chunk::<12>() else {
            return Err("shorter than an RTP header");
        };
        if b0 >> 6 != 2 {
            return Err("not RTP version 2");
        }
        let csrcs = usize::from(b0 & 0x0f) * 4;
        let mut start = 12 + csrcs;
        let mut rest = rest.get(csrcs..).ok_or("truncated in its CSRC list")?;
        if b0 & 0x10 != 0 {
            let (&[_, _, l0, l1], after) = rest.split_first_chunk::<4>().ok_or("truncated in its extension")?;
            let ext = usize::from(u16::from_be_bytes([l0, l1])) * 4;
            rest = after.get(ext..).ok_or("truncated in its extension")?;
            start += 4 + ext;
        }
        let mut end = start + rest.len();
        if b0 & 0x20 != 0 {
            let pad = usize::from(*rest.last().ok_or("padding without payload")?);
            if pad == 0 || pad > rest.len() {
                return Err("padding longer than the payload");
            }
            end -= pad;
        }
        Ok(Packet {
            payload_type: b1 & 0x7f,
            marker: b1 & 0x80 != 0,
            sequence: u16::from_be_bytes([s0, s1]),
            timestamp: u32::from_be_bytes([t0, t1, t2, t3]),
            ssrc: u32::from_be_bytes([i0, i1, i2, i3]),
            payload: data.slice(start..end),
        })
    }
}

/// Puts packets back in sequence order. A gap is waited for while fewer than `window`
/// packets are held and at most one of them ends a picture (the marker bit): a reordered
/// packet on a LAN is at most a few packets late, and holding more than one complete picture
/// back would cost more latency than the lost packet is worth. With `window` 0 (TCP, which
/// never reorders) a gap is a loss at once. The session's first packet sets where the
/// sequence starts: a packet that overtakes it is dropped as late.
pub struct Reorder {
    window: usize,
    next: Option<u16>,
    /// Held packets, sorted by distance from `next`.
    held: Vec<Packet>,
}

/// Jumps this far back are a restarted sender, not a late packet.
const RESYNC: i16 = -256;

impl Reorder {
    pub fn new(window: usize) -> Reorder {
        Reorder { window, next: None, held: Vec::with_capacity(window + 1) }
    }

    pub fn reset(&mut self) {
        self.next = None;
        self.held.clear();
    }

    /// Takes one packet; `out` gets each packet that is now in order, with `true` when
    /// packets before it were lost.
    pub fn push(&mut self, packet: Packet, out: &mut dyn FnMut(Packet, bool)) {
        let next = *self.next.get_or_insert(packet.sequence);
        let distance = packet.sequence.wrapping_sub(next) as i16;
        if distance < RESYNC {
            self.flush(out);
            self.next = Some(packet.sequence.wrapping_add(1));
            return out(packet, true);
        }
        if distance < 0 || self.held.iter().any(|p| p.sequence == packet.sequence) {
            return; // late or duplicate
        }
        let at = self.held.partition_point(|p| p.sequence.wrapping_sub(next) < distance as u16);
        self.held.insert(at, packet);
        self.drain(false, out);
        while !self.held.is_empty()
            && (self.held.len() > self.window || self.held.iter().filter(|p| p.marker).count() > 1)
        {
            self.drain(true, out);
        }
    }

    /// Hands on the in-order run at the front; with `skip_gap` the gap before it is given up.
    fn drain(&mut self, skip_gap: bool, out: &mut dyn FnMut(Packet, bool)) {
        let mut lost = false;
        if skip_gap && let Some(first) = self.held.first() {
            lost = true;
            self.next = Some(first.sequence);
        }
        while let Some(next) = self.next
            && self.held.first().is_some_and(|p| p.sequence == next)
        {
            let p = self.held.remove(0);
            self.next = Some(next.wrapping_add(1));
            out(p, std::mem::take(&mut lost));
        }
    }

    /// Hands on everything held, gaps and all.
    fn flush(&mut self, out: &mut dyn FnMut(Packet, bool)) {
        while !self.held.is_empty() {
            self.drain(true, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub fn packet(seq: u16, marker: bool) -> Packet {
        Packet { payload_type: 96, marker, sequence: seq, timestamp: 0, ssrc: 1, payload: Bytes::new() }
    }

    fn run(window: usize, seqs: &[(u16, bool)]) -> Vec<(u16, bool)> {
        let mut r = Reorder::new(window);
        let mut got = Vec::new();
        for &(s, m) in seqs {
            r.push(packet(s, m), &mut |p, lost| got.push((p.sequence, lost)));
        }
        got
    }

    #[test]
    fn parses_headers() {
        // V=2, P, X, CC=1, M, PT 96, seq 0x1234, ts, ssrc, one CSRC, 1-word extension,
        // payload "ab", two bytes of padding.
        let mut raw = vec![0xb1, 0xe0, 0x12, 0x34, 0, 0, 0, 9, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4];
        raw.extend_from_slice(&[0xbe, 0xde, 0, 1, 9, 9, 9, 9, b'a', b'b', 0, 2]);
        let p = Packet::parse(Bytes::from(raw)).unwrap();
        assert_eq!((p.payload_type, p.marker, p.sequence, p.timestamp, p.ssrc), (96, true, 0x1234, 9, 0xdeadbeef));
        assert_eq!(&p.payload[..], b"ab");
        assert!(Packet::parse(Bytes::from_static(&[0x80, 96, 0, 0, 0, 0, 0, 0, 0, 0, 0])).is_err());
        assert!(Packet::parse(Bytes::from_static(&[0x40, 96, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])).is_err());
        assert!(Packet::parse(Bytes::from_static(&[0xa0, 96, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5])).is_err());
        assert!(Packet::parse(Bytes::from_static(&[0x81, 96, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5])).is_err());
    }

    #[test]
    fn reorders_and_reports_gaps() {
        assert_eq!(run(8, &[(1, false), (3, false), (2, false)]), [(1, false), (2, false), (3, false)]);
        // Across the sequence wrap.
        assert_eq!(run(8, &[(65535, false), (1, false), (0, false)]), [(65535, false), (0, false), (1, false)]);
        // Lost 2: given up once a second picture ends behind the gap.
        assert_eq!(run(8, &[(1, true), (3, true), (4, true)]), [(1, false), (3, true), (4, false)]);
        // TCP: at once.
        assert_eq!(run(0, &[(1, false), (3, false), (4, false)]), [(1, false), (3, true), (4, false)]);
        // A full window gives up too; late and duplicate packets are dropped.
        let got = run(2, &[(1, false), (3, false), (4, false), (5, false), (2, false), (5, false)]);
        assert_eq!(got, [(1, false), (3, true), (4, false), (5, false)]);
        // A sender restart far back in sequence space is followed.
        assert_eq!(run(8, &[(1000, false), (10, false), (11, false)]), [(1000, false), (10, true), (11, false)]);
    }

    proptest! {
        #[test]
        fn arbitrary_packets_never_panic(data in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = Packet::parse(Bytes::from(data));
        }

        #[test]
        fn output_is_in_order_without_duplicates(seqs in proptest::collection::vec((0u16..40, any::<bool>()), 0..60)) {
            let got = run(4, &seqs);
            for pair in got.windows(2) {
                prop_assert!((pair[1].0.wrapping_sub(pair[0].0) as i16) > 0, "{:?}", got);
            }
        }
    }
}
