//! The scripts in pipelines/ on the bundled clip: what they write, and what they say when the
//! camera, display or server they need is absent.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The pipeline tests run one at a time: they load the machine, and their recordings must not
/// race for it.
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

/// The recording script on the bundled clip, 20 times in a row: each run must end by itself
/// (a run that does not is killed by the time limit and fails), with every frame in both sets
/// of segments. The path has spaces in it, as a user's folders do.
#[test]
fn surveillance_recording_always_ends_with_every_frame_in_both() {
    let _serial = serial();
    let base = tmp("rec");
    let clip = base.join("my clips").join("astronaut pan.mp4");
    std::fs::create_dir_all(clip.parent().unwrap()).unwrap();
    std::fs::copy(root().join("tests/data/astronaut-pan.mp4"), &clip).unwrap();
    for run in 0..20 {
        let dir = base.join(format!("run {run}"));
        let r = script(
            "surveillance-record.sh",
            &[clip.to_str().unwrap(), dir.to_str().unwrap(), "2"],
        );
        assert_ne!(r.status.code(), Some(124), "run {run}: the recording never ended");
        assert!(r.status.success(), "run {run}: {}", String::from_utf8_lossy(&r.stderr));
        let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        let kind = |k: &str| -> Vec<PathBuf> {
            files
                .iter()
                .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with(k))
                .cloned()
                .collect()
        };
        let (originals, annotated) = (kind("original_"), kind("annotated_"));
        // 6 s cut in 2 s segments.
        assert!(originals.len() >= 3 && annotated.len() >= 3, "run {run}: {files:?}");
        if run % 5 == 0 {
            assert_eq!(originals.iter().map(|p| frames_in(p)).sum::<usize>(), 180, "run {run}");
            assert_eq!(annotated.iter().map(|p| frames_in(p)).sum::<usize>(), 180, "run {run}");
        }
    }
    std::fs::remove_dir_all(base).ok();
}

#[test]
fn scripts_name_what_is_wrong_with_their_input() {
    let _serial = serial();
    let dir = tmp("bad");
    let r = script(
        "surveillance-record.sh",
        &[
            root().join("tests/data/astronaut-pan.mp4").to_str().unwrap(),
            dir.to_str().unwrap(),
            "ten",
        ],
    );
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("whole number of seconds, not 'ten'"));
    let r = script("surveillance-record.sh", &[dir.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("is a directory"));
    let r = script("file-to-mp4.sh", &[dir.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("is a directory"),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    // A file that is no video: the pipeline fails and leaves nothing behind.
    let junk = dir.join("junk.mp4");
    std::fs::write(&junk, b"not a video").unwrap();
    let out = dir.join("out.mp4");
    let r = script("file-to-mp4.sh", &[junk.to_str().unwrap(), out.to_str().unwrap()]);
    assert!(!r.status.success());
    assert!(
        !out.exists() && !dir.join("out.faces.log").exists(),
        "outputs left behind"
    );
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

/// Python reads the bus message's list of faces with plain `get_value` (PyGObject's GStreamer
/// overrides, Debian python3-gst-1.0, installed by scripts/setup.sh).
#[test]
fn python_reads_the_message_faces_with_get_value() {
    let _serial = serial();
    let code = format!(
        r#"
import gi
gi.require_version("Gst", "1.0")
from gi.repository import Gst
Gst.init(None)
p = Gst.parse_launch('filesrc location="{}" ! pngdec ! videoconvert ! imagefreeze num-buffers=1 ! faceemotion ! fakesink')
bus = p.get_bus()
p.set_state(Gst.State.PLAYING)
while True:
    m = bus.timed_pop_filtered(30 * Gst.SECOND, Gst.MessageType.ELEMENT | Gst.MessageType.EOS | Gst.MessageType.ERROR)
    if m is None or m.type != Gst.MessageType.ELEMENT:
        break
    s = m.get_structure()
    if s.get_name() == "faceemotion":
        for f in s.get_value("faces"):
            print(f.get_value("emotion"), f.get_value("gender"))
p.set_state(Gst.State.NULL)
"#,
        root().join("tests/data/astronaut.png").display()
    );
    let mut python = Command::new("/usr/bin/python3");
    python.arg("-c").arg(code);
    let text = example_output(python);
    assert!(text.starts_with("happy "), "{text}");
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
