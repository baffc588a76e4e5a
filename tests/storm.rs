//! A storm of state changes, flushing seeks, caps changes and property sets from another
//! thread, then a clean pass over the clip: its results must equal those of a fresh pipeline.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::*;
use gst::prelude::*;

/// The bundled clip as an H.264 elementary stream: a pipeline of static pads only, which can go
/// to READY and back (parse-launch links a demuxer's pads once).
fn elementary_clip() -> std::path::PathBuf {
    cached_clip(
        "astronaut-pan.h264",
        &format!(
            "filesrc location=\"{}\" ! qtdemux ! h264parse ! video/x-h264,stream-format=byte-stream ! filesink location=\"{{out}}\"",
            data("astronaut-pan.mp4").display()
        ),
    )
}

const DESC: &str = "filesrc location=\"{clip}\" ! h264parse ! avdec_h264 ! videoconvertscale \
                    ! capsfilter name=cf caps=video/x-raw,format=I420 ! faceemotion name=fe ! appsink name=sink sync=false";

fn pipeline() -> (gst::Pipeline, gst::Element, gst::Element, gst_app::AppSink) {
    let desc = DESC.replace("{clip}", &elementary_clip().display().to_string());
    let (p, sink) = with_appsink(&desc);
    let fe = p.by_name("fe").unwrap();
    let cf = p.by_name("cf").unwrap();
    (p, fe, cf, sink)
}

/// Every frame's faces, as (box, emotion label and confidence, gender label and confidence).
type Frames = Vec<Vec<((u32, u32, u32, u32), String, String, String)>>;

fn pass(sink: &gst_app::AppSink) -> (Frames, usize) {
    let mut frames = Vec::new();
    let mut ids = std::collections::BTreeSet::new();
    while let Some(s) = sink.try_pull_sample(gst::ClockTime::from_seconds(60)) {
        let faces = roi_faces(s.buffer().unwrap());
        ids.extend(faces.iter().map(|f| f.id));
        frames.push(
            faces
                .iter()
                .map(|f| {
                    let c = |p: &str| format!("{:.5}", f.param(p).get::<f64>("confidence").unwrap());
                    (
                        f.rect,
                        f.emotion(),
                        c("emotion"),
                        format!("{} {}", f.gender(), c("gender")),
                    )
                })
                .collect(),
        );
    }
    assert!(sink.is_eos(), "the pass did not reach its end");
    (frames, ids.len())
}

