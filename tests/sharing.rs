//! Several cameras in one process: the elements share one loaded copy of each model and one
//! inference pool, and still never mix models or results; an element that changes its model
//! changes only its own; elements removed and added while others play leave nothing behind.

mod common;

use common::*;
use gst::prelude::*;
use gstfaceemotion::registry;

/// One test at a time: they count the models and threads of the whole process.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn models(file: &str) -> String {
    format!("{}/models/{file}", env!("CARGO_MANIFEST_DIR"))
}

/// Each frame's faces, as (box, id, emotion label and confidence, gender label and confidence).
type Frames = Vec<Vec<Summary>>;
type Summary = ((u32, u32, u32, u32), i32, String, String);

fn summary(faces: &[RoiFace]) -> Vec<Summary> {
    faces
        .iter()
        .map(|f| {
            let c = |p: &str| {
                f.params
                    .iter()
                    .find(|s| s.name() == p)
                    .map(|s| {
                        format!(
                            "{} {:.5}",
                            s.get::<String>("label").unwrap(),
                            s.get::<f64>("confidence").unwrap()
                        )
                    })
                    .unwrap_or_default()
            };
            (f.rect, f.id, c("emotion"), c("gender"))
        })
        .collect()
}

/// Runs `branches` (each a source and faceemotion properties) in one pipeline, each ending in
/// `appsink name=sinkN`; every branch's frames.
fn run_branches(branches: &[(String, String)]) -> Vec<Frames> {
    init();
    let desc: Vec<String> = branches
        .iter()
        .enumerate()
        .map(|(i, (src, props))| {
            format!("{src} ! videoconvert ! faceemotion name=fe{i} {props} ! appsink name=sink{i} sync=false")
        })
        .collect();
    let p = gst::parse::launch(&desc.join(" "))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let sinks: Vec<gst_app::AppSink> = (0..branches.len())
        .map(|i| p.by_name(&format!("sink{i}")).unwrap().downcast().unwrap())
        .collect();
    p.set_state(gst::State::Playing).unwrap();
    // Each sink on a thread of its own, so that no branch waits for another's reader.
    let readers: Vec<_> = sinks
        .into_iter()
        .map(|sink| {
            std::thread::spawn(move || {
                let mut frames = Vec::new();
                while let Some(s) = sink.try_pull_sample(STALL) {
                    frames.push(summary(&roi_faces(s.buffer().unwrap())));
                }
                assert!(sink.is_eos(), "a branch stalled");
                frames
            })
        })
        .collect();
    let out = readers.into_iter().map(|r| r.join().unwrap()).collect();
    p.set_state(gst::State::Null).unwrap();
    out
}

fn clip_src() -> String {
    format!(
        "filesrc location=\"{}\" ! decodebin",
        data("astronaut-pan.mp4").display()
    )
}

fn photos_src() -> String {
    let clip = stills_clip(
        "group-photos-10",
        &(1..=6).map(|i| (group_photo(i), 10)).collect::<Vec<_>>(),
    );
    format!("filesrc location=\"{}\" ! decodebin", clip.display())
}

/// Four streams in one process (two of each clip) give exactly what each gives alone, and
/// share one copy of each model.
#[test]
fn four_streams_sharing_the_models_give_what_each_gives_alone() {
    let _serial = serial();
    let sources = [clip_src(), photos_src(), clip_src(), photos_src()];
    let alone: Vec<Frames> = sources
        .iter()
        .map(|s| run_branches(&[(s.clone(), String::new())]).pop().unwrap())
        .collect();
    let together = run_branches(&sources.iter().map(|s| (s.clone(), String::new())).collect::<Vec<_>>());
    for (i, (a, t)) in alone.iter().zip(&together).enumerate() {
        assert_eq!(a.len(), t.len(), "stream {i}: frames");
        assert!(a.iter().flatten().count() > 50, "stream {i}: faces seen");
        assert_eq!(a, t, "stream {i}: the same faces, ids and labels as alone");
    }
}

