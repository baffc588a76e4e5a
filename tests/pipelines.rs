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
    let msg = p.bus().unwrap().timed_pop_filtered(
        gst::ClockTime::from_seconds(120),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    p.set_state(gst::State::Null).unwrap();
    match msg.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => {}
        other => panic!("{} did not play to its end: {other:?}", path.display()),
    }
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

/// Several cameras in one process (the bundled clip standing in for them): each camera's records
/// in a file of its own, every frame of each.
#[test]
fn cameras_script_writes_each_cameras_records() {
    let _serial = serial();
    let dir = tmp("cameras");
    let r = script("cameras.sh", &["--count", "3", "--out", dir.to_str().unwrap()]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    for i in 0..3 {
        let records = std::fs::read_to_string(dir.join(format!("cam{i}.jsonl"))).unwrap();
        let frames = records.lines().filter(|l| l.contains("\"objects\"")).count();
        assert!(frames >= 170, "cam{i}: {frames} frame records");
        assert!(
            records.lines().all(|l| l.contains(&format!("\"source\":\"cam{i}\""))),
            "cam{i}: its own records"
        );
    }
    let r = script("cameras.sh", &["--count", "many"]);
    assert!(!r.status.success() && String::from_utf8_lossy(&r.stderr).contains("--count"));
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
            assert_eq!(frames_in_segments(&dir, "original_"), 180, "run {run}");
            assert_eq!(frames_in_segments(&dir, "annotated_"), 180, "run {run}");
        }
    }
    std::fs::remove_dir_all(base).ok();
}

/// What a recording pipeline did when PLAYING overtook the annotated splitmuxsink's
/// READY->PAUSED state message (see pipelines/surveillance-record-hang.md).
struct Overtaken {
    /// The pipeline's own EOS came (GstBin's collected EOS).
    pipeline_eos: bool,
    /// The last EOS of the file sink inside each splitmuxsink came (forwarded), which is what
    /// `faceemotion record` waits for.
    sinks_eos: [bool; 2],
    dir: PathBuf,
}

