use std::time::Instant;

use bytes::Bytes;

use super::*;
use crate::media::Codec;

/// A 1280x720 High-profile SPS and a PPS as x264 writes them.
fn params(sps_tail: u8) -> Params {
    Params {
        codec: Codec::H264,
        vps: None,
        sps: Bytes::from(vec![
            0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x6a, 0x02, 0x02, 0x02, 0x80, 0x00, 0x00,
            0x03, 0x00, 0x80, 0x00, 0x00, 0x19, 0x07, 0x8c, 0x18, 0xcb, sps_tail,
        ]),
        pps: Bytes::from_static(&[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0]),
    }
}

fn unit(pts: i64, keyframe: bool) -> AccessUnit {
    let nal: &[u8] = if keyframe { &[0x65, 0x88, 0x84] } else { &[0x41, 0x9a, 0x02] };
    let mut data = (nal.len() as u32).to_be_bytes().to_vec();
    data.extend_from_slice(nal);
    AccessUnit { data: Bytes::from(data), keyframe, pts, after_loss: false, wall_ms: 0, arrived: Instant::now() }
}

fn hub_with_gop(frames: usize) -> Hub {
    let hub = Hub::new("cam");
    hub.session_started();
    hub.publish(Event::Params(params(0x00)));
    for i in 0..frames {
        hub.publish(Event::Unit(unit(i as i64 * 3600, i == 0)));
    }
    hub
}

#[test]
fn a_new_consumer_starts_at_the_last_keyframe() {
    let hub = hub_with_gop(5);
    hub.publish(Event::Unit(unit(5 * 3600, true)));
    hub.publish(Event::Unit(unit(6 * 3600, false)));
    let sub = hub.subscribe();
    assert_eq!(sub.gop.len(), 2);
    assert!(sub.gop[0].au.keyframe);
    assert_eq!(sub.gop[1].decode_time, 6 * 3600);
    assert!(sub.track.is_some());
}

#[test]
fn units_before_parameters_or_a_keyframe_are_not_kept() {
    let hub = Hub::new("cam");
    hub.session_started();
    hub.publish(Event::Unit(unit(0, true)));
    assert!(hub.subscribe().gop.is_empty(), "no parameters yet");
    hub.publish(Event::Params(params(0x00)));
    hub.publish(Event::Unit(unit(3600, false)));
    assert!(hub.subscribe().gop.is_empty(), "a GOP starts with a keyframe");
}

#[test]
fn the_timeline_never_goes_back_across_sessions() {
    let hub = hub_with_gop(10);
    let before = hub.subscribe().gop.last().map(|u| u.decode_time).unwrap();
    hub.session_ended();
    hub.session_started();
    hub.publish(Event::Params(params(0x00)));
    hub.publish(Event::Unit(unit(0, true)));
    let after = hub.subscribe().gop[0].decode_time;
    assert_eq!(after, before + 3600, "the new session continues one frame later");
    assert_eq!(hub.subscribe().gop[0].session, 2);
}

#[test]
fn new_parameters_make_a_new_generation_and_the_same_ones_do_not() {
    let hub = hub_with_gop(3);
    let first = hub.track().unwrap().generation;
    hub.publish(Event::Params(params(0x00)));
    assert_eq!(hub.track().unwrap().generation, first);
    hub.publish(Event::Params(params(0x01)));
    assert_eq!(hub.track().unwrap().generation, first + 1);
    assert!(hub.subscribe().gop.is_empty(), "units of the old parameters cannot start a viewer");
}

#[test]
fn a_slow_consumer_learns_it_lagged_and_others_are_not_held_back() {
    let hub = hub_with_gop(1);
    let mut slow = hub.subscribe().units;
    for i in 1..=(RING as i64 + 10) {
        hub.publish(Event::Unit(unit(i * 3600, false)));
    }
    assert!(matches!(slow.try_recv(), Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_))));
}

#[test]
fn fragments_are_built_once_and_shared() {
    let hub = hub_with_gop(2);
    let a = hub.subscribe().gop[1].fragment().clone();
    let b = hub.subscribe().gop[1].fragment().clone();
    assert_eq!(a.as_ptr(), b.as_ptr());
}

#[test]
fn the_recording_feed_gets_every_unit_in_order() {
    let hub = hub_with_gop(0);
    let (tx, rx) = std::sync::mpsc::sync_channel(64);
    hub.record_to(tx);
    for i in 0..20 {
        hub.publish(Event::Unit(unit(i * 3600, i % 10 == 0)));
    }
    hub.stop_recording();
    let batches: Vec<Vec<Arc<Unit>>> = rx.iter().collect();
    // Batches end at a keyframe (the segment before it is complete), the rest comes at the stop.
    let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
    assert_eq!(sizes, [1, 10, 9]);
    assert!(batches[1].last().unwrap().au.keyframe);
    let times: Vec<u64> = batches.iter().flatten().map(|u| u.decode_time).collect();
    assert_eq!(times, (0..20).map(|i| i * 3600).collect::<Vec<_>>());
}

#[test]
fn the_transcoders_input_is_annex_b_with_parameters_first_and_a_delimiter_after_each_picture() {
    use crate::media::transcoder::annex_b;
    let hub = hub_with_gop(2);
    let gop = hub.subscribe().gop;
    let (mut out, mut generation) = (bytes::BytesMut::new(), None);
    annex_b(&gop[0], &mut generation, &mut out);
    let p = params(0x00);
    let mut expected = Vec::new();
    for nal in [&p.sps[..], &p.pps[..], &[0x65, 0x88, 0x84], &[0x09, 0xf0]] {
        expected.extend_from_slice(&[0, 0, 0, 1]);
        expected.extend_from_slice(nal);
    }
    assert_eq!(&out[..], &expected[..]);
    // The next picture: no parameter sets again, just the slice and the delimiter.
    out.clear();
    annex_b(&gop[1], &mut generation, &mut out);
    assert_eq!(&out[..], &[0, 0, 0, 1, 0x41, 0x9a, 0x02, 0, 0, 0, 1, 0x09, 0xf0][..]);
}
