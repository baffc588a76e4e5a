//! Zones: a real face moving at a constant speed across a frame split in two enters and leaves
//! on time, and its time in each adds up; a face on a zone's edge does not flap; zones work with
//! masking, detector intervals, pipelining and a live source that is skipped; bad zones are
//! named; the records and the report carry them.

mod common;

use std::path::PathBuf;

use common::footage;
use common::*;
use gst::prelude::*;

const W: usize = 1280;
const H: usize = 720;
/// The astronaut (the bundled picture) pasted at 256 px wide: her face is about 100 px.
const PIC: (usize, usize) = (256, 256);
const STEP: usize = 8;
const FRAMES: usize = 129;
const FRAME_NS: f64 = 1e9 / 30.0;
const HALVES: &str = "left:0,0 0.5,0 0.5,1 0,1;right:0.5,0 1,0 1,1 0.5,1";

fn place(k: usize) -> (usize, usize) {
    (STEP * k, (H - PIC.1) / 2)
}

/// The astronaut crossing a kitchen from left to right, 8 px a frame.
fn crossing() -> PathBuf {
    init();
    cached(&clip_dir().join("zones-crossing.mp4"), |tmp| {
        footage::write_moving_clip(
            &data("astronaut.png"),
            PIC,
            &data("coffee.png"),
            (W, H),
            FRAMES,
            place,
            tmp,
        )
    })
}

fn analyse(clip: &std::path::Path, props: &str) -> Run {
    run_frames(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! faceemotion {props} ! appsink name=sink sync=false",
        clip.display()
    ))
}

/// Where the face's centre is relative to the picture's left edge: the median over the frames
/// of the detected centre less the paste position (a constant of the picture).
fn face_offset(run: &Run) -> f64 {
    let mut d: Vec<f64> = run
        .frames
        .iter()
        .enumerate()
        .filter_map(|(k, f)| f.first().map(|f| f.center().0 - place(k).0 as f64))
        .collect();
    d.sort_by(|a, b| a.total_cmp(b));
    d[d.len() / 2]
}

/// (event, zone, timestamp ns, duration ns) of the run's zone messages.
fn zone_events(run: &Run) -> Vec<(String, String, u64, Option<u64>)> {
    run.events
        .iter()
        .filter(|s| s.name() == "faceemotion-zone")
        .map(|s| {
            (
                s.get::<String>("event").unwrap(),
                s.get::<String>("zone").unwrap(),
                s.get::<u64>("timestamp").unwrap(),
                s.get::<u64>("duration").ok(),
            )
        })
        .collect()
}

/// Checks the crossing's events against the truth, within `frames` frames, and the time in
/// each zone within 0.1 s; returns the events.
fn check_crossing(run: &Run, frames: f64) -> Vec<(String, String, u64, Option<u64>)> {
    let offset = face_offset(run);
    // The first frame whose true face centre is in the right half.
    let truth = (0..FRAMES)
        .find(|&k| place(k).0 as f64 + offset >= W as f64 / 2.0)
        .expect("the face crosses the middle") as f64;
    let ev = zone_events(run);
    let names: Vec<(&str, &str)> = ev.iter().map(|e| (e.0.as_str(), e.1.as_str())).collect();
    assert_eq!(
        names,
        [
            ("entered", "left"),
            ("exited", "left"),
            ("entered", "right"),
            ("exited", "right")
        ],
        "{ev:?}"
    );
    let frame_of = |ns: u64| ns as f64 / FRAME_NS;
    assert!(frame_of(ev[0].2) < 1.0, "entered left on the first frame: {ev:?}");
    for e in &ev[1..3] {
        let off = frame_of(e.2) - truth;
        assert!(
            off.abs() <= frames,
            "{} {} at frame {:.1}, truth {truth}: {ev:?}",
            e.0,
            e.1,
            frame_of(e.2)
        );
    }
    // At the end of the stream she leaves the zone she is in, stamped with the last frame (as
    // her `left` event is); the stay counts to that frame's end.
    assert!((frame_of(ev[3].2) - (FRAMES - 1) as f64).abs() < 0.5, "{ev:?}");
    let (left_s, right_s) = (truth / 30.0, (FRAMES as f64 - truth) / 30.0);
    let stay = |e: &(String, String, u64, Option<u64>)| e.3.unwrap() as f64 / 1e9;
    assert!(
        (stay(&ev[1]) - left_s).abs() <= 0.1,
        "left {} s, truth {left_s}",
        stay(&ev[1])
    );
    assert!(
        (stay(&ev[3]) - right_s).abs() <= 0.1,
        "right {} s, truth {right_s}",
        stay(&ev[3])
    );
    // The person's left event adds up the same, and comes after the zones' exits.
    let left = run
        .events
        .iter()
        .position(|s| s.get::<&str>("event").ok() == Some("left"))
        .unwrap();
    let last_exit = run.events.iter().rposition(|s| s.name() == "faceemotion-zone").unwrap();
    assert!(last_exit < left, "the exits come before the person leaves");
    let times = run.events[left].get::<gst::Structure>("zones").unwrap();
    assert!((times.get::<f64>("left").unwrap() - left_s).abs() <= 0.1, "{times}");
    assert!((times.get::<f64>("right").unwrap() - right_s).abs() <= 0.1, "{times}");
    ev
}

