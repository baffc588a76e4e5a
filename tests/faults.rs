//! Fault injection: malformed models made here (wrong output sizes, a batch collapsed to one,
//! NaN answers, a fixed batch, a truncated file, a model in the wrong slot), at start and set
//! while playing; model files removed and replaced while playing; labels that must go with
//! their model; paths that are not files; a runtime set too late.

mod common;

use common::onnx::{self, Fault};
use common::*;
use gst::prelude::*;

fn start_error(props: &str) -> String {
    let (_, err) = run_pipeline(&format!("videotestsrc num-buffers=2 ! faceemotion {props} ! fakesink"));
    err.expect("the element must refuse to start")
}

/// Models that break their contract, each with the slot it is given to and what the error
/// must say besides the file's name.
fn broken_models() -> Vec<(&'static str, std::path::PathBuf, &'static str)> {
    vec![
        (
            "emotion-model",
            onnx::write("five-classes.onnx", &onnx::emotion(Fault::None, 5, None)),
            "gave 5 values for a batch of 1",
        ),
        (
            "emotion-model",
            onnx::write("one-answer.onnx", &onnx::emotion(Fault::OneForAll, 7, None)),
            "gave 7 values for a batch of 2",
        ),
        (
            "emotion-model",
            onnx::write("nan-emotion.onnx", &onnx::emotion(Fault::NaN, 7, None)),
            "NaN",
        ),
        (
            "gender-model",
            onnx::write("short-age.onnx", &onnx::gender(Fault::None, Fault::OneForAll)),
            "output `age` gave 1 values for a batch of 2",
        ),
        (
            "detector-model",
            onnx::write("short-regressor.onnx", &onnx::detector(100, Fault::None)),
            "reshaped_regressor_face_4` gave 1600 values",
        ),
        (
            "detector-model",
            onnx::write("nan-detector.onnx", &onnx::detector(2304, Fault::NaN)),
            "NaN",
        ),
        (
            "gender-model",
            onnx::write("emotion-as-gender.onnx", &onnx::emotion(Fault::None, 7, None)),
            "not a supported gender model",
        ),
        ("emotion-model", truncated(), "damaged"),
        (
            "descriptor-model",
            onnx::write("nan-descriptor.onnx", &onnx::descriptor(Fault::NaN, 128)),
            "NaN",
        ),
        (
            "descriptor-model",
            onnx::write("one-descriptor.onnx", &onnx::descriptor(Fault::OneForAll, 128)),
            "gave 128 values for a batch of 2",
        ),
        (
            "descriptor-model",
            onnx::write("emotion-as-descriptor.onnx", &onnx::emotion(Fault::None, 7, None)),
            "not a supported face descriptor model",
        ),
        (
            "descriptor-model",
            onnx::write("no-descriptor-output.onnx", &onnx::gender(Fault::None, Fault::None)),
            "no output `descriptor`",
        ),
    ]
}

fn truncated() -> std::path::PathBuf {
    let bytes = onnx::emotion(Fault::None, 7, None);
    onnx::write("truncated.onnx", &bytes[..bytes.len() / 3])
}

#[test]
fn broken_models_are_refused_at_start_with_their_file_and_fault() {
    for (property, path, says) in broken_models() {
        let err = start_error(&format!("{property}=\"{}\"", path.display()));
        assert!(
            err.contains(path.to_str().unwrap()) && err.contains(says) && err.contains(property),
            "{property}={}: {err}",
            path.display()
        );
    }
    // The same models of the right shape load and run.
    let good = onnx::write("good-emotion.onnx", &onnx::emotion(Fault::None, 7, None));
    let (_, err) = run_pipeline(&format!(
        "videotestsrc num-buffers=2 ! faceemotion emotion-model=\"{}\" ! fakesink",
        good.display()
    ));
    assert!(err.is_none(), "{err:?}");
}

/// What a pipeline on the astronaut gave when a property was set on its 5th frame: the frames
/// analysed, the warnings, and the emotion model named on the last frame.
struct Changed {
    frames: usize,
    warnings: Vec<String>,
    last: Vec<RoiFace>,
    error: Option<String>,
}

