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
        "filesrc location=\"{}\" ! qtdemux name=d d.video_0 ! queue ! decodebin ! videoconvert ! {} appsink name=sink sync=false",
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
            "24",
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

/// The streams of an MP4 file, by caps name, with the seconds each lasts.
fn streams(path: &Path) -> Vec<(String, f64)> {
    init();
    let p = gst::Pipeline::new();
    let src = gst::ElementFactory::make("filesrc")
        .property("location", path.to_str().unwrap())
        .build()
        .unwrap();
    let demux = gst::ElementFactory::make("qtdemux").build().unwrap();
    p.add_many([&src, &demux]).unwrap();
    src.link(&demux).unwrap();
    let found = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let f = found.clone();
    let weak = p.downgrade();
    demux.connect_pad_added(move |_, pad| {
        let name = pad.current_caps().unwrap().structure(0).unwrap().name().to_string();
        let last = std::sync::Arc::new(std::sync::Mutex::new(None));
        let l = last.clone();
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(b) = info.buffer() {
                *l.lock().unwrap() = b.pts();
            }
            gst::PadProbeReturn::Ok
        });
        f.lock().unwrap().push((name, last));
        let p = weak.upgrade().unwrap();
        let sink = gst::ElementFactory::make("fakesink")
            .property("sync", false)
            .build()
            .unwrap();
        p.add(&sink).unwrap();
        sink.sync_state_with_parent().unwrap();
        pad.link(&sink.static_pad("sink").unwrap()).unwrap();
    });
    p.set_state(gst::State::Playing).unwrap();
    let err = wait_end(&p.bus().unwrap());
    p.set_state(gst::State::Null).unwrap();
    assert!(err.is_none(), "{}: {err:?}", path.display());
    let found = found.lock().unwrap();
    found
        .iter()
        .map(|(n, last)| (n.clone(), last.lock().unwrap().map_or(0.0, |t| t.seconds_f64())))
        .collect()
}

/// A camera sending H.265 video and G.711 (PCMA) audio, as many IP cameras do, dropping and
/// coming back: the H.265 stream is kept as it comes, with the audio (as AAC, which MP4 carries),
/// the analysed copy shows the face, and the recording goes on after the drop.
#[test]
fn an_h265_camera_with_audio_is_recorded_as_it_comes() {
    let mut server = RtspServer::start_with(&["--h265", "--audio", "pcma"]);
    let dir = tmp("h265");
    let mut recorder = Command::new(cli())
        .args(["record", &server.url(), "--out"])
        .arg(&dir)
        .args([
            "--segment",
            "2",
            "--duration",
            "20",
            "--stall-timeout",
            "3",
            "--max-backoff",
            "2",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while segments(&dir, "original").len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    server.stop();
    std::thread::sleep(Duration::from_secs(2));
    server.resume();
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
    assert!(
        log.contains("H.265 video kept as it comes") && log.contains("A-law"),
        "{log}"
    );
    assert!(log.contains("camera dropped"), "{log}");
    let originals = segments(&dir, "original");
    assert!(originals.len() >= 4, "{originals:?}\n{log}");
    let mut frames = 0;
    for (_, path) in &originals {
        let s = streams(path);
        let video = s.iter().find(|(n, _)| n == "video/x-h265");
        let audio = s.iter().find(|(n, _)| n == "audio/mpeg");
        assert!(video.is_some() && audio.is_some(), "{}: {s:?}", path.display());
        // A segment the drop cut short may hold a frame or two; every one plays to its end.
        let (pts, _) = play(path, false);
        assert!(
            !pts.is_empty() && pts.windows(2).all(|w| w[0] < w[1]),
            "{}: {pts:?}\n{log}",
            path.display()
        );
        frames += pts.len();
    }
    // 14 s of a camera that sends up to 15 frames/s (x265 on a loaded machine sends fewer),
    // less the outage and the reconnections.
    assert!(frames >= 40, "{frames} frames kept\n{log}");
    let after_drop = log
        .lines()
        .skip_while(|l| !l.contains("camera dropped"))
        .any(|l| l.contains("segment") && l.contains("original_"));
    assert!(after_drop, "recorded on after the drop:\n{log}");
    let annotated = segments(&dir, "annotated");
    let (_, faces) = play(&annotated[annotated.len() / 2].1, true);
    assert!(faces > 0, "the analysed copy shows the face");
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