#[test]
fn a_face_crossing_two_zones_enters_and_leaves_on_time_and_its_times_add_up() {
    let clip = crossing();
    let records = std::env::temp_dir().join(format!("faceemotion-zones-{}.jsonl", std::process::id()));
    let run = run_frames(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! faceemotion zones=\"{HALVES}\" \
         ! faceemotionpublish file-path=\"{}\" ! appsink name=sink sync=false",
        clip.display(),
        records.display()
    ));
    assert_eq!(run.frames.len(), FRAMES);
    check_crossing(&run, 2.0);
    // Every face on every frame names its zone (after the inertia's first frames).
    let zones_of = |f: &RoiFace| {
        f.param("detection")
            .get::<gst::Array>("zones")
            .unwrap()
            .iter()
            .map(|v| v.get::<String>().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(zones_of(&run.frames[10][0]), ["left"]);
    assert_eq!(zones_of(&run.frames[FRAMES - 5][0]), ["right"]);
    // The records: objects list their zones, zone events are records of their own, the left
    // event gives seconds per zone.
    let text = std::fs::read_to_string(&records).unwrap();
    let recs: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let types: Vec<&str> = recs.iter().filter_map(|r| r["event"]["type"].as_str()).collect();
    assert_eq!(
        types,
        [
            "appeared",
            "zone-entered",
            "zone-exited",
            "zone-entered",
            "zone-exited",
            "left"
        ],
        "{types:?}"
    );
    let entered = recs.iter().find(|r| r["event"]["type"] == "zone-entered").unwrap();
    assert_eq!(
        (entered["event"]["zone"].as_str(), entered["event"]["id"].as_u64()),
        (Some("left"), Some(1))
    );
    assert_eq!(entered["timestamp"], 0);
    let objects_in_right = recs
        .iter()
        .flat_map(|r| r["objects"].as_array().into_iter().flatten())
        .filter(|o| o["zones"] == serde_json::json!(["right"]))
        .count();
    assert!(objects_in_right > 40, "{objects_in_right}");
    let left = recs.iter().find(|r| r["event"]["type"] == "left").unwrap();
    assert!(left["event"]["zones"]["left"].as_f64().unwrap() > 1.0, "{left}");
    std::fs::remove_file(&records).ok();
}

#[test]
fn zones_work_with_masking_intervals_and_pipelining() {
    let clip = crossing();
    let plain = zone_events(&analyse(&clip, &format!("zones=\"{HALVES}\"")));
    // Masked and drawn: the same events (zones see the faces, not the picture).
    let masked = analyse(&clip, &format!("zones=\"{HALVES}\" blur=solid"));
    assert_eq!(zone_events(&masked), plain);
    // Without pipelining: the same events.
    let unpipelined = analyse(&clip, &format!("zones=\"{HALVES}\" pipelining=off"));
    assert_eq!(zone_events(&unpipelined), plain);
    // The detector on every third frame: the tracker carries her between runs, and she still
    // crosses on time (within an interval).
    let sparse = analyse(&clip, &format!("zones=\"{HALVES}\" inference-interval=3"));
    check_crossing(&sparse, 3.0);
}

/// The astronaut held with her face's centre on the line between the halves, moved 4 px left
/// and right of it frame by frame, as a detector's boxes wander.
#[test]
fn a_face_on_an_edge_does_not_flap() {
    // Where her face's centre is in the picture, from the crossing clip.
    let offset = face_offset(&analyse(&crossing(), ""));
    let centre_x = (W as f64 / 2.0 - offset).round() as usize / 2 * 2;
    let jitter = cached(&clip_dir().join("zones-edge.mp4"), |tmp| {
        footage::write_moving_clip(
            &data("astronaut.png"),
            PIC,
            &data("coffee.png"),
            (W, H),
            90,
            |k| (if k % 2 == 0 { centre_x - 4 } else { centre_x + 4 }, (H - PIC.1) / 2),
            tmp,
        )
    });
    let flaps = |inertia: u32| {
        let run = analyse(&jitter, &format!("zones=\"{HALVES}\" zone-inertia={inertia}"));
        let seen = run.frames.iter().filter(|f| f.len() == 1).count();
        assert!(seen >= 85, "her face on {seen} of 90 frames");
        zone_events(&run)
    };
    // Without inertia she goes in and out of both halves (her face is small for the whole
    // frame at 720p: the detector looks for it in a cell every other frame, and the tracker
    // carries it in between, so her box jumps on about every other frame)...
    let every_frame = flaps(1);
    assert!(
        every_frame.len() > 20,
        "the test must be able to fail: {} events",
        every_frame.len()
    );
    // ...with the default she settles in one half (or none) and stays.
    let settled = flaps(3);
    let entries = settled.iter().filter(|e| e.0 == "entered").count();
    assert!(entries <= 2, "{settled:?}");
    assert!(
        settled.iter().filter(|e| e.0 == "exited").count() <= entries,
        "{settled:?}"
    );
}

/// A live source faster than the element (frames it is late for are only tracked): the
/// five-person photo with the zone around its left half; every frame's faces name their zone,
/// skipped or not, and each person enters once and leaves once, at the end.
#[test]
fn zones_hold_on_live_frames_that_are_only_tracked() {
    init();
    let run = run_frames(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! videoscale add-borders=true \
         ! video/x-raw,format=I420,width=1920,height=1080,pixel-aspect-ratio=1/1 \
         ! imagefreeze is-live=true num-buffers=120 ! video/x-raw,framerate=60/1 \
         ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=0 \
         ! faceemotion name=fe tiles=8 inference-interval=3 zones=\"west:0,0 0.5,0 0.5,1 0,1\" \
         ! appsink name=sink sync=false",
        group_photo(5).display()
    ));
    assert_eq!(run.frames.len(), 120);
    let west: Vec<usize> = (0..run.frames.len())
        .map(|k| {
            run.frames[k]
                .iter()
                .filter(|f| f.center().0 < 960.0)
                .filter(|f| {
                    let z = f.param("detection").get::<gst::Array>("zones").unwrap();
                    z.iter().any(|v| v.get::<String>().unwrap() == "west")
                })
                .count()
        })
        .collect();
    let in_west = run.frames[60].iter().filter(|f| f.center().0 < 960.0).count();
    assert!(in_west >= 2, "faces in the west half: {in_west}");
    // After the inertia, every frame (tracked only or analysed) has them in the zone.
    assert!(west[10..].iter().all(|&n| n == in_west), "{west:?}");
    let ev = zone_events(&run);
    let entered = ev.iter().filter(|e| e.0 == "entered").count();
    let exited = ev.iter().filter(|e| e.0 == "exited").count();
    assert_eq!((entered, exited), (in_west, in_west), "{ev:?}");
}

