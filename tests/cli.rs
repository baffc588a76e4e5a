//! The `faceemotion` command on real footage: `analyse` writes the annotated MP4, the JSON
//! records, the CSV and a report that a real browser (Debian's Chromium, headless) renders with
//! its charts; `report` makes the same report from the records.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use gst::prelude::*;

fn cli() -> Command {
    Command::new(env!("CARGO_BIN_EXE_faceemotion"))
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("faceemotion-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Frames of an MP4.
fn frames(path: &Path) -> usize {
    init();
    let p = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! qtdemux ! h264parse ! fakesink name=sink",
        path.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let n = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = n.clone();
    p.by_name("sink")
        .unwrap()
        .static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            gst::PadProbeReturn::Ok
        });
    p.set_state(gst::State::Playing).unwrap();
    let error = wait_end(&p.bus().unwrap());
    p.set_state(gst::State::Null).unwrap();
    assert!(error.is_none(), "{error:?}");
    n.load(std::sync::atomic::Ordering::SeqCst)
}

/// Width, height and RGB pixels of a PNG.
fn png(path: &Path) -> (usize, usize, Vec<u8>) {
    let s = pull_one(&format!(
        "filesrc location=\"{}\" ! pngdec ! videoconvert ! video/x-raw,format=RGB ! appsink name=sink",
        path.display()
    ));
    let (caps, buf) = (s.caps().unwrap().to_owned(), s.buffer_owned().unwrap());
    let info = gst_video::VideoInfo::from_caps(&caps).unwrap();
    let (w, h, stride) = (info.width() as usize, info.height() as usize, info.stride()[0] as usize);
    let m = buf.map_readable().unwrap();
    let mut px = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        px.extend_from_slice(&m[y * stride..y * stride + w * 3]);
    }
    (w, h, px)
}

/// Pixels within a few levels of an RGB colour.
fn count_colour(px: &[u8], rgb: [u8; 3]) -> usize {
    px.chunks_exact(3)
        .filter(|p| p.iter().zip(rgb).all(|(&a, b)| a.abs_diff(b) <= 6))
        .count()
}

