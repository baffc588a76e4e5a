//! The scripts in pipelines/ on the bundled clip: what they write, and what they say when the
//! camera, display or server they need is absent.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The pipeline tests run one at a time: surveillance-record.sh, run beside the other heavy
/// pipelines, sometimes never gets its pipeline's EOS (see the surveillance test).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn script(name: &str, args: &[&str]) -> std::process::Output {
    let plugin_dir = root().join("target/debug");
    assert!(
        plugin_dir.join("libgstfaceemotion.so").is_file(),
        "build the plugin first (`cargo build`, as scripts/test.sh does)"
    );
    // A time limit (the scripts take seconds), so that a stuck pipeline cannot hang CI.
    Command::new("timeout")
        .arg("90")
        .arg("bash")
        .arg(root().join("pipelines").join(name))
        .args(args)
        .env("FACEEMOTION_PLUGIN_DIR", &plugin_dir)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap()
}

fn frames_in(path: &Path) -> usize {
    gst::init().unwrap();
    use gst::prelude::*;
    let p = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! qtdemux ! h264parse ! fakesink name=sink",
        path.display()
    ))
    .unwrap();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = count.clone();
    let sink = p.downcast_ref::<gst::Bin>().unwrap().by_name("sink").unwrap();
    sink.static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            gst::PadProbeReturn::Ok
        });
    p.set_state(gst::State::Playing).unwrap();
    let bus = p.bus().unwrap();
    bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(60),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    p.set_state(gst::State::Null).unwrap();
    count.load(std::sync::atomic::Ordering::SeqCst)
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("faceemotion-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn file_to_mp4_writes_every_frame_and_a_log() {
    let _serial = serial();
    let dir = tmp("mp4");
    let out = dir.join("clip.mp4");
    let r = script(
        "file-to-mp4.sh",
        &[
            root().join("tests/data/astronaut-pan.mp4").to_str().unwrap(),
            out.to_str().unwrap(),
        ],
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(frames_in(&out), 180);
    let log = std::fs::read_to_string(dir.join("clip.faces.log")).unwrap();
    assert_eq!(log.lines().count(), 180);
    assert!(log.lines().all(|l| l.starts_with("faceemotion, timestamp=")));
    // The astronaut is found and happy on (nearly) every frame, however the camera moves.
    let happy = log
        .lines()
        .filter(|l| l.contains("emotion\\=\\(string\\)happy"))
        .count();
    assert!(happy >= 170, "{happy} happy frames");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn surveillance_recording_keeps_the_original_and_segments_both() {
    let _serial = serial();
    let dir = tmp("rec");
    let r = script(
        "surveillance-record.sh",
        &[
            root().join("tests/data/astronaut-pan.mp4").to_str().unwrap(),
            dir.to_str().unwrap(),
            "2",
        ],
    );
    if r.status.code() == Some(124) {
        // Known issue (GStreamer 1.22, seen now and then in full test runs, never alone): both
        // splitmuxsinks post EOS but the pipeline's own EOS never reaches gst-launch, which
        // waits. The recording itself is complete, and that is what is checked below.
        eprintln!("KNOWN ISSUE: surveillance-record.sh did not exit after EOS; checking its files");
    } else {
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    }
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let originals: Vec<_> = files
        .iter()
        .filter(|p| p.to_str().unwrap().contains("original_"))
        .collect();
    let annotated: Vec<_> = files
        .iter()
        .filter(|p| p.to_str().unwrap().contains("annotated_"))
        .collect();
    // 6 s cut in 2 s segments.
    assert!(originals.len() >= 3 && annotated.len() >= 3, "{files:?}");
    assert_eq!(originals.iter().map(|p| frames_in(p)).sum::<usize>(), 180);
    assert_eq!(annotated.iter().map(|p| frames_in(p)).sum::<usize>(), 180);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn scripts_say_what_they_need_when_it_is_absent() {
    let _serial = serial();
    let r = script("webcam.sh", &["/dev/video-none"]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("no camera at /dev/video-none"));
    let r = script("rtsp.sh", &[]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("rtsp://"));
    let r = script("file-to-screen.sh", &[]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("no display"));
}

/// Runs an application example with the debug plugin and returns what it printed.
fn example_output(mut cmd: Command) -> String {
    let out = cmd
        .env("GST_PLUGIN_PATH", root().join("target/debug"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn application_examples_read_the_metadata() {
    let _serial = serial();
    // Python (PyGObject), as in the README.
    let mut python = Command::new("/usr/bin/python3");
    python.arg(root().join("pipelines/print-faces.py"));
    let text = example_output(python);
    assert!(
        text.lines().count() >= 170 && text.lines().filter(|l| l.contains(": happy ")).count() >= 170,
        "{text}"
    );

    // Rust: `cargo test` builds the examples beside the test binaries.
    let exe = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/read_meta");
    let mut rust = Command::new(exe);
    rust.current_dir(root());
    let text = example_output(rust);
    assert!(
        text.contains("180 frames analysed") && text.contains(": happy "),
        "{text}"
    );
}
