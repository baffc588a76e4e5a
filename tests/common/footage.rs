//! Footage the tests and the benchmark make from real pictures: frames with photos pasted in
//! (the group photos shrunk to store-camera distance), and a small face walking across a 1080p
//! picture. Shared by `tests/` and `benches/` (which include this file by path), so that both
//! measure the same pictures.
#![allow(dead_code)]

use std::path::Path;

use gst::prelude::*;
use gst_video::prelude::*;

/// An I420 frame with its planes, to paste pictures into.
pub struct Frame {
    pub w: usize,
    pub h: usize,
    pub data: Vec<u8>,
}

impl Frame {
    /// A black frame.
    pub fn new(w: usize, h: usize) -> Self {
        let mut data = vec![16u8; w * h * 3 / 2];
        data[w * h..].fill(128);
        Self { w, h, data }
    }

    /// Pastes an I420 picture of `pw` x `ph` (even) with its top left at (`x`, `y`) (even),
    /// cut at the frame's edges.
    pub fn paste(&mut self, pic: &[u8], pw: usize, ph: usize, x: usize, y: usize) {
        let (w, h) = (self.w, self.h);
        for row in 0..ph.min(h.saturating_sub(y)) {
            let n = pw.min(w.saturating_sub(x));
            self.data[(y + row) * w + x..][..n].copy_from_slice(&pic[row * pw..][..n]);
        }
        for (src, dst) in [(pw * ph, w * h), (pw * ph * 5 / 4, w * h * 5 / 4)] {
            for row in 0..(ph / 2).min(h.saturating_sub(y) / 2) {
                let n = (pw / 2).min(w.saturating_sub(x) / 2);
                let d = dst + (y / 2 + row) * (w / 2) + x / 2;
                self.data[d..d + n].copy_from_slice(&pic[src + row * (pw / 2)..][..n]);
            }
        }
    }

    pub fn caps(&self) -> gst::Caps {
        gst::Caps::builder("video/x-raw")
            .field("format", "I420")
            .field("width", self.w as i32)
            .field("height", self.h as i32)
            .field("framerate", gst::Fraction::new(30, 1))
            .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
            .build()
    }
}

/// The planes of a mapped I420 frame of `w` x `h`, tightly packed.
fn packed(frame: &gst_video::VideoFrame<gst_video::video_frame::Readable>, w: usize, h: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(w * h * 3 / 2);
    for (p, (pw, ph)) in [(w, h), (w / 2, h / 2), (w / 2, h / 2)].into_iter().enumerate() {
        let stride = frame.plane_stride()[p] as usize;
        let data = frame.plane_data(p as u32).unwrap();
        for row in 0..ph {
            out.extend_from_slice(&data[row * stride..][..pw]);
        }
    }
    out
}

/// The first frame of a pipeline ending in `appsink name=sink`.
fn first_sample(desc: &str) -> gst::Sample {
    gst::init().unwrap();
    let p = gst::parse::launch(desc).unwrap().downcast::<gst::Pipeline>().unwrap();
    let sink = p.by_name("sink").unwrap().downcast::<gst_app::AppSink>().unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let sample = sink
        .try_pull_sample(gst::ClockTime::from_seconds(120))
        .expect("a frame");
    p.set_state(gst::State::Null).unwrap();
    sample
}

/// A picture as I420 of `w` x `h`, shrunk with a proper low-pass filter as a camera's optics and
/// sensor would (bilinear shrinking by 5 aliases small faces beyond what any camera gives).
pub fn picture(path: &Path, w: usize, h: usize) -> Vec<u8> {
    let sample = first_sample(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! videoscale method=lanczos \
         ! video/x-raw,format=I420,width={w},height={h},pixel-aspect-ratio=1/1 ! appsink name=sink",
        path.display()
    ));
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, w as u32, h as u32)
        .build()
        .unwrap();
    let frame = gst_video::VideoFrame::from_buffer_readable(sample.buffer_owned().unwrap(), &info).unwrap();
    packed(&frame, w, h)
}

/// A picture's size.
pub fn size_of(path: &Path) -> (usize, usize) {
    let sample = first_sample(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! appsink name=sink",
        path.display()
    ));
    let s = sample.caps().unwrap().structure(0).unwrap().to_owned();
    (
        s.get::<i32>("width").unwrap() as usize,
        s.get::<i32>("height").unwrap() as usize,
    )
}

