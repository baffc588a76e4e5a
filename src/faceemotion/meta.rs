//! The metadata layout: what `faceemotion` writes on each buffer (ROI metas with DL Streamer's
//! parameter structures), posts on the bus, and sends downstream when a person appears or
//! leaves. `faceemotionpublish` reads it back by these names.

use std::path::PathBuf;

use gst::prelude::*;

use crate::face::{Face, EMOTIONS};
use crate::tracker::TrackEvent;

/// The element message with a frame's faces.
pub const FRAME_MESSAGE: &str = "faceemotion";
/// The element message, and the serialized downstream event, of a person appearing or leaving.
pub const TRACK_EVENT: &str = "faceemotion-track";
/// The ROI parameter structure with the emotion model's own answer on this frame (the
/// `emotion` structure carries the person's smoothed one).
pub const EMOTION_RAW: &str = "emotion-raw";
/// The structure, inside a track event, of the share of the person's time in each emotion.
pub const EMOTION_SHARE: &str = "emotion-share";

/// The models' names as the metadata gives them (`model_name`): the file stems, joined by `+`
/// for an ensemble. Worked out when the models are loaded, not per frame.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelNames {
    pub emotion: String,
    pub gender: String,
}

impl ModelNames {
    pub fn new(emotion: &[PathBuf], gender: &[PathBuf]) -> Self {
        let names = |paths: &[PathBuf]| {
            paths
                .iter()
                .map(|p| p.file_stem().and_then(|s| s.to_str()).unwrap_or(""))
                .collect::<Vec<_>>()
                .join("+")
        };
        Self {
            emotion: names(emotion),
            gender: names(gender),
        }
    }
}

fn emotion_structure(name: &str, e: &crate::face::EmotionScores, model: &str) -> gst::Structure {
    let mut s = gst::Structure::builder(name)
        .field("label", e.label())
        .field("label_id", e.best() as i32)
        .field("confidence", e.confidence() as f64)
        .field("model_name", model)
        .build();
    for (name, p) in EMOTIONS.iter().zip(e.0) {
        s.set(*name, p as f64);
    }
    s
}

/// One `GstVideoRegionOfInterestMeta` per face, with the parameter structures `detection`,
/// `emotion` (the person's), `emotion-raw` (this frame's answer), `gender` and `age`.
pub fn add_face_metas(buf: &mut gst::BufferRef, faces: &[Face], width: u32, height: u32, names: &ModelNames) {
    let (w, h) = (width as f32, height as f32);
    for (i, f) in faces.iter().enumerate() {
        let b = f.bbox();
        let (x, y) = (b.x1.round().max(0.0) as u32, b.y1.round().max(0.0) as u32);
        let rw = (b.x2.round() as u32).min(width).saturating_sub(x);
        let rh = (b.y2.round() as u32).min(height).saturating_sub(y);
        let mut meta = gst_video::VideoRegionOfInterestMeta::add(buf, "face", (x, y, rw, rh));
        // The tracker's id, stable across frames (DL Streamer's object id).
        meta.set_id(if f.id != 0 { f.id as i32 } else { i as i32 });
        meta.add_param(
            gst::Structure::builder("detection")
                .field("x_min", (b.x1 / w) as f64)
                .field("y_min", (b.y1 / h) as f64)
                .field("x_max", (b.x2 / w) as f64)
                .field("y_max", (b.y2 / h) as f64)
                .field("confidence", f.detection.score as f64)
                .field("label_id", 0i32)
                .field("label", "face")
                .field("object_id", f.id as i32)
                .build(),
        );
        if let Some(e) = &f.emotion {
            meta.add_param(emotion_structure("emotion", e, &names.emotion));
        }
        if let Some(e) = &f.emotion_raw {
            meta.add_param(emotion_structure(EMOTION_RAW, e, &names.emotion));
        }
        if let Some(g) = &f.gender {
            meta.add_param(
                gst::Structure::builder("gender")
                    .field("label", g.gender().label())
                    .field("label_id", g.gender() as i32)
                    .field("confidence", g.confidence() as f64)
                    .field("model_name", &names.gender)
                    .build(),
            );
            if let Some(age) = g.age {
                meta.add_param(
                    gst::Structure::builder("age")
                        .field("label", format!("{:.0}", age))
                        .field("age", age as f64)
                        .field("model_name", &names.gender)
                        .build(),
                );
            }
        }
    }
}

/// The `faceemotion` element message of a frame.
pub fn frame_message(
    faces: &[Face],
    pts: Option<gst::ClockTime>,
    stream_time: Option<gst::ClockTime>,
    running_time: Option<gst::ClockTime>,
) -> gst::Structure {
    let list = gst::List::new(faces.iter().map(|f| {
        let b = f.bbox();
        let mut s = gst::Structure::builder("face")
            .field("x", b.x1.round() as i32)
            .field("y", b.y1.round() as i32)
            .field("width", b.width().round() as i32)
            .field("height", b.height().round() as i32)
            .field("confidence", f.detection.score as f64)
            .build();
        if f.id != 0 {
            s.set("id", f.id);
        }
        if let Some(e) = &f.emotion {
            s.set("emotion", e.label());
            s.set("emotion-confidence", e.confidence() as f64);
        }
        if let Some(e) = &f.emotion_raw {
            s.set("emotion-raw", e.label());
        }
        if let Some(g) = &f.gender {
            s.set("gender", g.gender().label());
            s.set("gender-confidence", g.confidence() as f64);
            if let Some(age) = g.age {
                s.set("age", age as f64);
            }
        }
        s.to_send_value()
    }));
    gst::Structure::builder(FRAME_MESSAGE)
        .field("timestamp", pts)
        .field("stream-time", stream_time)
        .field("running-time", running_time)
        .field("faces", list)
        .build()
}

/// A person appearing or leaving: `event` (`appeared`/`left`), `id`, `first` and `last` (stream
/// time of the first and last frame seen, ns), `duration` (ns present), `frames`, and what is
/// known of the person: `emotion` (the dominant one) with `emotion-share` (share of the time in
/// each), `gender` with `gender-confidence`, `age`.
pub fn track_event(ev: &TrackEvent) -> gst::Structure {
    let p = &ev.person;
    let mut s = gst::Structure::builder(TRACK_EVENT)
        .field("event", ev.kind.name())
        .field("id", ev.id)
        .field("first", p.first)
        .field("last", p.last)
        .field("duration", p.duration)
        .field("frames", p.frames)
        .build();
    if let (Some(share), Some(best)) = (p.emotion_share, p.dominant_emotion()) {
        s.set("emotion", EMOTIONS[best]);
        let mut shares = gst::Structure::new_empty(EMOTION_SHARE);
        for (name, v) in EMOTIONS.iter().zip(share) {
            shares.set(*name, v as f64);
        }
        s.set(EMOTION_SHARE, shares);
    }
    if let Some(g) = p.gender {
        s.set("gender", g.gender().label());
        s.set("gender-confidence", g.confidence() as f64);
        if let Some(age) = g.age {
            s.set("age", age as f64);
        }
    }
    s
}
