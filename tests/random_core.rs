//! The core on random frames: any format, sizes from 1x1 to 8K, padded strides, random bytes and
//! face boxes anywhere (partly or wholly outside the frame, empty, not even numbers) through the
//! letterbox, the classifier crop, the tracker, the masks and the overlay: no panic, and nothing
//! written outside the frame's pixels (the stride padding stays as it was).

use gstfaceemotion::analysis::crop_region;
use gstfaceemotion::detector::Letterboxer;
use gstfaceemotion::detector::Prepared;
use gstfaceemotion::draw::Painter;
use gstfaceemotion::face::FrameTime;
use gstfaceemotion::face::{BBox, Detection, EmotionScores, Face, GenderScores};
use gstfaceemotion::image::{ImageViewMut, PixelFormat, YuvMatrix};
use gstfaceemotion::mask::{MaskKind, MaskStyle, Masker};
use gstfaceemotion::person::Smoothing;
use gstfaceemotion::resample::{Border, Resampler};
use gstfaceemotion::tracker::Tracker;
use proptest::prelude::*;

fn noise(n: usize, mut seed: u32) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 24) as u8
        })
        .collect()
}

/// Frame sizes: mostly small and odd, sometimes large, now and then up to 8K.
fn size() -> impl Strategy<Value = (usize, usize)> {
    prop_oneof![
        6 => (1usize..48, 1usize..48),
        3 => (48usize..1300, 48usize..800),
        1 => (1usize..=7680, 1usize..=4320),
    ]
}

/// A box in units of the frame size: from well left/above to well right/below it, of any size
/// (also zero and negative); some not numbers at all.
fn boxes() -> impl Strategy<Value = Vec<(f32, f32, f32, f32)>> {
    let coord = || {
        prop_oneof![
            20 => -1.5f32..2.5,
            1 => Just(f32::NAN),
            1 => Just(f32::INFINITY),
            1 => Just(-1e9f32),
        ]
    };
    prop::collection::vec((coord(), coord(), -0.2f32..1.5, -0.2f32..1.5), 0..6)
}

fn face(b: BBox, id: u64) -> Face {
    let mut f = Face::new(Detection {
        bbox: b,
        score: 0.9,
        keypoints: [(b.x1, b.y1); 6],
        ..Default::default()
    });
    f.id = id;
    f.emotion = Some(EmotionScores([0.1, 0.0, 0.0, 0.7, 0.1, 0.0, 0.1]));
    f.gender = Some(GenderScores::new(0.3, Some(41.0)));
    f
}

proptest! {
    // No failure file: a failing case is printed, and CI runs on clean clones.
    #![proptest_config(ProptestConfig { cases: 120, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_core_takes_any_frame_and_any_box(
        format in 0usize..17,
        (w, h) in size(),
        pad in 0usize..20,
        seed in any::<u32>(),
        rel in boxes(),
        tiles in 1u32..4,
        kind in 0usize..3,
    ) {
        let f = PixelFormat::ALL[format];
        let strides: Vec<usize> = (0..f.n_planes()).map(|p| f.plane_size(p, w, h).0 + pad).collect();
        let mut planes: Vec<Vec<u8>> = (0..f.n_planes())
            .map(|p| noise(strides[p] * f.plane_size(p, w, h).1, seed.wrapping_add(p as u32)))
            .collect();
        let before = planes.clone();
        let boxes: Vec<BBox> = rel
            .iter()
            .map(|&(rx, ry, rw, rh)| {
                let (x, y) = (rx * w as f32, ry * h as f32);
                BBox { x1: x, y1: y, x2: x + rw * w as f32, y2: y + rh * h as f32 }
            })
            .collect();
        {
            let refs: Vec<&mut [u8]> = planes.iter_mut().map(|v| v.as_mut_slice()).collect();
            let mut img = ImageViewMut::new(f, w, h, refs, &strides, YuvMatrix::BT709).unwrap();
            let view = img.as_view();
            // The detector's input, with tiles, and the mosaic of cells around every box (the
            // known faces looked for again), boxes partly or wholly outside the frame included.
            let mut prepared = Prepared::default();
            let mut lb = Letterboxer::default();
            lb.prepare(&view, 192, tiles, 0.6, &mut prepared).unwrap();
            let crops: Vec<_> = boxes.iter().map(gstfaceemotion::scan::cell_crop).collect();
            let _ = lb.mosaics(&view, &crops, 2, 0.5, &mut prepared);
            prop_assert_eq!(prepared.inputs.len(), prepared.layouts.len() * 192 * 192 * 3);
            prop_assert!(prepared.layouts.iter().all(|l| l.cells.end <= prepared.cells.len()));
            // A classifier crop of every box, at both crop sizes.
            let mut resampler = Resampler::new();
            for b in &boxes {
                for n in [64usize, 112] {
                    let mut out = vec![0u8; n * n * 3];
                    let _ = resampler.resample(&view, crop_region(b, 1.3), n, n, Border::Replicate, &mut out);
                }
            }
            // The tracker takes the boxes as detections, then moves them on.
            let mut tracker = Tracker::new();
            let dets: Vec<Detection> = boxes.iter().map(|&b| face(b, 0).detection).collect();
            for k in 0..3u64 {
                let t = FrameTime { ts: k * 40_000_000, clock: k * 40_000_000, duration: 40_000_000 };
                if k == 1 {
                    tracker.predict(w as f32, h as f32);
                } else {
                    tracker.update(&dets, t, Smoothing::default());
                }
                let mut faces = tracker.faces();
                tracker.finish_frame(&mut faces, &[], &[], &[], t, Smoothing::default());
            }
            let mut known = Vec::new();
            tracker.known_boxes_into(&mut known);
            // Masks over the raw boxes and the tracker's, then the overlay.
            let style = MaskStyle {
                kind: [MaskKind::Gaussian, MaskKind::Pixelate, MaskKind::Solid][kind],
                strength: 0.3,
                padding: 0.25,
            };
            let mut masker = Masker::new();
            masker.mask(&mut img, &boxes, &style);
            masker.mask(&mut img, &known, &style);
            let faces: Vec<Face> = boxes.iter().enumerate().map(|(i, &b)| face(b, i as u64)).collect();
            Painter::new().draw(&mut img, &faces).unwrap();
        }
        // Nothing past each row's pixels was touched.
        for p in 0..f.n_planes() {
            let row = f.plane_size(p, w, h).0;
            for (after, orig) in planes[p].chunks_exact(strides[p]).zip(before[p].chunks_exact(strides[p])) {
                prop_assert_eq!(&after[row..], &orig[row..], "{:?} {}x{} plane {} padding written", f, w, h, p);
            }
        }
    }
}