/// Four elements load each model once; with model-instance-ids of their own, once each.
#[test]
fn elements_share_one_copy_of_each_model_unless_told_not_to() {
    let _serial = serial();
    init();
    let count_while_playing = |props: [&str; 4]| {
        let desc: Vec<String> = props
            .iter()
            .enumerate()
            .map(|(i, p)| {
                format!(
                    "videotestsrc num-buffers=30 ! video/x-raw,width=320,height=240 ! faceemotion name=fe{i} {p} ! fakesink name=s{i} sync=true"
                )
            })
            .collect();
        let p = gst::parse::launch(&desc.join(" ")).unwrap();
        p.set_state(gst::State::Playing).unwrap();
        assert_eq!(p.state(gst::ClockTime::from_seconds(60)).1, gst::State::Playing);
        let n = registry::loaded();
        let err = wait_end(&p.bus().unwrap());
        p.set_state(gst::State::Null).unwrap();
        assert!(err.is_none(), "{err:?}");
        n
    };
    // Detector, emotion and gender: three models however many elements, while they play (the
    // tests of this process may hold others).
    let shared = count_while_playing(["", "", "", ""]);
    let own = count_while_playing([
        "model-instance-id=a",
        "model-instance-id=b",
        "model-instance-id=c",
        "model-instance-id=d",
    ]);
    assert!(
        own >= shared + 9,
        "4 x 3 models of their own ({own}) against 3 shared ({shared})"
    );
}

/// Two elements with different models in one pipeline: each frame's labels come from its own
/// element's models, as when each runs alone.
#[test]
fn two_elements_with_different_models_never_mix() {
    let _serial = serial();
    let faceapi = format!(
        "emotion-model={} gender-model={}",
        models("faceapi_expression.onnx"),
        models("hm_gender.onnx")
    );
    let branches = [(clip_src(), String::new()), (clip_src(), faceapi.clone())];
    let alone: Vec<Frames> = branches
        .iter()
        .map(|b| run_branches(std::slice::from_ref(b)).pop().unwrap())
        .collect();
    let together = run_branches(&branches);
    assert_eq!(alone, together);
    // And they do differ from each other: the check could fail.
    assert_ne!(together[0], together[1]);
}

/// One of two elements sharing the models changes its gender model while playing: from then on
/// it labels with the new one, the other goes on with the old.
#[test]
fn a_model_changed_on_one_element_changes_only_that_one() {
    let _serial = serial();
    init();
    let desc = format!(
        "{src} ! videoconvert ! tee name=t t. ! queue ! faceemotion name=a ! appsink name=sa sync=false \
         t. ! queue ! faceemotion name=b ! appsink name=sb sync=false",
        src = clip_src()
    );
    let p = gst::parse::launch(&desc).unwrap().downcast::<gst::Pipeline>().unwrap();
    let b = p.by_name("b").unwrap();
    let sinks: Vec<gst_app::AppSink> = ["sa", "sb"]
        .iter()
        .map(|n| p.by_name(n).unwrap().downcast().unwrap())
        .collect();
    let hm = models("hm_gender.onnx");
    // Set from b's streaming thread just before it sees its 61st frame (a reader could fall
    // behind a branch running ahead).
    let (el, seen) = (b.clone(), std::sync::atomic::AtomicUsize::new(0));
    b.static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            if seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 60 {
                el.set_property("gender-model", &hm);
            }
            gst::PadProbeReturn::Ok
        });
    p.set_state(gst::State::Playing).unwrap();
    let readers: Vec<_> = sinks
        .into_iter()
        .map(|sink| {
            std::thread::spawn(move || {
                let mut names = Vec::new();
                while let Some(s) = sink.try_pull_sample(STALL) {
                    let faces = roi_faces(s.buffer().unwrap());
                    names.push(
                        faces
                            .first()
                            .and_then(|f| f.params.iter().find(|p| p.name() == "gender"))
                            .map(|g| g.get::<String>("model_name").unwrap()),
                    );
                }
                assert!(sink.is_eos());
                names
            })
        })
        .collect();
    let names: Vec<Vec<Option<String>>> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    p.set_state(gst::State::Null).unwrap();
    let int8 = Some("faceapi_age_gender_int8".to_string());
    assert!(
        names[0].iter().flatten().all(|n| Some(n) == int8.as_ref()),
        "a kept its model: {:?}",
        names[0]
    );
    // b: the old model up to the change, the new one from a few frames after it.
    assert!(names[1][..60].iter().flatten().all(|n| Some(n) == int8.as_ref()));
    assert!(
        names[1][70..].iter().flatten().all(|n| n == "hm_gender"),
        "{:?}",
        &names[1][60..]
    );
}

