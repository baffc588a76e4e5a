//! Pipelining: a held frame is never lost, reordered or left behind, whatever comes next.

mod common;

use common::*;
use gst::prelude::*;

fn astronaut_at(pts_ms: u64) -> (gst::Caps, gst::Buffer) {
    let (caps, mut buf) = decode(&data("astronaut.png"), "video/x-raw,format=I420");
    let mut caps = caps;
    caps.make_mut().set("framerate", gst::Fraction::new(25, 1));
    let b = buf.make_mut();
    b.set_pts(gst::ClockTime::from_mseconds(pts_ms));
    b.set_duration(gst::ClockTime::from_mseconds(40));
    (caps, buf)
}

fn harness(pipelining: &str) -> gst_check::Harness {
    init();
    let mut h = gst_check::Harness::new("faceemotion");
    h.element().unwrap().set_property_from_str("pipelining", pipelining);
    h.set_src_caps(astronaut_at(0).0);
    h
}

fn pts_ms(b: &gst::Buffer) -> u64 {
    b.pts().unwrap().mseconds()
}

#[test]
fn a_held_frame_leaves_with_the_next_one_and_at_eos() {
    let mut h = harness("on");
    h.push(astronaut_at(0).1).unwrap();
    assert!(h.try_pull().is_none(), "the first frame is held");
    h.push(astronaut_at(40).1).unwrap();
    let first = h.pull().unwrap();
    assert_eq!(pts_ms(&first), 0);
    assert!(h.try_pull().is_none(), "the second frame is held");
    assert!(h.push_event(gst::event::Eos::new()));
    let second = h.pull().unwrap();
    assert_eq!(pts_ms(&second), 40);
    // Both analysed: the astronaut, happy, with the same id.
    for b in [&first, &second] {
        let faces = roi_faces(b);
        assert_eq!(faces.len(), 1, "{faces:?}");
        assert_eq!(faces[0].emotion(), "happy");
    }
    assert_eq!(roi_faces(&first)[0].id, roi_faces(&second)[0].id);
    // EOS comes after the held frame, not before it.
    let mut saw_eos = false;
    while let Some(ev) = h.try_pull_event() {
        saw_eos |= ev.type_() == gst::EventType::Eos;
    }
    assert!(saw_eos);
}

#[test]
fn off_and_live_auto_hold_nothing() {
    // The harness's source answers the latency query as live: auto must not hold frames.
    for mode in ["off", "auto"] {
        let mut h = harness(mode);
        for t in [0, 40, 80] {
            h.push(astronaut_at(t).1).unwrap();
            let out = h.try_pull().unwrap_or_else(|| panic!("{mode}: frame {t} ms held"));
            assert_eq!(pts_ms(&out), t);
            assert_eq!(roi_faces(&out).len(), 1);
        }
    }
}

#[test]
fn a_flush_drops_the_held_frame_and_later_frames_are_right() {
    let mut h = harness("on");
    h.push(astronaut_at(0).1).unwrap();
    assert!(h.push_event(gst::event::FlushStart::new()));
    assert!(h.push_event(gst::event::FlushStop::new(true)));
    assert!(h.push_event(gst::event::Segment::new(&gst::FormattedSegment::<gst::ClockTime>::new())));
    // The detector's answer for the dropped frame must not be taken for the next frame's.
    let (_, mut black) = decode(&data("coffee.png"), "video/x-raw,format=I420,width=512,height=512");
    black.make_mut().set_pts(gst::ClockTime::from_mseconds(1000));
    h.push(black).unwrap();
    h.push(astronaut_at(1040).1).unwrap();
    assert!(h.push_event(gst::event::Eos::new()));
    let outs: Vec<gst::Buffer> = std::iter::from_fn(|| h.try_pull()).collect();
    let times: Vec<u64> = outs.iter().map(pts_ms).collect();
    assert_eq!(times, vec![1000, 1040], "the flushed frame must not come out");
    assert_eq!(roi_faces(&outs[0]).len(), 0, "no face on the coffee photo");
    assert_eq!(roi_faces(&outs[1]).len(), 1);
}

#[test]
fn a_caps_change_lets_the_held_frame_go_first() {
    let mut h = harness("on");
    h.push(astronaut_at(0).1).unwrap();
    let (caps, mut rgb) = decode(&data("astronaut.png"), "video/x-raw,format=RGB");
    rgb.make_mut().set_pts(gst::ClockTime::from_mseconds(40));
    h.set_src_caps(caps);
    let held = h.pull().unwrap();
    assert_eq!(pts_ms(&held), 0);
    assert_eq!(roi_faces(&held).len(), 1);
    h.push(rgb).unwrap();
    assert!(h.push_event(gst::event::Eos::new()));
    let last = h.pull().unwrap();
    assert_eq!(pts_ms(&last), 40);
    assert_eq!(roi_faces(&last).len(), 1);
}

