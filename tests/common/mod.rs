//! Helpers shared by the integration tests: decoding real images into raw frames of a given
//! format, running them through the element, and reading back its metadata.
#![allow(dead_code)]

pub mod footage;
pub mod onnx;
pub mod services;

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

/// A pipeline ending in `appsink name=sink`, not started yet, and its sink.
pub fn with_appsink(desc: &str) -> (gst::Pipeline, gst_app::AppSink) {
    init();
    let pipeline = gst::parse::launch(desc).unwrap().downcast::<gst::Pipeline>().unwrap();
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    (pipeline, sink)
}

/// Runs a pipeline ending in `appsink name=sink` until its first sample.
pub fn pull_one(desc: &str) -> gst::Sample {
    let (pipeline, sink) = with_appsink(desc);
    pipeline.set_state(gst::State::Playing).unwrap();
    let sample = sink.try_pull_sample(STALL).expect("a frame within the stall limit");
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

/// How long a test pipeline may run before the test fails as stalled.
pub const STALL: gst::ClockTime = gst::ClockTime::from_seconds(120);

/// Runs a pipeline description to the end and returns the element messages and any error text.
/// A pipeline that neither ends nor fails within [`STALL`] fails the test: a stall is never
/// taken for a run that ended.
pub fn run_pipeline(desc: &str) -> (Vec<gst::Structure>, Option<String>) {
    init();
    let pipeline = gst::parse::launch(desc).unwrap();
    let bus = pipeline.bus().unwrap();
    let mut msgs = Vec::new();
    let mut outcome = None;
    // A failed state change posts its error on the bus, where it is read below.
    let _ = pipeline.set_state(gst::State::Playing);
    for msg in bus.iter_timed(STALL) {
        match msg.view() {
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure().filter(|s| s.name() == "faceemotion") {
                    msgs.push(s.to_owned());
                }
            }
            gst::MessageView::Error(e) => {
                outcome = Some(Some(format!("{} ({:?})", e.error(), e.debug())));
                break;
            }
            gst::MessageView::Eos(_) => {
                outcome = Some(None);
                break;
            }
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    let Some(error) = outcome else {
        panic!("the pipeline neither ended nor failed within {STALL}: {desc}");
    };
    (msgs, error)
}

/// Waits for the end of a started pipeline: `None` at EOS, the error's text on an error; a
/// pipeline that does neither within [`STALL`] fails the test.
pub fn wait_end(bus: &gst::Bus) -> Option<String> {
    match bus
        .timed_pop_filtered(STALL, &[gst::MessageType::Eos, gst::MessageType::Error])
        .as_ref()
        .map(|m| m.view())
    {
        Some(gst::MessageView::Eos(_)) => None,
        Some(gst::MessageView::Error(e)) => Some(format!("{} ({:?})", e.error(), e.debug())),
        _ => panic!("the pipeline neither ended nor failed within {STALL}"),
    }
}

/// A file made once by `make` (given a temporary path beside it) and kept for later runs: it
/// is renamed into place only once made in full, so a run that stalled or failed leaves no
/// truncated file for the next run to take.
pub fn cached(path: &std::path::Path, make: impl FnOnce(&std::path::Path)) -> PathBuf {
    // Tests of one binary run on threads of one process: one makes the file, the others wait
    // for it rather than write the same temporary file at once.
    static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _making = MAKING.lock().unwrap_or_else(|e| e.into_inner());
    if !path.is_file() {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("tmp");
        let tmp = path.with_extension(format!("partial-{}.{ext}", std::process::id()));
        make(&tmp);
        assert!(tmp.is_file(), "making {} wrote nothing", path.display());
        std::fs::rename(&tmp, path).unwrap();
    }
    path.to_path_buf()
}

/// A clip made once by a pipeline whose `{out}` is the file it writes (see [`cached`]).
pub fn cached_clip(name: &str, desc: &str) -> PathBuf {
    cached(&clip_dir().join(name), |tmp| {
        let (_, err) = run_pipeline(&desc.replace("{out}", &tmp.display().to_string()));
        assert!(err.is_none(), "making {name}: {err:?}");
    })
}

/// Where tests keep clips they make (made once, reused by later runs).
pub fn clip_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-clips");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// An H.264 MP4 at 30 frames/s, 1920x1552 (every photo at its own size, borders added), made of still pictures: each `(image, frames)` in
/// turn, letterboxed, timestamped frame by frame. Made once per name.
pub fn stills_clip(name: &str, parts: &[(PathBuf, usize)]) -> PathBuf {
    init();
    let path = clip_dir().join(format!("{name}.mp4"));
    cached(&path, |tmp| write_stills(tmp, parts))
}

fn write_stills(tmp: &std::path::Path, parts: &[(PathBuf, usize)]) {
    let caps = "video/x-raw,format=I420,width=1920,height=1552,pixel-aspect-ratio=1/1,framerate=30/1";
    let p = gst::parse::launch(&format!(
        "appsrc name=src format=time caps=\"{caps}\" ! x264enc speed-preset=fast pass=quant quantizer=18 key-int-max=30 \
         ! h264parse ! mp4mux ! filesink location=\"{}\"",
        tmp.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let src = p.by_name("src").unwrap().downcast::<gst_app::AppSrc>().unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let mut n = 0u64;
    for (image, frames) in parts {
        let (_, picture) = decode(
            image,
            "videoscale add-borders=true ! video/x-raw,format=I420,width=1920,height=1552,pixel-aspect-ratio=1/1",
        );
        for _ in 0..*frames {
            let mut b = picture.copy();
            let bm = b.make_mut();
            bm.set_pts(gst::ClockTime::SECOND.mul_div_floor(n, 30));
            bm.set_duration(gst::ClockTime::SECOND.mul_div_floor(1, 30));
            src.push_buffer(b).unwrap();
            n += 1;
        }
    }
    src.end_of_stream().unwrap();
    let msg = p
        .bus()
        .unwrap()
        .timed_pop_filtered(STALL, &[gst::MessageType::Eos, gst::MessageType::Error]);
    p.set_state(gst::State::Null).unwrap();
    match msg.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => {}
        other => panic!("making {}: {other:?}", tmp.display()),
    }
}

/// What a pipeline ending in `appsink name=sink` gave: each frame's faces and timestamp, and the
/// `faceemotion-track` messages in the order they were posted.
pub struct Run {
    pub frames: Vec<Vec<RoiFace>>,
    /// Stream time of each frame.
    pub pts: Vec<u64>,
    pub tracks: Vec<gst::Structure>,
    /// The `faceemotion-track` and `faceemotion-zone` messages together, in order.
    pub events: Vec<gst::Structure>,
    /// The first `faceemotion`'s `stats` at the end of the stream.
    pub stats: Option<gst::Structure>,
}

pub fn run_frames(desc: &str) -> Run {
    init();
    let (p, sink) = with_appsink(desc);
    let tracks = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let errors = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (t, ev, e) = (tracks.clone(), events.clone(), errors.clone());
    // A sync handler sees messages in the order they are posted, without a main loop.
    p.bus().unwrap().set_sync_handler(move |_, msg| {
        match msg.view() {
            gst::MessageView::Element(m) => {
                if let Some(s) = m.structure().filter(|s| s.name() == "faceemotion-track") {
                    t.lock().unwrap().push(s.to_owned());
                }
                if let Some(s) = m
                    .structure()
                    .filter(|s| s.name() == "faceemotion-track" || s.name() == "faceemotion-zone")
                {
                    ev.lock().unwrap().push(s.to_owned());
                }
            }
            gst::MessageView::Error(err) => e.lock().unwrap().push(format!("{} ({:?})", err.error(), err.debug())),
            _ => {}
        }
        gst::BusSyncReply::Pass
    });
    p.set_state(gst::State::Playing).unwrap();
    let (mut frames, mut pts) = (Vec::new(), Vec::new());
    while let Some(s) = sink.try_pull_sample(gst::ClockTime::from_seconds(60)) {
        let b = s.buffer().unwrap();
        let stream_time = s
            .segment()
            .and_then(|seg| seg.downcast_ref::<gst::ClockTime>()?.to_stream_time(b.pts()?));
        pts.push(stream_time.map_or(0, |t| t.nseconds()));
        frames.push(roi_faces(b));
    }
    assert!(errors.lock().unwrap().is_empty(), "{:?}", errors.lock().unwrap());
    assert!(sink.is_eos(), "the pipeline stalled before its end");
    let stats = p
        .iterate_recurse()
        .into_iter()
        .flatten()
        .find(|e| e.factory().is_some_and(|f| f.name() == "faceemotion"))
        .map(|e| e.property::<gst::Structure>("stats"));
    p.set_state(gst::State::Null).unwrap();
    let tracks = tracks.lock().unwrap().clone();
    let events = events.lock().unwrap().clone();
    Run {
        frames,
        pts,
        tracks,
        events,
        stats,
    }
}
