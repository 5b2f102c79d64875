use proptest::prelude::*;

use super::*;

/// A structurally valid JPEG: SOI, APP1 with `app` payload, DQT, SOS header, entropy data
/// (0xFF stuffed, a restart marker in the middle), EOI.
fn jpeg(app: &[u8], entropy: &[u8]) -> Vec<u8> {
    let mut v = vec![0xFF, 0xD8];
    v.extend_from_slice(&[0xFF, 0xE1]);
    v.extend_from_slice(&((app.len() + 2) as u16).to_be_bytes());
    v.extend_from_slice(app);
    v.extend_from_slice(&[0xFF, 0xDB, 0x00, 0x43]);
    v.extend_from_slice(&[7u8; 65]);
    v.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x08, 1, 1, 0, 0, 63, 0]);
    for (i, &b) in entropy.iter().enumerate() {
        v.push(b);
        if b == 0xFF {
            v.push(0x00);
        }
        if i == entropy.len() / 2 {
            v.extend_from_slice(&[0xFF, 0xD3]);
        }
    }
    v.extend_from_slice(&[0xFF, 0xD9]);
    v
}

fn split_all(input: &[u8], chunks: &[usize], max: usize) -> (Vec<Bytes>, MjpegSplitter) {
    let mut s = MjpegSplitter::new(max);
    let mut out = Vec::new();
    let mut rest = input;
    let mut i = 0;
    while !rest.is_empty() {
        let n = chunks.get(i).copied().unwrap_or(rest.len()).clamp(1, rest.len());
        i += 1;
        s.push(&rest[..n]);
        rest = &rest[n..];
        while let Some(f) = s.next_frame() {
            out.push(f);
        }
    }
    (out, s)
}

#[test]
fn many_frames_in_one_read() {
    let a = jpeg(b"Exif", &[1, 2, 0xFF, 3]);
    let b = jpeg(b"", &[9; 100]);
    let input = [a.clone(), b.clone(), a.clone()].concat();
    let (frames, s) = split_all(&input, &[], 1 << 20);
    assert_eq!(frames, vec![a.clone(), b, a]);
    assert_eq!(s.drops(), SplitterDrops::default());
}

#[test]
fn byte_by_byte() {
    let a = jpeg(b"x", &[0xFF, 0xFF, 0xD9, 0x00]);
    let input = [a.clone(), a.clone()].concat();
    let (frames, _) = split_all(&input, &vec![1; input.len()], 1 << 20);
    assert_eq!(frames, vec![a.clone(), a]);
}

#[test]
fn embedded_thumbnail_does_not_end_the_frame() {
    let thumb = jpeg(b"", &[5, 6, 7]);
    let mut app = b"Exif\0\0".to_vec();
    app.extend_from_slice(&thumb);
    let outer = jpeg(&app, &[1, 2, 3]);
    let (frames, _) = split_all(&outer, &[], 1 << 20);
    assert_eq!(frames, vec![outer]);
}

#[test]
fn garbage_between_frames_is_skipped_and_counted() {
    let a = jpeg(b"", &[1]);
    let input = [
        b"--boundary\r\nContent-Type: image/jpeg\r\n\r\n".to_vec(),
        a.clone(),
        b"\r\n\xFF\x00junk".to_vec(),
        a.clone(),
    ]
    .concat();
    let (frames, s) = split_all(&input, &[7, 13, 1, 1, 50], 1 << 20);
    assert_eq!(frames, vec![a.clone(), a]);
    assert!(s.drops().garbage_bytes > 40);
}

#[test]
fn oversize_frames_are_dropped_and_the_next_one_arrives() {
    let big = jpeg(b"", &[3; 5000]);
    let small = jpeg(b"", &[4; 10]);
    let input = [big, small.clone()].concat();
    let (frames, s) = split_all(&input, &[64; 200], 1000);
    assert_eq!(frames, vec![small]);
    assert_eq!(s.drops().oversize_frames, 1);
    assert!(s.buffered() < 2000, "splitter kept {} bytes", s.buffered());
}

#[test]
fn truncated_frame_is_abandoned_at_the_next_soi() {
    let a = jpeg(b"", &[1, 2, 3, 4, 5, 6]);
    let cut = &a[..a.len() - 5];
    let input = [cut.to_vec(), a.clone()].concat();
    let (frames, s) = split_all(&input, &[], 1 << 20);
    assert_eq!(frames, vec![a]);
    assert_eq!(s.drops().corrupt_frames, 1);
}

