//! Records in the shape of DL Streamer's `gvametaconvert`, from any DL Streamer-style ROI meta,
//! and records of the track events `faceemotion` sends downstream.

use serde_json::{json, Map, Value};

use crate::face::EMOTIONS;
use crate::faceemotion::meta::{EMOTION_RAW, EMOTION_SHARE};

/// Fields of a classification structure that the record names itself.
const STANDARD: [&str; 4] = ["label", "label_id", "confidence", "model_name"];

fn number(v: &glib::SendValue) -> Option<f64> {
    v.get::<f64>()
        .ok()
        .or_else(|| v.get::<f32>().ok().map(f64::from))
        .or_else(|| v.get::<i32>().ok().map(f64::from))
        .or_else(|| v.get::<u32>().ok().map(f64::from))
        .or_else(|| v.get::<i64>().ok().map(|x| x as f64))
        .or_else(|| v.get::<u64>().ok().map(|x| x as f64))
}

fn int(s: &gst::StructureRef, name: &str) -> Option<i64> {
    s.get::<i32>(name)
        .ok()
        .map(i64::from)
        .or_else(|| s.get::<u32>(name).ok().map(i64::from))
        .or_else(|| s.get::<i64>(name).ok())
        .or_else(|| s.get::<u64>(name).ok().map(|x| x as i64))
}

fn double(s: &gst::StructureRef, name: &str) -> Option<f64> {
    s.value(name).ok().and_then(number)
}

/// A classification: `{label, label_id, confidence, model {name}}` as gvametaconvert writes it,
/// with the structure's other numbers beside them: the class probabilities of `emotion` and
/// `emotion-raw` as `probabilities`, the years of `age` as `years`, anything else as `values`.
fn classification(s: &gst::StructureRef) -> Option<Value> {
    let label = s.get::<&str>("label").ok()?;
    let model = s.get::<&str>("model_name").ok()?;
    let mut o = Map::new();
    o.insert("label".into(), label.into());
    o.insert("model".into(), json!({ "name": model }));
    if let Some(id) = int(s, "label_id") {
        o.insert("label_id".into(), id.into());
    }
    if let Some(c) = double(s, "confidence") {
        o.insert("confidence".into(), c.into());
    }
    let mut extra = Map::new();
    for (field, value) in s.iter() {
        if STANDARD.contains(&field.as_str()) {
            continue;
        }
        if let Some(n) = number(value) {
            extra.insert(field.to_string(), n.into());
        }
    }
    let name = s.name().as_str();
    if (name == "emotion" || name == EMOTION_RAW) && EMOTIONS.iter().all(|e| extra.contains_key(*e)) {
        o.insert("probabilities".into(), Value::Object(extra));
    } else if name == "age" && extra.len() == 1 && extra.contains_key("age") {
        o.insert("years".into(), extra["age"].clone());
    } else if !extra.is_empty() {
        o.insert("values".into(), Value::Object(extra));
    }
    Some(Value::Object(o))
}

/// One object of a frame record from one ROI meta.
pub fn object(meta: &gst_video::VideoRegionOfInterestMeta, width: u32, height: u32) -> Value {
    let (x, y, w, h) = meta.rect();
    let mut o = Map::new();
    o.insert("x".into(), x.into());
    o.insert("y".into(), y.into());
    o.insert("w".into(), w.into());
    o.insert("h".into(), h.into());
    o.insert("region_id".into(), meta.id().into());
    o.insert("roi_type".into(), meta.roi_type().to_string().into());
    let mut id = None;
    for s in meta.params() {
        match s.name().as_str() {
            "detection" => {
                let (fw, fh) = (width.max(1) as f64, height.max(1) as f64);
                let b = |k: &str, px: f64| double(s, k).unwrap_or(px);
                let mut d = Map::new();
                d.insert(
                    "bounding_box".into(),
                    json!({
                        "x_min": b("x_min", x as f64 / fw),
                        "y_min": b("y_min", y as f64 / fh),
                        "x_max": b("x_max", (x + w) as f64 / fw),
                        "y_max": b("y_max", (y + h) as f64 / fh),
                    }),
                );
                if let Some(c) = double(s, "confidence") {
                    d.insert("confidence".into(), c.into());
                }
                if let Ok(l) = s.get::<&str>("label") {
                    d.insert("label".into(), l.into());
                }
                if let Some(l) = int(s, "label_id") {
                    d.insert("label_id".into(), l.into());
                }
                o.insert("detection".into(), Value::Object(d));
                id = id.or(int(s, "object_id").filter(|&i| i > 0));
            }
            // DL Streamer's tracker writes the id in a structure of its own.
            "object_id" => id = int(s, "id").or(id),
            name => {
                if let Some(c) = classification(s) {
                    o.insert(name.to_string(), c);
                }
            }
        }
    }
    if let Some(id) = id {
        o.insert("id".into(), id.into());
    }
    Value::Object(o)
}