#[test]
fn bad_zones_are_named_at_start_and_warned_while_playing() {
    let (_, err) = run_pipeline(
        "videotestsrc num-buffers=2 ! faceemotion zones=\"till:0.6,0.5 1,0.5 1,1;door:0,0 2,0 0,1\" ! fakesink",
    );
    let err = err.expect("bad zones refuse to start");
    assert!(err.contains("zone 2 (door)") && err.contains("outside 0..1"), "{err}");
    let (_, err) =
        run_pipeline("videotestsrc num-buffers=2 ! faceemotion zones=\"a:0,0 1,0 1,1;a:0,0 1,0 0,1\" ! fakesink");
    assert!(err.unwrap_or_default().contains("zone 2 (a)"), "duplicate names");
    for (bad, says) in [
        ("a:0,0 1,0", "at least 3"),
        ("a:0,0 1,0 x,1", "not a number"),
        ("b:0,0 1,0 1,1;a 0,0 1,0 1,1", "no ':'"),
        ("a:0,0 0.5,0.5 1,1", "no area"),
        ("a 0,0 1,0 1,1", "no ':'"),
    ] {
        let (_, err) = run_pipeline(&format!(
            "videotestsrc num-buffers=2 ! faceemotion zones=\"{bad}\" ! fakesink"
        ));
        let err = err.unwrap_or_default();
        assert!(err.contains(says) && err.contains("zone "), "{bad}: {err}");
    }
    // While playing: a warning, and the zones that were set stay.
    init();
    let (p, sink) = with_appsink(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! faceemotion name=fe zones=\"{HALVES}\" ! appsink name=sink sync=false",
        crossing().display()
    ));
    let fe = p.by_name("fe").unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let mut n = 0;
    let mut last = Vec::new();
    while let Some(s) = sink.try_pull_sample(STALL) {
        n += 1;
        if n == 5 {
            fe.set_property("zones", "left:0,0 0.5,0 0.5");
        }
        last = roi_faces(s.buffer().unwrap());
    }
    assert!(sink.is_eos());
    let mut warnings = Vec::new();
    while let Some(m) = p.bus().unwrap().pop() {
        if let gst::MessageView::Warning(w) = m.view() {
            warnings.push(w.error().to_string());
        }
    }
    p.set_state(gst::State::Null).unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("zone 1 (left)") && w.contains("point 3")),
        "{warnings:?}"
    );
    assert_eq!(fe.property::<Option<String>>("zones").as_deref(), Some(HALVES));
    let z = last[0].param("detection").get::<gst::Array>("zones").unwrap();
    assert_eq!(
        z.iter().map(|v| v.get::<String>().unwrap()).collect::<Vec<_>>(),
        ["right"],
        "the old zones stay"
    );
}

