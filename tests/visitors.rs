//! Visitors, not face tracks: the descriptor tells the labelled faces apart, and on footage made
//! of real photos a person who comes back within `reid-window` is the same visitor, after it a
//! new one, strangers stay apart, and `reid-window=0` gives what the element gave without
//! recognition.

mod common;

use std::path::PathBuf;

use gst::prelude::*;
use gstfaceemotion::analysis::{Analyzer, ModelConfig, Params};
use gstfaceemotion::descriptor::distance;
use gstfaceemotion::image::{ImageView, PixelFormat, YuvMatrix};
use gstfaceemotion::runtime::{default_model_path, DESCRIPTOR_MODEL, EMOTION_MODEL, FULL_RANGE_MODEL, GENDER_MODEL};
use gstfaceemotion::visitor::DEFAULT_THRESHOLD;

/// Photos of one person at different moments, fetched from PyPI by `scripts/setup.sh --test`.
fn identity_photo(name: &str) -> PathBuf {
    let p = common::data(&format!("face_recognition/{name}.jpg"));
    assert!(
        p.is_file(),
        "{} is missing: run `scripts/setup.sh --test` (fetches PyPI face_recognition 1.3.0's test images)",
        p.display()
    );
    p
}

/// A photo at its own size as RGB: the pixels, width, height and row stride.
fn frame(path: &std::path::Path) -> (Vec<u8>, usize, usize, usize) {
    let (caps, buf) = common::decode(path, "video/x-raw,format=RGB");
    let info = gst_video::VideoInfo::from_caps(&caps).unwrap();
    let data = buf.map_readable().unwrap().to_vec();
    (
        data,
        info.width() as usize,
        info.height() as usize,
        info.stride()[0] as usize,
    )
}

/// Every labelled face the tests have, with who it is: the 22 women of the six group photos
/// (each her own person), Obama in three photos, Biden, the astronaut.
fn labelled() -> Vec<(String, PathBuf, usize)> {
    let mut out = Vec::new();
    for i in 1..=6 {
        out.push((format!("group{i}"), common::group_photo(i), common::GROUP_FACES[i - 1]));
    }
    for name in ["obama", "obama2", "obama3", "biden"] {
        out.push((name.to_string(), identity_photo(name), 1));
    }
    out.push(("astronaut".into(), common::data("astronaut.png"), 1));
    out
}

/// A face's person: the photo's name for the group photos' women (with their place in it),
/// Obama for his three photos.
fn person(photo: &str, k: usize) -> String {
    match photo {
        p if p.starts_with("group") => format!("{p}/{k}"),
        p if p.starts_with("obama") => "obama".into(),
        p => p.into(),
    }
}

#[test]
fn the_descriptor_tells_every_labelled_face_apart_and_knows_obama_again() {
    common::init();
    let mut analyzer = Analyzer::new(ModelConfig {
        detector: default_model_path(FULL_RANGE_MODEL),
        emotion: vec![default_model_path(EMOTION_MODEL)],
        gender: vec![default_model_path(GENDER_MODEL)],
        descriptor: Some(default_model_path(DESCRIPTOR_MODEL)),
        threads: 0,
        ort_library: None,
        group: String::new(),
    })
    .unwrap();
    let mut faces: Vec<(String, String, Vec<f32>)> = Vec::new();
    for (photo, path, expected) in labelled() {
        let (data, w, h, stride) = frame(&path);
        let img = ImageView::new(PixelFormat::Rgb, w, h, &[&data], &[stride], YuvMatrix::BT601).unwrap();
        let mut dets = analyzer.detect(&img, &Params::default()).unwrap();
        assert_eq!(dets.len(), expected, "{photo}: faces found");
        dets.sort_by(|a, b| a.bbox.x1.total_cmp(&b.bbox.x1));
        let (descriptors, finite) = analyzer.describe(&img, dets.iter()).unwrap();
        assert!(finite.iter().all(|&f| f), "{photo}: every face described");
        let dims = descriptors.len() / dets.len();
        for (k, d) in descriptors.chunks_exact(dims).enumerate() {
            faces.push((photo.clone(), person(&photo, k), d.to_vec()));
        }
    }
    assert_eq!(faces.len(), 22 + 3 + 1 + 1);
    let (mut same, mut different) = (Vec::new(), Vec::new());
    for i in 0..faces.len() {
        for j in i + 1..faces.len() {
            let d = distance(&faces[i].2, &faces[j].2);
            let pair = (d, format!("{} - {}", faces[i].1, faces[j].1));
            if faces[i].1 == faces[j].1 {
                same.push(pair);
            } else {
                different.push(pair);
            }
        }
    }
    same.sort_by(|a, b| a.0.total_cmp(&b.0));
    different.sort_by(|a, b| a.0.total_cmp(&b.0));
    println!("same person ({} pairs): {:?}", same.len(), same);
    println!("closest different people: {:?}", &different[..5]);
    println!("| threshold | same-person pairs apart (a return missed) | different pairs below (strangers merged) |");
    println!("|---|---|---|");
    for t in [0.28f32, 0.30, 0.32, 0.34, 0.36, 0.38, 0.40, 0.42] {
        let missed = same.iter().filter(|p| p.0 >= t).count();
        let merged = different.iter().filter(|p| p.0 < t).count();
        println!(
            "| {t:.2} | {missed} of {} | {merged} of {} |",
            same.len(),
            different.len()
        );
    }
    assert_eq!(same.len(), 3);
    assert!(
        same.iter().all(|p| p.0 < DEFAULT_THRESHOLD),
        "Obama's photos apart: {same:?}"
    );
    assert!(
        different[0].0 >= DEFAULT_THRESHOLD,
        "different people closer than the threshold: {:?}",
        &different[..3]
    );
}