/// Zone strings: arbitrary text, and text made of the grammar's own pieces (names, colons,
/// numbers in and out of range, commas, spaces, semicolons), so that most cases get deep into
/// the parser.
fn zone_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("a".to_string()),
        Just("till".to_string()),
        Just(":".to_string()),
        Just(";".to_string()),
        Just(",".to_string()),
        Just(" ".to_string()),
        Just("NaN".to_string()),
        Just("inf".to_string()),
        Just("-0".to_string()),
        (0.0f32..1.0).prop_map(|v| format!("{v}")),
        (-2.0f32..3.0).prop_map(|v| format!("{v:.2}")),
        "[0-9.,: ;a-z\u{0}-\u{7f}é]{0,3}",
    ];
    prop_oneof![
        1 => ".{0,60}",
        4 => prop::collection::vec(piece, 0..40).prop_map(|v| v.concat()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any string either parses or is an error that names a zone and a position inside the
    /// string; never a panic. What parses is at least three points in 0..1 with an area, and its
    /// containment test answers for any point.
    #[test]
    fn any_zone_string_parses_or_is_named(text in zone_text(), x in -0.5f32..1.5, y in -0.5f32..1.5) {
        match gstfaceemotion::zone::parse(&text) {
            Ok(set) => {
                for z in &set.zones {
                    prop_assert!(z.points.len() >= 3);
                    prop_assert!(z.points.iter().all(|&(px, py)| (0.0..=1.0).contains(&px) && (0.0..=1.0).contains(&py)));
                    let inside = z.contains(x, y);
                    // Nothing outside the frame is in a zone.
                    prop_assert!(!inside || ((0.0..=1.0).contains(&x) && (0.0..=1.0).contains(&y)));
                }
            }
            Err(e) => {
                prop_assert!(e.zone.starts_with("zone "), "{e}");
                prop_assert!(e.position >= 1 && e.position <= text.chars().count() + 1, "{e} in {text:?}");
            }
        }
    }

    /// The polygon test against rectangles, where the truth is plain: a point away from the
    /// edges is inside exactly when it is between them, whichever corner the points start at
    /// and whichever way round they go.
    #[test]
    fn a_rectangle_holds_what_lies_between_its_edges(
        x0 in 0.0f32..0.45, y0 in 0.0f32..0.45, x1 in 0.55f32..1.0, y1 in 0.55f32..1.0,
        start in 0usize..4, reverse in any::<bool>(), px in 0.0f32..1.0, py in 0.0f32..1.0,
    ) {
        let mut corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)];
        corners.rotate_left(start);
        if reverse {
            corners.reverse();
        }
        let text = format!(
            "r:{}",
            corners.iter().map(|(x, y)| format!("{x},{y}")).collect::<Vec<_>>().join(" ")
        );
        let set = gstfaceemotion::zone::parse(&text).unwrap();
        let near_edge = [(px - x0).abs(), (px - x1).abs(), (py - y0).abs(), (py - y1).abs()]
            .iter()
            .any(|d| *d < 1e-4);
        prop_assume!(!near_edge);
        let truth = px > x0 && px < x1 && py > y0 && py < y1;
        prop_assert_eq!(set.zones[0].contains(px, py), truth);
    }
}
