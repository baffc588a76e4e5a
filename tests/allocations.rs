//! "No allocation per frame in steady state": the core (detector and its thread, tracker, crops,
//! classifiers, overlay) is run on real frames through a counting allocator, pipelined as the
//! element runs it, and must not allocate once every buffer has reached its working size.
//! ONNX Runtime's own (C++) memory is its arena's business and not seen here.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use gstfaceemotion::analysis::{Analyzer, ModelConfig};
use gstfaceemotion::draw::Painter;
use gstfaceemotion::face::FrameTime;
use gstfaceemotion::image::{ImageViewMut, PixelFormat, YuvMatrix};
use gstfaceemotion::mask::{MaskKind, MaskStyle, Masker};
use gstfaceemotion::runtime::{default_model_path, DESCRIPTOR_MODEL, EMOTION_MODEL, FULL_RANGE_MODEL, GENDER_MODEL};
use gstfaceemotion::stream::{FrameResult, Stream, StreamParams, Ticket};
use gstfaceemotion::tracker::TrackEvent;

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

fn count() {
    if COUNTING.load(Ordering::Relaxed) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const W: usize = 1920;
const H: usize = 1080;

/// The six group photos as 1080p I420 frames, tightly packed.
fn frames() -> Vec<Vec<u8>> {
    (1..=6)
        .map(|i| {
            let (_, buf) = common::decode(
                &common::group_photo(i),
                &format!("video/x-raw,format=I420,width={W},height={H},pixel-aspect-ratio=1/1"),
            );
            let map = buf.map_readable().unwrap();
            assert_eq!(map.len(), W * H * 3 / 2, "packed I420 expected");
            map.to_vec()
        })
        .collect()
}

fn view(data: &mut [u8]) -> ImageViewMut<'_> {
    let (y, uv) = data.split_at_mut(W * H);
    let (u, v) = uv.split_at_mut(W * H / 4);
    ImageViewMut::new(PixelFormat::I420, W, H, [y, u, v], &[W, W / 2, W / 2], YuvMatrix::BT601).unwrap()
}

/// Runs `rounds` passes over the frames, pipelined (frame N+1 begun before frame N is
/// finished), masked and drawn; returns the allocations counted in the last pass and the faces
/// seen in it.
fn run(stream: &mut Stream, params: &StreamParams, sources: &[Vec<u8>], rounds: usize) -> (usize, usize) {
    let mut painter = Painter::new();
    let mut masker = Masker::new();
    let style = MaskStyle {
        kind: MaskKind::Gaussian,
        ..MaskStyle::default()
    };
    let mut result = FrameResult::default();
    let mut events: Vec<TrackEvent> = Vec::new();
    // Two frame buffers, as the element holds two frames; each gets a fresh copy of its
    // source so that drawn overlays do not pile up.
    let mut bufs = [sources[0].clone(), sources[0].clone()];
    let total = rounds * sources.len();
    let mut seen = 0;
    let mut pending: Option<(usize, Ticket)> = None;
    for n in 0..=total {
        if n == total - sources.len() {
            ALLOCATIONS.store(0, Ordering::SeqCst);
            COUNTING.store(true, Ordering::SeqCst);
        }
        let begun = if n < total {
            let buf = &mut bufs[n % 2];
            buf.copy_from_slice(&sources[n % sources.len()]);
            let time = FrameTime {
                ts: n as u64 * 40_000_000,
                clock: n as u64 * 40_000_000,
                duration: 40_000_000,
            };
            Some(stream.begin(&view(buf).as_view(), params, time, false).unwrap())
        } else {
            None
        };
        if let Some((m, ticket)) = pending.take() {
            let mut img = view(bufs[m % 2].as_mut_slice());
            stream.finish(&img.as_view(), params, ticket, &mut result).unwrap();
            masker.mask(&mut img, &result.masks, &style);
            painter.draw(&mut img, &result.faces).unwrap();
            // Each photo holds its people for one frame: they appear and leave every frame,
            // and their events must cost nothing once the lists have grown.
            stream.take_events(&mut events);
            events.clear();
            if COUNTING.load(Ordering::SeqCst) {
                seen += result.faces.len();
            }
        }
        pending = begun.map(|t| (n, t));
    }
    COUNTING.store(false, Ordering::SeqCst);
    (ALLOCATIONS.load(Ordering::SeqCst), seen)
}

#[test]
fn steady_state_allocates_nothing() {
    common::init();
    let sources = frames();
    let analyzer = Analyzer::new(ModelConfig {
        detector: default_model_path(FULL_RANGE_MODEL),
        emotion: vec![default_model_path(EMOTION_MODEL)],
        gender: vec![default_model_path(GENDER_MODEL)],
        descriptor: Some(default_model_path(DESCRIPTOR_MODEL)),
        threads: 0,
        ort_library: None,
        group: String::new(),
    })
    .unwrap();
    let mut stream = Stream::new(analyzer);
    // Two zones, overlapping: faces go in and out of them every frame, and stay in them.
    let zones = gstfaceemotion::zone::parse("left:0,0 0.5,0 0.5,1 0,1;all:0,0 1,0 1,1 0,1").unwrap();
    stream.set_zones(std::sync::Arc::new(zones));
    for (name, params) in [
        ("every face every frame", StreamParams::default()),
        (
            "inference-interval=3 reclassify-interval=3",
            StreamParams {
                inference_interval: 3,
                reclassify_interval: 3,
                ..StreamParams::default()
            },
        ),
        (
            "zone-inertia=1 (a zone event on every frame a face is on)",
            StreamParams {
                zone_inertia: 1,
                ..StreamParams::default()
            },
        ),
    ] {
        // Ten passes (2.4 s of stream time): past the track timeout, so that the tracks of the
        // first passes have ended and the lists have reached their working size.
        let (allocations, faces) = run(&mut stream, &params, &sources, 10);
        assert!(faces >= 6 * 3, "{name}: only {faces} faces in six group photos");
        assert_eq!(
            allocations,
            0,
            "{name}: {allocations} allocations over {} frames",
            sources.len()
        );
    }
    // People who stay: each becomes a person, is recognised (a descriptor of their first view)
    // and described again on later, better views, a few times, and is in the zones; then the
    // frames cost nothing.
    let held: Vec<Vec<u8>> = std::iter::repeat_n(sources[4].clone(), 10).collect();
    let params = StreamParams::default();
    stream.restart();
    // 15 passes of 10 frames: 6 s, past the views' spacing times the views per track.
    let (allocations, faces) = run(&mut stream, &params, &held, 15);
    assert!(faces >= 10 * 5, "only {faces} faces in ten frames of a five-face photo");
    let (visitors, descriptors) = stream.visitors();
    assert!(
        visitors >= 5 && descriptors >= 5,
        "{visitors} visitors with {descriptors} descriptors"
    );
    assert_eq!(
        allocations, 0,
        "people who stay: {allocations} allocations over ten frames"
    );
}