/// What a run said of each track: its visitor, visit and whether returning, from its appeared
/// event, checked against its left event and against every frame's metadata.
#[derive(Debug, Clone, PartialEq)]
struct Visit {
    track: u64,
    visitor: u64,
    visit: u32,
    returning: bool,
    gender: Option<String>,
}

fn visits(run: &common::Run) -> Vec<Visit> {
    let get = |s: &gst::StructureRef| Visit {
        track: s.get::<u64>("id").unwrap(),
        visitor: s.get::<u64>("visitor").expect("visitor in the track event"),
        visit: s.get::<u32>("visit").expect("visit in the track event"),
        returning: s.get::<bool>("returning").expect("returning in the track event"),
        gender: s.get::<String>("gender").ok(),
    };
    let appeared: Vec<Visit> = run
        .tracks
        .iter()
        .filter(|s| s.get::<&str>("event").unwrap() == "appeared")
        .map(|s| get(s))
        .collect();
    for s in run.tracks.iter().filter(|s| s.get::<&str>("event").unwrap() == "left") {
        let left = get(s);
        let a = appeared
            .iter()
            .find(|a| a.track == left.track)
            .expect("left without appeared");
        assert_eq!(
            (a.visitor, a.visit, a.returning),
            (left.visitor, left.visit, left.returning),
            "a track's visit does not change"
        );
    }
    // Every face of a person on every frame names the visitor beside the track.
    for faces in &run.frames {
        for f in faces {
            if let Some(a) = appeared.iter().find(|a| a.track == f.id as u64) {
                let on_frame = f.param("detection").get::<u64>("visitor_id").ok();
                assert!(on_frame.is_none() || on_frame == Some(a.visitor), "{f:?} against {a:?}");
            }
        }
    }
    appeared
}

/// Obama, an empty room, Biden, an empty room, Obama in another photo (another moment, pose and
/// scale), an empty room, Obama in a third: each absence longer than the track timeout.
fn comings_and_goings() -> PathBuf {
    let empty = common::data("coffee.png");
    common::stills_clip(
        "visitors-obama-biden",
        &[
            (identity_photo("obama"), 90),
            (empty.clone(), 60),
            (identity_photo("biden"), 90),
            (empty.clone(), 60),
            (identity_photo("obama2"), 90),
            (empty.clone(), 60),
            (identity_photo("obama3"), 90),
        ],
    )
}

/// The `faceemotion-track` messages of `p`, in the order they are posted (a sync handler: no
/// main loop needed).
fn track_messages(p: &gst::Pipeline) -> std::sync::Arc<std::sync::Mutex<Vec<gst::Structure>>> {
    let tracks = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let t = tracks.clone();
    p.bus().unwrap().set_sync_handler(move |_, msg| {
        if let gst::MessageView::Element(m) = msg.view() {
            if let Some(s) = m.structure().filter(|s| s.name() == "faceemotion-track") {
                t.lock().unwrap().push(s.to_owned());
            }
        }
        gst::BusSyncReply::Pass
    });
    tracks
}

fn analyse(clip: &std::path::Path, props: &str) -> common::Run {
    common::run_frames(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! faceemotion {props} ! appsink name=sink sync=false",
        clip.display()
    ))
}