fn set_while_playing(changes: &[(&str, String)], frames: usize) -> Changed {
    init();
    let pipeline = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! imagefreeze num-buffers={frames} ! faceemotion name=fe \
         ! appsink name=sink sync=false",
        data("astronaut.png").display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let fe = pipeline.by_name("fe").unwrap();
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    let bus = pipeline.bus().unwrap();
    // Set from the streaming thread just before the element sees its 5th frame: a reader on
    // this thread could fall behind a pipeline running ahead and set it after the last frame.
    let changes: Vec<(String, String)> = changes.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    let (el, seen) = (fe.clone(), std::sync::atomic::AtomicUsize::new(0));
    fe.static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            if seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == 5 {
                for (k, v) in &changes {
                    el.set_property_from_str(k, v);
                }
            }
            gst::PadProbeReturn::Ok
        });
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut n = 0;
    let mut last = Vec::new();
    while let Some(s) = sink.try_pull_sample(gst::ClockTime::from_seconds(60)) {
        n += 1;
        last = roi_faces(s.buffer().unwrap());
    }
    let ended = sink.is_eos();
    let mut warnings = Vec::new();
    let mut error = None;
    while let Some(msg) = bus.pop() {
        match msg.view() {
            gst::MessageView::Warning(w) => warnings.push(format!("{} {:?}", w.error(), w.debug())),
            gst::MessageView::Error(e) => error = Some(e.error().to_string()),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(
        ended || error.is_some(),
        "the pipeline stalled after {n} frames: {warnings:?}"
    );
    Changed {
        frames: n,
        warnings,
        last,
        error,
    }
}

#[test]
fn broken_models_set_while_playing_warn_and_the_old_ones_go_on() {
    for (property, path, says) in broken_models() {
        let c = set_while_playing(&[(property, path.display().to_string())], 12);
        assert!(c.error.is_none(), "{property}: {:?}", c.error);
        assert_eq!(c.frames, 12, "{property}={}: every frame passed", path.display());
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains(path.to_str().unwrap()) && w.contains(says)),
            "{property}={}: {:?}",
            path.display(),
            c.warnings
        );
        // The models that worked still do.
        assert_eq!(c.last.len(), 1, "{property}");
        assert_eq!(c.last[0].emotion(), "happy", "{property}");
        assert_eq!(
            c.last[0].param("emotion").get::<String>("model_name").unwrap(),
            "emotion_minixception_fer"
        );
    }
}

/// A model that loads (it answers a blank picture) but answers real faces with NaN: no label
/// from it, said once, and the rest goes on.
#[test]
fn nan_answers_are_no_answers_and_said_once() {
    let emotion = onnx::write("nan-on-faces.onnx", &onnx::emotion(Fault::NaNOnPictures, 7, None));
    let c = set_while_playing(&[("emotion-model", emotion.display().to_string())], 15);
    assert!(c.error.is_none(), "{:?}", c.error);
    assert_eq!(c.frames, 15);
    let f = &c.last[0];
    assert!(
        f.params.iter().all(|p| p.name() != "emotion"),
        "no emotion from NaN: {f:?}"
    );
    assert_eq!(f.gender(), "female", "gender still comes");
    let said: Vec<_> = c
        .warnings
        .iter()
        .filter(|w| w.contains(emotion.to_str().unwrap()) && w.contains("NaN"))
        .collect();
    assert_eq!(said.len(), 1, "{:?}", c.warnings);

    let detector = onnx::write(
        "nan-detector-on-faces.onnx",
        &onnx::detector(2304, Fault::NaNOnPictures),
    );
    let c = set_while_playing(&[("detector-model", detector.display().to_string())], 15);
    assert!(c.error.is_none(), "{:?}", c.error);
    assert!(c.last.is_empty(), "no face from NaN scores: {:?}", c.last);
    let said = c
        .warnings
        .iter()
        .filter(|w| w.contains(detector.to_str().unwrap()) && w.contains("NaN"))
        .count();
    assert_eq!(said, 1, "{:?}", c.warnings);

    // A descriptor answering NaN: the person is a visitor of their own (no descriptor to know
    // them by), said once.
    let descriptor = onnx::write(
        "nan-descriptor-on-faces.onnx",
        &onnx::descriptor(Fault::NaNOnPictures, 128),
    );
    let c = set_while_playing(&[("descriptor-model", descriptor.display().to_string())], 15);
    assert!(c.error.is_none(), "{:?}", c.error);
    assert_eq!(c.last.len(), 1, "the face is still found");
    let visitor = c.last[0].param("detection").get::<u64>("visitor_id");
    assert_eq!(visitor.ok(), Some(1), "a visitor all the same");
    let said = c
        .warnings
        .iter()
        .filter(|w| w.contains(descriptor.to_str().unwrap()) && w.contains("NaN"))
        .count();
    assert_eq!(said, 1, "{:?}", c.warnings);
}

