//! Shared by the benchmarks: decoding real images into frames of any format, and statistics.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gst::prelude::*;
use gst_video::prelude::*;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A raw frame, tightly packed, as `ImageView::packed` wants it.
pub fn decode_packed(path: &Path, format: &str, width: usize, height: usize) -> Vec<u8> {
    gst::init().unwrap();
    let desc = format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! videoscale add-borders=true ! \
         video/x-raw,format={format},width={width},height={height},pixel-aspect-ratio=1/1 ! appsink name=sink",
        path.display()
    );
    let p = gst::parse::launch(&desc).unwrap().downcast::<gst::Pipeline>().unwrap();
    let sink = p.by_name("sink").unwrap().downcast::<gst_app::AppSink>().unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let sample = sink.pull_sample().unwrap();
    p.set_state(gst::State::Null).unwrap();
    let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
    let frame = gst_video::VideoFrame::from_buffer_readable(sample.buffer_owned().unwrap(), &info).unwrap();
    let f = gstfaceemotion::image::PixelFormat::ALL
        .into_iter()
        .find(|f| f.name() == format)
        .unwrap();
    let mut out = Vec::new();
    for plane in 0..f.n_planes() {
        // YV12's planes come as Y, V, U; the core wants Y, U, V.
        let src_plane = if format == "YV12" && plane > 0 {
            3 - plane
        } else {
            plane
        } as u32;
        let (row, rows) = f.plane_size(plane, width, height);
        let stride = frame.plane_stride()[src_plane as usize] as usize;
        let data = frame.plane_data(src_plane).unwrap();
        for r in 0..rows {
            out.extend_from_slice(&data[r * stride..r * stride + row]);
        }
    }
    out
}

/// Median and 99th percentile of a set of durations, in milliseconds.
pub fn stats_ms(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    if samples.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let p99 = samples[((samples.len() as f64 * 0.99).ceil() as usize).clamp(1, samples.len()) - 1];
    (ms(samples[samples.len() / 2]), ms(p99))
}

/// Runs `f` `n` times after a warm-up and returns the median time in milliseconds.
pub fn median_ms(n: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..3 {
        f();
    }
    let mut v: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    stats_ms(&mut v).0
}