#[test]
fn a_person_who_comes_back_within_the_window_is_the_same_visitor() {
    let run = analyse(&comings_and_goings(), "");
    let v = visits(&run);
    let summary: Vec<_> = v.iter().map(|v| (v.visitor, v.visit, v.returning)).collect();
    assert_eq!(v.len(), 4, "four tracks: {v:?}");
    let (obama, biden) = (v[0].visitor, v[1].visitor);
    assert_ne!(obama, biden, "Biden is not Obama: {summary:?}");
    assert_eq!(
        summary,
        [(obama, 1, false), (biden, 1, false), (obama, 2, true), (obama, 3, true)],
        "{v:?}"
    );
    // His returns start from what his first visit learnt: a man throughout.
    assert!(v.iter().all(|v| v.gender.as_deref() == Some("male")), "{v:?}");
    // The descriptor ran a few times a visit (at most three views), not on every frame.
    let stats = run.stats.expect("stats");
    let described = stats.get::<u64>("faces-described").unwrap();
    assert!((4..=12).contains(&described), "{described} faces described: {stats}");
}

#[test]
fn after_the_window_a_person_is_a_new_visitor() {
    // Obama leaves at about 4 s (3 s seen, then the 1 s timeout) and is back at 10 s: past a
    // 5 s window. His third photo comes 2 s after the second leaves: within it.
    let run = analyse(&comings_and_goings(), "reid-window=5");
    let v = visits(&run);
    let summary: Vec<_> = v.iter().map(|v| (v.visitor, v.visit)).collect();
    assert_eq!(v.len(), 4, "{v:?}");
    let (first, biden, again) = (v[0].visitor, v[1].visitor, v[2].visitor);
    assert!(first != again && biden != again && first != biden, "{summary:?}");
    assert_eq!(summary, [(first, 1), (biden, 1), (again, 1), (again, 2)]);
}

#[test]
fn strangers_stay_apart_and_each_is_known_again() {
    // The 22 women of the six group photos, one photo after another with an empty room between,
    // then the first photo again.
    let empty = common::data("coffee.png");
    let mut parts = Vec::new();
    for i in (1..=6).chain([1]) {
        parts.push((common::group_photo(i), 45));
        parts.push((empty.clone(), 45));
    }
    let run = analyse(&common::stills_clip("visitors-strangers", &parts), "");
    let v = visits(&run);
    let firsts: Vec<_> = v.iter().filter(|v| !v.returning).collect();
    let returns: Vec<_> = v.iter().filter(|v| v.returning).collect();
    let visitors: Vec<u64> = firsts.iter().map(|v| v.visitor).collect();
    let distinct: std::collections::HashSet<u64> = visitors.iter().copied().collect();
    assert_eq!(firsts.len(), 22, "22 women, 22 visitors: {v:?}");
    assert_eq!(distinct.len(), 22, "{v:?}");
    assert_eq!(returns.len(), 3, "the first photo's three women again: {v:?}");
    // They are the first photo's women, the first three visitors.
    let mut back: Vec<u64> = returns.iter().map(|v| v.visitor).collect();
    back.sort();
    assert_eq!(back, visitors[..3].to_vec(), "{v:?}");
}