#[test]
fn standalone_eoi_after_soi_is_a_tiny_frame() {
    // Degenerate but structurally complete; callers see a 4-byte "JPEG" rather than a hang.
    let (frames, _) = split_all(&[0xFF, 0xD8, 0xFF, 0xD9], &[], 100);
    assert_eq!(frames.len(), 1);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any sequence of valid frames, with 0xFF-free garbage between them and any read
    /// boundaries, comes out exactly.
    #[test]
    fn valid_streams_split_exactly(
        frames in prop::collection::vec((prop::collection::vec(any::<u8>(), 0..64), prop::collection::vec(any::<u8>(), 1..300)), 1..6),
        garbage in prop::collection::vec(prop::collection::vec(0u8..0xFF, 0..20), 6),
        chunks in prop::collection::vec(1usize..97, 0..64),
    ) {
        let expected: Vec<Vec<u8>> = frames.iter().map(|(app, ent)| jpeg(app, ent)).collect();
        let mut input = Vec::new();
        for (i, f) in expected.iter().enumerate() {
            input.extend_from_slice(&garbage[i]);
            input.extend_from_slice(f);
        }
        let (got, _) = split_all(&input, &chunks, 1 << 20);
        prop_assert_eq!(got.iter().map(|b| b.to_vec()).collect::<Vec<_>>(), expected);
    }

    /// Arbitrary bytes never panic, and whatever comes out is SOI..EOI within the size limit.
    #[test]
    fn arbitrary_input_is_safe(
        input in prop::collection::vec(prop_oneof![Just(0xFFu8), Just(0xD8), Just(0xD9), Just(0xDA), Just(0x00), any::<u8>()], 0..2000),
        chunks in prop::collection::vec(1usize..200, 0..40),
        max in 4usize..600,
    ) {
        let (got, s) = split_all(&input, &chunks, max);
        for f in &got {
            prop_assert!(f.len() <= max);
            prop_assert_eq!(&f[..2], &[0xFF, 0xD8]);
            prop_assert_eq!(&f[f.len() - 2..], &[0xFF, 0xD9]);
        }
        prop_assert!(s.buffered() <= input.len());
    }
}

/// A camera stream as it arrives: valid frames, truncated ones, oversize ones, garbage and
/// stray markers, in any order.
fn hostile_stream() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        (prop::collection::vec(any::<u8>(), 0..40), prop::collection::vec(any::<u8>(), 1..200))
            .prop_map(|(app, ent)| jpeg(&app, &ent)),
        (prop::collection::vec(any::<u8>(), 1..200), 1usize..120).prop_map(|(ent, cut)| {
            let mut f = jpeg(b"", &ent);
            f.truncate(cut.min(f.len() - 1));
            f
        }),
        prop::collection::vec(prop_oneof![Just(0xFFu8), Just(0xD8), Just(0xD9), Just(0xDA), any::<u8>()], 0..60),
        Just(vec![0xFF, 0xD8]),
        Just(vec![0xFF, 0xD9]),
    ];
    prop::collection::vec(piece, 0..10).prop_map(|pieces| pieces.concat())
}

proptest! {
    // About three seconds in a debug build on a loaded 2-core machine.
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// How the bytes are cut into reads (a pipe, a socket) never changes what comes out: the
    /// same frames and the same counts of what was thrown away.
    #[test]
    fn read_boundaries_never_change_the_result(
        input in hostile_stream(),
        a in prop::collection::vec(1usize..64, 0..80),
        b in prop::collection::vec(1usize..7, 0..400),
        max in prop_oneof![Just(1usize << 20), 4usize..400],
    ) {
        let (whole, s_whole) = split_all(&input, &[], max);
        let (cut_a, s_a) = split_all(&input, &a, max);
        let (cut_b, s_b) = split_all(&input, &b, max);
        prop_assert_eq!(&cut_a, &whole);
        prop_assert_eq!(&cut_b, &whole);
        prop_assert_eq!(s_a.drops(), s_whole.drops());
        prop_assert_eq!(s_b.drops(), s_whole.drops());
    }
}