/// The two splitmuxsinks of a recording on the bundled clip (no analysis: the race is
/// GStreamer's), with the interleaving of the stuck run forced: the annotated splitmuxsink's
/// READY->PAUSED message is held in the thread posting it until the pipeline has been set to
/// PLAYING, as a preempted thread holds it on a loaded machine. `async_handling` is what the old
/// gst-launch line set on both splitmuxsinks.
fn record_with_playing_overtaking(async_handling: bool, name: &str) -> Overtaken {
    use gst::prelude::*;
    use std::sync::mpsc;
    gst::init().unwrap();
    let dir = tmp(name);
    let ns = 2_000_000_000u64;
    let p = gst::parse::launch(&format!(
        "filesrc location=\"{clip}\" ! qtdemux ! h264parse config-interval=-1 ! tee name=t \
         t. ! queue ! splitmuxsink name=original async-handling={async_handling} message-forward=true \
              location=\"{dir}/original_%05d.mp4\" max-size-time={ns} \
         t. ! queue ! avdec_h264 ! videoconvert ! x264enc speed-preset=veryfast tune=zerolatency key-int-max=30 \
            ! h264parse ! splitmuxsink name=annotated async-handling={async_handling} message-forward=true \
              location=\"{dir}/annotated_%05d.mp4\" max-size-time={ns}",
        clip = root().join("tests/data/astronaut-pan.mp4").display(),
        dir = dir.display(),
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let ann = p.by_name("annotated").unwrap();
    let (held_tx, held) = mpsc::sync_channel::<()>(1);
    let (release, release_rx) = mpsc::sync_channel::<()>(1);
    let release_rx = std::sync::Mutex::new(release_rx);
    let bus = p.bus().unwrap();
    let watched = ann.clone();
    bus.set_sync_handler(move |_, msg| {
        if let gst::MessageView::StateChanged(sc) = msg.view() {
            if msg.src() == Some(watched.upcast_ref())
                && sc.old() == gst::State::Ready
                && sc.current() == gst::State::Paused
            {
                let _ = held_tx.try_send(());
                let _ = release_rx
                    .lock()
                    .unwrap()
                    .recv_timeout(std::time::Duration::from_secs(10));
            }
        }
        gst::BusSyncReply::Pass
    });
    p.set_state(gst::State::Paused).unwrap();
    held.recv_timeout(std::time::Duration::from_secs(30))
        .expect("the annotated splitmuxsink never reached PAUSED");
    // It has committed PAUSED; its message is still on the way.
    assert_eq!(ann.current_state(), gst::State::Paused);
    p.set_state(gst::State::Playing).unwrap();
    release.send(()).unwrap();
    let mut out = Overtaken {
        pipeline_eos: false,
        sinks_eos: [false, false],
        dir,
    };
    // Once both file sinks have their last EOS, the pipeline's would follow at once; it is given
    // 10 s more. Either way the wait is bounded.
    let mut all_written: Option<std::time::Instant> = None;
    let started = std::time::Instant::now();
    while !out.pipeline_eos
        && started.elapsed() < std::time::Duration::from_secs(120)
        && all_written.is_none_or(|t| t.elapsed() < std::time::Duration::from_secs(10))
    {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => out.pipeline_eos = true,
            gst::MessageView::Error(e) => panic!("{} ({:?})", e.error(), e.debug()),
            gst::MessageView::Element(e) => {
                let Some(s) = e.structure().filter(|s| s.name() == "GstBinForwarded") else {
                    continue;
                };
                let inner = s.get::<gst::Message>("message").unwrap();
                let by = msg.src().map(|s| s.name().to_string()).unwrap_or_default();
                if let (gst::MessageView::Eos(_), Some(i)) =
                    (inner.view(), ["original", "annotated"].iter().position(|n| by == *n))
                {
                    out.sinks_eos[i] = true;
                    if out.sinks_eos == [true, true] {
                        all_written = Some(std::time::Instant::now());
                    }
                }
            }
            _ => {}
        }
    }
    p.set_state(gst::State::Null).unwrap();
    out
}

fn frames_in_segments(dir: &Path, kind: &str) -> usize {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with(kind))
        .collect();
    files.sort();
    files.iter().map(|p| frames_in(p)).sum()
}

/// Why the old gst-launch recording line now and then never ended, forced instead of waited
/// for: with `async-handling=true` the pipeline's EOS is lost although both branches finished
/// every segment; the file sinks' own last EOS, which `faceemotion record` waits for, still came.
#[test]
fn old_recording_line_loses_its_eos_when_playing_overtakes_a_state_message() {
    let _serial = serial();
    let r = record_with_playing_overtaking(true, "race-old");
    assert_eq!(r.sinks_eos, [true, true], "a file sink never got its last EOS");
    assert_eq!(frames_in_segments(&r.dir, "original_"), 180);
    assert_eq!(frames_in_segments(&r.dir, "annotated_"), 180);
    let (major, minor, ..) = gst::version();
    if (major, minor) == (1, 22) {
        // GStreamer 1.22 (Debian 12). Should a later one post it, the cause has been fixed there.
        assert!(!r.pipeline_eos, "the pipeline's EOS came: the GStreamer race is gone");
    }
    std::fs::remove_dir_all(r.dir).ok();
}

/// The same interleaving forced on the splitmuxsinks as `faceemotion record` sets them (no
/// async-handling): the pipeline waits for their preroll, so PLAYING cannot overtake, and every
/// EOS comes.
#[test]
fn recorder_splitmuxsinks_end_when_playing_is_early() {
    let _serial = serial();
    let r = record_with_playing_overtaking(false, "race-rec");
    assert_eq!(r.sinks_eos, [true, true], "a file sink never got its last EOS");
    assert!(r.pipeline_eos, "the pipeline's EOS never came");
    assert_eq!(frames_in_segments(&r.dir, "original_"), 180);
    assert_eq!(frames_in_segments(&r.dir, "annotated_"), 180);
    std::fs::remove_dir_all(r.dir).ok();
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