#[test]
fn pipelining_on_a_live_source_reports_one_more_frame_of_latency() {
    let mut off = harness("off");
    let mut on = harness("on");
    off.push(astronaut_at(0).1).unwrap();
    on.push(astronaut_at(0).1).unwrap();
    let base = off.query_latency().unwrap_or(gst::ClockTime::ZERO);
    let held = on.query_latency().unwrap_or(gst::ClockTime::ZERO);
    assert_eq!(held, base + gst::ClockTime::from_mseconds(40), "one frame at 25/1");
}

/// Downstream refuses frames: a held frame pushed before EOS that fails is reported (a warning,
/// not a debug line), and no frame that never left is counted.
#[test]
fn a_refused_held_frame_is_reported_and_not_counted() {
    init();
    let (caps, _) = astronaut_at(0);
    let p = gst::parse::launch("appsrc name=src format=time ! faceemotion name=fe pipelining=on ! appsink name=sink")
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let src = p.by_name("src").unwrap().downcast::<gst_app::AppSrc>().unwrap();
    src.set_caps(Some(&caps));
    let sink = p.by_name("sink").unwrap().downcast::<gst_app::AppSink>().unwrap();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(|_| Err(gst::FlowError::Error))
            .build(),
    );
    p.set_state(gst::State::Playing).unwrap();
    src.push_buffer(astronaut_at(0).1).unwrap();
    src.end_of_stream().unwrap();
    let bus = p.bus().unwrap();
    let mut warning = None;
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(30)) {
        match msg.view() {
            gst::MessageView::Warning(w) => {
                warning = Some(w.error().to_string());
                break;
            }
            gst::MessageView::Eos(_) | gst::MessageView::Error(_) => break,
            _ => {}
        }
    }
    let stats = p.by_name("fe").unwrap().property::<gst::Structure>("stats");
    p.set_state(gst::State::Null).unwrap();
    let warning = warning.expect("a warning about the held frame");
    assert!(warning.contains("held frame"), "{warning}");
    assert_eq!(stats.get::<u64>("frames").unwrap(), 0, "{stats}");
}

/// A source with a fixed number of buffers (a v4l2 m2m decoder on a small ARM box) sizes its
/// pool from the allocation query's answer plus the one it is filling. The element holds a
/// frame while the next one is analysed, so it must ask for that one: otherwise the source
/// waits for a buffer that the element gives back only when the next frame comes.
#[test]
fn a_source_with_a_fixed_pool_never_runs_short_for_the_held_frame() {
    let (caps, picture) = astronaut_at(0);
    let info = gst_video::VideoInfo::from_caps(&caps).unwrap();
    let picture = picture.map_readable().unwrap().to_vec();
    assert_eq!(picture.len(), info.size());
    for (mode, held) in [("on", 1), ("off", 0)] {
        let mut h = harness(mode);
        let mut q = gst::query::Allocation::new(Some(&caps), true);
        assert!(
            h.srcpad().unwrap().peer_query(&mut q),
            "{mode}: allocation query not answered"
        );
        let asked = q.allocation_pools().map(|(_, _, min, _)| min).max().unwrap_or(0);
        assert_eq!(asked, held, "{mode}: buffers asked for");
        let pool = gst_video::VideoBufferPool::new();
        let mut config = pool.config();
        config.set_params(Some(&caps), info.size() as u32, asked + 1, asked + 1);
        pool.set_config(config).unwrap();
        pool.set_active(true).unwrap();
        // Without waiting: a source that ran out fails here instead of hanging the test.
        let now = gst::BufferPoolAcquireParams::with_flags(gst::BufferPoolAcquireFlags::DONTWAIT);
        let mut out = Vec::new();
        for i in 0..6u64 {
            let mut b = pool
                .acquire_buffer(Some(&now))
                .unwrap_or_else(|e| panic!("{mode}: frame {i}: the source's pool ran out ({e:?})"));
            {
                let b = b.get_mut().unwrap();
                b.copy_from_slice(0, &picture).unwrap();
                b.set_pts(gst::ClockTime::from_mseconds(40 * i));
                b.set_duration(gst::ClockTime::from_mseconds(40));
            }
            h.push(b).unwrap();
            while let Some(b) = h.try_pull() {
                // What downstream keeps is its own business; here it looks and lets go.
                out.push((pts_ms(&b), roi_faces(&b).len()));
            }
        }
        assert!(h.push_event(gst::event::Eos::new()));
        while let Some(b) = h.try_pull() {
            out.push((pts_ms(&b), roi_faces(&b).len()));
        }
        let want: Vec<_> = (0..6).map(|i| (40 * i, 1)).collect();
        assert_eq!(out, want, "{mode}: every frame out, in order, with its face");
        pool.set_active(false).unwrap();
    }
}