#[test]
fn recognition_off_gives_what_the_element_gave_without_it() {
    let clip = comings_and_goings();
    let on = analyse(&clip, "");
    // Off, nothing is loaded: a descriptor model that does not exist is no error.
    let off = analyse(&clip, "reid-window=0 descriptor-model=/nonexistent/descriptor.onnx");
    assert_eq!(on.frames.len(), off.frames.len());
    for (n, (a, b)) in on.frames.iter().zip(&off.frames).enumerate() {
        let strip = |faces: &[common::RoiFace]| {
            faces
                .iter()
                .map(|f| {
                    (
                        f.rect,
                        f.id,
                        f.params.iter().find(|p| p.name() == "emotion").map(|p| p.to_string()),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            strip(a),
            strip(b),
            "frame {n}: boxes, ids and emotions are recognition's business"
        );
        for f in b {
            assert!(
                f.param("detection").get::<u64>("visitor_id").is_err(),
                "frame {n}: {f:?}"
            );
        }
    }
    let events = |r: &common::Run| {
        r.tracks
            .iter()
            .map(|s| {
                let g = |k: &str| s.get::<u64>(k).unwrap();
                (
                    s.get::<String>("event").unwrap(),
                    g("id"),
                    g("first"),
                    g("last"),
                    g("frames"),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(events(&on), events(&off));
    let described = |r: &common::Run| r.stats.as_ref().unwrap().get::<u64>("faces-described").unwrap();
    assert_eq!(described(&off), 0, "recognition off describes no face");
    assert!(described(&on) > 0);
    for s in &off.tracks {
        for k in ["visitor", "visit", "returning"] {
            assert!(!s.has_field(k), "{s}");
        }
    }
    // The first visits' estimates are the same too: only a return builds on the one before.
    let first_gender = |r: &common::Run| r.tracks[0].get::<String>("gender").ok();
    assert_eq!(first_gender(&on), first_gender(&off));
}

#[test]
fn with_faces_masked_recognition_still_works_and_the_picture_stays_anonymised() {
    common::init();
    let clip = comings_and_goings();
    let (p, sink) = common::with_appsink(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! video/x-raw,format=I420 \
         ! faceemotion blur=solid draw=false ! appsink name=sink sync=false",
        clip.display()
    ));
    let tracks = track_messages(&p);
    p.set_state(gst::State::Playing).unwrap();
    let (mut frames, mut masked) = (Vec::new(), 0);
    while let Some(s) = sink.try_pull_sample(common::STALL) {
        let b = s.buffer().unwrap();
        let faces = common::roi_faces(b);
        let m = b.map_readable().unwrap();
        for f in &faces {
            // The centre of every face is black (luma 16): the picture goes out anonymised.
            let (cx, cy) = f.center();
            let luma = m[cy as usize * 1920 + cx as usize];
            assert!(luma <= 17, "luma {luma} at the centre of {f:?}");
            masked += 1;
        }
        frames.push(faces);
    }
    assert!(sink.is_eos(), "the pipeline stalled before its end");
    p.set_state(gst::State::Null).unwrap();
    assert!(masked > 300, "{masked} faces masked");
    let run = common::Run {
        frames,
        pts: Vec::new(),
        tracks: tracks.lock().unwrap().clone(),
        events: Vec::new(),
        stats: None,
    };
    let v = visits(&run);
    let summary: Vec<_> = v.iter().map(|v| (v.visitor, v.visit)).collect();
    let (obama, biden) = (v[0].visitor, v[1].visitor);
    assert_eq!(summary, [(obama, 1), (biden, 1), (obama, 2), (obama, 3)], "{v:?}");
}

#[test]
fn recognition_switched_off_while_playing_drops_every_visitor_at_once_and_on_again_starts_afresh() {
    common::init();
    let clip = comings_and_goings();
    let (p, sink) = common::with_appsink(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! faceemotion name=fe ! appsink name=sink sync=false",
        clip.display()
    ));
    let fe = p.by_name("fe").unwrap();
    // Off on Obama's 45th frame (he is a visitor by then), on again between his second and
    // third photos: set from the streaming thread, just before the element sees the frame.
    let switched = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (sw, el) = (switched.clone(), fe.clone());
    let n = std::sync::atomic::AtomicU32::new(0);
    fe.static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(b) = info.buffer() {
                let window = match n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 {
                    45 => Some(0u32),
                    420 => Some(600),
                    _ => None,
                };
                if let Some(w) = window {
                    el.set_property("reid-window", w);
                    sw.lock().unwrap().push(b.pts().unwrap());
                }
            }
            gst::PadProbeReturn::Ok
        });
    let tracks = track_messages(&p);
    p.set_state(gst::State::Playing).unwrap();
    let mut frames = Vec::new();
    while let Some(s) = sink.try_pull_sample(common::STALL) {
        let b = s.buffer().unwrap();
        frames.push((b.pts().unwrap(), common::roi_faces(b)));
    }
    assert!(sink.is_eos(), "the pipeline stalled before its end");
    p.set_state(gst::State::Null).unwrap();
    let (off, on) = match switched.lock().unwrap()[..] {
        [off, on] => (off, on),
        ref other => panic!("switched {other:?}"),
    };
    let visitor = |f: &common::RoiFace| f.param("detection").get::<u64>("visitor_id").ok();
    let (mut before, mut after) = (0, 0);
    for (pts, faces) in &frames {
        for f in faces {
            let v = visitor(f);
            if *pts >= off && *pts < on {
                assert_eq!(v, None, "at {pts}, recognition off since {off}: {f:?}");
            } else if *pts < off {
                before += v.is_some() as u32;
            } else {
                after += v.is_some() as u32;
            }
        }
    }
    assert!(
        before > 0 && after > 0,
        "{before} faces with a visitor before, {after} after"
    );
    let tracks = tracks.lock().unwrap().clone();
    let fields = |s: &gst::Structure| ["visitor", "visit", "returning"].map(|k| s.has_field(k));
    let (first, last) = (&tracks[0], tracks.last().unwrap());
    // Obama's first track appeared a visitor and left with recognition off: its visit went
    // with the gallery. Biden and Obama's second photo came and went unrecognised.
    assert_eq!(first.get::<&str>("event").unwrap(), "appeared");
    assert_eq!(fields(first), [true; 3], "{first}");
    for s in &tracks[1..tracks.len() - 2] {
        assert_eq!(fields(s), [false; 3], "{s}");
    }
    // On again, the third photo's Obama is a visitor on a first visit: nothing was kept.
    assert_eq!(last.get::<&str>("event").unwrap(), "left");
    assert_eq!(
        (
            last.get::<u32>("visit").unwrap(),
            last.get::<bool>("returning").unwrap()
        ),
        (1, false),
        "{last}"
    );
}
