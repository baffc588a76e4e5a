//! A camera on loopback for the tests (and for trying `faceemotion record` without one):
//! GStreamer's RTSP server streaming a live H.264 picture of a face.
//!
//!     cargo run --example rtsp_test_server -- 8554 [image]    serves rtsp://127.0.0.1:8554/cam
//!
//! Prints `ready rtsp://...` once it listens. Killing the process is a camera dropping off the
//! network; starting it again on the same port is the camera coming back.

use gst_rtsp_server::prelude::*;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port = args.get(1).map(String::as_str).unwrap_or("8554");
    let image = args
        .get(2)
        .cloned()
        .unwrap_or_else(|| format!("{}/tests/data/astronaut.png", env!("CARGO_MANIFEST_DIR")));
    gst::init().expect("GStreamer");
    let main_loop = glib::MainLoop::new(None, false);
    let server = gst_rtsp_server::RTSPServer::new();
    server.set_address("127.0.0.1");
    server.set_service(port);
    let factory = gst_rtsp_server::RTSPMediaFactory::new();
    factory.set_launch(&format!(
        "( filesrc location=\"{image}\" ! decodebin ! videoconvert ! videoscale \
         ! video/x-raw,width=640,height=480,pixel-aspect-ratio=1/1 ! imagefreeze is-live=true \
         ! video/x-raw,framerate=15/1 ! videoconvert ! video/x-raw,format=I420 \
         ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 ! rtph264pay name=pay0 pt=96 )"
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