#[test]
fn analyse_takes_a_zones_file_and_the_report_has_time_and_emotions_per_zone() {
    let dir = std::env::temp_dir().join(format!("faceemotion-zones-report-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("zones.txt");
    std::fs::write(
        &file,
        "# the shop's two halves\nleft:0,0 0.5,0 0.5,1 0,1\n\nright:0.5,0 1,0 1,1 0.5,1\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_faceemotion"))
        .arg("analyse")
        .arg(crossing())
        .arg("--zones")
        .arg(&file)
        .args(["--no-video", "--out"])
        .arg(dir.join("out"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("zones: left 1 in, mean 2.") && summary.contains("right 1 in"),
        "{summary}"
    );
    let csv = std::fs::read_to_string(dir.join("out/people.csv")).unwrap();
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    let header = rows.headers().unwrap().clone();
    let at = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no {name} in {header:?}"))
    };
    let row = rows.records().next().unwrap().unwrap();
    let (left, right): (f64, f64) = (
        row[at("zone_left_s")].parse().unwrap(),
        row[at("zone_right_s")].parse().unwrap(),
    );
    assert!((left + right - FRAMES as f64 / 30.0).abs() < 0.15, "{left} + {right}");
    assert!(std::fs::read_to_string(dir.join("out/visitors.csv"))
        .unwrap()
        .contains("zone_left_s"));
    let html = std::fs::read_to_string(dir.join("out/report.html")).unwrap();
    assert!(
        html.contains("<h2>Zones</h2>") && html.contains("People in each zone"),
        "zones section"
    );
    assert!(html.contains("<td>left</td><td>1</td>") && html.contains("<td>right</td><td>1</td>"));
    // A bad line names the file and the line.
    std::fs::write(&file, "left:0,0 0.5,0 0.5,1 0,1\nright:0.5,0 1,0 1\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_faceemotion"))
        .arg("analyse")
        .arg(crossing())
        .arg("--zones")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("zones.txt line 2") && err.contains("not x,y"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_zones_are_drawn_and_a_face_is_labelled_with_its_zone() {
    init();
    let desc = |zones: &str| {
        format!(
            "filesrc location=\"{}\" ! decodebin ! videoconvert ! video/x-raw,format=RGB ! faceemotion {zones} \
             ! appsink name=sink sync=false",
            crossing().display()
        )
    };
    let light = |sample: &gst::Sample| {
        let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
        let stride = info.stride()[0] as usize;
        let m = sample.buffer().unwrap().map_readable().unwrap();
        // The vertical edge between the halves, at x = 640, down the frame away from the face.
        (0..H)
            .filter(|&y| !(200..520).contains(&y))
            .filter(|&y| m[y * stride + 640 * 3..][..3] == [236, 236, 236])
            .count()
    };
    let drawn = pull_one(&desc(&format!("zones=\"{HALVES}\"")));
    let plain = pull_one(&desc(""));
    let hidden = pull_one(&desc(&format!("zones=\"{HALVES}\" draw-zones=false")));
    assert!(light(&drawn) > 300, "the zone edge is drawn: {} pixels", light(&drawn));
    assert_eq!(light(&plain), 0);
    assert_eq!(light(&hidden), 0, "draw-zones=false");
}
