//! A camera on loopback for the tests (and for trying `faceemotion record` without one):
//! GStreamer's RTSP server streaming a live H.264 (or H.265) picture of a face, with or without
//! audio, as IP cameras send them.
//!
//!     cargo run --example rtsp_test_server -- 8554 [image] [--h265] [--audio pcma|aac]
//!                                                          serves rtsp://127.0.0.1:8554/cam
//!
//! Prints `ready rtsp://...` once it listens. Killing the process is a camera dropping off the
//! network; starting it again on the same port is the camera coming back.

use gst_rtsp_server::prelude::*;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().position(|a| a == name);
    let h265 = flag("--h265").is_some();
    let audio = flag("--audio").and_then(|i| args.get(i + 1)).map(String::as_str);
    let plain: Vec<&String> = args
        .iter()
        .enumerate()
        .filter(|(i, a)| !a.starts_with("--") && flag("--audio").is_none_or(|f| *i != f + 1))
        .map(|(_, a)| a)
        .collect();
    let port = plain.first().map(|s| s.as_str()).unwrap_or("8554");
    let image = plain
        .get(1)
        .map(|s| s.to_string())
        .unwrap_or_else(|| format!("{}/tests/data/astronaut.png", env!("CARGO_MANIFEST_DIR")));
    let video = if h265 {
        "x265enc tune=zerolatency speed-preset=ultrafast key-int-max=15 ! rtph265pay name=pay0 pt=96"
    } else {
        "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 ! rtph264pay name=pay0 pt=96"
    };
    let audio = match audio {
        None => "",
        Some("pcma") => {
            " audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! audioresample \
             ! audio/x-raw,rate=8000,channels=1 ! alawenc ! rtppcmapay name=pay1 pt=8"
        }
        Some("aac") => {
            " audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! audioresample \
             ! audio/x-raw,rate=16000,channels=1 ! voaacenc ! rtpmp4gpay name=pay1 pt=97"
        }
        Some(other) => panic!("--audio {other}: pcma or aac"),
    };
    gst::init().expect("GStreamer");
    let main_loop = glib::MainLoop::new(None, false);
    let server = gst_rtsp_server::RTSPServer::new();
    server.set_address("127.0.0.1");
    server.set_service(port);
    let factory = gst_rtsp_server::RTSPMediaFactory::new();
    factory.set_launch(&format!(
        "( filesrc location=\"{image}\" ! decodebin ! videoconvert ! videoscale \
         ! video/x-raw,width=640,height=480,pixel-aspect-ratio=1/1 ! imagefreeze is-live=true \
         ! video/x-raw,framerate=15/1 ! videoconvert ! video/x-raw,format=I420 ! {video}{audio} )"
    ));
    // One stream for every client, as a camera has.
    factory.set_shared(true);
    server
        .mount_points()
        .expect("mount points")
        .add_factory("/cam", factory);
    let _id = server.attach(None).expect("the port is free");
    println!("ready rtsp://127.0.0.1:{port}/cam");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    main_loop.run();
}

use gst::glib;
