//! faceemotionpublish: DL Streamer's JSON from our metas and from anyone's, files that are valid
//! JSON, and MQTT against a real mosquitto, also while it is stopped and started again.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::services::{Mosquitto, Subscriber};
use common::*;
use gst::prelude::*;
use serde_json::Value;

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("faceemotion-publish-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn clip_pipeline(publish: &str) -> String {
    format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! faceemotion ! faceemotionpublish name=publish {publish} \
         ! appsink name=sink sync=false",
        data("astronaut-pan.mp4").display()
    )
}

/// Runs a pipeline to its end; returns the buffers' sizes and the publisher's stats.
fn run_through(desc: &str) -> (usize, gst::Structure) {
    init();
    let (p, sink) = with_appsink(desc);
    let publish = p.by_name("publish").unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let mut n = 0;
    while let Some(_s) = sink.try_pull_sample(gst::ClockTime::from_seconds(60)) {
        n += 1;
    }
    assert!(sink.is_eos(), "the pipeline stalled");
    let bus = p.bus().unwrap();
    while let Some(m) = bus.pop() {
        if let gst::MessageView::Error(e) = m.view() {
            panic!("{}", e.error());
        }
    }
    p.set_state(gst::State::Null).unwrap();
    (n, publish.property::<gst::Structure>("stats"))
}

