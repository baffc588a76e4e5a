//! `faceemotion record` against a real RTSP server on loopback: the camera drops in the middle
//! of a recording and comes back; the recording goes on, every segment file plays to its end,
//! its timestamps increase, and the numbering continues. And an anonymised recording from a
//! file: no face left for a detector in the analysed copy.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::services::RtspServer;
use common::*;
use gst::prelude::*;

fn cli() -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_faceemotion"));
    assert!(exe.is_file());
    exe
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("faceemotion-rec-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Segment files of a kind (`original`, `annotated`), by index.
fn segments(dir: &Path, kind: &str) -> Vec<(u32, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<(u32, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let n = name
                .strip_prefix(&format!("{kind}_"))?
                .strip_suffix(".mp4")?
                .parse()
                .ok()?;
            Some((n, e.path()))
        })
        .collect();
    v.sort();
    v
}

/// Plays a segment to its end: its frames' timestamps, and the faces a detector finds in it
/// (with `detect`). Panics if the file does not play to its end.
fn play(path: &Path, detect: bool) -> (Vec<u64>, usize) {
    init();
    let desc = format!(
        "filesrc location=\"{}\" ! qtdemux ! h264parse ! avdec_h264 ! videoconvert ! {} appsink name=sink sync=false",
        path.display(),
        if detect { "faceemotion draw=false !" } else { "" }
    );
    let (p, sink) = with_appsink(&desc);
    p.set_state(gst::State::Playing).unwrap();
    let (mut pts, mut faces) = (Vec::new(), 0);
    while let Some(s) = sink.try_pull_sample(gst::ClockTime::from_seconds(30)) {
        let b = s.buffer().unwrap();
        pts.push(b.pts().map_or(0, |t| t.nseconds()));
        faces += roi_faces(b).len();
    }
    let eos = sink.is_eos();
    let bus = p.bus().unwrap();
    let mut error = None;
    while let Some(m) = bus.pop() {
        if let gst::MessageView::Error(e) = m.view() {
            error = Some(e.error().to_string());
        }
    }
    p.set_state(gst::State::Null).unwrap();
    assert!(
        error.is_none() && eos,
        "{} does not play to its end: {error:?}",
        path.display()
    );
    (pts, faces)
}

#[test]
fn a_camera_that_drops_and_comes_back_is_recorded_on() {
    let mut server = RtspServer::start();
    let dir = tmp("rtsp");
    let mut recorder = Command::new(cli())
        .args(["record", &server.url(), "--out"])
        .arg(&dir)
        .args([
            "--segment",
            "2",
            "--duration",
            "16",
            "--stall-timeout",
            "3",
            "--max-backoff",
            "2",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Record a while, drop the camera, bring it back.
    let wait_for_segments = |n: usize, within: Duration| {
        let deadline = Instant::now() + within;
        while segments(&dir, "original").len() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for_segments(2, Duration::from_secs(20));
    let before_drop = segments(&dir, "original").len();
    assert!(before_drop >= 2, "recording did not start: {before_drop} segments");
    server.stop();
    std::thread::sleep(Duration::from_secs(3));
    server.resume();
    // The recorder stops by itself (--duration); a hang is a failure.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = recorder.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = recorder.kill();
            panic!("the recorder did not stop");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut log = String::new();
    std::io::Read::read_to_string(&mut recorder.stderr.take().unwrap(), &mut log).unwrap();
    assert!(status.success(), "{log}");
    assert!(log.contains("camera dropped"), "the drop was logged:\n{log}");
    let reconnected = log
        .lines()
        .skip_while(|l| !l.contains("camera dropped"))
        .any(|l| l.contains("segment") && l.contains("original_"));
    assert!(reconnected, "segments after the drop:\n{log}");
    assert_eq!(
        std::fs::read_to_string(dir.join("record.log")).unwrap().lines().count(),
        log.lines().count()
    );

    for kind in ["original", "annotated"] {
        let segs = segments(&dir, kind);
        assert!(segs.len() >= before_drop + 2, "{kind}: {segs:?}\n{log}");
        // Numbers are never reused: the ones after the drop come after the ones before.
        let idx: Vec<u32> = segs.iter().map(|s| s.0).collect();
        assert!(idx.windows(2).all(|w| w[0] < w[1]), "{kind}: {idx:?}");
        for (_, path) in &segs {
            let (pts, faces) = play(path, kind == "annotated" && path == &segs[segs.len() / 2].1);
            assert!(pts.len() >= 5, "{}: {} frames", path.display(), pts.len());
            assert!(
                pts.windows(2).all(|w| w[0] < w[1]),
                "{}: timestamps go back",
                path.display()
            );
            if kind == "annotated" && path == &segs[segs.len() / 2].1 {
                assert!(faces > 0, "the analysed copy shows the face");
            }
        }
    }
    // Segment files were written in order: each one's data started after the last one's.
    let mtimes: Vec<_> = segments(&dir, "original")
        .iter()
        .map(|(_, p)| std::fs::metadata(p).unwrap().modified().unwrap())
        .collect();
    assert!(mtimes.windows(2).all(|w| w[0] <= w[1]));
    std::fs::remove_dir_all(&dir).ok();
}

/// `--anonymise`: in the analysed copy no detector finds a face; the original keeps them.
#[test]
fn an_anonymised_recording_hides_every_face() {
    let dir = tmp("anon");
    let out = Command::new(cli())
        .args(["record"])
        .arg(data("astronaut-pan.mp4"))
        .arg("--out")
        .arg(&dir)
        .args(["--segment", "2", "--anonymise", "--set", "draw=false"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (originals, annotated) = (segments(&dir, "original"), segments(&dir, "annotated"));
    assert!(
        originals.len() >= 3 && annotated.len() >= 3,
        "{originals:?} {annotated:?}"
    );
    let count = |segs: &[(u32, PathBuf)]| {
        segs.iter()
            .map(|(_, p)| play(p, true))
            .fold((0, 0), |a, (pts, f)| (a.0 + pts.len(), a.1 + f))
    };
    let (frames, faces) = count(&originals);
    assert_eq!(frames, 180);
    assert!(faces >= 175, "the original shows the face ({faces})");
    let (frames, faces) = count(&annotated);
    assert_eq!(frames, 180);
    assert_eq!(faces, 0, "a detector found {faces} faces in the anonymised copy");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn sources_that_cannot_be_recorded_say_why() {
    let out = Command::new(cli())
        .args(["record", "/nonexistent.mp4"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.mp4"));
    let out = Command::new(cli())
        .args(["record", "x.mp4", "--segment", "ten"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--segment"));
    // MPEG-4 part 2: decodable, but not H.264, which keeping the original stream needs.
    init();
    let clip = cached_clip(
        "mpeg4.mp4",
        "videotestsrc num-buffers=10 ! avenc_mpeg4 ! mp4mux ! filesink location=\"{out}\"",
    );
    let dir = tmp("mpeg4");
    let out = Command::new(cli())
        .arg("record")
        .arg(&clip)
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not H.264") && err.contains("faceemotion analyse"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