/// Where a picture of `pw0` x `ph0` goes in cell `i` of a 3x2 grid on `w` x `h`, fitted to
/// the cell, scaled by `scale` and centred: position and size, all even.
pub fn grid_place(i: usize, w: usize, h: usize, pw0: usize, ph0: usize, scale: f64) -> (usize, usize, usize, usize) {
    let (cw, ch) = (w / 3, h / 2);
    let fit = (cw as f64 / pw0 as f64).min(ch as f64 / ph0 as f64) * scale;
    let even = |v: f64| ((v / 2.0).floor() * 2.0) as usize;
    let (pw, ph) = (even(pw0 as f64 * fit), even(ph0 as f64 * fit));
    let x = even(((i % 3) * cw) as f64 + (cw - pw) as f64 / 2.0);
    let y = even(((i / 3) * ch) as f64 + (ch - ph) as f64 / 2.0);
    (x, y, pw, ph)
}

/// The six photos in a 3x2 grid on a `w` x `h` frame (see [`grid_place`]).
pub fn grid_frame(photos: &[std::path::PathBuf], w: usize, h: usize, scale: f64) -> Frame {
    let mut frame = Frame::new(w, h);
    for (i, path) in photos.iter().enumerate() {
        let (pw0, ph0) = size_of(path);
        let (x, y, pw, ph) = grid_place(i, w, h, pw0, ph0, scale);
        frame.paste(&picture(path, pw, ph), pw, ph, x, y);
    }
    frame
}

/// The walking face: the bundled clip (the astronaut, 640x360, her face 132-190 px) shrunk to
/// 154x86, so that her face is about 40 px, pasted at `walk(k)` on a 1080p picture of
/// `background`, frame by frame; 180 frames at 30 frames/s.
pub const WALK_SCALE: f64 = 154.0 / 640.0;
pub const WALK_SIZE: (usize, usize) = (154, 86);

pub fn walk(k: usize) -> (usize, usize) {
    (20 + 9 * k, 620)
}

