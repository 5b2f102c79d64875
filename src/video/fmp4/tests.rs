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
