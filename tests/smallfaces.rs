//! Faces at store-camera distance, with the default settings: the six group photos shrunk into
//! a 3x2 grid at 720p, 1080p and 4K (as the issue lays them out, and at 0.6 of that, which gives
//! faces of 32-53 px at 1080p, 22-36 at 720p, 65-107 at 4K); a real face of about 40 px walking
//! across a 1080p picture, under one id and masked on every frame it is found on; no more false
//! faces than the whole frame alone gives; and a frame of big faces only costs one detector run.

mod common;

use common::footage::{self, picture, Frame};
use common::*;
use gst::prelude::*;

type Rect = (f64, f64, f64, f64);

fn iou(a: Rect, b: Rect) -> f64 {
    let iw = (a.0 + a.2).min(b.0 + b.2) - a.0.max(b.0);
    let ih = (a.1 + a.3).min(b.1 + b.3) - a.1.max(b.1);
    let inter = iw.max(0.0) * ih.max(0.0);
    inter / (a.2 * a.3 + b.2 * b.3 - inter)
}

fn rect(f: &RoiFace) -> Rect {
    (f.rect.0 as f64, f.rect.1 as f64, f.rect.2 as f64, f.rect.3 as f64)
}

/// The faces of a photo at its own size (the whole photo and a 3-column grid), as references.
fn faces_at_full_size(path: &std::path::Path) -> (usize, usize, Vec<Rect>) {
    let (caps, buf) = decode(path, "video/x-raw,format=I420");
    let s = caps.structure(0).unwrap();
    let (w, h) = (
        s.get::<i32>("width").unwrap() as usize,
        s.get::<i32>("height").unwrap() as usize,
    );
    let faces = roi_faces(&run_one(&[("tiles", "3")], &caps, buf));
    (w, h, faces.iter().map(rect).collect())
}

/// The six photos in a 3x2 grid on a `w` x `h` frame, each fitted to its cell and scaled by
/// `scale`, centred; and where their faces are.
fn grid(w: usize, h: usize, scale: f64) -> (Frame, Vec<Rect>) {
    let photos: Vec<_> = (1..=6).map(group_photo).collect();
    let frame = footage::grid_frame(&photos, w, h, scale);
    let mut refs = Vec::new();
    for (i, path) in photos.iter().enumerate() {
        let (pw0, ph0, faces) = faces_at_full_size(path);
        let (x, y, pw, ph) = footage::grid_place(i, w, h, pw0, ph0, scale);
        let (sx, sy) = (pw as f64 / pw0 as f64, ph as f64 / ph0 as f64);
        refs.extend(
            faces
                .iter()
                .map(|f| (x as f64 + f.0 * sx, y as f64 + f.1 * sy, f.2 * sx, f.3 * sy)),
        );
    }
    (frame, refs)
}

/// `n` frames of the same picture, 30 per second, through the element; its output buffers and
/// final stats.
fn still_clip(frame: &Frame, n: usize, props: &[(&str, &str)]) -> (Vec<gst::Buffer>, gst::Structure) {
    init();
    let mut h = gst_check::Harness::new("faceemotion");
    for (k, v) in props {
        h.element().unwrap().set_property_from_str(k, v);
    }
    h.set_src_caps(frame.caps());
    let mut out = Vec::new();
    for k in 0..n as u64 {
        let mut b = gst::Buffer::from_slice(frame.data.clone());
        let bm = b.get_mut().unwrap();
        bm.set_pts(gst::ClockTime::SECOND.mul_div_floor(k, 30));
        bm.set_duration(gst::ClockTime::SECOND.mul_div_floor(1, 30));
        h.push(b).unwrap();
        // Pipelining holds one frame until the next comes.
        while let Some(o) = h.try_pull() {
            out.push(o);
        }
    }
    h.push_event(gst::event::Eos::new());
    while let Some(o) = h.try_pull() {
        out.push(o);
    }
    let stats = h.element().unwrap().property::<gst::Structure>("stats");
    (out, stats)
}

/// References found on a frame's faces (IoU of at least one half).
fn found(refs: &[Rect], faces: &[RoiFace]) -> usize {
    refs.iter()
        .filter(|r| faces.iter().any(|f| iou(**r, rect(f)) >= 0.5))
        .count()
}