/// A model whose input batch is fixed at one runs once per face: every face gets its label.
#[test]
fn a_model_with_a_fixed_batch_of_one_labels_every_face() {
    let fixed = onnx::write("batch-one.onnx", &onnx::emotion(Fault::None, 7, Some(1)));
    let (caps, buf) = decode(&group_photo(5), "video/x-raw,format=I420");
    let faces = roi_faces(&run_one(&[("emotion-model", fixed.to_str().unwrap())], &caps, buf));
    assert_eq!(faces.len(), 5);
    assert!(
        faces.iter().all(|f| f.params.iter().any(|p| p.name() == "emotion")),
        "{faces:?}"
    );
}

#[test]
fn paths_that_are_not_model_files_say_what_they_are() {
    let dir = std::env::temp_dir();
    let err = start_error(&format!("emotion-model=\"{}\"", dir.display()));
    assert!(err.contains("is a directory") && err.contains("emotion-model"), "{err}");
    let err = start_error("gender-model=/dev/null");
    assert!(
        err.contains("/dev/null is a device") && err.contains("gender-model"),
        "{err}"
    );
}

/// Harness frames of the astronaut, for settings changed between frames.
fn astronaut_harness() -> (gst_check::Harness, gst::Buffer) {
    init();
    let (mut caps, buf) = decode(&data("astronaut.png"), "video/x-raw,format=I420");
    caps.make_mut().set("framerate", gst::Fraction::new(25, 1));
    let mut h = gst_check::Harness::new("faceemotion");
    // A harnessed element has no bus of its own: give it one to read its warnings from.
    h.element().unwrap().set_bus(Some(&gst::Bus::new()));
    h.set_src_caps(caps);
    (h, buf)
}

fn push(h: &mut gst_check::Harness, buf: &gst::Buffer, n: u64) -> Vec<RoiFace> {
    let mut b = buf.copy();
    b.make_mut().set_pts(gst::ClockTime::from_mseconds(40 * n));
    h.push(b).unwrap();
    roi_faces(&h.pull().unwrap())
}

fn names(f: &RoiFace) -> Vec<String> {
    f.params.iter().map(|p| p.name().to_string()).collect()
}

#[test]
fn labels_go_the_frame_after_their_model_is_switched_off() {
    let (mut h, buf) = astronaut_harness();
    let e = h.element().unwrap();
    let f = push(&mut h, &buf, 0);
    assert!(names(&f[0]).contains(&"emotion".into()) && names(&f[0]).contains(&"gender".into()));
    e.set_property("emotion-model", "");
    let f = push(&mut h, &buf, 1);
    assert!(
        !names(&f[0]).iter().any(|n| n.starts_with("emotion")),
        "{:?}",
        names(&f[0])
    );
    assert!(names(&f[0]).contains(&"gender".into()));
    e.set_property("gender-model", "");
    let f = push(&mut h, &buf, 2);
    assert_eq!(names(&f[0]), ["detection"]);
    // And back: the same person gets labels again at once.
    e.set_property(
        "emotion-model",
        format!("{}/models/emotion_minixception_fer.onnx", env!("CARGO_MANIFEST_DIR")),
    );
    let f = push(&mut h, &buf, 3);
    assert_eq!(f[0].emotion(), "happy");
}

/// One bad path does not hold back the other model properties, and each warning names its own
/// file.
#[test]
fn each_model_property_applies_on_its_own() {
    let dir = std::env::temp_dir().display().to_string();
    let faceapi = format!("{}/models/faceapi_expression.onnx", env!("CARGO_MANIFEST_DIR"));
    let c = set_while_playing(
        &[
            ("detector-model", dir.clone()),
            ("gender-model", "/nonexistent/gender.onnx".into()),
            ("emotion-model", faceapi),
        ],
        12,
    );
    assert!(c.error.is_none(), "{:?}", c.error);
    assert_eq!(
        c.last[0].param("emotion").get::<String>("model_name").unwrap(),
        "faceapi_expression",
        "the good emotion path applied"
    );
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains(&dir) && w.contains("is a directory")),
        "{:?}",
        c.warnings
    );
    assert!(
        c.warnings.iter().any(|w| w.contains("/nonexistent/gender.onnx")),
        "{:?}",
        c.warnings
    );
    // The gender model kept is the one that worked.
    assert_eq!(
        c.last[0].param("gender").get::<String>("model_name").unwrap(),
        "faceapi_age_gender_int8"
    );
}