/// Writes the walking-face clip (H.264 MP4) to `out`.
pub fn write_walking_clip(clip: &Path, background: &Path, out: &Path) {
    gst::init().unwrap();
    let (fw, fh) = WALK_SIZE;
    let mut back = Frame::new(1920, 1080);
    back.paste(&picture(background, 1920, 1080), 1920, 1080, 0, 0);
    let src = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! videoscale method=lanczos \
         ! video/x-raw,format=I420,width={fw},height={fh} ! appsink name=sink sync=false",
        clip.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = src.by_name("sink").unwrap().downcast::<gst_app::AppSink>().unwrap();
    let enc = gst::parse::launch(&format!(
        "appsrc name=src format=time caps=\"video/x-raw,format=I420,width=1920,height=1080,framerate=30/1,pixel-aspect-ratio=1/1\" \
         ! x264enc speed-preset=fast pass=quant quantizer=20 key-int-max=30 ! h264parse ! mp4mux ! filesink location=\"{}\"",
        out.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let appsrc = enc.by_name("src").unwrap().downcast::<gst_app::AppSrc>().unwrap();
    src.set_state(gst::State::Playing).unwrap();
    enc.set_state(gst::State::Playing).unwrap();
    let mut k = 0usize;
    while let Some(s) = sink.try_pull_sample(gst::ClockTime::from_seconds(120)) {
        let info = gst_video::VideoInfo::from_caps(s.caps().unwrap()).unwrap();
        let f = gst_video::VideoFrame::from_buffer_readable(s.buffer_owned().unwrap(), &info).unwrap();
        let mut frame = Frame {
            w: 1920,
            h: 1080,
            data: back.data.clone(),
        };
        let (x, y) = walk(k);
        frame.paste(&packed(&f, fw, fh), fw, fh, x, y);
        let mut b = gst::Buffer::from_slice(frame.data);
        let bm = b.get_mut().unwrap();
        bm.set_pts(gst::ClockTime::SECOND.mul_div_floor(k as u64, 30));
        bm.set_duration(gst::ClockTime::SECOND.mul_div_floor(1, 30));
        appsrc.push_buffer(b).unwrap();
        k += 1;
    }
    assert!(sink.is_eos(), "the bundled clip did not play to its end");
    src.set_state(gst::State::Null).unwrap();
    appsrc.end_of_stream().unwrap();
    let msg = enc.bus().unwrap().timed_pop_filtered(
        gst::ClockTime::from_seconds(120),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    enc.set_state(gst::State::Null).unwrap();
    assert!(
        matches!(msg.as_ref().map(|m| m.view()), Some(gst::MessageView::Eos(_))) && k == 180,
        "making {}: {msg:?} after {k} frames",
        out.display()
    );
}

/// Writes `frames` frames of one still frame (H.264 MP4, 30 frames/s) to `out`.
pub fn write_still_clip(frame: &Frame, frames: usize, out: &Path) {
    gst::init().unwrap();
    let enc = gst::parse::launch(&format!(
        "appsrc name=src format=time caps=\"video/x-raw,format=I420,width={},height={},framerate=30/1,pixel-aspect-ratio=1/1\" \
         ! x264enc speed-preset=fast bitrate=6000 key-int-max=60 ! h264parse ! mp4mux ! filesink location=\"{}\"",
        frame.w,
        frame.h,
        out.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let appsrc = enc.by_name("src").unwrap().downcast::<gst_app::AppSrc>().unwrap();
    enc.set_state(gst::State::Playing).unwrap();
    for k in 0..frames as u64 {
        let mut b = gst::Buffer::from_slice(frame.data.clone());
        let bm = b.get_mut().unwrap();
        bm.set_pts(gst::ClockTime::SECOND.mul_div_floor(k, 30));
        bm.set_duration(gst::ClockTime::SECOND.mul_div_floor(1, 30));
        appsrc.push_buffer(b).unwrap();
    }
    appsrc.end_of_stream().unwrap();
    let msg = enc.bus().unwrap().timed_pop_filtered(
        gst::ClockTime::from_seconds(300),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    enc.set_state(gst::State::Null).unwrap();
    assert!(
        matches!(msg.as_ref().map(|m| m.view()), Some(gst::MessageView::Eos(_))),
        "making {}: {msg:?}",
        out.display()
    );
}

/// A picture of `pw` x `ph` (even) pasted on a `w` x `h` picture of `background` at `place(k)`
/// (even positions) on frame k, `frames` frames at 30 frames/s, written as an H.264 MP4.
pub fn write_moving_clip(
    picture_path: &Path,
    (pw, ph): (usize, usize),
    background: &Path,
    (w, h): (usize, usize),
    frames: usize,
    place: impl Fn(usize) -> (usize, usize),
    out: &Path,
) {
    gst::init().unwrap();
    let mut back = Frame::new(w, h);
    back.paste(&picture(background, w, h), w, h, 0, 0);
    let pic = picture(picture_path, pw, ph);
    let enc = gst::parse::launch(&format!(
        "appsrc name=src format=time caps=\"video/x-raw,format=I420,width={w},height={h},framerate=30/1,pixel-aspect-ratio=1/1\" \
         ! x264enc speed-preset=fast pass=quant quantizer=20 key-int-max=30 ! h264parse ! mp4mux ! filesink location=\"{}\"",
        out.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let appsrc = enc.by_name("src").unwrap().downcast::<gst_app::AppSrc>().unwrap();
    enc.set_state(gst::State::Playing).unwrap();
    for k in 0..frames {
        let mut frame = Frame {
            w,
            h,
            data: back.data.clone(),
        };
        let (x, y) = place(k);
        frame.paste(&pic, pw, ph, x, y);
        let mut b = gst::Buffer::from_slice(frame.data);
        let bm = b.get_mut().unwrap();
        bm.set_pts(gst::ClockTime::SECOND.mul_div_floor(k as u64, 30));
        bm.set_duration(gst::ClockTime::SECOND.mul_div_floor(1, 30));
        appsrc.push_buffer(b).unwrap();
    }
    appsrc.end_of_stream().unwrap();
    let msg = enc.bus().unwrap().timed_pop_filtered(
        gst::ClockTime::from_seconds(300),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    enc.set_state(gst::State::Null).unwrap();
    assert!(
        matches!(msg.as_ref().map(|m| m.view()), Some(gst::MessageView::Eos(_))),
        "making {}: {msg:?}",
        out.display()
    );
}