/// The page as Chromium draws it, headless.
fn screenshot(html: &Path) -> PathBuf {
    let shot = html.with_file_name("screenshot.png");
    let profile = html.with_file_name("chromium-profile");
    let out = Command::new("timeout")
        .arg("120")
        .arg("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1100,2400",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("chromium is missing: run scripts/setup.sh --test (Debian chromium)");
    assert!(
        shot.is_file(),
        "chromium made no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    shot
}

#[test]
fn analyse_writes_video_records_csv_and_a_report_a_browser_shows() {
    let dir = tmp("analyse");
    let out = cli()
        .arg("analyse")
        .arg(data("astronaut-pan.mp4"))
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    // Plain progress lines when not on a terminal, and a summary.
    assert!(
        stderr.contains("[analyse]") && stderr.contains("done: 180 frames"),
        "{stderr}"
    );
    assert!(
        stdout.starts_with("1 visitor (0 came back) in 1 visit over"),
        "{stdout}"
    );
    assert_eq!(frames(&dir.join("annotated.mp4")), 180);
    let records = std::fs::read_to_string(dir.join("results.jsonl")).unwrap();
    assert!(records.lines().count() >= 177);
    let csv = std::fs::read_to_string(dir.join("people.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(rows[0].starts_with("id,visitor,first_seen_s,last_seen_s,time_present_s,frames,dominant_emotion"));
    assert!(rows[1].starts_with("1,1,") && rows[1].contains(",happy,"), "{csv}");
    let visitors = std::fs::read_to_string(dir.join("visitors.csv")).unwrap();
    let rows: Vec<&str> = visitors.lines().collect();
    assert_eq!(rows.len(), 2, "{visitors}");
    assert!(rows[0].starts_with("visitor,visits,first_seen_s,last_seen_s,time_present_s,dominant_emotion"));
    assert!(rows[1].starts_with("1,1,") && rows[1].contains(",happy,"), "{visitors}");

    let html_path = dir.join("report.html");
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.matches("<svg").count() >= 4, "four charts inline");
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http") && !html.contains("<script"),
        "self-contained"
    );
    let (w, h, main) = png(&dir.join("emotions.png"));
    assert_eq!((w, h), (1200, 480));
    assert!(
        count_colour(&main, [255, 210, 0]) > 50_000,
        "the main chart shows the happy share"
    );

    // In a browser: the page draws, charts and all.
    let (w, h, shot) = png(&screenshot(&html_path));
    assert_eq!((w, h), (1100, 2400));
    let happy = count_colour(&shot, [255, 210, 0]);
    let white = count_colour(&shot, [255, 255, 255]);
    assert!(happy > 40_000, "the charts' happy areas are drawn ({happy} pixels)");
    assert!(white < w * h * 95 / 100, "the page is not blank");
    std::fs::remove_dir_all(&dir).ok();
}

/// A held-out recording of several people who come and go: the report counts them and the page
/// renders; `report` makes it again from the records alone.
#[test]
fn report_of_people_coming_and_going() {
    let coffee = data("coffee.png");
    let clip = stills_clip(
        "come-and-go",
        &[
            (group_photo(1), 45),
            (coffee.clone(), 45),
            (group_photo(2), 45),
            (coffee, 45),
            (group_photo(1), 45),
        ],
    );
    let dir = tmp("people");
    let out = cli()
        .arg("analyse")
        .arg(&clip)
        .arg("--out")
        .arg(&dir)
        .args(["--no-video", "--set", "threshold=0.5", "--start", "2026-12-01T09:59:58"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary = String::from_utf8_lossy(&out.stdout);
    // Nine visits, but the first photo's three women come back: six visitors.
    assert!(summary.starts_with("6 visitors (3 came back) in 9 visits"), "{summary}");
    // Told when the recording started (two seconds before ten), the report has times of day:
    // the first people came at 09:59, the others after 10:00.
    assert!(summary.contains("busiest hour 10:00-11:00"), "{summary}");
    let records = std::fs::read_to_string(dir.join("results.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(records.lines().next().unwrap()).unwrap();
    let utc = first["utc"].as_str().unwrap_or_else(|| panic!("no utc in {first}"));
    let start = gstfaceemotion::schema::parse_time_of_day("2026-12-01T09:59:58").unwrap();
    let ts = first["timestamp"].as_u64().unwrap();
    assert_eq!(
        gstfaceemotion::schema::parse_utc(utc),
        Some((start + ts) / 1_000_000 * 1_000_000)
    );
    let again = dir.join("again");
    let out = cli()
        .arg("report")
        .arg(dir.join("results.jsonl"))
        .arg("--out")
        .arg(&again)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(dir.join("people.csv")).unwrap(),
        std::fs::read_to_string(again.join("people.csv")).unwrap()
    );
    let csv = std::fs::read_to_string(again.join("people.csv")).unwrap();
    assert_eq!(csv.lines().count(), 10);
    let html = std::fs::read_to_string(again.join("report.html")).unwrap();
    assert!(
        html.contains("<b id=\"visitors\">6</b>") && html.contains("<b id=\"visits\">9</b>"),
        "the page leads with 6 visitors in 9 visits"
    );
    assert!(html.contains("<b id=\"returning\">3</b>"), "3 came back");
    let visitors = std::fs::read_to_string(again.join("visitors.csv")).unwrap();
    assert_eq!(visitors.lines().count(), 7, "{visitors}");
    let back: Vec<&str> = visitors
        .lines()
        .skip(1)
        .filter(|l| l.split(',').nth(1) == Some("2"))
        .collect();
    assert_eq!(back.len(), 3, "three visitors with two visits: {visitors}");
    assert!(
        html.contains("People by hour of the day") && html.contains("<td>09:59:58</td>"),
        "times of day"
    );
    assert!(csv.lines().nth(1).unwrap().contains(",2026-12-01T"), "{csv}");
    let (_, _, shot) = png(&screenshot(&again.join("report.html")));
    assert!(count_colour(&shot, [255, 255, 255]) < shot.len() / 3 * 95 / 100);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_arguments_are_named() {
    let out = cli().args(["analyse", "/nonexistent/shop.mp4"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/shop.mp4"));
    let out = cli()
        .args(["analyse"])
        .arg(data("astronaut-pan.mp4"))
        .args(["--set", "thresold=0.5", "--out"])
        .arg(tmp("bad"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no property \"thresold\""));
    let out = cli()
        .args(["analyse"])
        .arg(data("astronaut-pan.mp4"))
        .args(["--set", "threshold=7", "--out"])
        .arg(tmp("bad2"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("out of range"));
    let out = cli().args(["report", "/nonexistent/results.jsonl"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/results.jsonl"));
}

/// Runs the command, failing the test if it has not ended within `limit`: a command that never
/// ends must not hang the test run.
fn output_within(mut cmd: Command, limit: std::time::Duration) -> std::process::Output {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("")
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// A file with nothing to analyse ends at once, says why, and leaves no outputs behind: an
/// audio-only Ogg ("no video stream"); a video whose decoder is not installed (hidden from
/// decodebin by its rank), alone or beside an audio stream that can be decoded, names the
/// missing decoder.
#[test]
fn a_file_without_decodable_video_is_named_and_leaves_nothing() {
    init();
    let ogg = cached_clip(
        "audio-only.ogg",
        "audiotestsrc num-buffers=40 ! audioconvert ! vorbisenc ! oggmux ! filesink location=\"{out}\"",
    );
    let with_audio = cached_clip(
        "astronaut-with-audio.mp4",
        &format!(
            "filesrc location=\"{}\" ! qtdemux ! h264parse ! mp4mux name=mux ! filesink location=\"{{out}}\" \
             audiotestsrc num-buffers=200 ! audioconvert ! voaacenc ! aacparse ! mux.",
            data("astronaut-pan.mp4").display()
        ),
    );
    let limit = std::time::Duration::from_secs(60);
    let cases: [(&Path, bool, &str); 3] = [
        (&ogg, false, "no video stream in"),
        (&data("astronaut-pan.mp4"), true, "H.264"),
        (&with_audio, true, "H.264"),
    ];
    for (i, (file, hide_decoders, says)) in cases.into_iter().enumerate() {
        let dir = tmp(&format!("novideo{i}"));
        let mut cmd = cli();
        cmd.arg("analyse").arg(file).arg("--out").arg(&dir);
        if hide_decoders {
            cmd.env("GST_PLUGIN_FEATURE_RANK", "avdec_h264:NONE,openh264dec:NONE");
        }
        let out = output_within(cmd, limit);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{}: {err}", file.display());
        assert!(
            err.contains(says) && err.contains(&*file.display().to_string()),
            "{}: {err}",
            file.display()
        );
        if hide_decoders {
            assert!(err.contains("not installed"), "{err}");
        }
        assert!(!dir.exists(), "{}: outputs left in {}", file.display(), dir.display());
    }
}

/// Several files at once, in one process sharing the models: a folder per file, each with what
/// a file analysed alone gets; a file that cannot be analysed fails alone, named.
#[test]
fn several_files_are_analysed_at_once_into_a_folder_each() {
    init();
    let ogg = cached_clip(
        "audio-only.ogg",
        "audiotestsrc num-buffers=40 ! audioconvert ! vorbisenc ! oggmux ! filesink location=\"{out}\"",
    );
    let dir = tmp("several");
    let out = output_within(
        {
            let mut c = cli();
            c.arg("analyse")
                .arg(data("astronaut-pan.mp4"))
                .arg(data("astronaut-pan.mp4"))
                .arg(&ogg)
                .arg("--no-video")
                .arg("--out")
                .arg(&dir);
            c
        },
        std::time::Duration::from_secs(300),
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(!out.status.success(), "one of three failed: {stderr}");
    assert!(
        stderr.contains("no video stream in") && stderr.contains("1 of 3 files"),
        "{stderr}"
    );
    let alone = tmp("several-alone");
    let single = cli()
        .arg("analyse")
        .arg(data("astronaut-pan.mp4"))
        .arg("--no-video")
        .arg("--out")
        .arg(&alone)
        .output()
        .unwrap();
    assert!(single.status.success());
    let people = std::fs::read_to_string(alone.join("people.csv")).unwrap();
    for sub in ["astronaut-pan", "astronaut-pan-2"] {
        let csv = std::fs::read_to_string(dir.join(sub).join("people.csv"))
            .unwrap_or_else(|e| panic!("{sub}: {e}\n{stdout}"));
        assert_eq!(csv, people, "{sub}: the same as the file analysed alone");
        assert!(dir.join(sub).join("report.html").is_file());
    }
    assert!(!dir.join("audio-only").exists(), "no outputs for the failed file");
    assert_eq!(
        stdout.matches("1 visitor (0 came back) in 1 visit over").count(),
        2,
        "{stdout}"
    );
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&alone).ok();
}
