//! Tracking on real footage: stable ids, faces carried between detector runs, labels kept
//! between classifications.

mod common;

use common::*;
use gst::prelude::*;

/// Runs the bundled clip (the astronaut, zooming and panning) and returns each frame's faces
/// and the element's `stats` at the end.
fn run_clip(props: &str) -> (Vec<Vec<RoiFace>>, gst::Structure) {
    init();
    let desc = format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! faceemotion name=fe {props} ! appsink name=sink sync=false",
        data("astronaut-pan.mp4").display()
    );
    let (p, sink) = with_appsink(&desc);
    p.set_state(gst::State::Playing).unwrap();
    let mut frames = Vec::new();
    while let Some(s) = sink.try_pull_sample(STALL) {
        frames.push(roi_faces(s.buffer().unwrap()));
    }
    assert!(sink.is_eos(), "the pipeline stalled before its end");
    let stats = p.by_name("fe").unwrap().property::<gst::Structure>("stats");
    p.set_state(gst::State::Null).unwrap();
    (frames, stats)
}

fn faces_per_frame(props: &str) -> Vec<Vec<RoiFace>> {
    run_clip(props).0
}

fn iou(a: (u32, u32, u32, u32), b: (u32, u32, u32, u32)) -> f64 {
    let (ax2, ay2, bx2, by2) = (a.0 + a.2, a.1 + a.3, b.0 + b.2, b.1 + b.3);
    let iw = ax2.min(bx2).saturating_sub(a.0.max(b.0)) as f64;
    let ih = ay2.min(by2).saturating_sub(a.1.max(b.1)) as f64;
    let inter = iw * ih;
    inter / ((a.2 * a.3) as f64 + (b.2 * b.3) as f64 - inter)
}

#[test]
fn one_face_keeps_its_id_across_the_clip() {
    for props in ["", "inference-interval=3 reclassify-interval=5"] {
        let frames = faces_per_frame(props);
        assert_eq!(frames.len(), 180, "{props}: every buffer comes out");
        let with_face: Vec<&RoiFace> = frames.iter().filter_map(|f| f.first()).collect();
        assert!(
            with_face.len() >= 175,
            "{props}: {} frames with a face",
            with_face.len()
        );
        assert!(frames.iter().all(|f| f.len() <= 1), "{props}: a second face appeared");
        let id = with_face[0].id;
        assert!(id > 0);
        assert!(with_face.iter().all(|f| f.id == id), "{props}: the id changed");
        assert!(with_face
            .iter()
            .all(|f| f.param("detection").get::<i32>("object_id").unwrap() == id));
        // The box follows the face smoothly, also on frames the detector skipped.
        for w in with_face.windows(2) {
            assert!(
                iou(w[0].rect, w[1].rect) > 0.6,
                "{props}: {:?} -> {:?}",
                w[0].rect,
                w[1].rect
            );
        }
        let happy = with_face.iter().filter(|f| f.emotion() == "happy").count();
        assert!(happy >= 170, "{props}: {happy} happy");
    }
}

#[test]
fn labels_are_kept_between_classifications() {
    // Classified every 4th frame: the emotion confidence can only change on those frames.
    let frames = faces_per_frame("reclassify-interval=4");
    let conf: Vec<f64> = frames
        .iter()
        .filter_map(|f| f.first())
        .map(|f| f.param("emotion").get::<f64>("confidence").unwrap())
        .collect();
    let changes = conf.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(
        changes <= conf.len() / 4 + 2,
        "{changes} changes over {} frames",
        conf.len()
    );
    assert!(
        changes >= conf.len() / 8,
        "labels were never refreshed ({changes} changes)"
    );
}

#[test]
fn gender_interval_refreshes_gender_rarely_and_emotion_every_frame() {
    let frames = faces_per_frame("gender-interval=30");
    let faces: Vec<&RoiFace> = frames.iter().filter_map(|f| f.first()).collect();
    let changes = |param: &str| {
        let v: Vec<f64> = faces
            .iter()
            .map(|f| f.param(param).get::<f64>("confidence").unwrap())
            .collect();
        v.windows(2).filter(|w| w[0] != w[1]).count()
    };
    assert!(
        changes("gender") <= faces.len() / 30 + 2,
        "gender changed {} times",
        changes("gender")
    );
    assert!(
        changes("emotion") >= faces.len() / 2,
        "emotion changed {} times",
        changes("emotion")
    );
    assert!(
        faces.iter().all(|f| f.params.iter().any(|p| p.name() == "age")),
        "age kept between runs"
    );
}

#[test]
fn pipelining_changes_nothing_but_the_timing() {
    // The clip comes from a file (not live), so pipelining=auto holds frames; on and off must
    // give the same faces, ids and labels on every frame.
    for props in ["", "inference-interval=3 reclassify-interval=2"] {
        let on = faces_per_frame(&format!("{props} pipelining=on"));
        let off = faces_per_frame(&format!("{props} pipelining=off"));
        assert_eq!(on.len(), 180, "{props}: every buffer comes out");
        assert_eq!(off.len(), 180, "{props}: every buffer comes out");
        for (i, (a, b)) in on.iter().zip(&off).enumerate() {
            assert_eq!(a.len(), b.len(), "{props}: frame {i}");
            for (fa, fb) in a.iter().zip(b) {
                let (ra, rb) = (fa.rect, fb.rect);
                let close = [(ra.0, rb.0), (ra.1, rb.1), (ra.2, rb.2), (ra.3, rb.3)]
                    .iter()
                    .all(|(p, q)| p.abs_diff(*q) <= 1);
                assert!(close, "{props}: frame {i}: {ra:?} vs {rb:?}");
                assert_eq!(fa.id, fb.id, "{props}: frame {i}");
                assert_eq!(fa.emotion(), fb.emotion(), "{props}: frame {i}");
                assert_eq!(fa.gender(), fb.gender(), "{props}: frame {i}");
            }
        }
    }
}

/// The `stats` of the element after the bundled clip, with `props`.
fn stats_after_clip(props: &str) -> gst::Structure {
    let (frames, stats) = run_clip(props);
    // Between answers every face keeps its person's gender and age.
    let with_gender = frames
        .iter()
        .flatten()
        .filter(|f| f.params.iter().any(|p| p.name() == "gender"))
        .count();
    assert!(with_gender >= 175, "{props}: {with_gender} faces with a gender");
    stats
}

#[test]
fn gender_and_age_are_asked_less_often_as_the_evidence_grows() {
    let count = |s: &gst::Structure, f: &str| s.get::<u64>(f).unwrap();
    let auto = stats_after_clip("");
    let faces = count(&auto, "faces");
    assert!(faces >= 175, "{faces} faces");
    assert_eq!(
        count(&auto, "emotion-classified"),
        faces,
        "emotion of every face on every frame"
    );
    let tapered = count(&auto, "gender-classified");
    // The first 8 frames, then gaps of 2, 4, 8 and every 10th frame: about 27 in 180 frames
    // (more for a face that grows by a quarter between two answers).
    assert!(
        (faces / 10..=faces / 3).contains(&tapered),
        "{tapered} gender answers of {faces} faces"
    );
    let every = stats_after_clip("gender-interval=1");
    assert_eq!(
        count(&every, "gender-classified"),
        count(&every, "faces"),
        "gender-interval=1: every face"
    );
    let raw = stats_after_clip("smoothing=0");
    assert_eq!(
        count(&raw, "gender-classified"),
        count(&raw, "faces"),
        "smoothing=0 shows each frame's own answer: asked on every frame"
    );
}
