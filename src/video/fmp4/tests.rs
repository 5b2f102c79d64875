use proptest::prelude::*;

use super::*;

fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    v.extend_from_slice(kind);
    v.extend_from_slice(body);
    v
}

fn tfdt(version: u8, time: u64) -> Vec<u8> {
    let mut body = vec![version, 0, 0, 0];
    if version == 1 {
        body.extend_from_slice(&time.to_be_bytes());
    } else {
        body.extend_from_slice(&(time as u32).to_be_bytes());
    }
    bx(b"tfdt", &body)
}

fn moof(version: u8, time: u64) -> Vec<u8> {
    let traf = bx(b"traf", &[bx(b"tfhd", &[0; 8]), tfdt(version, time), bx(b"trun", &[0; 12])].concat());
    bx(b"moof", &[bx(b"mfhd", &[0; 8]), traf].concat())
}

fn segment(version: u8, times: &[u64]) -> Vec<u8> {
    let mut v = [bx(b"styp", b"msdh\0\0\0\0"), bx(b"sidx", &[0; 24])].concat();
    for &t in times {
        v.extend(moof(version, t));
        v.extend(bx(b"mdat", &[7; 100]));
    }
    v
}

fn tfdt_times(file: &[u8]) -> Vec<u64> {
    let mut out = Vec::new();
    for b in top_level(file).unwrap().into_iter().filter(|b| &b.kind == b"moof") {
        let mut copy = file[b.start..b.end].to_vec();
        out.push(rewrite_tfdt(&mut copy, None).unwrap());
    }
    out
}

#[test]
fn fragments_of_consecutive_segments_start_at_zero() {
    for version in [0u8, 1] {
        let mut out = bx(b"ftyp", b"iso5");
        let mut base = None;
        append_fragments(&segment(version, &[90_000, 135_000]), &mut base, &mut out).unwrap();
        append_fragments(&segment(version, &[180_000]), &mut base, &mut out).unwrap();
        assert_eq!(base, Some(90_000));
        assert_eq!(tfdt_times(&out), vec![0, 45_000, 90_000], "version {version}");
        let kinds: Vec<[u8; 4]> = top_level(&out).unwrap().iter().map(|b| b.kind).collect();
        assert_eq!(
            kinds,
            vec![*b"ftyp", *b"moof", *b"mdat", *b"moof", *b"mdat", *b"moof", *b"mdat"],
            "styp/sidx dropped"
        );
    }
}

#[test]
fn a_segment_without_fragments_is_refused() {
    let mut base = None;
    let err = append_fragments(&bx(b"styp", b"msdh"), &mut base, &mut Vec::new()).unwrap_err();
    assert!(matches!(err, BoxError::Invalid { .. }));
}

#[test]
fn half_written_files_are_cut_back_to_the_last_whole_fragment() {
    let init = [bx(b"ftyp", b"iso5"), bx(b"moov", &[0; 40])].concat();
    let one = [moof(1, 0), bx(b"mdat", &[1; 50])].concat();
    let file = [init.clone(), one.clone(), one.clone()].concat();
    assert_eq!(repairable_length(&file), file.len());
    // Cut inside the second mdat, inside its moof, inside a box header.
    for cut in [file.len() - 10, init.len() + one.len() + 20, init.len() + one.len() + 3] {
        assert_eq!(repairable_length(&file[..cut]), init.len() + one.len(), "cut at {cut}");
    }
    // Only the init segment survived: still a valid (empty) file.
    assert_eq!(repairable_length(&file[..init.len() + 5]), init.len());
    assert_eq!(repairable_length(b"garbage!"), 0);
}

#[test]
fn large_size_boxes_are_understood() {
    let mut big = 1u32.to_be_bytes().to_vec();
    big.extend_from_slice(b"mdat");
    big.extend_from_slice(&(16u64 + 4).to_be_bytes());
    big.extend_from_slice(&[9; 4]);
    let boxes = top_level(&big).unwrap();
    assert_eq!(boxes, vec![BoxRange { kind: *b"mdat", start: 0, end: 20 }]);
}