/// A model file removed while playing changes nothing (it is loaded); replaced on disk and set
/// again to the same path, the new file is read; set while missing, a warning names it.
#[test]
fn model_files_removed_and_replaced_while_playing() {
    let models = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let path = onnx::write(
        "swapped-emotion.onnx",
        &std::fs::read(models.join("emotion_minixception_fer.onnx")).unwrap(),
    );
    let (mut h, buf) = astronaut_harness();
    let e = h.element().unwrap();
    e.set_property("emotion-model", path.to_str().unwrap());
    let before = push(&mut h, &buf, 0)[0].param("emotion").get::<f64>("happy").unwrap();
    std::fs::remove_file(&path).unwrap();
    let f = push(&mut h, &buf, 1);
    assert_eq!(f[0].emotion(), "happy", "a removed file's model goes on");
    // Set while the file is missing: refused, the model in memory stays.
    e.set_property("emotion-model", path.to_str().unwrap());
    let f = push(&mut h, &buf, 2);
    assert_eq!(f[0].emotion(), "happy");
    // Replaced by the face-api.js network and set again: its answers, from the same path.
    std::fs::copy(models.join("faceapi_expression.onnx"), &path).unwrap();
    e.set_property("emotion-model", path.to_str().unwrap());
    e.set_property("smoothing", 0u32);
    let after = push(&mut h, &buf, 3)[0].param("emotion").get::<f64>("happy").unwrap();
    assert!(
        (after - before).abs() > 1e-4,
        "the replaced file was read again ({before} -> {after})"
    );
    let bus = h.element().unwrap().bus().unwrap();
    let mut warned = false;
    while let Some(m) = bus.pop() {
        if let gst::MessageView::Warning(w) = m.view() {
            warned |= w.error().to_string().contains(path.to_str().unwrap());
        }
    }
    assert!(warned, "a warning named the missing file");
}

/// `ort-library` can only be chosen before the process loads the runtime; later, a warning says
/// the setting is ignored (and the element works with the loaded one).
#[test]
fn an_ort_library_set_too_late_is_reported() {
    let (_, err) = run_pipeline("videotestsrc num-buffers=1 ! faceemotion ! fakesink");
    assert!(err.is_none(), "{err:?}");
    init();
    let p = gst::parse::launch(
        "videotestsrc num-buffers=1 ! faceemotion ort-library=/elsewhere/libonnxruntime.so ! fakesink",
    )
    .unwrap();
    let bus = p.bus().unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let (mut warning, mut ended) = (None, false);
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(30)) {
        match msg.view() {
            gst::MessageView::Warning(w) => warning = Some(w.error().to_string()),
            gst::MessageView::Error(e) => panic!("{}", e.error()),
            gst::MessageView::Eos(_) => {
                ended = true;
                break;
            }
            _ => {}
        }
    }
    p.set_state(gst::State::Null).unwrap();
    assert!(ended, "the pipeline did not end");
    let w = warning.expect("a warning about ort-library");
    assert!(
        w.contains("/elsewhere/libonnxruntime.so") && w.contains("ignored"),
        "{w}"
    );
}

/// A decoder that gives a format the element does not take: an error that lists what it takes
/// and says to add videoconvert, not a bare not-negotiated.
#[test]
fn unsupported_decoder_output_is_explained() {
    init();
    let clip = cached_clip(
        "y444.mp4",
        "videotestsrc num-buffers=5 ! video/x-raw,format=Y444,width=320,height=240 ! x264enc ! mp4mux ! filesink location=\"{out}\"",
    );
    let (_, err) = run_pipeline(&format!(
        "filesrc location=\"{}\" ! decodebin ! faceemotion ! fakesink",
        clip.display()
    ));
    let err = err.expect("an error");
    assert!(
        err.contains("Y444") && err.contains("videoconvert") && err.contains("NV12"),
        "{err}"
    );
    // With videoconvert in front it plays.
    let (_, err) = run_pipeline(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! faceemotion ! fakesink",
        clip.display()
    ));
    assert!(err.is_none(), "{err:?}");
}