#[test]
fn every_face_of_the_shrunk_grid_is_found_at_720p_1080p_and_4k() {
    let mut report = Vec::new();
    for (w, h) in [(1280, 720), (1920, 1080), (3840, 2160)] {
        for scale in [1.0, 0.6] {
            let (frame, refs) = grid(w, h, scale);
            assert_eq!(refs.len(), 22, "every face of the photos at full size");
            let smallest = refs.iter().map(|r| r.2.max(r.3)).fold(f64::MAX, f64::min);
            // One scan of the grid (15 tiles at 16:9), and more.
            let (out, _) = still_clip(&frame, 24, &[]);
            assert_eq!(out.len(), 24);
            let last = roi_faces(&out[23]);
            let n = found(&refs, &last);
            report.push(format!(
                "{w}x{h} at {scale} (faces from {smallest:.0} px): {n}/22, {} reported",
                last.len()
            ));
            // Every frame after the first full search finds them too.
            let per_frame: Vec<usize> = out.iter().map(|b| found(&refs, &roi_faces(b))).collect();
            eprintln!("{w}x{h} at {scale}: {per_frame:?}");
            assert!(n >= 20, "{}", report.join("\n"));
            assert!(per_frame.iter().all(|&n| n >= 20), "{w}x{h} at {scale}: {per_frame:?}");
        }
    }
    eprintln!("{}", report.join("\n"));
}

#[test]
fn no_more_false_faces_than_the_whole_frame_alone() {
    let coffee = data("coffee.png");
    let mut frame = Frame::new(1920, 1080);
    frame.paste(&picture(&coffee, 1920, 1080), 1920, 1080, 0, 0);
    let black = Frame::new(1920, 1080);
    for (name, f) in [("coffee", &frame), ("black", &black)] {
        let count = |props: &[(&str, &str)]| {
            let (out, _) = still_clip(f, 20, props);
            out.iter().map(|b| roi_faces(b).len()).max().unwrap_or(0)
        };
        let (auto, whole) = (count(&[]), count(&[("tiles", "1")]));
        assert!(
            auto <= whole,
            "{name}: {auto} false faces, the whole frame alone {whole}"
        );
    }
}

#[test]
fn a_frame_of_big_faces_costs_one_detector_run() {
    // Sample 5's faces are large at 1080p: the whole frame finds them; after the first frame's
    // full search, the still picture costs one run a frame (no motion, no small face to look for).
    let mut frame = Frame::new(1920, 1080);
    let path = group_photo(5);
    let (pw0, ph0, faces) = faces_at_full_size(&path);
    assert_eq!(faces.len(), 5);
    let fit = (1920.0 / pw0 as f64).min(1080.0 / ph0 as f64);
    let (pw, ph) = ((pw0 as f64 * fit) as usize / 2 * 2, (ph0 as f64 * fit) as usize / 2 * 2);
    frame.paste(
        &picture(&path, pw, ph),
        pw,
        ph,
        (1920 - pw) / 4 * 2,
        (1080 - ph) / 4 * 2,
    );
    let (out, stats) = still_clip(&frame, 30, &[]);
    assert!(out.iter().all(|b| roi_faces(b).len() == 5));
    let runs = stats.get::<u64>("detector-runs").unwrap();
    assert_eq!(
        runs,
        16 + 29,
        "the first frame in full (the whole and 15 tiles), then one run a frame: {stats}"
    );
}

