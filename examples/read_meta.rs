//! Reading faceemotion's results from a Rust application: the ROI metadata on each buffer and
//! the `faceemotion` bus messages.
//!
//!     GST_PLUGIN_PATH=target/release cargo run --example read_meta -- tests/data/astronaut-pan.mp4

use gst::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    gst::init()?;
    let clip = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "tests/data/astronaut-pan.mp4".into());
    let pipeline = gst::parse::launch(&format!(
        "filesrc location=\"{clip}\" ! decodebin ! videoconvert ! faceemotion name=fe ! fakesink"
    ))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| "not a pipeline")?;

    // Metadata travels with the buffer: read it wherever the buffer goes (here: a pad probe).
    let fe = pipeline
        .by_name("fe")
        .ok_or("no faceemotion element (is GST_PLUGIN_PATH set?)")?;
    fe.static_pad("src")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, |_, info| {
            let Some(buf) = info.buffer() else {
                return gst::PadProbeReturn::Ok;
            };
            for roi in buf.iter_meta::<gst_video::VideoRegionOfInterestMeta>() {
                let (x, y, w, h) = roi.rect();
                let field = |param: &str, name: &str| {
                    roi.param(param)
                        .and_then(|s| s.get::<String>(name).ok())
                        .unwrap_or_default()
                };
                let conf = |param: &str| {
                    roi.param(param)
                        .and_then(|s| s.get::<f64>("confidence").ok())
                        .unwrap_or(0.0)
                };
                println!(
                    "{:?}: face {} at ({x},{y}) {w}x{h}: {} {:.2}, {} {:.2}",
                    buf.pts(),
                    roi.id(),
                    field("emotion", "label"),
                    conf("emotion"),
                    field("gender", "label"),
                    conf("gender")
                );
            }
            gst::PadProbeReturn::Ok
        });

    pipeline.set_state(gst::State::Playing)?;
    let bus = pipeline.bus().unwrap();
    let mut frames = 0;
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        match msg.view() {
            // The same results as bus messages, one per frame.
            gst::MessageView::Element(m) if m.structure().is_some_and(|s| s.name() == "faceemotion") => frames += 1,
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                pipeline.set_state(gst::State::Null)?;
                return Err(format!("{} ({:?})", e.error(), e.debug()).into());
            }
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null)?;
    println!("{frames} frames analysed");
    Ok(())
}