fn check_frame_record(r: &Value) {
    let objects = r["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 1, "{r}");
    let o = &objects[0];
    for k in ["x", "y", "w", "h", "region_id", "id"] {
        assert!(o[k].is_i64() || o[k].is_u64(), "{k} in {o}");
    }
    assert_eq!(o["roi_type"], "face");
    let b = &o["detection"]["bounding_box"];
    for k in ["x_min", "y_min", "x_max", "y_max"] {
        let v = b[k].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{k} {v}");
    }
    assert_eq!(o["detection"]["label"], "face");
    assert!(o["detection"]["confidence"].as_f64().unwrap() > 0.6);
    assert_eq!(o["emotion"]["label"], "happy");
    assert_eq!(o["emotion"]["label_id"], 3);
    assert_eq!(o["emotion"]["model"]["name"], "emotion_minixception_fer");
    let probs = o["emotion"]["probabilities"].as_object().unwrap();
    assert_eq!(probs.len(), 7);
    assert!((probs.values().map(|v| v.as_f64().unwrap()).sum::<f64>() - 1.0).abs() < 1e-3);
    assert!(o["emotion-raw"]["probabilities"].is_object());
    assert!(["male", "female"].contains(&o["gender"]["label"].as_str().unwrap()));
    assert!(o["age"]["label"].as_str().unwrap().parse::<u32>().is_ok());
    assert!(o["age"]["years"].is_f64());
    assert_eq!(r["resolution"]["width"], 640);
    assert_eq!(r["resolution"]["height"], 360);
    assert!(r["timestamp"].is_u64());
}

#[test]
fn json_lines_follow_gvametaconvert_and_carry_the_track_events() {
    let path = tmp("clip.jsonl");
    let _ = std::fs::remove_file(&path);
    let (frames, stats) = run_through(&clip_pipeline(&format!(
        "file-path=\"{}\" source=shop-door tags={{\"store\":\"north\"}}",
        path.display()
    )));
    assert_eq!(frames, 180, "buffers passed through");
    let text = std::fs::read_to_string(&path).unwrap();
    let records: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let (events, frames_r): (Vec<&Value>, Vec<&Value>) = records.iter().partition(|r| r.get("event").is_some());
    assert!(frames_r.len() >= 175, "{} frame records", frames_r.len());
    for r in &frames_r {
        check_frame_record(r);
        assert_eq!(r["source"], "shop-door");
        assert_eq!(r["tags"]["store"], "north");
    }
    let ts: Vec<u64> = frames_r.iter().map(|r| r["timestamp"].as_u64().unwrap()).collect();
    assert!(ts.windows(2).all(|w| w[0] < w[1]), "timestamps in order");
    let kinds: Vec<&str> = events.iter().map(|e| e["event"]["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["appeared", "left"]);
    let left = &events[1]["event"];
    assert_eq!(left["frames"].as_u64().unwrap() as usize, frames_r.len());
    assert_eq!(left["emotion"], "happy");
    assert!(left["emotion_share"]["happy"].as_f64().unwrap() > 0.9);
    // Visitors beside the tracks, in the events and the objects; never their descriptors.
    assert_eq!((left["visitor"].as_u64(), left["visit"].as_u64()), (Some(1), Some(1)));
    assert_eq!(left["returning"], false);
    let objects_with_visitor = frames_r
        .iter()
        .flat_map(|r| r["objects"].as_array().unwrap())
        .filter(|o| o["visitor"] == 1)
        .count();
    assert!(
        objects_with_visitor >= 170,
        "{objects_with_visitor} objects name their visitor"
    );
    for r in &records {
        let text = r.to_string();
        assert!(!text.contains("descriptor"), "a descriptor left the element: {text}");
    }
    assert_eq!(stats.get::<u64>("records").unwrap(), records.len() as u64);
    assert_eq!(stats.get::<u64>("published").unwrap(), records.len() as u64);
    assert_eq!(stats.get::<u64>("dropped").unwrap(), 0);

    // json: one valid array; add-empty-results: a record for every frame.
    let path = tmp("clip.json");
    run_through(&clip_pipeline(&format!(
        "file-path=\"{}\" file-format=json add-empty-results=true",
        path.display()
    )));
    let all: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let n = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r.get("objects").is_some())
        .count();
    assert_eq!(n, 180);
}

/// Metas written by something else (DL Streamer's layout, another model): read all the same.
#[test]
fn any_dl_streamer_style_roi_meta_is_published() {
    init();
    let path = tmp("others.jsonl");
    let _ = std::fs::remove_file(&path);
    let mut h = gst_check::Harness::new_parse(&format!("faceemotionpublish file-path=\"{}\"", path.display()));
    h.set_src_caps_str("video/x-raw,format=I420,width=640,height=480,framerate=25/1");
    let mut buf = gst::Buffer::with_size(640 * 480 * 3 / 2).unwrap();
    {
        let b = buf.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_mseconds(40));
        let mut m = gst_video::VideoRegionOfInterestMeta::add(b, "vehicle", (64, 48, 128, 96));
        m.set_id(7);
        m.add_param(
            gst::Structure::builder("detection")
                .field("x_min", 0.1f64)
                .field("y_min", 0.1f64)
                .field("x_max", 0.3f64)
                .field("y_max", 0.3f64)
                .field("confidence", 0.8f64)
                .field("label_id", 2i32)
                .field("label", "car")
                .build(),
        );
        m.add_param(gst::Structure::builder("object_id").field("id", 42i32).build());
        m.add_param(
            gst::Structure::builder("color")
                .field("label", "red")
                .field("label_id", 1i32)
                .field("confidence", 0.9f64)
                .field("model_name", "vehicle-attributes")
                .build(),
        );
        // Without model_name: not a classification (gvametaconvert drops it too).
        m.add_param(gst::Structure::builder("note").field("label", "x").build());
    }
    let before = buf.map_readable().unwrap().to_vec();
    h.push(buf).unwrap();
    let out = h.pull().unwrap();
    assert_eq!(out.map_readable().unwrap().as_slice(), before.as_slice(), "untouched");
    drop(h);
    let r: Value = serde_json::from_str(std::fs::read_to_string(&path).unwrap().lines().next().unwrap()).unwrap();
    let o = &r["objects"][0];
    assert_eq!((o["x"].as_u64(), o["w"].as_u64()), (Some(64), Some(128)));
    assert_eq!(o["roi_type"], "vehicle");
    assert_eq!(o["region_id"], 7);
    assert_eq!(o["id"], 42);
    assert_eq!(o["detection"]["label"], "car");
    assert_eq!(o["detection"]["label_id"], 2);
    assert_eq!(o["color"]["label"], "red");
    assert_eq!(o["color"]["model"]["name"], "vehicle-attributes");
    assert_eq!(o["color"]["confidence"], 0.9);
    assert!(o.get("note").is_none());
    assert_eq!(r["timestamp"], 40_000_000);
    assert_eq!(r["resolution"]["width"], 640);
}

#[test]
fn a_file_that_cannot_be_written_is_an_error_at_start() {
    let (_, err) =
        run_pipeline("videotestsrc num-buffers=1 ! faceemotionpublish file-path=/nonexistent/dir/out.jsonl ! fakesink");
    let err = err.expect("an error");
    assert!(err.contains("/nonexistent/dir/out.jsonl"), "{err}");
    let (_, err) = run_pipeline("videotestsrc num-buffers=1 ! faceemotionpublish tags=notjson ! fakesink");
    assert!(err.expect("an error").contains("tags is not JSON"));
}

/// Unique records received (a QoS 1 record may come twice after a reconnection).
fn unique(received: &[String]) -> BTreeSet<String> {
    received.iter().cloned().collect()
}

#[test]
fn every_record_reaches_a_real_broker_in_order() {
    let broker = Mosquitto::start();
    let sub = Subscriber::start(broker.port, "test/frames");
    let (_, stats) = run_through(&clip_pipeline(&format!(
        "method=mqtt address={} topic=test/frames qos=1",
        broker.address()
    )));
    let sent = stats.get::<u64>("records").unwrap() as usize;
    assert_eq!(stats.get::<u64>("published").unwrap() as usize, sent);
    assert_eq!(stats.get::<u64>("dropped").unwrap(), 0);
    let got = sub.wait_for(sent, Duration::from_secs(30));
    assert_eq!(got.len(), sent, "every record arrived once");
    let records: Vec<Value> = got.iter().map(|s| serde_json::from_str(s).unwrap()).collect();
    let frames: Vec<&Value> = records.iter().filter(|r| r.get("objects").is_some()).collect();
    assert!(frames.len() >= 175);
    for r in &frames {
        check_frame_record(r);
    }
    let ts: Vec<u64> = frames.iter().map(|r| r["timestamp"].as_u64().unwrap()).collect();
    assert!(ts.windows(2).all(|w| w[0] < w[1]), "in order");
    assert_eq!(
        records.iter().filter(|r| r.get("event").is_some()).count(),
        2,
        "appeared and left"
    );
}

/// The broker stops in the middle of the stream and starts again: the pipeline goes on,
/// reconnects, and what arrived plus what was dropped (and counted) is what was sent.
#[test]
fn the_broker_stops_and_comes_back_and_nothing_is_lost_silently() {
    let broker = Mosquitto::start();
    let sub = Subscriber::start(broker.port, "test/outage");
    init();
    // 30 ms a frame: the 180 frames take about 6 s, long enough for an outage in the middle.
    let desc = clip_pipeline(&format!(
        "method=mqtt address={} topic=test/outage qos=1 max-queued=25 max-reconnect-interval=1",
        broker.address()
    ))
    .replace("! faceemotion !", "! identity sleep-time=30000 ! faceemotion !");
    let (p, sink) = with_appsink(&desc);
    let publish = p.by_name("publish").unwrap();
    // Stopped and started on the streaming thread, before the publisher sees frames 40 and 110:
    // the stream waits for the broker to be gone (or back), wherever the reader is.
    let broker = std::sync::Mutex::new(broker);
    let seen = std::sync::atomic::AtomicUsize::new(0);
    publish
        .static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            match seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 {
                40 => broker.lock().unwrap().stop(),
                110 => broker.lock().unwrap().resume(),
                _ => {}
            }
            gst::PadProbeReturn::Ok
        });
    p.set_state(gst::State::Playing).unwrap();
    let mut frames = 0;
    let mut warnings = Vec::new();
    let bus = p.bus().unwrap();
    while let Some(_s) = sink.try_pull_sample(gst::ClockTime::from_seconds(60)) {
        frames += 1;
        while let Some(m) = bus.pop() {
            match m.view() {
                gst::MessageView::Warning(w) => warnings.push(w.error().to_string()),
                gst::MessageView::Error(e) => panic!("the pipeline failed: {}", e.error()),
                _ => {}
            }
        }
    }
    assert_eq!(frames, 180, "the pipeline kept running through the outage");
    p.set_state(gst::State::Null).unwrap();
    let stats = publish.property::<gst::Structure>("stats");
    let (sent, dropped) = (
        stats.get::<u64>("records").unwrap() as usize,
        stats.get::<u64>("dropped").unwrap() as usize,
    );
    assert!(stats.get::<u64>("reconnects").unwrap() >= 1, "{stats}");
    assert!(dropped > 0, "an outage of 70 frames overflows a queue of 25: {stats}");
    let received = unique(&sub.wait_for(sent - dropped, Duration::from_secs(30)));
    assert_eq!(
        received.len() + dropped,
        sent,
        "received {} + dropped {dropped} = sent {sent}: {stats}",
        received.len()
    );
    assert!(warnings.iter().any(|w| w.contains("went away")), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("dropped")), "{warnings:?}");
}

