//! A live source faster than the analysis, or a file played in time by a sink that reports its
//! lateness: frames that arrive while the element is behind are only tracked, so latency stays
//! bounded, and every frame still carries its faces and masks.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use gst::prelude::*;

struct Live {
    /// For each frame leaving the element: how far behind its capture time it is (ns).
    lateness: Vec<u64>,
    /// Frames whose faces were not all reported, or whose face centres were not masked.
    unmasked: Vec<usize>,
    skipped: u64,
    frames: usize,
    /// The element's time per analysed frame (ms): what "a few frames behind" is measured in.
    analysis_ms: f64,
    /// QoS events that went upstream of the element.
    upstream_qos: usize,
}

/// Where the frames come from and go to.
#[derive(Clone, Copy)]
enum Source {
    /// A live source through an unbounded queue, to a sink that does not keep to the clock.
    Live,
    /// The same pictures as a file gives them (not live), to a sink that plays them in time and
    /// reports its lateness upstream (`qos=true`, as video sinks have by default).
    InTime,
    /// Not live, to a sink that takes them as fast as they come (a file analysed).
    AsFast,
}

/// The five-person group photo as a live 1080p source at 60 frames/s (`imagefreeze
/// is-live=true`: a live source that costs nothing per frame, where videotestsrc with the photo
/// laid over it could not make 60 frames/s here itself), through an unbounded queue, as frames of
/// a network camera pile up when nobody takes them in time; the detector runs on the frame and 8
/// tile columns, far more than 60 frames/s allow here.
fn run_live(props: &str, frames: usize) -> Live {
    run_from(Source::Live, props, frames)
}

fn run_from(source: Source, props: &str, frames: usize) -> Live {
    init();
    let (live, queue, sink) = match source {
        Source::Live => (
            true,
            "queue max-size-buffers=0 max-size-bytes=0 max-size-time=0 !",
            "sync=false",
        ),
        Source::InTime => (false, "", "sync=true qos=true"),
        // qos=true: a sink that does not keep to the clock has nothing to report even so.
        Source::AsFast => (false, "", "sync=false qos=true"),
    };
    let desc = format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! videoscale add-borders=true \
         ! video/x-raw,format=I420,width=1920,height=1080,pixel-aspect-ratio=1/1 \
         ! imagefreeze is-live={live} num-buffers={frames} ! video/x-raw,framerate=60/1 ! {queue} \
         faceemotion name=fe tiles=8 blur=solid draw=false {props} ! appsink name=sink {sink}",
        group_photo(5).display()
    );
    let (p, sink) = with_appsink(&desc);
    let fe = p.by_name("fe").unwrap();
    let upstream_qos: Arc<AtomicUsize> = Default::default();
    let q = upstream_qos.clone();
    fe.static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
            if let Some(gst::PadProbeData::Event(e)) = info.data.as_ref() {
                if e.type_() == gst::EventType::Qos {
                    q.fetch_add(1, Ordering::Relaxed);
                }
            }
            gst::PadProbeReturn::Ok
        });
    let lateness: Arc<Mutex<Vec<u64>>> = Default::default();
    let l = lateness.clone();
    let pipeline = p.downgrade();
    fe.static_pad("src")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            let (Some(p), Some(gst::PadProbeData::Buffer(b))) = (pipeline.upgrade(), info.data.as_ref()) else {
                return gst::PadProbeReturn::Ok;
            };
            let segment = pad.sticky_event::<gst::event::Segment>(0).map(|e| e.segment().clone());
            let rt = segment
                .as_ref()
                .and_then(|s| s.downcast_ref::<gst::ClockTime>()?.to_running_time(b.pts()?));
            if let (Some(rt), Some(now)) = (rt, p.current_running_time()) {
                l.lock().unwrap().push(now.saturating_sub(rt).nseconds());
            }
            gst::PadProbeReturn::Ok
        });
    p.set_state(gst::State::Playing).unwrap();
    let mut unmasked = Vec::new();
    let mut n = 0;
    while let Some(s) = sink.try_pull_sample(gst::ClockTime::from_seconds(60)) {
        let b = s.buffer().unwrap();
        let faces = roi_faces(b);
        let m = b.map_readable().unwrap();
        let masked = faces
            .iter()
            .all(|f| m[f.center().1 as usize * 1920 + f.center().0 as usize] <= 17);
        // The first frame is detected before it leaves; from then on all five are known.
        if faces.len() != 5 || !masked {
            unmasked.push(n);
        }
        n += 1;
    }
    assert!(sink.is_eos(), "the live pipeline stalled");
    let stats = fe.property::<gst::Structure>("stats");
    let skipped = stats.get::<u64>("skipped").unwrap();
    let analysed = (n as u64).saturating_sub(skipped).max(1);
    let analysis_ms = stats.get::<u64>("processing-time").unwrap() as f64 / 1e6 / analysed as f64;
    p.set_state(gst::State::Null).unwrap();
    let lateness = lateness.lock().unwrap().clone();
    let upstream_qos = upstream_qos.load(Ordering::Relaxed);
    Live {
        lateness,
        unmasked,
        skipped,
        frames: n,
        analysis_ms,
        upstream_qos,
    }
}

fn max_ms(v: &[u64]) -> f64 {
    v.iter().copied().max().unwrap_or(0) as f64 / 1e6
}

