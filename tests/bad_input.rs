//! Bad models, bad frames, changing caps and settings changed while playing: a clear error that
//! names the cause and the fix, or correct carrying on; never a panic or a lost buffer.

mod common;

use common::*;
use gst::prelude::*;

fn models(file: &str) -> String {
    format!("{}/models/{file}", env!("CARGO_MANIFEST_DIR"))
}

fn start_error(props: &str) -> String {
    let (_, err) = run_pipeline(&format!("videotestsrc num-buffers=2 ! faceemotion {props} ! fakesink"));
    err.expect("the element must refuse to start")
}

#[test]
fn missing_model_is_named_with_its_property() {
    let err = start_error("emotion-model=/nonexistent/emotion.onnx");
    assert!(
        err.contains("/nonexistent/emotion.onnx") && err.contains("emotion-model"),
        "{err}"
    );
    let err = start_error("detector-model=/nonexistent/det.onnx");
    assert!(
        err.contains("/nonexistent/det.onnx") && err.contains("detector-model"),
        "{err}"
    );
}

#[test]
fn truncated_or_garbage_model_is_named() {
    let dir = std::env::temp_dir().join(format!("faceemotion-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let full = std::fs::read(models("faceapi_age_gender.onnx")).unwrap();
    let truncated = dir.join("truncated.onnx");
    std::fs::write(&truncated, &full[..full.len() / 2]).unwrap();
    let err = start_error(&format!("gender-model={}", truncated.display()));
    assert!(
        err.contains(truncated.to_str().unwrap()) && err.contains("damaged"),
        "{err}"
    );

    let garbage = dir.join("garbage.onnx");
    std::fs::write(&garbage, b"this is not a model").unwrap();
    let err = start_error(&format!("detector-model={}", garbage.display()));
    assert!(err.contains(garbage.to_str().unwrap()), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn model_with_the_wrong_input_shape_is_named() {
    // The emotion model where the detector belongs, and the detector where a classifier belongs.
    let emotion = models("emotion_minixception_fer.onnx");
    let err = start_error(&format!("detector-model={emotion}"));
    assert!(
        err.contains(&emotion) && err.contains("input is") && err.contains("[1,192,192,3]"),
        "{err}"
    );
    let det = models("mp_face_detection_full_range.onnx");
    let err = start_error(&format!("gender-model={det}"));
    assert!(err.contains(&det) && err.contains("gender"), "{err}");
}

#[test]
fn caps_change_mid_stream_in_size_and_format() {
    init();
    let mut h = gst_check::Harness::new("faceemotion");
    for (caps, format) in [
        ("video/x-raw,format=RGB", "RGB"),
        ("video/x-raw,format=I420,width=377,height=301", "I420"),
        ("video/x-raw,format=YUY2,width=1024,height=1024", "YUY2"),
        ("video/x-raw,format=GRAY8,width=64,height=48", "GRAY8"),
    ] {
        let (caps, buf) = decode(&data("astronaut.png"), caps);
        h.set_src_caps(caps);
        h.push(buf).unwrap();
        let out = h.pull().unwrap();
        let faces = roi_faces(&out);
        // At 64x48 the face is 13 pixels wide: finding it is not required, not failing is.
        if format != "GRAY8" {
            assert_eq!(faces.len(), 1, "{format}");
            assert_eq!(faces[0].emotion(), "happy", "{format}");
        }
    }
}

#[test]
fn settings_changed_while_playing_apply_on_the_next_frame() {
    init();
    let (caps, buf) = decode(&data("astronaut.png"), "video/x-raw,format=NV12");
    let mut h = gst_check::Harness::new("faceemotion");
    h.set_src_caps(caps);
    let element = h.element().unwrap();

    h.push(buf.copy()).unwrap();
    let out = h.pull().unwrap();
    assert_eq!(
        roi_faces(&out)[0].param("emotion").get::<String>("model_name").unwrap(),
        "emotion_minixception_fer"
    );

    element.set_property("emotion-model", models("faceapi_expression.onnx"));
    element.set_property("draw", false);
    h.push(buf.copy()).unwrap();
    let out = h.pull().unwrap();
    let f = &roi_faces(&out)[0];
    assert_eq!(
        f.param("emotion").get::<String>("model_name").unwrap(),
        "faceapi_expression"
    );
    assert_eq!(f.emotion(), "happy");
    assert_eq!(
        out.map_readable().unwrap().as_slice(),
        buf.map_readable().unwrap().as_slice()
    );

    // A bad path while playing: a warning, the working models stay, the buffer still comes out.
    element.set_property("emotion-model", "/nonexistent/new.onnx");
    h.push(buf.copy()).unwrap();
    let out = h.pull().unwrap();
    assert_eq!(
        roi_faces(&out)[0].param("emotion").get::<String>("model_name").unwrap(),
        "faceapi_expression"
    );
    element.set_property("emotion-model", models("emotion_minixception_fer.onnx"));
    element.set_property("threshold", 0.99f64);
    h.push(buf.copy()).unwrap();
    let out = h.pull().unwrap();
    assert!(roi_faces(&out).is_empty(), "threshold 0.99 is above this face's score");
}

#[test]
fn warning_names_a_bad_model_set_while_playing() {
    init();
    let pipeline = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! imagefreeze num-buffers=40 ! faceemotion name=fe ! fakesink sync=false",
        data("astronaut.png").display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let fe = pipeline.by_name("fe").unwrap();
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut frames = 0;
    let mut warning = None;
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(60)) {
        match msg.view() {
            gst::MessageView::Element(e) if e.structure().is_some_and(|s| s.name() == "faceemotion") => {
                frames += 1;
                if frames == 5 {
                    fe.set_property("gender-model", "/nonexistent/gender.onnx");
                }
            }
            gst::MessageView::Warning(w) => warning = Some(w.error().to_string()),
            gst::MessageView::Error(e) => panic!("unexpected error: {}", e.error()),
            gst::MessageView::Eos(_) => break,
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(frames, 40, "every frame was analysed and passed on");
    let warning = warning.expect("a warning about the bad model");
    assert!(
        warning.contains("/nonexistent/gender.onnx") && warning.contains("gender-model"),
        "{warning}"
    );
}

/// Warnings are posted with no lock of the element held: a bus sync handler, which runs on the
/// streaming thread that posts, may call into the element (read its stats, send it a drain
/// query that reaches its state) and the stream goes on. Before, the warning of a model refused
/// while playing was posted under the state lock and such a handler waited on its own thread.
#[test]
fn a_sync_handler_may_call_into_the_element_on_its_warnings() {
    init();
    let p = gst::parse::launch(
        "videotestsrc num-buffers=30 ! video/x-raw,width=320,height=240 ! faceemotion name=fe pipelining=on ! fakesink",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let fe = p.by_name("fe").unwrap();
    let warnings = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (w, weak) = (warnings.clone(), fe.downgrade());
    let frames = std::sync::atomic::AtomicUsize::new(0);
    p.bus().unwrap().set_sync_handler(move |_, msg| {
        let Some(fe) = weak.upgrade() else {
            return gst::BusSyncReply::Pass;
        };
        // The frame count is kept out of the match guard: a guard with a side effect reads as a test.
        #[allow(clippy::collapsible_match)]
        match msg.view() {
            gst::MessageView::Element(e) if e.structure().is_some_and(|s| s.name() == "faceemotion") => {
                if frames.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 4 {
                    fe.set_property("gender-model", "/nonexistent/gender.onnx");
                }
            }
            gst::MessageView::Warning(_) if msg.src() == Some(fe.upcast_ref()) => {
                let _ = fe.property::<gst::Structure>("stats");
                let mut q = gst::query::Drain::new();
                fe.static_pad("sink").unwrap().query(&mut q);
                w.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            _ => {}
        }
        gst::BusSyncReply::Pass
    });
    p.set_state(gst::State::Playing).unwrap();
    let error = wait_end(&p.bus().unwrap());
    let stats = fe.property::<gst::Structure>("stats");
    p.set_state(gst::State::Null).unwrap();
    assert!(error.is_none(), "{error:?}");
    assert_eq!(
        warnings.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the refused model's warning"
    );
    assert_eq!(stats.get::<u64>("frames").unwrap(), 30, "every frame left: {stats}");
}
