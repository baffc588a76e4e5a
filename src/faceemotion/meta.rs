//! The metadata layout: what `faceemotion` writes on each buffer (ROI metas with DL Streamer's
//! parameter structures), posts on the bus, and sends downstream when a person appears or
//! leaves, by the names of [`crate::schema`], where `faceemotionpublish` reads them back.

use std::path::PathBuf;

use gst::prelude::*;

use crate::face::{Face, EMOTIONS};
use crate::schema::{event, field, message, param, FRAME_MESSAGE, TRACK_EVENT, ZONE_EVENT};
use crate::tracker::{TrackEvent, TrackEventKind};
use crate::zone::ZoneSet;

/// The names of the zones a face is in.
fn zone_names(bits: u32, zones: &ZoneSet) -> gst::Array {
    gst::Array::new(
        (0..zones.len())
            .filter(|i| bits & (1 << i) != 0)
            .filter_map(|i| zones.name(i)),
    )
}

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
        .field(field::LABEL, e.label())
        .field(field::LABEL_ID, e.best() as i32)
        .field(field::CONFIDENCE, e.confidence() as f64)
        .field(field::MODEL_NAME, model)
        .build();
    for (name, p) in EMOTIONS.iter().zip(e.0) {
        s.set(*name, p as f64);
    }
    s
}

/// One `GstVideoRegionOfInterestMeta` per face, with the parameter structures `detection`,
/// `emotion` (the person's), `emotion-raw` (this frame's answer), `gender` and `age`.
pub fn add_face_metas(
    buf: &mut gst::BufferRef,
    faces: &[Face],
    width: u32,
    height: u32,
    names: &ModelNames,
    zones: &ZoneSet,
) {
    let (w, h) = (width as f32, height as f32);
    for (i, f) in faces.iter().enumerate() {
        let b = f.bbox();
        let (x, y) = (b.x1.round().max(0.0) as u32, b.y1.round().max(0.0) as u32);
        let rw = (b.x2.round() as u32).min(width).saturating_sub(x);
        let rh = (b.y2.round() as u32).min(height).saturating_sub(y);
        let mut meta = gst_video::VideoRegionOfInterestMeta::add(buf, "face", (x, y, rw, rh));
        // The tracker's id, stable across frames (DL Streamer's object id).
        meta.set_id(if f.id != 0 { f.id as i32 } else { i as i32 });
        let mut detection = gst::Structure::builder(param::DETECTION)
            .field(field::X_MIN, (b.x1 / w) as f64)
            .field(field::Y_MIN, (b.y1 / h) as f64)
            .field(field::X_MAX, (b.x2 / w) as f64)
            .field(field::Y_MAX, (b.y2 / h) as f64)
            .field(field::CONFIDENCE, f.detection.score as f64)
            .field(field::LABEL_ID, 0i32)
            .field(field::LABEL, "face")
            .field(field::OBJECT_ID, f.id as i32)
            .build();
        if f.visitor != 0 {
            detection.set(field::VISITOR_ID, f.visitor);
        }
        if !zones.is_empty() {
            detection.set(field::ZONES, zone_names(f.zones, zones));
        }
        meta.add_param(detection);
        if let Some(e) = &f.emotion {
            meta.add_param(emotion_structure(param::EMOTION, e, &names.emotion));
        }
        if let Some(e) = &f.emotion_raw {
            meta.add_param(emotion_structure(param::EMOTION_RAW, e, &names.emotion));
        }
        if let Some(g) = &f.gender {
            meta.add_param(
                gst::Structure::builder(param::GENDER)
                    .field(field::LABEL, g.gender().label())
                    .field(field::LABEL_ID, g.gender() as i32)
                    .field(field::CONFIDENCE, g.confidence() as f64)
                    .field(field::MODEL_NAME, &names.gender)
                    .build(),
            );
            if let Some(age) = g.age {
                meta.add_param(
                    gst::Structure::builder(param::AGE)
                        .field(field::LABEL, format!("{:.0}", age))
                        .field(field::AGE, age as f64)
                        .field(field::MODEL_NAME, &names.gender)
                        .build(),
                );
            }
        }
    }
}