/// A small pseudo-random sequence, the same on every run.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[test]
fn after_a_storm_the_results_equal_a_clean_run() {
    let (clean, clean_ids) = {
        let (p, _, _, sink) = pipeline();
        p.set_state(gst::State::Playing).unwrap();
        let r = pass(&sink);
        p.set_state(gst::State::Null).unwrap();
        r
    };
    assert_eq!(clean.len(), 180);
    assert_eq!(clean_ids, 1);

    let (p, fe, cf, sink) = pipeline();
    sink.set_max_buffers(2);
    sink.set_drop(true);
    p.set_state(gst::State::Playing).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let setter = {
        let (fe, stop) = (fe.clone(), stop.clone());
        std::thread::spawn(move || {
            let models = format!("{}/models", env!("CARGO_MANIFEST_DIR"));
            let props: Vec<(&str, Vec<String>)> = vec![
                ("threshold", vec!["0.3".into(), "0.9".into(), "0.6".into()]),
                ("smoothing", vec!["0".into(), "100".into(), "5000".into()]),
                ("draw", vec!["false".into(), "true".into()]),
                (
                    "blur",
                    vec!["gaussian".into(), "pixelate".into(), "solid".into(), "none".into()],
                ),
                ("inference-interval", vec!["1".into(), "4".into()]),
                ("reclassify-interval", vec!["1".into(), "3".into()]),
                ("gender-interval", vec!["0".into(), "7".into()]),
                ("pipelining", vec!["on".into(), "off".into(), "auto".into()]),
                ("tiles", vec!["1".into(), "2".into()]),
                ("max-faces", vec!["1".into(), "64".into()]),
                ("track-timeout", vec!["0".into(), "1000".into()]),
                (
                    "emotion-model",
                    vec![
                        format!("{models}/faceapi_expression.onnx"),
                        String::new(),
                        format!("{models}/emotion_minixception_fer.onnx"),
                    ],
                ),
            ];
            let mut rng = Lcg(7);
            let mut sets = 0;
            while !stop.load(Ordering::SeqCst) {
                let (name, values) = &props[rng.next(props.len() as u64) as usize];
                // Model loads take a while: fewer of them.
                if *name == "emotion-model" && rng.next(20) != 0 {
                    continue;
                }
                fe.set_property_from_str(name, &values[rng.next(values.len() as u64) as usize]);
                sets += 1;
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            sets
        })
    };
    let mut rng = Lcg(11);
    let caps = [
        "video/x-raw,format=I420",
        "video/x-raw,format=NV12",
        "video/x-raw,format=YUY2,width=320,height=180",
        "video/x-raw,format=RGB",
    ];
    for _ in 0..60 {
        match rng.next(5) {
            0 => {
                let pos = gst::ClockTime::from_mseconds(rng.next(5500));
                let _ = p.seek_simple(gst::SeekFlags::FLUSH | gst::SeekFlags::KEY_UNIT, pos);
            }
            1 => {
                p.set_state(gst::State::Paused).unwrap();
                p.set_state(gst::State::Playing).unwrap();
            }
            2 => {
                p.set_state(gst::State::Ready).unwrap();
                p.set_state(gst::State::Playing).unwrap();
            }
            3 => cf.set_property(
                "caps",
                caps[rng.next(caps.len() as u64) as usize].parse::<gst::Caps>().unwrap(),
            ),
            _ => {}
        }
        for _ in 0..rng.next(4) {
            let _ = sink.try_pull_sample(gst::ClockTime::from_mseconds(200));
        }
    }
    stop.store(true, Ordering::SeqCst);
    let sets = setter.join().unwrap();
    let bus = p.bus().unwrap();
    let mut errors = Vec::new();
    while let Some(m) = bus.pop() {
        match m.view() {
            gst::MessageView::Error(e) => errors.push(format!("{} {:?}", e.error(), e.debug())),
            gst::MessageView::Warning(w) => eprintln!("warning in the storm: {}", w.error()),
            _ => {}
        }
    }
    assert!(errors.is_empty(), "errors in the storm: {errors:?}");
    assert!(sets > 100, "only {sets} property sets");

    // Back to the defaults, and once more from the start.
    for name in [
        "threshold",
        "smoothing",
        "draw",
        "blur",
        "inference-interval",
        "reclassify-interval",
        "gender-interval",
        "pipelining",
        "tiles",
        "max-faces",
        "track-timeout",
        "emotion-model",
    ] {
        let pspec = fe.find_property(name).unwrap();
        fe.set_property_from_value(name, pspec.default_value());
    }
    cf.set_property("caps", caps[0].parse::<gst::Caps>().unwrap());
    p.set_state(gst::State::Paused).unwrap();
    let _ = p.state(gst::ClockTime::from_seconds(30));
    p.seek_simple(gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE, gst::ClockTime::ZERO)
        .unwrap();
    let _ = p.state(gst::ClockTime::from_seconds(30));
    sink.set_drop(false);
    sink.set_max_buffers(0);
    // Frames that were already queued in the sink before the seek are flushed by it.
    p.set_state(gst::State::Playing).unwrap();
    let (after, ids) = pass(&sink);
    p.set_state(gst::State::Null).unwrap();
    assert_eq!(after.len(), clean.len(), "frames after the storm");
    assert_eq!(ids, 1, "one person across the clip after the storm");
    for (i, (a, c)) in after.iter().zip(&clean).enumerate() {
        assert_eq!(a, c, "frame {i} after the storm differs from a clean run");
    }
}