/// Checks a run the element could not keep up with: every frame out, some only tracked, every
/// frame with its five masked faces, and in the second half no frame more than a few analysed
/// frames behind, in this machine's time per analysed frame (a slow or loaded machine analyses
/// more slowly, and is allowed to be that much more behind; a backlog grows without bound).
/// Returns the second half's largest lateness (ms).
fn assert_kept_up(run: &Live, frames: usize) -> f64 {
    assert_eq!(run.frames, frames, "every frame comes out");
    assert!(
        run.skipped > 0,
        "the machine kept up with {frames} frames: nothing to show"
    );
    assert!(
        run.unmasked.is_empty(),
        "frames without their five masked faces: {:?}",
        run.unmasked
    );
    let behind = max_ms(&run.lateness[run.lateness.len() / 2..]);
    eprintln!(
        "{} of {frames} frames only tracked; lateness in the second half up to {behind:.0} ms",
        run.skipped
    );
    let bound = (4.0 * run.analysis_ms).max(1000.0);
    assert!(
        behind < bound,
        "up to {behind:.0} ms behind in the second half, over {bound:.0} ms ({:.0} ms an analysed frame; \
         {} of {frames} frames only tracked)",
        run.analysis_ms,
        run.skipped
    );
    behind
}

#[test]
fn a_live_source_faster_than_the_analysis_never_falls_behind() {
    let frames = 240;
    let run = run_live("", frames);
    let behind = assert_kept_up(&run, frames);

    // Analysing every frame however late, the same run falls further and further behind: the
    // bound above is the feature, not the machine.
    let every = run_live("max-lateness=-1", 60);
    assert_eq!(every.skipped, 0);
    let end = &every.lateness[every.lateness.len() - 10..];
    eprintln!("every frame analysed: {:.0} ms behind at the end", max_ms(end));
    assert!(
        max_ms(end) > 3000.0 && max_ms(end) > 4.0 * behind,
        "with every frame analysed the end was only {:.0} ms behind",
        max_ms(end)
    );
}

/// A file played in time (not live: no capture time to be late against) by a sink that reports
/// its lateness: the element learns from the reports that it is behind and tracks frames until
/// it has caught up. Every frame comes out with its faces masked, lateness stays bounded, and
/// no report goes upstream, where a decoder would drop frames to catch up.
#[test]
fn a_file_played_in_time_never_falls_behind_and_loses_no_frame() {
    let frames = 240;
    let run = run_from(Source::InTime, "", frames);
    assert_kept_up(&run, frames);
    assert_eq!(run.upstream_qos, 0, "lateness reports went upstream");

    // Analysing every frame however late, the reports go upstream as GStreamer's elements pass
    // them (a decoder there would drop frames), and the element itself drops none.
    let every = run_from(Source::InTime, "max-lateness=-1", 30);
    assert_eq!((every.frames, every.skipped), (30, 0));
    assert!(every.upstream_qos > 0, "no lateness report went upstream");

    // With the base class's QoS asked for (`qos=true`), it drops the frames reported late, as
    // GStreamer's video filters do, and the element does nothing about them itself.
    let dropping = run_from(Source::InTime, "qos=true", 30);
    assert_eq!(dropping.skipped, 0);
    assert!(dropping.upstream_qos > 0, "no lateness report went upstream");
    assert!(dropping.frames < 30, "qos=true dropped no frame");
}

/// The same file analysed as fast as it goes (a sink that does not keep to the clock reports
/// nothing): every frame is analysed, however long that takes.
#[test]
fn a_file_analysed_as_fast_as_it_goes_is_analysed_in_full() {
    let run = run_from(Source::AsFast, "", 30);
    assert_eq!((run.frames, run.skipped, run.upstream_qos), (30, 0, 0));
    assert!(run.unmasked.is_empty(), "{:?}", run.unmasked);
}

/// A delay that every frame has before the element is not the element falling behind: here a
/// 600 ms stage in front of it that does not report its latency makes every frame, the first
/// included, twice as late as `max-lateness` allows (300 ms, leaving room for a loaded machine's
/// jitter), and yet nothing is skipped: lateness counts from the least seen since the start.
#[test]
fn a_constant_delay_upstream_skips_nothing() {
    let frames = 10;
    let desc = format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! videoscale add-borders=true \
         ! video/x-raw,format=I420,width=960,height=540,pixel-aspect-ratio=1/1 \
         ! imagefreeze is-live=true num-buffers={frames} ! video/x-raw,framerate=30/1 \
         ! identity sleep-time=600000 ! faceemotion name=fe max-lateness=300 draw=false \
         ! appsink name=sink sync=false",
        group_photo(5).display()
    );
    let (p, sink) = with_appsink(&desc);
    p.set_state(gst::State::Playing).unwrap();
    let mut faces = Vec::new();
    while let Some(s) = sink.try_pull_sample(gst::ClockTime::from_seconds(60)) {
        faces.push(roi_faces(s.buffer().unwrap()).len());
    }
    assert!(sink.is_eos(), "the live pipeline stalled");
    let skipped = p
        .by_name("fe")
        .unwrap()
        .property::<gst::Structure>("stats")
        .get::<u64>("skipped")
        .unwrap();
    p.set_state(gst::State::Null).unwrap();
    assert_eq!(faces.len(), frames);
    assert_eq!(skipped, 0, "frames skipped although the element kept up: {faces:?}");
    assert!(faces.iter().all(|&n| n == 5), "{faces:?}");
}