/// The `faceemotion` element message of a frame.
pub fn frame_message(
    faces: &[Face],
    zones: &ZoneSet,
    pts: Option<gst::ClockTime>,
    stream_time: Option<gst::ClockTime>,
    running_time: Option<gst::ClockTime>,
    unix: Option<u64>,
) -> gst::Structure {
    let list = gst::List::new(faces.iter().map(|f| {
        let b = f.bbox();
        let mut s = gst::Structure::builder(message::FACE)
            .field(message::X, b.x1.round() as i32)
            .field(message::Y, b.y1.round() as i32)
            .field(message::WIDTH, b.width().round() as i32)
            .field(message::HEIGHT, b.height().round() as i32)
            .field(message::CONFIDENCE, f.detection.score as f64)
            .build();
        if f.id != 0 {
            s.set(message::ID, f.id);
        }
        if f.visitor != 0 {
            s.set(message::VISITOR, f.visitor);
        }
        if !zones.is_empty() {
            s.set(message::ZONES, zone_names(f.zones, zones));
        }
        if let Some(e) = &f.emotion {
            s.set(message::EMOTION, e.label());
            s.set(message::EMOTION_CONFIDENCE, e.confidence() as f64);
        }
        if let Some(e) = &f.emotion_raw {
            s.set(message::EMOTION_RAW, e.label());
        }
        if let Some(g) = &f.gender {
            s.set(message::GENDER, g.gender().label());
            s.set(message::GENDER_CONFIDENCE, g.confidence() as f64);
            if let Some(age) = g.age {
                s.set(message::AGE, age as f64);
            }
        }
        s.to_send_value()
    }));
    let mut s = gst::Structure::builder(FRAME_MESSAGE)
        .field(message::TIMESTAMP, pts)
        .field(message::STREAM_TIME, stream_time)
        .field(message::RUNNING_TIME, running_time)
        .field(message::FACES, list)
        .build();
    if let Some(unix) = unix {
        s.set(message::UTC, crate::schema::utc(unix));
    }
    s
}

/// A person appearing or leaving: `event` (`appeared`/`left`), `id`, `first` and `last` (stream
/// time of the first and last frame seen, ns), `duration` (ns present), `frames`, and what is
/// known of the person: `emotion` (the dominant one) with `emotion-share` (share of the time in
/// each), `gender` with `gender-confidence`, `age`; `utc`, the time of day of the frame the
/// event is about, when known; with recognition on, `visitor`, `visit` and `returning`.
pub fn track_event(ev: &TrackEvent, wall: &crate::timing::WallClock) -> gst::Structure {
    if ev.kind == TrackEventKind::Zone {
        return zone_event(ev, wall);
    }
    let p = &ev.person;
    let mut s = gst::Structure::builder(TRACK_EVENT)
        .field(event::EVENT, ev.kind.name())
        .field(event::ID, ev.id)
        .field(event::FIRST, p.first)
        .field(event::LAST, p.last)
        .field(event::DURATION, p.duration)
        .field(event::FRAMES, p.frames)
        .build();
    if let Some(v) = ev.visit {
        s.set(event::VISITOR, v.visitor);
        s.set(event::VISIT, v.number);
        s.set(event::RETURNING, v.returning());
    }
    if let (Some(share), Some(best)) = (p.emotion_share, p.dominant_emotion()) {
        s.set(event::EMOTION, EMOTIONS[best]);
        let mut shares = gst::Structure::new_empty(event::EMOTION_SHARE);
        for (name, v) in EMOTIONS.iter().zip(share) {
            shares.set(*name, v as f64);
        }
        s.set(event::EMOTION_SHARE, shares);
    }
    if let Some(g) = p.gender {
        s.set(event::GENDER, g.gender().label());
        s.set(event::GENDER_CONFIDENCE, g.confidence() as f64);
        if let Some(age) = g.age {
            s.set(event::AGE, age as f64);
        }
    }
    if ev.kind == TrackEventKind::Left && !ev.zone_times.is_empty() {
        let mut times = gst::Structure::new_empty(event::ZONES);
        for (name, ns) in ev.zone_times.iter() {
            times.set(name, ns as f64 / 1e9);
        }
        s.set(event::ZONES, times);
    }
    // The time of day of the frame the event is about: the first (appeared) or last (left).
    let at = match ev.kind {
        TrackEventKind::Appeared => p.first,
        TrackEventKind::Left | TrackEventKind::Zone => p.last,
    };
    if let Some(unix) = wall.at(at) {
        s.set(event::UTC, crate::schema::utc(unix));
    }
    s
}

/// A person entering or leaving a zone: `event` (`entered`/`exited`), `zone`, `id` (and
/// `visitor`), `timestamp` and `running-time` of the first frame inside (outside), on exit
/// `duration` (ns of the stay), and `utc` when the time of day is known.
fn zone_event(ev: &TrackEvent, wall: &crate::timing::WallClock) -> gst::Structure {
    let Some(z) = &ev.zone else {
        return gst::Structure::new_empty(ZONE_EVENT);
    };
    let mut s = gst::Structure::builder(ZONE_EVENT)
        .field(event::EVENT, if z.entered { "entered" } else { "exited" })
        .field(event::ZONE, &*z.zone)
        .field(event::ID, ev.id)
        .field(event::TIMESTAMP, z.ts)
        .field(event::RUNNING_TIME, z.clock)
        .build();
    if let Some(v) = ev.visit {
        s.set(event::VISITOR, v.visitor);
    }
    if let Some(stay) = z.stay {
        s.set(event::DURATION, stay);
    }
    if let Some(unix) = wall.at(z.ts) {
        s.set(event::UTC, crate::schema::utc(unix));
    }
    s
}
