//! Helpers shared by the integration tests: decoding real images into raw frames of a given
//! format, running them through the element, and reading back its metadata.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Once;

use gst::prelude::*;

pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstfaceemotion::plugin_register_static().expect("register the plugin");
    });
}

pub fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

/// The face-api.js group photos, fetched from npm by `scripts/setup.sh --test` (not committed).
pub fn group_photo(i: usize) -> PathBuf {
    let p = data(&format!("face-api/sample{i}.jpg"));
    assert!(
        p.is_file(),
        "{} is missing: run `scripts/setup.sh --test` (fetches npm @vladmandic/face-api 1.7.15)",
        p.display()
    );
    p
}

/// Faces visible in each group photo, counted by eye: every one is a woman.
pub const GROUP_FACES: [usize; 6] = [3, 3, 3, 4, 5, 4];

/// Decodes an image file into one raw frame with the given caps fields (format, size ...).
pub fn decode(path: &std::path::Path, caps: &str) -> (gst::Caps, gst::Buffer) {
    init();
    let desc = format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! videoscale ! {} ! appsink name=sink",
        path.display(),
        caps
    );
    let sample = pull_one(&desc);
    (sample.caps().unwrap().to_owned(), sample.buffer_owned().unwrap())
}

/// Runs a pipeline ending in `appsink name=sink` until its first sample.
pub fn pull_one(desc: &str) -> gst::Sample {
    init();
    let pipeline = gst::parse::launch(desc).unwrap().downcast::<gst::Pipeline>().unwrap();
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let sample = sink.pull_sample().expect("a frame");
    pipeline.set_state(gst::State::Null).unwrap();
    sample
}

/// One face as the element described it in its ROI meta.
#[derive(Debug, Clone)]
pub struct RoiFace {
    pub rect: (u32, u32, u32, u32),
    pub id: i32,
    pub params: Vec<gst::Structure>,
}

impl RoiFace {
    pub fn param(&self, name: &str) -> &gst::StructureRef {
        self.params
            .iter()
            .find(|s| s.name() == name)
            .unwrap_or_else(|| panic!("no {name} param in {self:?}"))
    }
    pub fn emotion(&self) -> String {
        self.param("emotion").get::<String>("label").unwrap()
    }
    pub fn gender(&self) -> String {
        self.param("gender").get::<String>("label").unwrap()
    }
    pub fn center(&self) -> (f64, f64) {
        let (x, y, w, h) = self.rect;
        (x as f64 + w as f64 / 2.0, y as f64 + h as f64 / 2.0)
    }
}

pub fn roi_faces(buf: &gst::BufferRef) -> Vec<RoiFace> {
    buf.iter_meta::<gst_video::VideoRegionOfInterestMeta>()
        .map(|m| {
            assert_eq!(m.roi_type(), "face");
            RoiFace {
                rect: m.rect(),
                id: m.id(),
                params: m.params().map(|s| s.to_owned()).collect(),
            }
        })
        .collect()
}

/// Pushes buffers through a harnessed element and returns what comes out.
pub fn run(props: &[(&str, &str)], caps: &gst::Caps, bufs: Vec<gst::Buffer>) -> Vec<gst::Buffer> {
    init();
    let mut h = gst_check::Harness::new("faceemotion");
    {
        let e = h.element().unwrap();
        for (k, v) in props {
            e.set_property_from_str(k, v);
        }
    }
    h.set_src_caps(caps.clone());
    bufs.into_iter()
        .map(|b| {
            h.push(b).expect("push");
            h.pull().expect("a buffer out for each buffer in")
        })
        .collect()
}

pub fn run_one(props: &[(&str, &str)], caps: &gst::Caps, buf: gst::Buffer) -> gst::Buffer {
    run(props, caps, vec![buf]).pop().unwrap()
}

/// Runs a pipeline description to the end and returns the element messages and any error text.
pub fn run_pipeline(desc: &str) -> (Vec<gst::Structure>, Option<String>) {
    init();
    let pipeline = gst::parse::launch(desc).unwrap();
    let bus = pipeline.bus().unwrap();
    let mut msgs = Vec::new();
    let mut error = None;
    // A failed state change posts its error on the bus, where it is read below.
    let _ = pipeline.set_state(gst::State::Playing);
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(120)) {
        match msg.view() {
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure().filter(|s| s.name() == "faceemotion") {
                    msgs.push(s.to_owned());
                }
            }
            gst::MessageView::Error(e) => {
                error = Some(format!("{} ({:?})", e.error(), e.debug()));
                break;
            }
            gst::MessageView::Eos(_) => break,
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    (msgs, error)
}
