//! The time of day of frames, events and records: from `wall-clock-start` on a recording, from
//! the file's creation date, from the clock on a live source; and a value that is no time of day
//! refused at start.

mod common;

use common::*;
use gst::prelude::*;
use gstfaceemotion::schema::{parse_time_of_day, parse_utc};

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// A track event: its kind, and the times it gives.
type EventTimes = (String, u64, u64);

/// The frame messages' (stream time, utc) and the track events' utc of a pipeline.
fn times(desc: &str) -> (Vec<(u64, u64)>, Vec<EventTimes>) {
    init();
    let p = gst::parse::launch(desc).unwrap().downcast::<gst::Pipeline>().unwrap();
    let bus = p.bus().unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let (mut frames, mut events) = (Vec::new(), Vec::new());
    let mut ended = false;
    for msg in bus.iter_timed(STALL) {
        match msg.view() {
            gst::MessageView::Element(e) => {
                let Some(s) = e.structure() else { continue };
                let utc = s.get::<String>("utc").ok().and_then(|u| parse_utc(&u));
                if s.name() == "faceemotion" {
                    frames.push((
                        s.get::<u64>("stream-time").unwrap(),
                        utc.expect("every frame has its time of day"),
                    ));
                } else if s.name() == "faceemotion-track" {
                    let kind = s.get::<String>("event").unwrap();
                    let at = s.get::<u64>(if kind == "left" { "last" } else { "first" }).unwrap();
                    events.push((kind, at, utc.expect("every event has its time of day")));
                }
            }
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
    (frames, events)
}

#[test]
fn a_recording_given_its_start_carries_the_time_of_day() {
    let start = parse_time_of_day("2026-12-01T09:00:00+01:00").unwrap();
    let (frames, events) = times(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! faceemotion wall-clock-start=2026-12-01T09:00:00+01:00 ! fakesink",
        data("astronaut-pan.mp4").display()
    ));
    assert_eq!(frames.len(), 180);
    for (ts, utc) in &frames {
        // Milliseconds, as the records carry them.
        assert_eq!(*utc / 1_000_000, (start + ts) / 1_000_000);
    }
    assert_eq!(events.len(), 2, "{events:?}");
    for (kind, at, utc) in &events {
        assert_eq!(*utc / 1_000_000, (start + at) / 1_000_000, "{kind}");
    }
}

#[test]
fn a_file_gives_its_creation_date() {
    // mp4mux writes the time of muxing as the file's creation date: a clip made now.
    init();
    let dir = std::env::temp_dir().join(format!("faceemotion-tod-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let clip = dir.join("dated.mp4");
    let before = now_ns();
    let (_, err) = run_pipeline(&format!(
        "videotestsrc num-buffers=10 ! x264enc ! mp4mux ! filesink location=\"{}\"",
        clip.display()
    ));
    assert!(err.is_none(), "{err:?}");
    let (frames, _) = times(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! faceemotion ! fakesink",
        clip.display()
    ));
    assert_eq!(frames.len(), 10);
    let (ts0, utc0) = frames[0];
    // MP4 dates are whole seconds.
    assert!(
        utc0 + 2_000_000_000 >= before && utc0 <= now_ns(),
        "{utc0} against {before}"
    );
    let off = |ts: u64, utc: u64| (utc as i128 - utc0 as i128) - (ts as i128 - ts0 as i128);
    assert!(
        frames.iter().all(|&(ts, utc)| off(ts, utc).abs() <= 1_000_000),
        "{frames:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_live_source_has_the_time_it_was_captured() {
    let before = now_ns();
    let (frames, _) = times(
        "videotestsrc is-live=true num-buffers=15 ! video/x-raw,width=320,height=240,framerate=30/1 \
         ! faceemotion ! fakesink sync=true",
    );
    let after = now_ns();
    assert_eq!(frames.len(), 15);
    for (_, utc) in &frames {
        assert!((before..=after).contains(utc), "{utc} not within {before}..{after}");
    }
    assert!(frames.windows(2).all(|w| w[1].1 > w[0].1), "in order");
}

#[test]
fn a_start_that_is_no_time_of_day_is_an_error_at_start() {
    let (_, err) = run_pipeline("videotestsrc num-buffers=2 ! faceemotion wall-clock-start=yesterday ! fakesink");
    let err = err.expect("an error");
    assert!(err.contains("wall-clock-start") && err.contains("yesterday"), "{err}");
}