fn threads() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:").map(|v| v.trim().parse().unwrap()))
        .unwrap()
}

/// Branches removed and added again while another plays: the models of the removed ones go
/// when the last user goes, and neither threads nor models pile up over the rounds.
#[test]
fn branches_removed_and_added_while_others_play_leave_nothing_behind() {
    let _serial = serial();
    init();
    let p = gst::parse::launch(
        "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! faceemotion name=keep ! fakesink sync=false",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    p.set_state(gst::State::Playing).unwrap();
    assert_eq!(p.state(gst::ClockTime::from_seconds(60)).1, gst::State::Playing);
    let hm = models("hm_gender.onnx");
    let mut after = Vec::new();
    for round in 0..6 {
        // A branch with a model of its own (the human-models gender network) and a shared one.
        let bin = gst::parse::bin_from_description(
            &format!(
                "videotestsrc is-live=true num-buffers=15 ! video/x-raw,width=320,height=240,framerate=30/1 \
                 ! faceemotion name=own gender-model={hm} ! fakesink sync=false \
                 videotestsrc is-live=true num-buffers=15 ! video/x-raw,width=320,height=240,framerate=30/1 \
                 ! faceemotion name=shared ! fakesink sync=false"
            ),
            false,
        )
        .unwrap();
        p.add(&bin).unwrap();
        bin.sync_state_with_parent().unwrap();
        // Removed while running: once both have analysed frames of their own, and the other
        // stream frames of its own meanwhile.
        let keep_frames = || {
            p.by_name("keep")
                .unwrap()
                .property::<gst::Structure>("stats")
                .get::<u64>("frames")
                .unwrap()
        };
        let kept = keep_frames();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        let frames = |name: &str| {
            bin.by_name(name)
                .unwrap()
                .property::<gst::Structure>("stats")
                .get::<u64>("frames")
                .unwrap()
        };
        while frames("own") < 5 || frames("shared") < 5 || keep_frames() < kept + 5 {
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: the branches never ran"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        bin.set_state(gst::State::Null).unwrap();
        p.remove(&bin).unwrap();
        drop(bin);
        after.push((threads(), registry::loaded()));
    }
    let msgs: Vec<String> = std::iter::from_fn(|| p.bus().unwrap().pop())
        .filter_map(|m| match m.view() {
            gst::MessageView::Error(e) => Some(e.error().to_string()),
            _ => None,
        })
        .collect();
    let keep = p.by_name("keep").unwrap().property::<gst::Structure>("stats");
    p.set_state(gst::State::Null).unwrap();
    assert!(msgs.is_empty(), "{msgs:?}");
    assert!(
        keep.get::<u64>("frames").unwrap() >= 30,
        "the other stream played on: {keep}"
    );
    // After the first round (the pool started, the shared models loaded), each round ends where
    // the last did.
    let (threads_1, models_1) = after[1];
    for (k, &(t, m)) in after.iter().enumerate().skip(2) {
        assert!(
            t <= threads_1,
            "round {k}: {t} threads, {threads_1} after round 1: {after:?}"
        );
        assert!(
            m <= models_1,
            "round {k}: {m} models, {models_1} after round 1: {after:?}"
        );
    }
}