/// The bundled clip's astronaut shrunk to a 40 px face, walking across a 1080p picture of a
/// kitchen: found on at least 90 % of the frames, with one id, and masked on every one of them.
#[test]
fn a_small_face_walking_across_the_frame_keeps_one_id_and_its_mask() {
    init();
    let clip = cached(&clip_dir().join("walking-small-face.mp4"), |tmp| {
        footage::write_walking_clip(&data("astronaut-pan.mp4"), &data("coffee.png"), tmp)
    });
    // Where the face is: the element's box on the clip at its own size, moved and shrunk.
    let (p, sink) = with_appsink(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! faceemotion tiles=1 draw=false ! appsink name=sink sync=false",
        data("astronaut-pan.mp4").display()
    ));
    p.set_state(gst::State::Playing).unwrap();
    let mut truth = Vec::new();
    while let Some(s) = sink.try_pull_sample(STALL) {
        let k = truth.len();
        truth.push(roi_faces(s.buffer().unwrap()).first().map(|f| {
            let (r, (x, y), sc) = (rect(f), footage::walk(k), footage::WALK_SCALE);
            (x as f64 + r.0 * sc, y as f64 + r.1 * sc, r.2 * sc, r.3 * sc)
        }));
    }
    assert!(sink.is_eos());
    p.set_state(gst::State::Null).unwrap();
    assert_eq!(truth.len(), 180);
    let side = truth.iter().flatten().map(|r| r.2.max(r.3)).sum::<f64>() / truth.iter().flatten().count() as f64;
    assert!((35.0..=48.0).contains(&side), "the face is about 40 px: {side:.1}");

    // Today's default (the whole frame only) does not see her.
    let run = |props: &str| {
        let (p, sink) = with_appsink(&format!(
            "filesrc location=\"{}\" ! decodebin ! videoconvert ! video/x-raw,format=I420 ! faceemotion {props} ! appsink name=sink sync=false",
            clip.display()
        ));
        p.set_state(gst::State::Playing).unwrap();
        let mut frames = Vec::new();
        while let Some(s) = sink.try_pull_sample(STALL) {
            let b = s.buffer().unwrap();
            let m = b.map_readable().unwrap();
            frames.push((roi_faces(b), m.as_slice().to_vec()));
        }
        assert!(sink.is_eos());
        p.set_state(gst::State::Null).unwrap();
        frames
    };
    let whole = run("tiles=1 draw=false");
    let seen_whole = whole
        .iter()
        .zip(&truth)
        .filter(|((f, _), t)| t.is_some_and(|t| f.iter().any(|f| iou(t, rect(f)) >= 0.4)))
        .count();
    assert!(
        seen_whole < 18,
        "the whole frame alone finds her on {seen_whole} frames"
    );

    let frames = run("blur=solid draw=false");
    assert_eq!(frames.len(), 180);
    let (mut found_on, mut ids) = (0, std::collections::BTreeSet::new());
    for (k, ((faces, pixels), t)) in frames.iter().zip(&truth).enumerate() {
        let Some(t) = t else { continue };
        let Some(f) = faces.iter().find(|f| iou(*t, rect(f)) >= 0.4) else {
            continue;
        };
        found_on += 1;
        ids.insert(f.id);
        // Masked: the face's centre is black (solid mask, Y = 16).
        let (cx, cy) = ((t.0 + t.2 / 2.0) as usize, (t.1 + t.3 / 2.0) as usize);
        assert!(pixels[cy * 1920 + cx] <= 17, "frame {k}: not masked");
    }
    let with_face = truth.iter().flatten().count();
    eprintln!("found on {found_on} of {with_face} frames, ids {ids:?}");
    assert!(
        found_on * 10 >= with_face * 9,
        "found on {found_on} of {with_face} frames"
    );
    assert_eq!(ids.len(), 1, "one id: {ids:?}");
}

/// How right emotion and gender are on faces of 32-53 px (the grid at 1080p, scaled 0.6): each
/// face's labels on the grid, once its person's averages have settled, against the same face's
/// labels on the photo at full size. Prints the figures the README gives.
#[test]
fn emotion_and_gender_on_faces_of_32_to_53_px() {
    let photos: Vec<_> = (1..=6).map(group_photo).collect();
    let (w, h, scale) = (1920, 1080, 0.6);
    let frame = footage::grid_frame(&photos, w, h, scale);
    // Full-size references with their labels (the photos' own frame, per-frame answers).
    let mut refs: Vec<(Rect, String, String)> = Vec::new();
    for (i, path) in photos.iter().enumerate() {
        let (caps, buf) = decode(path, "video/x-raw,format=I420");
        let s = caps.structure(0).unwrap();
        let (pw0, ph0) = (
            s.get::<i32>("width").unwrap() as usize,
            s.get::<i32>("height").unwrap() as usize,
        );
        let faces = roi_faces(&run_one(&[("tiles", "3"), ("smoothing", "0")], &caps, buf));
        let (x, y, pw, ph) = footage::grid_place(i, w, h, pw0, ph0, scale);
        let (sx, sy) = (pw as f64 / pw0 as f64, ph as f64 / ph0 as f64);
        for f in &faces {
            let r = rect(f);
            refs.push((
                (x as f64 + r.0 * sx, y as f64 + r.1 * sy, r.2 * sx, r.3 * sy),
                f.emotion(),
                f.gender(),
            ));
        }
    }
    assert_eq!(refs.len(), 22);
    let (out, _) = still_clip(&frame, 45, &[]);
    let last = roi_faces(&out[44]);
    let (mut found, mut same_emotion, mut female, mut same_gender) = (0, 0, 0, 0);
    for (r, emotion, gender) in &refs {
        let Some(f) = last.iter().find(|f| iou(*r, rect(f)) >= 0.5) else {
            continue;
        };
        found += 1;
        same_emotion += (f.emotion() == *emotion) as usize;
        same_gender += (f.gender() == *gender) as usize;
        female += (f.gender() == "female") as usize;
    }
    let full_female = refs.iter().filter(|r| r.2 == "female").count();
    eprintln!(
        "faces of 32-53 px at 1080p: {found}/22 found; emotion as at full size on {same_emotion}/{found}; \
         gender as at full size on {same_gender}/{found}; female (all 22 are women) {female}/{found}, at full size {full_female}/22"
    );
    assert!(found >= 20);
    // Loose floors under what was measured (README): small faces lose detail, not every label.
    assert!(
        same_emotion * 2 >= found,
        "emotion on small faces: {same_emotion}/{found}"
    );
    assert!(female * 3 >= found * 2, "gender on small faces: {female}/{found}");
}