/// The fields every record carries: `timestamp` (ns), `source`, `tags`.
fn stamp(o: &mut Map<String, Value>, timestamp: Option<u64>, source: &str, tags: Option<&Value>) {
    if let Some(t) = timestamp {
        o.insert("timestamp".into(), t.into());
    }
    if !source.is_empty() {
        o.insert("source".into(), source.into());
    }
    if let Some(t) = tags {
        o.insert("tags".into(), t.clone());
    }
}

/// A frame record: `objects`, `resolution`, `timestamp`, `source`, `tags`; `None` for a frame
/// without objects unless `add_empty`.
pub fn frame(
    buf: &gst::BufferRef,
    width: u32,
    height: u32,
    timestamp: Option<u64>,
    source: &str,
    tags: Option<&Value>,
    add_empty: bool,
) -> Option<Value> {
    let objects: Vec<Value> = buf
        .iter_meta::<gst_video::VideoRegionOfInterestMeta>()
        .map(|m| object(&m, width, height))
        .collect();
    if objects.is_empty() && !add_empty {
        return None;
    }
    let mut o = Map::new();
    o.insert("objects".into(), Value::Array(objects));
    o.insert("resolution".into(), json!({ "width": width, "height": height }));
    stamp(&mut o, timestamp, source, tags);
    Some(Value::Object(o))
}

/// A track event record: `event` with the person's summary (`type` appeared/left, `id`,
/// `first`, `last`, `duration` in ns, `frames`, `emotion`, `emotion_share`, `gender`,
/// `gender_confidence`, `age`), timestamped with the person's first frame (appeared) or last
/// frame (left).
pub fn track_event(s: &gst::StructureRef, source: &str, tags: Option<&Value>) -> Value {
    let mut e = Map::new();
    let kind = s.get::<&str>("event").unwrap_or("");
    e.insert("type".into(), kind.into());
    for k in ["id", "first", "last", "duration", "frames"] {
        if let Some(v) = int(s, k) {
            e.insert(k.into(), v.into());
        }
    }
    if let Ok(v) = s.get::<&str>("emotion") {
        e.insert("emotion".into(), v.into());
    }
    if let Ok(share) = s.get::<gst::Structure>(EMOTION_SHARE) {
        let m: Map<String, Value> = share
            .iter()
            .filter_map(|(k, v)| Some((k.to_string(), number(v)?.into())))
            .collect();
        e.insert("emotion_share".into(), Value::Object(m));
    }
    if let Ok(v) = s.get::<&str>("gender") {
        e.insert("gender".into(), v.into());
    }
    if let Some(v) = double(s, "gender-confidence") {
        e.insert("gender_confidence".into(), v.into());
    }
    if let Some(v) = double(s, "age") {
        e.insert("age".into(), v.into());
    }
    let when = if kind == "left" {
        int(s, "last")
    } else {
        int(s, "first")
    };
    let mut o = Map::new();
    o.insert("event".into(), Value::Object(e));
    stamp(&mut o, when.map(|v| v as u64), source, tags);
    Value::Object(o)
}

use gst::glib;