#[test]
fn a_64_bit_size_that_overflows_is_a_truncated_box() {
    let mut b = vec![0, 0, 0, 1, b'm', b'd', b'a', b't'];
    b.extend_from_slice(&u64::MAX.to_be_bytes());
    b.extend_from_slice(&[0; 8]);
    assert_eq!(top_level(&b), Err(BoxError::Truncated { complete: 0 }));
    assert_eq!(repairable_length(&b), 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn boxes_with_hostile_sizes_never_panic(
        sizes in prop::collection::vec(prop_oneof![any::<u32>(), 0u32..64, Just(1u32)], 1..6),
        large in any::<u64>(),
        kinds in prop::collection::vec(prop_oneof![Just(*b"moof"), Just(*b"traf"), Just(*b"tfdt"), Just(*b"mdat"), any::<[u8; 4]>()], 6),
        tail in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut data = Vec::new();
        for (size, kind) in sizes.iter().zip(&kinds) {
            data.extend_from_slice(&size.to_be_bytes());
            data.extend_from_slice(kind);
            if *size == 1 {
                data.extend_from_slice(&large.to_be_bytes());
            }
        }
        data.extend_from_slice(&tail);
        let _ = top_level(&data);
        prop_assert!(repairable_length(&data) <= data.len());
        let mut base = None;
        let _ = append_fragments(&data, &mut base, &mut Vec::new());
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = top_level(&data);
        let n = repairable_length(&data);
        prop_assert!(n <= data.len());
        let mut base = None;
        let _ = append_fragments(&data, &mut base, &mut Vec::new());
    }
}

/// A box of any kind and size field around any body: what a broken or hostile file holds.
fn hostile_box(kinds: &'static [[u8; 4]]) -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![Just(None), any::<u32>().prop_map(Some), (0u32..40).prop_map(Some)],
        prop_oneof![prop::sample::select(kinds), any::<[u8; 4]>()],
        prop::collection::vec(any::<u8>(), 0..48),
    )
        .prop_map(|(size, kind, body)| match size {
            // `None`: the size is right, so the parser looks inside.
            None => bx(&kind, &body),
            Some(size) => [size.to_be_bytes().as_slice(), &kind, &body].concat(),
        })
}

const FRAGMENT_KINDS: &[[u8; 4]] = &[*b"traf", *b"tfdt", *b"tfhd", *b"trun", *b"mfhd"];

proptest! {
    // Each well under a second in a debug build.
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// Well-formed moofs with hostile insides: a `traf` whose children lie about their sizes,
    /// a `tfdt` too short for its version, boxes nested where none belong.
    #[test]
    fn hostile_boxes_inside_a_moof_never_panic(
        trafs in prop::collection::vec(prop::collection::vec(hostile_box(FRAGMENT_KINDS), 0..5), 0..3),
        loose in prop::collection::vec(hostile_box(FRAGMENT_KINDS), 0..3),
        version in prop_oneof![Just(0u8), Just(1u8), any::<u8>()],
        time in any::<u64>(),
    ) {
        let mut children: Vec<u8> = loose.concat();
        for inner in &trafs {
            children.extend(bx(b"traf", &[tfdt(version, time), inner.concat()].concat()));
        }
        let segment = [bx(b"moof", &children), bx(b"mdat", &[1; 16])].concat();
        let mut out = Vec::new();
        let mut base = None;
        if append_fragments(&segment, &mut base, &mut out).is_ok() {
            // What was accepted still parses as whole boxes.
            prop_assert!(top_level(&out).is_ok());
        }
        let mut moof = bx(b"moof", &children);
        let _ = rewrite_tfdt(&mut moof, Some(time / 2));
        prop_assert!(repairable_length(&segment) <= segment.len());
    }

    /// Any segments of fragments with increasing decode times become one file starting at
    /// time 0 with every fragment kept, in both `tfdt` versions.
    #[test]
    fn well_formed_segments_are_joined_starting_at_zero(
        version in 0u8..2,
        first in 0u64..u64::from(u32::MAX / 2),
        steps in prop::collection::vec(prop::collection::vec(1u64..100_000, 1..4), 1..4),
    ) {
        let mut t = first;
        let mut times = Vec::new();
        let mut out = bx(b"ftyp", b"iso5");
        let mut base = None;
        for seg_steps in &steps {
            let seg_times: Vec<u64> = seg_steps.iter().map(|s| { let now = t; t += s; now }).collect();
            times.extend(&seg_times);
            append_fragments(&segment(version, &seg_times), &mut base, &mut out).unwrap();
        }
        prop_assert_eq!(base, Some(first));
        let expected: Vec<u64> = times.iter().map(|x| x - first).collect();
        prop_assert_eq!(tfdt_times(&out), expected);
    }

    /// A file cut anywhere (a power cut while writing) is repaired to a prefix of whole
    /// boxes that ends after a complete fragment or the init segment.
    #[test]
    fn a_file_cut_anywhere_is_repaired_to_whole_boxes(
        fragments in 0usize..4,
        cut_at in any::<prop::sample::Index>(),
    ) {
        let init = [bx(b"ftyp", b"iso5"), bx(b"moov", &[0; 40])].concat();
        let mut file = init.clone();
        for i in 0..fragments {
            file.extend(moof(1, i as u64 * 1000));
            file.extend(bx(b"mdat", &[2; 30]));
        }
        let cut = cut_at.index(file.len() + 1);
        let n = repairable_length(&file[..cut]);
        prop_assert!(n <= cut);
        prop_assert!(n == 0 || n >= init.len());
        let kept = top_level(&file[..n]).unwrap();
        prop_assert!(kept.last().is_none_or(|b| &b.kind == b"mdat" || &b.kind == b"moov"));
    }
}