/// While the stream plays (it fails a frame), and when it ends before the connection has
/// given up: the error comes before the EOS, which an application would take for success.
#[test]
fn an_unreachable_broker_is_an_error_that_says_what_to_do() {
    for (frames, sleep_us) in [(100, 20000), (3, 0)] {
        let port = common::services::free_port();
        let (_, err) = run_pipeline(&format!(
            "videotestsrc num-buffers={frames} ! video/x-raw,framerate=20/1 ! identity sleep-time={sleep_us} \
             ! faceemotionpublish method=mqtt address=127.0.0.1:{port} add-empty-results=true max-connect-attempts=2 \
             drain-timeout=60000 ! fakesink"
        ));
        let err = err.unwrap_or_else(|| panic!("{frames} frames: an error, not an EOS"));
        assert!(
            err.contains(&format!("127.0.0.1:{port}")) && err.contains("2 attempt") && err.contains("mosquitto"),
            "{frames} frames: {err}"
        );
    }
}

/// Errors are posted with no lock of the element held: a bus sync handler reading the stats on
/// the streaming thread sees a write that failed (a full disk) and the pipeline ends with the
/// error. Before, the error was posted under the state lock that the stats read takes.
#[test]
fn a_sync_handler_may_read_the_stats_of_a_failed_write() {
    init();
    let p = gst::parse::launch(
        "videotestsrc num-buffers=5 ! faceemotionpublish name=publish file-path=/dev/full add-empty-results=true ! fakesink",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let publish = p.by_name("publish").unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let (s, weak) = (seen.clone(), publish.downgrade());
    p.bus().unwrap().set_sync_handler(move |_, msg| {
        if let (gst::MessageView::Error(_), Some(publish)) = (msg.view(), weak.upgrade()) {
            *s.lock().unwrap() = Some(publish.property::<gst::Structure>("stats"));
        }
        gst::BusSyncReply::Pass
    });
    p.set_state(gst::State::Playing).unwrap();
    let error = wait_end(&p.bus().unwrap());
    p.set_state(gst::State::Null).unwrap();
    let error = error.expect("a write error");
    assert!(error.contains("/dev/full"), "{error}");
    let stats = seen.lock().unwrap().clone().expect("the handler read the stats");
    assert_eq!(stats.get::<u64>("dropped").unwrap(), 1, "{stats}");
}

/// MQTT settings that cannot work are errors at start that name the property: a topic with a
/// wildcard (MQTT forbids them in a topic published to; before, nothing was published and
/// gst-launch exited 0), an empty topic, ports out of range, hosts that are no host name.
#[test]
fn mqtt_settings_that_cannot_work_are_refused_at_start() {
    for (prop, value, says) in [
        ("topic", "store/#", "wildcards"),
        ("topic", "store/+/door", "wildcards"),
        ("topic", "\"\"", "empty"),
        ("address", "localhost:0", "1-65535"),
        ("address", "localhost:70000", "1-65535"),
        ("address", "localhost", "no port"),
        ("address", "\"bad host:1883\"", "not a host name"),
    ] {
        let (_, err) = run_pipeline(&format!(
            "videotestsrc num-buffers=1 ! faceemotionpublish method=mqtt {prop}={value} ! fakesink"
        ));
        let err = err.unwrap_or_else(|| panic!("{prop}={value} was accepted"));
        assert!(
            err.contains(&format!("{prop}=")) && err.contains(says),
            "{prop}={value}: {err}"
        );
    }
    init();
    let p = gst::parse::launch("videotestsrc num-buffers=1 ! faceemotionpublish name=publish method=mqtt ! fakesink")
        .unwrap();
    let p = p.downcast::<gst::Pipeline>().unwrap();
    p.by_name("publish").unwrap().set_property("client-id", "shop\ndoor");
    let _ = p.set_state(gst::State::Playing);
    let err = wait_end(&p.bus().unwrap());
    p.set_state(gst::State::Null).unwrap();
    let err = err.expect("a client id with a control character is refused");
    assert!(err.contains("client-id="), "{err}");
}

/// At the end of the stream the publisher waits for the broker to take what is queued, so
/// that at EOS every record is delivered (the broker is away for the last frames and comes
/// back after the stream ended); and at every moment records = published + dropped + queued,
/// in-flight records counted as queued.
#[test]
fn at_eos_every_record_is_delivered_and_the_counts_always_add_up() {
    let broker = std::sync::Arc::new(std::sync::Mutex::new(Mosquitto::start()));
    let port = broker.lock().unwrap().port;
    let sub = Subscriber::start(port, "test/eos");
    init();
    let desc = clip_pipeline(&format!(
        "method=mqtt address=127.0.0.1:{port} topic=test/eos qos=1 max-reconnect-interval=1 drain-timeout=20000"
    ))
    .replace("! faceemotion !", "! identity sleep-time=20000 ! faceemotion !");
    let (p, sink) = with_appsink(&desc);
    let publish = p.by_name("publish").unwrap();
    // Every few milliseconds, from another thread, the counts must add up.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let checker = {
        let (publish, stop) = (publish.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut bad = Vec::new();
            let mut samples = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let s = publish.property::<gst::Structure>("stats");
                let n = |k: &str| s.get::<u64>(k).unwrap();
                samples += 1;
                if n("records") != n("published") + n("dropped") + n("queued") {
                    bad.push(s.to_string());
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            (samples, bad)
        })
    };
    // Stopped on the streaming thread before the publisher sees frame 170, so that the last
    // frames' records certainly wait for it; back 1.5 s later, after the stream has ended.
    let (b, seen) = (broker.clone(), std::sync::atomic::AtomicUsize::new(0));
    publish
        .static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            if seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == 170 {
                b.lock().unwrap().stop();
                let b = b.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(1500));
                    b.lock().unwrap().resume();
                });
            }
            gst::PadProbeReturn::Ok
        });
    p.set_state(gst::State::Playing).unwrap();
    let mut frames = 0;
    while let Some(_s) = sink.try_pull_sample(STALL) {
        frames += 1;
    }
    assert!(sink.is_eos(), "the pipeline stalled");
    let at_eos = publish.property::<gst::Structure>("stats");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (samples, bad) = checker.join().unwrap();
    p.set_state(gst::State::Null).unwrap();
    assert_eq!(frames, 180);
    let records = at_eos.get::<u64>("records").unwrap();
    assert_eq!(
        at_eos.get::<u64>("queued").unwrap(),
        0,
        "nothing waits at EOS: {at_eos}"
    );
    assert_eq!(at_eos.get::<u64>("dropped").unwrap(), 0, "{at_eos}");
    assert_eq!(at_eos.get::<u64>("published").unwrap(), records, "{at_eos}");
    assert!(
        at_eos.get::<u64>("reconnects").unwrap() >= 1,
        "the broker was away at the end: {at_eos}"
    );
    assert!(
        samples > 100 && bad.is_empty(),
        "{samples} samples; counts that did not add up: {bad:?}"
    );
    assert_eq!(
        unique(&sub.wait_for(records as usize, Duration::from_secs(30))).len(),
        records as usize
    );
}
